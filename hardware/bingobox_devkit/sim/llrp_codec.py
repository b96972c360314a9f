"""LLRP (EPCglobal Low Level Reader Protocol 1.0.1) framing and the parameters a fixed UHF reader and its client
exchange for inventory: message header, TLV and TV parameters, the reader's capabilities, ROSpecs (their id, start
trigger and antennas), tag reports (EPC, antenna, peak RSSI, seen count, timestamps), keepalives and status.
Bytes in, values out; no I/O. The simulated reader (``hardware/sim/llrp_reader.py``) speaks through it; the store's
driver uses sllurp, a third-party client, so the two meet only on the wire.

Message header: 3 reserved bits, 3 version bits (1), 10 type bits; length (u32, header included); id (u32).
TLV parameter: 6 reserved bits, 10 type bits; length (u16, header included). TV parameter: 1 bit set, 7 type bits,
then a value whose size the type fixes.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

VERSION = 1
HEADER = struct.Struct("!HII")
MAX_MESSAGE = 1 << 20  # larger than any report this store asks for: a stream that says more is out of step

# message types (LLRP 1.0.1 §16)
GET_READER_CAPABILITIES, GET_READER_CONFIG, SET_READER_CONFIG, CLOSE_CONNECTION_RESPONSE = 1, 2, 3, 4
GET_READER_CAPABILITIES_RESPONSE, GET_READER_CONFIG_RESPONSE, SET_READER_CONFIG_RESPONSE = 11, 12, 13
CLOSE_CONNECTION = 14
ADD_ROSPEC, DELETE_ROSPEC, START_ROSPEC, STOP_ROSPEC, ENABLE_ROSPEC, DISABLE_ROSPEC = 20, 21, 22, 23, 24, 25
ADD_ROSPEC_RESPONSE, DELETE_ROSPEC_RESPONSE, START_ROSPEC_RESPONSE = 30, 31, 32
STOP_ROSPEC_RESPONSE, ENABLE_ROSPEC_RESPONSE, DISABLE_ROSPEC_RESPONSE = 33, 34, 35
ADD_ACCESSSPEC, DELETE_ACCESSSPEC, ENABLE_ACCESSSPEC, DISABLE_ACCESSSPEC = 40, 41, 42, 43
ADD_ACCESSSPEC_RESPONSE, DELETE_ACCESSSPEC_RESPONSE = 50, 51
ENABLE_ACCESSSPEC_RESPONSE, DISABLE_ACCESSSPEC_RESPONSE = 52, 53
RO_ACCESS_REPORT, KEEPALIVE, READER_EVENT_NOTIFICATION, ENABLE_EVENTS_AND_REPORTS = 61, 62, 63, 64
KEEPALIVE_ACK, ERROR_MESSAGE, CUSTOM_MESSAGE = 72, 100, 1023
RESPONSE_TO = {GET_READER_CAPABILITIES: GET_READER_CAPABILITIES_RESPONSE, GET_READER_CONFIG: GET_READER_CONFIG_RESPONSE,
               SET_READER_CONFIG: SET_READER_CONFIG_RESPONSE, CLOSE_CONNECTION: CLOSE_CONNECTION_RESPONSE,
               ADD_ROSPEC: ADD_ROSPEC_RESPONSE, DELETE_ROSPEC: DELETE_ROSPEC_RESPONSE,
               START_ROSPEC: START_ROSPEC_RESPONSE, STOP_ROSPEC: STOP_ROSPEC_RESPONSE,
               ENABLE_ROSPEC: ENABLE_ROSPEC_RESPONSE, DISABLE_ROSPEC: DISABLE_ROSPEC_RESPONSE,
               ADD_ACCESSSPEC: ADD_ACCESSSPEC_RESPONSE, DELETE_ACCESSSPEC: DELETE_ACCESSSPEC_RESPONSE,
               ENABLE_ACCESSSPEC: ENABLE_ACCESSSPEC_RESPONSE, DISABLE_ACCESSSPEC: DISABLE_ACCESSSPEC_RESPONSE}

# TV parameters: type → value size (bytes)
TV_SIZES = {1: 2, 2: 8, 3: 8, 4: 8, 5: 8, 6: 1, 7: 2, 8: 2, 9: 4, 10: 2, 11: 2, 12: 2, 13: 12, 14: 2, 15: 2, 16: 4,
            17: 2, 18: 4, 19: 2, 20: 2}
TV_ANTENNA_ID, TV_FIRST_SEEN_UTC, TV_LAST_SEEN_UTC, TV_PEAK_RSSI, TV_TAG_SEEN_COUNT = 1, 2, 4, 6, 8
TV_ROSPEC_ID, TV_EPC96 = 9, 13
# TLV parameters
P_UTC_TIMESTAMP, P_GENERAL_DEVICE_CAPABILITIES, P_RECEIVE_SENSITIVITY_ENTRY = 128, 137, 139
P_PER_ANTENNA_AIR_PROTOCOL, P_GPIO_CAPABILITIES, P_LLRP_CAPABILITIES = 140, 141, 142
P_REGULATORY_CAPABILITIES, P_UHF_BAND_CAPABILITIES, P_TRANSMIT_POWER_ENTRY = 143, 144, 145
P_FREQUENCY_INFORMATION, P_FIXED_FREQUENCY_TABLE = 146, 148
P_ROSPEC, P_RO_BOUNDARY_SPEC, P_ROSPEC_START_TRIGGER, P_AISPEC = 177, 178, 179, 183
P_KEEPALIVE_SPEC, P_TAG_REPORT_DATA, P_EPC_DATA, P_READER_EVENT_NOTIFICATION_DATA = 220, 240, 241, 246
P_CONNECTION_ATTEMPT_EVENT, P_LLRP_STATUS = 256, 287
P_C1G2_LLRP_CAPABILITIES, P_C1G2_RF_MODE_TABLE, P_C1G2_RF_MODE_ENTRY = 327, 328, 329

# LLRPStatus codes (§16.2.8.1)
M_SUCCESS, M_PARAMETER_ERROR, M_FIELD_ERROR, M_UNEXPECTED_PARAMETER = 0, 100, 101, 102
M_UNSUPPORTED_MESSAGE, M_UNSUPPORTED_VERSION = 108, 109
# ConnectionAttemptEvent status
CONNECTION_SUCCESS, CONNECTION_CLIENT_ALREADY = 0, 2
START_TRIGGER_NULL, START_TRIGGER_IMMEDIATE = 0, 1


class LlrpError(ValueError):
    """Bytes that are not LLRP (a bad version or length, a parameter that runs past its container)."""


def _parser(fn: Callable[[bytes], T]) -> Callable[[bytes], T]:
    """A body parser whose every failure on bytes it cannot read is an ``LlrpError`` (a field cut short inside a
    parameter of the right length is a struct.error from ``unpack_from``)."""
    @functools.wraps(fn)
    def parse(body: bytes) -> T:
        try:
            return fn(body)
        except (struct.error, IndexError) as e:
            raise LlrpError(f"{fn.__name__}: a field cut short ({e})") from None
    return parse


@dataclass(frozen=True, slots=True)
class Message:
    type: int
    id: int
    body: bytes = b""


def encode(msg_type: int, msg_id: int, body: bytes = b"") -> bytes:
    return HEADER.pack((VERSION << 10) | msg_type, HEADER.size + len(body), msg_id) + body


@dataclass
class Framer:
    """Bytes from a TCP stream → whole messages (a stream that stops making sense raises LlrpError: close it)."""

    buf: bytearray = field(default_factory=bytearray)
    max_message: int = MAX_MESSAGE

    def feed(self, data: bytes) -> list[Message]:
        self.buf += data
        out = []
        while len(self.buf) >= HEADER.size:
            first, length, msg_id = HEADER.unpack_from(self.buf)
            if (first >> 10) & 0x7 != VERSION:
                raise LlrpError(f"LLRP version {(first >> 10) & 0x7} (only {VERSION} is spoken)")
            if not HEADER.size <= length <= self.max_message:
                raise LlrpError(f"message length {length} out of range")
            if len(self.buf) < length:
                break
            out.append(Message(first & 0x3FF, msg_id, bytes(self.buf[HEADER.size:length])))
            del self.buf[:length]
        return out


# parameters ---------------------------------------------------------------------------------------------
def tlv(p_type: int, value: bytes = b"", *subs: bytes) -> bytes:
    body = value + b"".join(subs)
    return struct.pack("!HH", p_type & 0x3FF, 4 + len(body)) + body


def tv(p_type: int, value: bytes) -> bytes:
    if TV_SIZES.get(p_type) != len(value):
        raise ValueError(f"TV parameter {p_type} takes {TV_SIZES.get(p_type)} bytes, not {len(value)}")
    return bytes([0x80 | p_type]) + value


@dataclass(frozen=True, slots=True)
class Param:
    type: int
    value: bytes
    tv: bool = False


def params(data: bytes) -> Iterator[Param]:
    """The parameters one after another (TV and TLV mixed, as reports carry them)."""
    pos = 0
    while pos < len(data):
        if data[pos] & 0x80:
            p_type = data[pos] & 0x7F
            size = TV_SIZES.get(p_type)
            if size is None or pos + 1 + size > len(data):
                raise LlrpError(f"TV parameter {p_type} unknown or cut short")
            yield Param(p_type, data[pos + 1: pos + 1 + size], True)
            pos += 1 + size
            continue
        if pos + 4 > len(data):
            raise LlrpError("parameter header cut short")
        p_type, length = struct.unpack_from("!HH", data, pos)
        if length < 4 or pos + length > len(data):
            raise LlrpError(f"parameter {p_type & 0x3FF} of length {length} runs past its container")
        yield Param(p_type & 0x3FF, data[pos + 4: pos + length])
        pos += length


def find(data: bytes, p_type: int) -> Param | None:
    return next((p for p in params(data) if p.type == p_type), None)


def string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def status(code: int = M_SUCCESS, description: str = "") -> bytes:
    return tlv(P_LLRP_STATUS, struct.pack("!H", code) + string(description))


@_parser
def status_of(body: bytes) -> tuple[int, str]:
    """(code, description) of the LLRPStatus in a response body."""
    p = find(body, P_LLRP_STATUS)
    if p is None or len(p.value) < 4:
        raise LlrpError("no LLRPStatus")
    code, n = struct.unpack_from("!HH", p.value)
    return code, p.value[4: 4 + n].decode(errors="replace")


# what a reader sends -------------------------------------------------------------------------------------
def connection_event(utc_us: int, result: int = CONNECTION_SUCCESS) -> bytes:
    """READER_EVENT_NOTIFICATION body: the ConnectionAttemptEvent every reader sends when a client connects."""
    return tlv(P_READER_EVENT_NOTIFICATION_DATA, b"", tlv(P_UTC_TIMESTAMP, struct.pack("!Q", utc_us)),
               tlv(P_CONNECTION_ATTEMPT_EVENT, struct.pack("!H", result)))


@dataclass(frozen=True)
class Capabilities:
    antennas: int = 4
    manufacturer: int = 25882  # (Impinj's IANA private enterprise number, as Speedway readers report it)
    model: int = 2001002
    firmware: str = "bingobox-sim 1"
    power_dbm: tuple[float, ...] = tuple(10.0 + 0.25 * i for i in range(81))  # 10.00 … 30.00 dBm
    frequency_khz: int = 920_625


def capabilities(c: Capabilities) -> bytes:
    """GET_READER_CAPABILITIES_RESPONSE body (status success, general device, LLRP, regulatory, C1G2)."""
    general = tlv(P_GENERAL_DEVICE_CAPABILITIES,
                  struct.pack("!HHII", c.antennas, 0xC000, c.manufacturer, c.model) + string(c.firmware),
                  tlv(P_RECEIVE_SENSITIVITY_ENTRY, struct.pack("!Hh", 1, 0)),
                  tlv(P_GPIO_CAPABILITIES, struct.pack("!HH", 0, 0)),
                  *[tlv(P_PER_ANTENNA_AIR_PROTOCOL, struct.pack("!HHB", a, 1, 1)) for a in range(1, c.antennas + 1)])
    llrp = tlv(P_LLRP_CAPABILITIES, struct.pack("!BBHIIIII", 0, 1, 0, 1, 32, 1, 1, 1))
    power = [tlv(P_TRANSMIT_POWER_ENTRY, struct.pack("!Hh", i, round(dbm * 100)))
             for i, dbm in enumerate(c.power_dbm, start=1)]
    freq = tlv(P_FREQUENCY_INFORMATION, b"\x00", tlv(P_FIXED_FREQUENCY_TABLE, struct.pack("!HI", 1, c.frequency_khz)))
    mode = tlv(P_C1G2_RF_MODE_TABLE, b"", tlv(P_C1G2_RF_MODE_ENTRY, struct.pack("!IBBBBIIIII", 0, 0x80, 1, 0, 0,
                                                                                  640_000, 1500, 6250, 6250, 0)))
    regulatory = tlv(P_REGULATORY_CAPABILITIES, struct.pack("!HH", 156, 0),  # China, unspecified standard
                     tlv(P_UHF_BAND_CAPABILITIES, b"", *power, freq, mode))
    c1g2 = tlv(P_C1G2_LLRP_CAPABILITIES, struct.pack("!BH", 0, 0))
    return status() + general + llrp + regulatory + c1g2


@dataclass(frozen=True, slots=True)
class TagRead:
    epc: str  # hex, upper case
    antenna: int | None
    rssi: int | None
    seen_count: int = 1
    first_seen_us: int | None = None
    last_seen_us: int | None = None
    rospec_id: int | None = None


def tag_report(t: TagRead) -> bytes:
    """One TagReportData parameter (EPC-96 as TV when the EPC is 96 bits, else EPCData)."""
    raw = bytes.fromhex(t.epc)
    epc = tv(TV_EPC96, raw) if len(raw) == 12 else tlv(P_EPC_DATA, struct.pack("!H", len(raw) * 8) + raw)
    parts = [epc]
    if t.rospec_id is not None:
        parts.append(tv(TV_ROSPEC_ID, struct.pack("!I", t.rospec_id)))
    if t.antenna is not None:
        parts.append(tv(TV_ANTENNA_ID, struct.pack("!H", t.antenna)))
    if t.rssi is not None:
        parts.append(tv(TV_PEAK_RSSI, struct.pack("!b", t.rssi)))
    if t.first_seen_us is not None:
        parts.append(tv(TV_FIRST_SEEN_UTC, struct.pack("!Q", t.first_seen_us)))
    if t.last_seen_us is not None:
        parts.append(tv(TV_LAST_SEEN_UTC, struct.pack("!Q", t.last_seen_us)))
    parts.append(tv(TV_TAG_SEEN_COUNT, struct.pack("!H", t.seen_count)))
    return tlv(P_TAG_REPORT_DATA, b"", *parts)


@_parser
def tag_reads(body: bytes) -> list[TagRead]:
    """The tag reports of an RO_ACCESS_REPORT body."""
    out = []
    for p in params(body):
        if p.type != P_TAG_REPORT_DATA:
            continue
        f: dict = {}
        for q in params(p.value):
            if q.type == TV_EPC96 and q.tv:
                f["epc"] = q.value.hex().upper()
            elif q.type == P_EPC_DATA and not q.tv:
                bits = struct.unpack_from("!H", q.value)[0]
                f["epc"] = q.value[2: 2 + (bits + 7) // 8].hex().upper()
            elif q.tv and q.type in _TAG_FIELDS:
                name, fmt = _TAG_FIELDS[q.type]
                f[name] = struct.unpack(fmt, q.value)[0]
        if "epc" not in f:
            raise LlrpError("a TagReportData without an EPC")
        out.append(TagRead(f["epc"], f.get("antenna"), f.get("rssi"), f.get("seen_count", 1),
                           f.get("first_seen_us"), f.get("last_seen_us"), f.get("rospec_id")))
    return out


_TAG_FIELDS = {TV_ANTENNA_ID: ("antenna", "!H"), TV_PEAK_RSSI: ("rssi", "!b"), TV_TAG_SEEN_COUNT: ("seen_count", "!H"),
               TV_FIRST_SEEN_UTC: ("first_seen_us", "!Q"), TV_LAST_SEEN_UTC: ("last_seen_us", "!Q"),
               TV_ROSPEC_ID: ("rospec_id", "!I")}


# what a client sends -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ROSpec:
    id: int
    start_trigger: int
    antennas: tuple[int, ...]  # (0: every antenna)


@_parser
def rospec_of(body: bytes) -> ROSpec:
    """The ROSpec in an ADD_ROSPEC body: its id, start trigger and the antennas of its AISpecs."""
    p = find(body, P_ROSPEC)
    if p is None or len(p.value) < 6:
        raise LlrpError("ADD_ROSPEC without a ROSpec")
    rospec_id = struct.unpack_from("!I", p.value)[0]
    trigger, antennas = START_TRIGGER_NULL, list[int]()
    for q in params(p.value[6:]):
        if q.type == P_RO_BOUNDARY_SPEC:
            start = find(q.value, P_ROSPEC_START_TRIGGER)
            if start is not None and start.value:
                trigger = start.value[0]
        elif q.type == P_AISPEC and len(q.value) >= 2:
            n = struct.unpack_from("!H", q.value)[0]
            antennas += struct.unpack_from(f"!{n}H", q.value, 2)
    return ROSpec(rospec_id, trigger, tuple(antennas))


@_parser
def rospec_id_of(body: bytes) -> int:
    """The ROSpecID of an ENABLE/START/STOP/DISABLE/DELETE_ROSPEC body (0: all)."""
    if len(body) < 4:
        raise LlrpError("no ROSpecID")
    return struct.unpack_from("!I", body)[0]


@_parser
def keepalive_ms(body: bytes) -> int | None:
    """The periodic keepalive a SET_READER_CONFIG body asks for (None: it does not say; 0: none)."""
    p = find(body[1:], P_KEEPALIVE_SPEC)  # (the body starts with the ResetToFactoryDefault flag byte)
    if p is None or len(p.value) < 5:
        return None
    kind, interval = struct.unpack_from("!BI", p.value)
    return interval if kind == 1 else 0
