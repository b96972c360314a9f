"""NFC card reader driver: a PN532 module on a UART (HSU) beside a door.

The module is woken and set up (SAMConfiguration normal mode; MaxRetries so that a listing answers "no card"
instead of waiting for one), then asked for a type A card every ``poll_interval_s``. A card that enters the field
is one ``card_tapped`` event — named by its hash (``domain.cards.card_hash``): the UID never leaves this driver —
and taps anew only after it has been out of the field for ``gone_after_s``. A module that stops answering (unplugged,
hung, garbage on the line) is woken and set up again; the door's code path never waits on it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import CardReaderConfig
from ..domain.cards import card_hash
from ..protocol import ProtocolError, pn532
from ..transport import LinkDown, SerialLink
from ..worker import Worker
from .events import DeviceEvent, Listener

log = logging.getLogger(__name__)


class NoAnswer(Exception):
    """The module did not answer a command in time (or answered with an error frame)."""


class CardReader:
    def __init__(self, cfg: CardReaderConfig, on_event: Listener, link_factory: Callable[..., SerialLink] = SerialLink,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.name, self._emit, self._clock = cfg, cfg.name, on_event, clock
        self._decoder = pn532.Decoder()
        self._frames: queue.Queue[pn532.Decoded] = queue.Queue(maxsize=64)
        self._lock = threading.Lock()
        self._connected = False
        self._ready = False  # woken and set up since the link came up
        self._last_answer = 0.0
        self._present: dict[str, float] = {}  # card hash → last seen in the field
        self.firmware: str | None = None
        self.stats = {"polls": 0, "taps": 0, "timeouts": 0, "setups": 0, "bad_answers": 0, "cards_seen": 0}
        self._worker = Worker(f"nfc-{cfg.name}", self._run, join_s=2)
        self._stop = self._worker.stopping
        self.link = link_factory(cfg.port, baudrate=cfg.baudrate, name=cfg.name, on_data=self._on_data,
                                 on_state=self._on_link_state)

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.link.start()
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()
        self.link.stop()

    def online(self) -> bool:
        fresh = self._clock() - self._last_answer < max(2.0, 4 * self.cfg.poll_interval_s)
        return self._connected and self._ready and fresh

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"kind": "nfc", "name": self.name, "door": self.cfg.door, "online": self.online(),
                    "firmware": self.firmware, "cards_in_field": len(self._present), "link": self.link.status(),
                    "decoder": dict(self._decoder.stats), **self.stats}

    # wire ------------------------------------------------------------------------------------------
    def _on_link_state(self, up: bool) -> None:
        with self._lock:
            self._connected, self._ready = up, False
        if not up:  # (up: "connected" once the module has answered its setup)
            self._emit(DeviceEvent(self.name, "disconnected", {"port": self.cfg.port}))

    def _on_data(self, data: bytes) -> None:
        for f in self._decoder.feed(data):
            try:
                self._frames.put_nowait(f)
            except queue.Full:  # (nobody is waiting: a module chattering on its own)
                self.stats["bad_answers"] += 1

    def _transact(self, request: bytes, code: int) -> bytes:
        """Send a command; the data of its response (after the module's ACK). NoAnswer on a timeout or an error."""
        while not self._frames.empty():  # a late answer to an earlier command is not this one's
            self._frames.get_nowait()
        self.link.write(request)
        deadline = self._clock() + self.cfg.answer_timeout_s
        acked = False
        while True:
            left = deadline - self._clock()
            if left <= 0:
                self.stats["timeouts"] += 1
                raise NoAnswer(f"no {'answer' if acked else 'ACK'} to command {code:#04x}")
            try:
                f = self._frames.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(f, pn532.Ack):
                acked = True
            elif isinstance(f, (pn532.ErrorFrame, pn532.Nack)):
                self.stats["bad_answers"] += 1
                raise NoAnswer(f"the module refused command {code:#04x}")
            elif isinstance(f, pn532.Frame) and f.code == code + 1:
                self._last_answer = self._clock()
                return f.data
            else:
                self.stats["bad_answers"] += 1

    def _setup(self) -> None:
        self.link.write(pn532.WAKEUP)  # (from power-down; a module awake ignores it)
        time.sleep(0.005)
        fw = self._transact(pn532.get_firmware_version(), pn532.CMD_GET_FIRMWARE_VERSION)
        self._transact(pn532.sam_configuration_normal(), pn532.CMD_SAM_CONFIGURATION)
        self._transact(pn532.max_retries(2), pn532.CMD_RF_CONFIGURATION)
        with self._lock:
            self.firmware = f"PN5{fw[0]:02X} v{fw[1]}.{fw[2]}" if len(fw) >= 3 else None
            self._ready = True
        self.stats["setups"] += 1
        log.info("%s: %s ready", self.name, self.firmware)
        self._emit(DeviceEvent(self.name, "connected", {"port": self.cfg.port, "firmware": self.firmware}))

    def poll(self) -> None:
        """One look for a card (the worker's step; public for tests)."""
        data = self._transact(pn532.in_list_passive_target(1), pn532.CMD_IN_LIST_PASSIVE_TARGET)
        self.stats["polls"] += 1
        try:
            targets = pn532.parse_targets(data)
        except ProtocolError as e:
            self.stats["bad_answers"] += 1
            log.warning("%s: %s", self.name, e)
            return
        now = self._clock()
        for t in targets:
            h = card_hash(t.uid)
            self.stats["cards_seen"] += 1
            with self._lock:
                new = h not in self._present
                self._present[h] = now
            if new:
                self.stats["taps"] += 1
                self._emit(DeviceEvent(self.name, "card_tapped", {"card": h, "door": self.cfg.door}))
        if targets:
            self._transact(pn532.in_release(0), pn532.CMD_IN_RELEASE)
        with self._lock:
            for h in [h for h, seen in self._present.items() if now - seen > self.cfg.gone_after_s]:
                del self._present[h]

    def _run(self) -> None:
        while not self._stop.wait(self.cfg.poll_interval_s):
            if not self._connected:
                continue
            try:
                if not self._ready:
                    self._setup()
                self.poll()
            except NoAnswer as e:
                with self._lock:
                    was, self._ready = self._ready, False
                if was:
                    log.warning("%s: %s; waking it again", self.name, e)
                    self._emit(DeviceEvent(self.name, "fault", {"error": str(e)}))
                self._stop.wait(min(1.0, 4 * self.cfg.poll_interval_s))
            except LinkDown:
                continue
