"""The two things every long-running part here needs: a named thread that starts, stops and says whether it is
alive (``Worker``), and the wait between tries that doubles with each failure up to a cap (``Backoff``)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


def backoff_s(failures: int, first: float, cap: float) -> float:
    """The wait after ``failures`` failures in a row (0 or less: none yet): ``first``, doubling, at most ``cap``."""
    if failures <= 0:
        return 0.0
    return float(min(cap, first * 2 ** min(failures - 1, 60)))


class Backoff:
    """Waits between tries: ``first`` after the first failure, doubling after each one in a row, at most ``cap``;
    ``jitter`` spreads each wait by ±that share (many clients retrying after one outage do not all come at once)."""

    def __init__(self, first: float, cap: float, jitter: float = 0.0, rng: random.Random | None = None) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"a back-off needs 0 < first <= cap, got {first}, {cap}")
        self.first, self.cap, self.jitter = first, cap, jitter
        self._rng = rng or random.Random()
        self.failures = 0

    def failed(self) -> float:
        """One more failure in a row: how long to wait before the next try."""
        self.failures += 1
        return self.delay(self.failures)

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (for callers that count failures per item)."""
        d = backoff_s(failures, self.first, self.cap)
        return d * self._rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else d

    def succeeded(self) -> None:
        self.failures = 0

    @property
    def next_s(self) -> float:
        """What the next failure would wait (without counting it)."""
        return backoff_s(self.failures + 1, self.first, self.cap)


class Worker:
    """One named daemon thread running ``target`` until ``stop()``. ``stopping`` is the event the target waits on
    (``stopping.wait(s)`` sleeps, and wakes at once on stop). A worker may be started again after a stop."""

    def __init__(self, name: str, target: Callable[[], object], join_s: float = 2.0,
                 stopping: threading.Event | None = None) -> None:
        """``stopping``: an event shared with other workers of one part (one stop ends them all)."""
        self.name, self._target, self.join_s = name, target, join_s
        self.stopping = stopping or threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        self.stopping.clear()
        self._thread = threading.Thread(target=self._target, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, join_s: float | None = None) -> None:
        """Ask the target to end and wait for it, at most ``join_s`` (default: the worker's)."""
        self.stopping.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=self.join_s if join_s is None else join_s)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        return self._thread is not None
