"""RFID reader driver (M100/R200 protocol over a serial link): continuous multi-poll inventory or single rounds,
read into a ``TagField`` (``tag_field.py``: seen/gone hysteresis, rounds, the exit window). At 115 200 baud a
reader sends about 480 notices a second, so a shelf of 372 tags takes 0.8 s to read once: the field's ``cycle_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import ReaderConfig
from ..protocol import m100
from ..transport import LinkDown, SerialLink
from ..worker import Worker
from .events import DeviceEvent, Listener
from .tag_field import TagField

log = logging.getLogger(__name__)

SHELF_COALESCE_S = 0.05
EXIT_COALESCE_S = 0.005


class RfidReader(TagField):
    """One M100/R200 reader."""

    def __init__(self, cfg: ReaderConfig, on_event: Listener, link_factory: Callable[..., SerialLink] = SerialLink,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(cfg, on_event, clock)
        self.framing = m100.FRAMINGS[cfg.framing]
        self._decoder = m100.Decoder(self.framing)
        self._inventory_started = 0.0
        self._need_start = True
        self._worker = Worker(f"rfid-{cfg.name}", self._run, join_s=2)
        self._stop = self._worker.stopping
        self._wake = threading.Event()
        # notices in batches: a shelf's stream (a removal matters within a second) in 50 ms batches of about twenty
        # notices, one wake-up each; the exit reader's rounds close the exit window, so 5 ms there
        coalesce = SHELF_COALESCE_S if cfg.role == "shelf" else EXIT_COALESCE_S
        link_kw = {"coalesce_s": coalesce} if link_factory is SerialLink else {}
        self.link = link_factory(cfg.port, baudrate=cfg.baudrate, name=cfg.name, on_data=self._on_data,
                                 on_state=self._on_link_state, **link_kw)

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.link.start()
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._worker.stop()
        if self.link.connected and self.cfg.mode == "multi":
            try:
                self.link.write(m100.stop_multi_poll(self.framing))
            except LinkDown:
                pass
        self.link.stop()

    def online(self) -> bool:
        """Connected, and frames came recently."""
        return self._connected and self._clock() - self._last_frame < self.cfg.silence_timeout_s * 2

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"kind": "rfid", "name": self.name, "role": self.cfg.role, "mode": self.cfg.mode,
                    **self.field_status(), "link": self.link.status(), "decoder": dict(self._decoder.stats),
                    **self.stats}

    # wire ------------------------------------------------------------------------------------------
    def _on_link_state(self, up: bool) -> None:
        with self._lock:
            self._need_start = True
        self._link_changed(up, self.cfg.port)
        self._wake.set()

    def _on_data(self, data: bytes) -> None:
        frames = self._decoder.feed(data)
        if not frames:
            return
        events: list[DeviceEvent] = []
        now = self._clock()
        with self._lock:
            self._last_frame = now
            for f in frames:
                if isinstance(f, m100.TagNotice):
                    if not f.crc_ok:
                        self.stats["bad_tag_crc"] += 1
                        continue
                    self._read(f.epc_hex, f.rssi, now, events)
                elif isinstance(f, m100.ErrorFrame):
                    if f.empty_round:
                        self.stats["empty_rounds"] += 1
                        self._round.answered = True
                    else:
                        self.stats["errors"] += 1
                        log.warning("%s: reader error %s", self.name, f.description)
                elif isinstance(f, m100.Response) and f.cmd == m100.CMD_STOP_MULTI_POLL:
                    self._need_start = True
        for e in events:
            self._emit(e)

    def _run(self) -> None:
        cfg = self.cfg
        while not self._stop.is_set():
            self._wake.wait(cfg.poll_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            now = self._clock()
            if self._waiters:
                self._wake_waiters(None)  # time-outs, also while the reader is away
            if not self._connected:
                continue
            try:
                if cfg.mode == "poll":
                    self._close_round(now)
                    self.link.write(m100.single_inventory(self.framing))
                else:
                    silent = now - max(self._last_frame, self._inventory_started) > cfg.silence_timeout_s
                    if self._need_start or silent:
                        if silent and not self._need_start:
                            self.stats["restarts"] += 1
                            log.info("%s: no frame for %.1fs, restarting inventory", self.name,
                                     cfg.silence_timeout_s)
                        self._need_start = False
                        self._inventory_started = now
                        self.link.write(m100.multi_poll(cfg.multi_poll_rounds, self.framing))
                    self._close_round(now)
            except LinkDown:
                continue
