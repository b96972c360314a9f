"""Simulated time: a clock that only moves when the scheduler says, timed callbacks, and processes written as
generators (a shopper's walk: ``yield 0.5`` waits half a second, ``yield until(pred, timeout)`` waits for the world).
Everything runs on one thread, in one order for a given seed: a run replays exactly."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator
from dataclasses import dataclass

START = 1_800_000_000.0  # a plausible wall-clock time (entry codes carry real timestamps)


class Clock:
    def __init__(self, t: float = START) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Until:
    """Wait until ``pred()`` holds (checked every ``poll`` seconds), at most ``timeout``; the process is sent
    True or False."""

    pred: Callable[[], bool]
    timeout: float
    poll: float = 0.05


def until(pred: Callable[[], bool], timeout: float, poll: float = 0.05) -> Until:
    return Until(pred, timeout, poll)


Process = Generator[float | Until, bool | None, None]


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (max(t, self.clock.t), self._seq, fn))

    def after(self, dt: float, fn: Callable[[], None]) -> None:
        self.at(self.clock.t + dt, fn)

    def every(self, period: float | Callable[[], float], fn: Callable[[], None]) -> None:
        """Call ``fn`` every ``period`` seconds (a callable: asked anew each time)."""
        def gap() -> float:
            return period() if callable(period) else period

        def again() -> None:
            fn()
            self.after(gap(), again)
        self.after(gap(), again)

    def spawn(self, proc: Process, delay: float = 0.0) -> None:
        """Run a generator process: it yields seconds to sleep or an ``Until``."""
        def step(value: bool | None = None) -> None:
            try:
                what = proc.send(value)
            except StopIteration:
                return
            if isinstance(what, Until):
                deadline = self.clock.t + what.timeout

                def check() -> None:
                    if what.pred():
                        step(True)
                    elif self.clock.t >= deadline:
                        step(False)
                    else:
                        self.after(what.poll, check)
                check()
            else:
                self.after(float(what), step)
        self.after(delay, step)

    def run_until(self, t_end: float, stop: Callable[[], bool] | None = None) -> None:
        while self._heap and self._heap[0][0] <= t_end:
            t, _, fn = heapq.heappop(self._heap)
            self.clock.t = t
            fn()
            if stop is not None and stop():
                return
        self.clock.t = max(self.clock.t, t_end)
