"""Modbus RTU (the door boards' and the temperature probes' protocol), sans-I/O: FC01, FC02, FC03, FC04, FC05, FC06,
FC0F and exception responses.

ADU: ``unit | function | data | CRC-lo | CRC-hi`` (CRC-16/MODBUS, low byte first). Frame lengths are
derived from the function code (and byte count), so decoders need no inter-frame silence to cut frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import ProtocolError as ProtocolError  # (re-exported: the bus raises it too)
from .checksums import crc16_modbus

READ_COILS = 0x01
READ_DISCRETE_INPUTS = 0x02
READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04
WRITE_SINGLE_COIL = 0x05
WRITE_SINGLE_REGISTER = 0x06
WRITE_MULTIPLE_COILS = 0x0F

COIL_ON = 0xFF00
COIL_OFF = 0x0000

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
DEVICE_FAILURE = 0x04
EXCEPTION_NAMES = {
    ILLEGAL_FUNCTION: "illegal function",
    ILLEGAL_DATA_ADDRESS: "illegal data address",
    ILLEGAL_DATA_VALUE: "illegal data value",
    DEVICE_FAILURE: "slave device failure",
}


@dataclass(frozen=True, slots=True)
class ReadBits:
    """FC01 (coils) or FC02 (discrete inputs) request."""

    unit: int
    function: int
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadRegisters:
    """FC03 (holding) or FC04 (input registers) request: a probe's readings."""

    unit: int
    function: int
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class WriteCoil:
    """FC05 request (and its echo response). ``value`` is the raw 16-bit field: FF00 on, 0000 off."""

    unit: int
    address: int
    value: int

    @property
    def on(self) -> bool:
        return self.value == COIL_ON


@dataclass(frozen=True, slots=True)
class WriteRegister:
    """FC06 request (and its echo response): one 16-bit holding register (a board's settings, e.g. its
    communication watchdog)."""

    unit: int
    address: int
    value: int


@dataclass(frozen=True, slots=True)
class WriteCoils:
    """FC0F request."""

    unit: int
    address: int
    values: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class OtherRequest:
    """A well-formed 8-byte request with a function this codec does not implement (answer: exception 01)."""

    unit: int
    function: int
    data: bytes


@dataclass(frozen=True, slots=True)
class BitsResponse:
    """FC01/FC02 response: the bits as sent (byte_count * 8, LSB first; trailing pad bits are False)."""

    unit: int
    function: int
    bits: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class RegistersResponse:
    """FC03/FC04 response: the registers' raw 16-bit values (a probe's scale and sign are its register map's)."""

    unit: int
    function: int
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WriteCoilsResponse:
    unit: int
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    unit: int
    function: int
    code: int

    @property
    def description(self) -> str:
        return EXCEPTION_NAMES.get(self.code, f"exception 0x{self.code:02X}")


Request = ReadBits | ReadRegisters | WriteCoil | WriteRegister | WriteCoils | OtherRequest
Response = BitsResponse | RegistersResponse | WriteCoil | WriteRegister | WriteCoilsResponse | ExceptionResponse


def with_crc(pdu: bytes) -> bytes:
    return pdu + crc16_modbus(pdu).to_bytes(2, "little")


