"""NXP PN532 host link (HSU: the module's UART, 115 200 8N1), sans-I/O: the frames an NFC card reader speaks.

Normal information frame, both directions (PN532 user manual UM0701-02, §6.2.1):
  ``00 00 FF LEN LCS TFI PD0..PDn DCS 00`` — LEN counts TFI and data, LEN+LCS ≡ 0, TFI+PD0+…+PDn+DCS ≡ 0 (mod 256);
  TFI D4 host → PN532, D5 PN532 → host; the response code is the command + 1.
ACK ``00 00 FF 00 FF 00``; NACK ``00 00 FF FF 00 00``; an application error ``00 00 FF 01 FF 7F 81 00``.
Extended frames (``00 00 FF FF FF LENM LENL LCS …``, for over 254 bytes) carry nothing a card reader needs: they are
recognised, checked and skipped. The decoder resynchronises on the start code after any garbage.
The host wakes the module from power-down with ``55 55 00 00 …`` before its first command (§7.2.11).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ProtocolError

HOST = 0xD4
DEVICE = 0xD5
START = b"\x00\xff"
ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
WAKEUP = b"\x55\x55" + b"\x00" * 14

CMD_GET_FIRMWARE_VERSION = 0x02
CMD_SAM_CONFIGURATION = 0x14
CMD_RF_CONFIGURATION = 0x32
CMD_IN_LIST_PASSIVE_TARGET = 0x4A
CMD_IN_RELEASE = 0x52
BRTY_106_TYPE_A = 0x00  # ISO/IEC 14443 type A: MIFARE Classic/Ultralight, NTAG
MAX_DATA = 254  # TFI + data of a normal frame
UID_LENGTHS = (4, 7, 10)  # single, double, triple size NFCID1


@dataclass(frozen=True, slots=True)
class Ack:
    """The module took the command (its answer follows)."""


@dataclass(frozen=True, slots=True)
class Nack:
    """Either side asks for the last frame again."""


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """The module could not parse the command (a syntax error at the application level)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """An information frame: ``tfi`` D4/D5, ``code`` the command (or response) code, ``data`` what follows it."""

    tfi: int
    code: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Target:
    """A 106 kbps type A card in the field (InListPassiveTarget's answer)."""

    tg: int
    sens_res: int
    sel_res: int
    uid: bytes
    ats: bytes = b""

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()


Decoded = Ack | Nack | ErrorFrame | Frame


def _sum(data: bytes) -> int:
    return sum(data) & 0xFF


def frame(tfi: int, code: int, data: bytes = b"") -> bytes:
    """A normal information frame carrying ``code`` and ``data``."""
    body = bytes([tfi, code]) + data
    if len(body) > MAX_DATA:
        raise ProtocolError(f"a normal frame carries at most {MAX_DATA} bytes, not {len(body)}")
    n = len(body)
    return b"\x00\x00\xff" + bytes([n, (-n) & 0xFF]) + body + bytes([(-_sum(body)) & 0xFF, 0x00])


def command(code: int, data: bytes = b"") -> bytes:
    return frame(HOST, code, data)


def response(code: int, data: bytes = b"") -> bytes:
    """The module's answer to ``code`` (the device side: the simulator)."""
    return frame(DEVICE, code + 1, data)


def get_firmware_version() -> bytes:
    return command(CMD_GET_FIRMWARE_VERSION)


def sam_configuration_normal() -> bytes:
    """SAMConfiguration: normal mode (no SAM), virtual-card timeout 1 s, IRQ pin used."""
    return command(CMD_SAM_CONFIGURATION, b"\x01\x14\x01")


def max_retries(passive_activation: int = 0x02) -> bytes:
    """RFConfiguration item 5 (MaxRetries): InListPassiveTarget gives up after ``passive_activation`` tries and
    answers "no target" instead of waiting for a card forever (0xFF)."""
    return command(CMD_RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, passive_activation]))


def in_list_passive_target(max_targets: int = 1) -> bytes:
    """Look for up to ``max_targets`` (1-2) type A cards."""
    if not 1 <= max_targets <= 2:
        raise ProtocolError("the PN532 lists 1 or 2 targets")
    return command(CMD_IN_LIST_PASSIVE_TARGET, bytes([max_targets, BRTY_106_TYPE_A]))


def in_release(tg: int = 0) -> bytes:
    """Release the card(s) listed (0: all), so the next listing sees a card that stays in the field afresh."""
    return command(CMD_IN_RELEASE, bytes([tg]))


def parse_targets(data: bytes) -> list[Target]:
    """InListPassiveTarget's answer (106 kbps type A): ``NbTg`` then, per card, ``Tg SENS_RES(2) SEL_RES NFCIDLength
    NFCID1 [ATS]`` (ATS only when SEL_RES says ISO/IEC 14443-4). ProtocolError when it does not add up."""
    if not data:
        raise ProtocolError("empty target list")
    count, i, out = data[0], 1, []
    if count > 2:
        raise ProtocolError(f"{count} targets: the PN532 lists at most 2")
    for _ in range(count):
        if len(data) < i + 5:
            raise ProtocolError("target list cut short")
        tg, sens, sel, n = data[i], int.from_bytes(data[i + 1:i + 3], "big"), data[i + 3], data[i + 4]
        i += 5
        if n not in UID_LENGTHS or len(data) < i + n:
            raise ProtocolError(f"NFCID1 of {n} bytes (4, 7 or 10, and all present)")
        uid = bytes(data[i:i + n])
        i += n
        ats = b""
        if sel & 0x20 and i < len(data):  # ISO/IEC 14443-4 compliant: an ATS follows, its first byte its length
            ln = data[i]
            if ln < 1 or len(data) < i + ln:
                raise ProtocolError("ATS cut short")
            ats = bytes(data[i:i + ln])
            i += ln
        out.append(Target(tg, sens, sel, uid, ats))
    if i != len(data):
        raise ProtocolError(f"{len(data) - i} bytes after the last target")
    return out


