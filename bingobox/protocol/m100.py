"""MagicRF M100/QM100 ("R200", JRD-100, YRM100) UHF reader protocol, sans-I/O.

Frame (both directions): ``HEAD | type | cmd | PL_hi | PL_lo | params[PL] | sum8 | END`` with HEAD/END
``BB``/``7E`` or, in the R200 user protocol, ``AA``/``DD``. The checksum covers type..params.
Frames are cut by their length field, never by searching for the end byte (0x7E occurs inside EPCs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ProtocolError
from .checksums import crc16_genibus, sum8

TYPE_COMMAND = 0x00
TYPE_RESPONSE = 0x01
TYPE_NOTICE = 0x02

CMD_HW_VERSION = 0x03
CMD_SINGLE_INVENTORY = 0x22
CMD_MULTI_POLL = 0x27
CMD_STOP_MULTI_POLL = 0x28
CMD_GET_REGION = 0x08
CMD_SET_REGION = 0x07
CMD_GET_POWER = 0xB7
CMD_SET_POWER = 0xB6
CMD_ERROR = 0xFF

ERR_NO_TAG = 0x15  # "inventory fail": the normal answer for an empty round
ERR_BAD_COMMAND = 0x17
ERROR_NAMES = {
    0x09: "read fail",
    0x10: "write fail",
    0x12: "kill fail",
    0x13: "lock fail",
    0x14: "block-permalock fail",
    0x15: "no tag (inventory fail)",
    0x16: "access fail",
    0x17: "malformed command",
    0x20: "FHSS fail",
}


@dataclass(frozen=True, slots=True)
class Framing:
    """Header and end byte of one dialect."""

    head: int
    end: int
    name: str


BB = Framing(0xBB, 0x7E, "BB")
AA = Framing(0xAA, 0xDD, "AA")
FRAMINGS = {"BB": BB, "AA": AA}


@dataclass(frozen=True, slots=True)
class Command:
    """Host → reader command."""

    cmd: int
    params: bytes = b""


@dataclass(frozen=True, slots=True)
class Response:
    """Reader → host response to a command (type 0x01, cmd != 0xFF)."""

    cmd: int
    params: bytes = b""


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """Reader error response (type 0x01, cmd 0xFF). Code 0x15 means an empty inventory round."""

    code: int
    pc: int | None = None
    epc: bytes | None = None

    @property
    def empty_round(self) -> bool:
        return self.code == ERR_NO_TAG

    @property
    def description(self) -> str:
        return ERROR_NAMES.get(self.code, f"error 0x{self.code:02X}")


@dataclass(frozen=True, slots=True)
class TagNotice:
    """One tag read (type 0x02): signed RSSI in dBm, PC word, EPC of any length, the tag's CRC-16."""

    cmd: int
    rssi: int
    pc: int
    epc: bytes
    crc: int
    crc_ok: bool = field(default=True, compare=False)

    @property
    def epc_hex(self) -> str:
        return self.epc.hex().upper()


Frame = Command | Response | ErrorFrame | TagNotice


