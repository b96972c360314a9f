"""Latency histograms (bounded sample windows) reported as percentiles."""

from __future__ import annotations

import threading
from collections import deque


class Histogram:
    def __init__(self, keep: int = 10_000) -> None:
        self._v: deque[float] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._v.append(value)
            self.count += 1

    def summary(self) -> dict:
        with self._lock:
            v = list(self._v)
        return {**percentiles(v), "count": self.count}


def percentiles(values: list[float]) -> dict:
    """count, p50, p90, p99 and max of ``values`` (None left out): the one definition every figure printed uses —
    the value at rank round(p · (n − 1)) of the sorted values."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return {"count": 0}

    def pick(p: float) -> float:
        return round(v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))], 2)
    return {"count": len(v), "p50": pick(50), "p90": pick(90), "p99": pick(99), "max": round(v[-1], 2)}