def target_answer(uids: list[bytes]) -> bytes:
    """The data of InListPassiveTarget's answer for these cards (the device side: the simulator): a 4-byte UID
    answers as a MIFARE Classic 1K (SENS_RES 0004, SEL_RES 08), a longer one as an NTAG/Ultralight (0044, 00)."""
    out = bytearray([len(uids)])
    for n, uid in enumerate(uids, 1):
        if len(uid) not in UID_LENGTHS:
            raise ProtocolError(f"a UID is 4, 7 or 10 bytes, not {len(uid)}")
        sens, sel = (0x0004, 0x08) if len(uid) == 4 else (0x0044, 0x00)
        out += bytes([n]) + sens.to_bytes(2, "big") + bytes([sel, len(uid)]) + uid
    return bytes(out)


@dataclass
class Decoder:
    """Bytes in (any chunking), frames out. A frame whose checksums fail is counted and skipped; bytes before a
    start code are counted as garbage. ``expect``: the TFI of frames to take (D5 on the host, D4 on the module)."""

    expect: int = DEVICE
    max_buffer: int = 4096
    stats: dict[str, int] = field(default_factory=lambda: {"frames": 0, "acks": 0, "nacks": 0, "errors": 0,
                                                           "bad_checksum": 0, "garbage_bytes": 0,
                                                           "extended_skipped": 0, "wrong_direction": 0})
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Decoded]:
        self._buf += data
        out: list[Decoded] = []
        while True:
            got = self._next()
            if got is None:
                break
            if got is not _SKIP:
                out.append(got)  # type: ignore[arg-type]
        if len(self._buf) > self.max_buffer:  # never grows without bound on a line of noise
            self.stats["garbage_bytes"] += len(self._buf)
            self._buf.clear()
        return out

    def _next(self) -> Decoded | object | None:
        b = self._buf
        start = b.find(START)
        if start < 0:
            keep = 1 if b and b[-1] == 0x00 else 0  # (a start code may be split across reads)
            self.stats["garbage_bytes"] += len(b) - keep
            del b[:len(b) - keep]
            return None
        # the preamble (00) before 00 FF is optional on the wire; what precedes the start code is not a frame
        pre = start - 1 if start > 0 and b[start - 1] == 0x00 else start
        self.stats["garbage_bytes"] += pre
        del b[:pre]
        start = b.find(START)
        if len(b) < start + 4:
            return None
        ln, lcs = b[start + 2], b[start + 3]
        if ln == 0x00 and lcs == 0xFF:  # ACK
            del b[:start + 4 + (1 if len(b) > start + 4 and b[start + 4] == 0 else 0)]
            self.stats["acks"] += 1
            return Ack()
        if ln == 0xFF and lcs == 0x00:  # NACK
            del b[:start + 4 + (1 if len(b) > start + 4 and b[start + 4] == 0 else 0)]
            self.stats["nacks"] += 1
            return Nack()
        if ln == 0xFF and lcs == 0xFF:  # extended frame: LENM LENL LCS, then as a normal one
            if len(b) < start + 7:
                return None
            n = int.from_bytes(b[start + 4:start + 6], "big")
            if (b[start + 4] + b[start + 5] + b[start + 6]) & 0xFF:
                return self._bad(start)
            end = start + 7 + n + 1
            if len(b) < end:
                return None
            self.stats["extended_skipped"] += 1
            del b[:end]
            return _SKIP
        if (ln + lcs) & 0xFF:
            return self._bad(start)
        end = start + 4 + ln + 1  # data, DCS (the postamble is optional to read)
        if len(b) < end:
            return None
        body = bytes(b[start + 4:start + 4 + ln])
        dcs = b[start + 4 + ln]
        if (_sum(body) + dcs) & 0xFF:
            return self._bad(start)
        del b[:end + (1 if len(b) > end and b[end] == 0 else 0)]
        if body == b"\x7f":
            self.stats["errors"] += 1
            return ErrorFrame()
        if len(body) < 2:
            self.stats["bad_checksum"] += 1  # (a one-byte body other than the error frame is not a frame)
            return _SKIP
        if body[0] != self.expect:
            self.stats["wrong_direction"] += 1
            return _SKIP
        self.stats["frames"] += 1
        return Frame(body[0], body[1], body[2:])

    def _bad(self, start: int) -> object:
        """A start code whose length or data checksum fails: drop it and look for the next one."""
        self.stats["bad_checksum"] += 1
        del self._buf[:start + 2]
        return _SKIP


_SKIP = object()
