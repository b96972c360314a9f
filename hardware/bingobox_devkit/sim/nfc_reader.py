"""A virtual PN532 NFC module on a UART (HSU), with cards to tap.

Answers what a real module answers, frame for frame: an ACK, then the response (GetFirmwareVersion → PN532 v1.6,
SAMConfiguration, RFConfiguration, InListPassiveTarget → the cards in the field, InRelease); a frame with a bad
checksum → a NACK; an unknown command → the application error frame. Until woken (``55 55 00 …``, or any frame
after the first ones), it is asleep and answers nothing, as a module from power-down. Faults: the line's (unplug,
garbage, corrupted checksums, delay, silent).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bingobox.protocol import pn532

from .config import SimCardReader
from .serial_device import SerialDevice
from .serial_endpoints import Endpoint

FIRMWARE = b"\x32\x01\x06\x07"  # IC PN532, v1.6, supports ISO 14443 A and B and ISO 18092


class VirtualCardReader(SerialDevice):
    kind = "nfc"

    def __init__(self, cfg: SimCardReader, run_dir: Path, seed: int = 0) -> None:
        super().__init__(cfg.name, run_dir, cfg.tcp_port, cfg.baudrate, seed, cfg.tcp_protocol)
        self.cfg = cfg
        self._decoder = pn532.Decoder(expect=pn532.HOST)
        self._field: dict[bytes, float] = {}  # UID → when it leaves the field (monotonic)
        self._lock = threading.Lock()
        self.awake = False
        self.stats.update({"listings": 0, "cards_listed": 0, "nacks": 0})

    # the physical world ----------------------------------------------------------------------------
    def tap(self, uid: str, hold_s: float = 0.5) -> dict:
        """A card held to the reader for ``hold_s``."""
        raw = bytes.fromhex(uid)
        if len(raw) not in pn532.UID_LENGTHS:
            raise ValueError("a card UID is 4, 7 or 10 bytes of hex")
        if not 0 < hold_s <= 60:
            raise ValueError("hold_s: 0-60 s")
        with self._lock:
            self._field[raw] = time.monotonic() + hold_s
        return {"uid": raw.hex().upper(), "hold_s": hold_s}

    def remove(self) -> dict:
        with self._lock:
            self._field.clear()
        return {}

    def in_field(self) -> list[bytes]:
        now = time.monotonic()
        with self._lock:
            for uid in [u for u, until in self._field.items() if until < now]:
                del self._field[uid]
            return list(self._field)[:2]

    def status(self) -> dict:
        return {**super().status(), "awake": self.awake, "cards": [u.hex().upper() for u in self.in_field()]}

    def on_unplug(self) -> None:
        self.awake = False  # (unpowered: asleep once plugged back)

    # the wire --------------------------------------------------------------------------------------
    def on_bytes(self, data: bytes, endpoint: Endpoint) -> None:
        if data.startswith(b"\x55\x55"):
            self.awake = True
        bad = self._decoder.stats["bad_checksum"]
        frames = self._decoder.feed(data)
        if self._decoder.stats["bad_checksum"] > bad and self.awake:
            self.stats["nacks"] += 1
            self.send(pn532.NACK, endpoint)
        for f in frames:
            if not isinstance(f, pn532.Frame) or not self.awake:
                continue
            self.stats["requests"] += 1
            self.send(pn532.ACK, endpoint)
            answer = self._answer(f)
            self.send(answer if answer is not None else pn532.ERROR, endpoint)

    def _answer(self, f: pn532.Frame) -> bytes | None:
        if f.code == pn532.CMD_GET_FIRMWARE_VERSION:
            return pn532.response(f.code, FIRMWARE)
        if f.code in (pn532.CMD_SAM_CONFIGURATION, pn532.CMD_RF_CONFIGURATION):
            return pn532.response(f.code)
        if f.code == pn532.CMD_IN_LIST_PASSIVE_TARGET and len(f.data) >= 2 and f.data[1] == pn532.BRTY_106_TYPE_A:
            cards = self.in_field()[:max(1, min(2, f.data[0]))]
            self.stats["listings"] += 1
            self.stats["cards_listed"] += len(cards)
            return pn532.response(f.code, pn532.target_answer(cards))
        if f.code == pn532.CMD_IN_RELEASE:
            return pn532.response(f.code, b"\x00")
        return None