def pc_for_epc(epc: bytes) -> int:
    """Gen2 PC word for an EPC (length in 16-bit words in bits 15..11)."""
    if len(epc) % 2 or not 0 < len(epc) <= 62:
        raise ProtocolError(f"EPC must be 2..62 bytes, an even count; got {len(epc)}")
    return (len(epc) // 2) << 11


def encode(frame_type: int, cmd: int, params: bytes = b"", framing: Framing = BB) -> bytes:
    """Encode one frame of any type."""
    if not 0 <= cmd <= 0xFF or not 0 <= frame_type <= 0xFF:
        raise ProtocolError("type and cmd are single bytes")
    if len(params) > 0xFFFF:
        raise ProtocolError("payload longer than 65535 bytes")
    body = bytes((frame_type, cmd, len(params) >> 8, len(params) & 0xFF)) + params
    return bytes((framing.head,)) + body + bytes((sum8(body), framing.end))


def encode_frame(frame: Frame, framing: Framing = BB) -> bytes:
    """Encode a typed frame."""
    if isinstance(frame, Command):
        return encode(TYPE_COMMAND, frame.cmd, frame.params, framing)
    if isinstance(frame, Response):
        return encode(TYPE_RESPONSE, frame.cmd, frame.params, framing)
    if isinstance(frame, ErrorFrame):
        extra = b""
        if frame.epc is not None:
            extra = (frame.pc if frame.pc is not None else pc_for_epc(frame.epc)).to_bytes(2, "big") + frame.epc
        return encode(TYPE_RESPONSE, CMD_ERROR, bytes((frame.code,)) + extra, framing)
    if isinstance(frame, TagNotice):
        body = frame.pc.to_bytes(2, "big") + frame.epc
        params = bytes((frame.rssi & 0xFF,)) + body + frame.crc.to_bytes(2, "big")
        return encode(TYPE_NOTICE, frame.cmd, params, framing)
    raise ProtocolError(f"not an M100 frame: {frame!r}")


def tag_notice(epc: bytes, rssi: int, cmd: int = CMD_SINGLE_INVENTORY, framing: Framing = BB) -> bytes:
    """A reader's notice for one tag, with the PC derived from the EPC length and a correct tag CRC."""
    if not -128 <= rssi <= 127:
        raise ProtocolError(f"RSSI {rssi} dBm does not fit a signed byte")
    pc = pc_for_epc(epc)
    crc = crc16_genibus(pc.to_bytes(2, "big") + epc)
    return encode_frame(TagNotice(cmd, rssi, pc, epc, crc), framing)


def single_inventory(framing: Framing = BB) -> bytes:
    return encode(TYPE_COMMAND, CMD_SINGLE_INVENTORY, b"", framing)


def multi_poll(rounds: int, framing: Framing = BB) -> bytes:
    """Multi-poll for ``rounds`` rounds (0..65535). The reserved 0x22 byte before the count is mandatory."""
    if not 0 <= rounds <= 0xFFFF:
        raise ProtocolError(f"multi-poll count {rounds} outside 0..65535")
    return encode(TYPE_COMMAND, CMD_MULTI_POLL, bytes((0x22, rounds >> 8, rounds & 0xFF)), framing)


def stop_multi_poll(framing: Framing = BB) -> bytes:
    return encode(TYPE_COMMAND, CMD_STOP_MULTI_POLL, b"", framing)


def hw_version(which: int = 0, framing: Framing = BB) -> bytes:
    """Query hardware (0), software (1) version or manufacturer (2)."""
    return encode(TYPE_COMMAND, CMD_HW_VERSION, bytes((which,)), framing)


def _parse(frame_type: int, cmd: int, params: bytes) -> Frame:
    if frame_type == TYPE_COMMAND:
        return Command(cmd, params)
    if frame_type == TYPE_RESPONSE:
        if cmd == CMD_ERROR:
            if not params:
                raise ProtocolError("error frame without a code")
            if len(params) >= 3:
                return ErrorFrame(params[0], int.from_bytes(params[1:3], "big"), params[3:])
            return ErrorFrame(params[0])
        return Response(cmd, params)
    # notice: RSSI(1) PC(2) EPC(PL-5) CRC(2)
    if len(params) < 5:
        raise ProtocolError(f"tag notice too short ({len(params)} bytes)")
    rssi = params[0] - 256 if params[0] > 127 else params[0]
    pc = (params[1] << 8) | params[2]
    epc = params[3:-2]
    crc = (params[-2] << 8) | params[-1]
    return TagNotice(cmd, rssi, pc, epc, crc, crc16_genibus(params[1:-2]) == crc)


def decode_one(data: bytes, framing: Framing = BB) -> Frame:
    """Decode exactly one complete frame or raise ProtocolError."""
    dec = Decoder(framing, accept_types=(TYPE_COMMAND, TYPE_RESPONSE, TYPE_NOTICE), max_payload=0xFFFF)
    frames = dec.feed(data)
    if len(frames) != 1 or dec.pending or dec.stats["junk_bytes"]:
        raise ProtocolError(f"not exactly one valid frame: {data.hex(' ')}")
    return frames[0]


class Decoder:
    """Incremental decoder: feed any chunking, get whole frames; resyncs after junk.

    Frames are located by header and cut by the length field; a frame whose end byte, checksum, type or
    length is wrong is skipped one byte at a time (so a real frame hidden behind junk is still found).
    Buffering is bounded by the largest accepted frame.
    """

    def __init__(
        self,
        framing: Framing = BB,
        accept_types: tuple[int, ...] = (TYPE_RESPONSE, TYPE_NOTICE),
        max_payload: int = 255,
    ) -> None:
        self.framing = framing
        self.accept_types = frozenset(accept_types)
        self.max_payload = max_payload
        self._buf = bytearray()
        self.stats = {"frames": 0, "junk_bytes": 0, "bad_checksum": 0, "bad_end": 0, "bad_length": 0,
                      "bad_payload": 0}

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        out: list[Frame] = []
        head, end = self.framing.head, self.framing.end
        stats = self.stats
        pos = 0
        n = len(buf)
        while True:
            i = buf.find(head, pos)
            if i < 0:
                stats["junk_bytes"] += n - pos
                pos = n
                break
            stats["junk_bytes"] += i - pos
            pos = i
            if n - pos < 5:
                break
            ftype = buf[pos + 1]
            plen = (buf[pos + 3] << 8) | buf[pos + 4]
            if ftype not in self.accept_types:
                stats["junk_bytes"] += 1
                pos += 1
                continue
            if plen > self.max_payload:
                stats["bad_length"] += 1
                stats["junk_bytes"] += 1
                pos += 1
                continue
            size = plen + 7
            if n - pos < size:
                break
            if buf[pos + size - 1] != end:
                stats["bad_end"] += 1
                stats["junk_bytes"] += 1
                pos += 1
                continue
            if sum(buf[pos + 1 : pos + size - 2]) & 0xFF != buf[pos + size - 2]:
                stats["bad_checksum"] += 1
                stats["junk_bytes"] += 1
                pos += 1
                continue
            try:
                frame = _parse(ftype, buf[pos + 2], bytes(buf[pos + 5 : pos + 5 + plen]))
            except ProtocolError:
                stats["bad_payload"] += 1
                stats["junk_bytes"] += 1
                pos += 1
                continue
            out.append(frame)
            stats["frames"] += 1
            pos += size
        del buf[:pos]
        return out