def pack_bits(bits: tuple[bool, ...] | list[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def unpack_bits(data: bytes) -> tuple[bool, ...]:
    return tuple(bool(data[i // 8] & (1 << (i % 8))) for i in range(len(data) * 8))


def _check_unit(unit: int) -> None:
    if not 0 <= unit <= 247:
        raise ProtocolError(f"unit {unit} outside 0..247")


def encode_request(req: Request) -> bytes:
    _check_unit(req.unit)
    if isinstance(req, ReadBits):
        if req.function not in (READ_COILS, READ_DISCRETE_INPUTS):
            raise ProtocolError(f"ReadBits with function {req.function}")
        if not 1 <= req.count <= 2000 or not 0 <= req.address <= 0xFFFF:
            raise ProtocolError("read count must be 1..2000 and the address 16 bits")
        return with_crc(bytes((req.unit, req.function)) + req.address.to_bytes(2, "big") + req.count.to_bytes(2, "big"))
    if isinstance(req, ReadRegisters):
        if req.function not in (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS):
            raise ProtocolError(f"ReadRegisters with function {req.function}")
        if not 1 <= req.count <= 125 or not 0 <= req.address <= 0xFFFF:
            raise ProtocolError("register count must be 1..125 and the address 16 bits")
        return with_crc(bytes((req.unit, req.function)) + req.address.to_bytes(2, "big") + req.count.to_bytes(2, "big"))
    if isinstance(req, WriteCoil):
        if not 0 <= req.value <= 0xFFFF or not 0 <= req.address <= 0xFFFF:
            raise ProtocolError("coil address and value are 16 bits")
        return with_crc(bytes((req.unit, WRITE_SINGLE_COIL)) + req.address.to_bytes(2, "big")
                        + req.value.to_bytes(2, "big"))
    if isinstance(req, WriteRegister):
        if not 0 <= req.value <= 0xFFFF or not 0 <= req.address <= 0xFFFF:
            raise ProtocolError("register address and value are 16 bits")
        return with_crc(bytes((req.unit, WRITE_SINGLE_REGISTER)) + req.address.to_bytes(2, "big")
                        + req.value.to_bytes(2, "big"))
    if isinstance(req, WriteCoils):
        if not 1 <= len(req.values) <= 1968:
            raise ProtocolError("FC0F writes 1..1968 coils")
        data = pack_bits(req.values)
        return with_crc(bytes((req.unit, WRITE_MULTIPLE_COILS)) + req.address.to_bytes(2, "big")
                        + len(req.values).to_bytes(2, "big") + bytes((len(data),)) + data)
    if isinstance(req, OtherRequest):
        return with_crc(bytes((req.unit, req.function)) + req.data)
    raise ProtocolError(f"not a Modbus request: {req!r}")


def encode_response(resp: Response) -> bytes:
    _check_unit(resp.unit)
    if isinstance(resp, BitsResponse):
        data = pack_bits(resp.bits)
        if len(data) > 250:
            raise ProtocolError("too many bits for one response")
        return with_crc(bytes((resp.unit, resp.function, len(data))) + data)
    if isinstance(resp, RegistersResponse):
        if not 1 <= len(resp.values) <= 125 or any(not 0 <= v <= 0xFFFF for v in resp.values):
            raise ProtocolError("1..125 registers of 16 bits")
        data = b"".join(v.to_bytes(2, "big") for v in resp.values)
        return with_crc(bytes((resp.unit, resp.function, len(data))) + data)
    if isinstance(resp, WriteCoil | WriteRegister):
        return encode_request(resp)
    if isinstance(resp, WriteCoilsResponse):
        return with_crc(bytes((resp.unit, WRITE_MULTIPLE_COILS)) + resp.address.to_bytes(2, "big")
                        + resp.count.to_bytes(2, "big"))
    if isinstance(resp, ExceptionResponse):
        return with_crc(bytes((resp.unit, resp.function | 0x80, resp.code)))
    raise ProtocolError(f"not a Modbus response: {resp!r}")


class _Decoder:
    """Shared incremental decoder: length by function code, CRC check, one-byte resync on any failure.

    A false start in junk can make the decoder wait for a long frame; a host that knows what it asked bounds
    that with ``max_byte_count``, and a transport calls ``reset()`` after the line went silent (the RTU
    3.5-character rule), so the next frame is always found.
    """

    MAX_FRAME = 256

    def __init__(self, units: frozenset[int] | None = None, max_byte_count: int = 250) -> None:
        self.units = units if units is not None else frozenset(range(0, 248))
        self.max_byte_count = max_byte_count
        self._buf = bytearray()
        self.stats = {"frames": 0, "junk_bytes": 0, "bad_crc": 0}

    @property
    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def _length(self, buf: bytearray, pos: int, avail: int) -> int | None:
        """Expected frame length at pos, 0 if impossible here, None if more bytes are needed."""
        raise NotImplementedError

    def _parse(self, frame: bytes) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out = []
        pos, n = 0, len(buf)
        while n - pos >= 2:
            unit = buf[pos]
            if unit not in self.units:
                pos += 1
                self.stats["junk_bytes"] += 1
                continue
            size = self._length(buf, pos, n - pos)
            if size is None:
                break
            if size == 0:
                pos += 1
                self.stats["junk_bytes"] += 1
                continue
            if n - pos < size:
                break
            frame = bytes(buf[pos : pos + size])
            if crc16_modbus(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
                self.stats["bad_crc"] += 1
                self.stats["junk_bytes"] += 1
                pos += 1
                continue
            out.append(self._parse(frame))
            self.stats["frames"] += 1
            pos += size
        del buf[:pos]
        return out


class RequestDecoder(_Decoder):
    """Device side: decodes requests from the host."""

    def _length(self, buf: bytearray, pos: int, avail: int) -> int | None:
        fc = buf[pos + 1]
        if fc in (15, 16):
            if avail < 7:
                return None
            return 9 + buf[pos + 6] if buf[pos + 6] <= self.max_byte_count else 0
        if 1 <= fc <= 0x7F:
            return 8
        return 0

    def _parse(self, f: bytes) -> Request:
        unit, fc = f[0], f[1]
        addr = int.from_bytes(f[2:4], "big")
        if fc in (READ_COILS, READ_DISCRETE_INPUTS):
            return ReadBits(unit, fc, addr, int.from_bytes(f[4:6], "big"))
        if fc in (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS):
            return ReadRegisters(unit, fc, addr, int.from_bytes(f[4:6], "big"))
        if fc == WRITE_SINGLE_COIL:
            return WriteCoil(unit, addr, int.from_bytes(f[4:6], "big"))
        if fc == WRITE_SINGLE_REGISTER:
            return WriteRegister(unit, addr, int.from_bytes(f[4:6], "big"))
        if fc == WRITE_MULTIPLE_COILS:
            count = int.from_bytes(f[4:6], "big")
            bits = unpack_bits(f[7:-2])
            if count > len(bits) or (count + 7) // 8 != f[6]:
                return OtherRequest(unit, fc, f[2:-2])  # inconsistent: the device answers "illegal value"
            return WriteCoils(unit, addr, bits[:count])
        return OtherRequest(unit, fc, f[2:-2])


class ResponseDecoder(_Decoder):
    """Host side: decodes responses from the device."""

    def _length(self, buf: bytearray, pos: int, avail: int) -> int | None:
        fc = buf[pos + 1]
        if fc & 0x80:
            return 5 if 1 <= fc & 0x7F <= 0x7F else 0
        if fc in (1, 2, 3, 4):
            if avail < 3:
                return None
            return 5 + buf[pos + 2] if 0 < buf[pos + 2] <= self.max_byte_count else 0
        if fc in (5, 6, 15, 16):
            return 8
        return 0

    def _parse(self, f: bytes) -> Response:
        unit, fc = f[0], f[1]
        if fc & 0x80:
            return ExceptionResponse(unit, fc & 0x7F, f[2])
        if fc in (1, 2):
            return BitsResponse(unit, fc, unpack_bits(f[3:-2]))
        if fc in (3, 4):
            data = f[3:-2]
            if len(data) % 2:
                return ExceptionResponse(unit, fc, ILLEGAL_DATA_VALUE)  # (an odd byte count is not registers)
            return RegistersResponse(unit, fc, tuple(int.from_bytes(data[i:i + 2], "big")
                                                     for i in range(0, len(data), 2)))
        addr = int.from_bytes(f[2:4], "big")
        if fc == WRITE_MULTIPLE_COILS:
            return WriteCoilsResponse(unit, addr, int.from_bytes(f[4:6], "big"))
        if fc == WRITE_SINGLE_REGISTER:
            return WriteRegister(unit, addr, int.from_bytes(f[4:6], "big"))
        if fc == WRITE_SINGLE_COIL:
            return WriteCoil(unit, addr, int.from_bytes(f[4:6], "big"))
        return ExceptionResponse(unit, fc, ILLEGAL_FUNCTION)  # (FC16's echo: this host never sends FC16)
