"""The control loop: one thread drains a bounded inbox into the store core, and ticks it for timeouts.

Producers never build a backlog the loop cannot catch up with:
- ``put`` is for what must arrive (device events, charge answers, operator commands, enrolment results); it is
  bounded too (a flood beyond ``limit`` is dropped and counted, never queued without end);
- ``offer(key, event)`` is for what is superseded by its successor (a camera's decoded code, the exit camera's
  face decision): at most one such event per key waits, the newest, in the place of the first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .worker import Worker

log = logging.getLogger(__name__)
TICK_S = 0.1  # timeouts are checked this often (a grant window, an exit deadline)


class Inbox:
    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._q: deque[tuple[str | None, Any]] = deque()
        self._slots: dict[str, Any] = {}
        self._cond = threading.Condition()
        self.stats = {"put": 0, "offered": 0, "superseded": 0, "dropped": 0, "max_depth": 0}

    def put(self, event: Any) -> None:
        with self._cond:
            if len(self._q) >= self.limit:
                self.stats["dropped"] += 1
                if self.stats["dropped"] in (1, 100) or self.stats["dropped"] % 10_000 == 0:
                    log.error("control loop inbox full (%d): dropped %s", self.limit, type(event).__name__)
                return
            self._q.append((None, event))
            self.stats["put"] += 1
            self.stats["max_depth"] = max(self.stats["max_depth"], len(self._q))
            self._cond.notify()

    def offer(self, key: str, event: Any) -> None:
        """Newest wins: replaces an event with the same key that is still waiting."""
        with self._cond:
            self.stats["offered"] += 1
            if key in self._slots:
                self.stats["superseded"] += 1
                self._slots[key] = event
                return
            self._slots[key] = event
            self._q.append((key, None))
            self._cond.notify()

    def get(self, timeout: float) -> Any | None:
        with self._cond:
            if not self._q:
                self._cond.wait(timeout)
            if not self._q:
                return None
            key, event = self._q.popleft()
            return self._slots.pop(key) if key is not None else event

    def __len__(self) -> int:
        return len(self._q)


class EventLoop:
    """Runs ``handle(event)`` for each event and ``tick()`` every TICK_S, on one thread; an exception in either is
    logged and the loop goes on. ``on_tick`` runs after each tick (the watchdog ping, the published snapshot)."""

    def __init__(self, inbox: Inbox, handle: Callable[[Any], None], tick: Callable[[], None],
                 on_tick: Callable[[], None] | None = None) -> None:
        self.inbox = inbox
        self._handle, self._tick, self._on_tick = handle, tick, on_tick
        self._worker = Worker("control-loop", self._run, join_s=5)
        self._stop = self._worker.stopping
        self.lag_ms = 0.0  # how late the last tick ran (a measure of the loop's load)
        self.handled = 0

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self.inbox.put(None)
        self._worker.stop()

    @property
    def alive(self) -> bool:
        return self._worker.alive()

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            ev = self.inbox.get(timeout=max(0.0, next_tick - time.monotonic()))
            if ev is not None:
                try:
                    self._handle(ev)
                except Exception:
                    log.exception("control loop: failed on %s", type(ev).__name__)
                self.handled += 1
            now = time.monotonic()
            if now >= next_tick:
                self.lag_ms = (now - next_tick) * 1000
                next_tick = now + TICK_S
                try:
                    self._tick()
                    if self._on_tick is not None:
                        self._on_tick()
                except Exception:
                    log.exception("control loop: tick failed")
