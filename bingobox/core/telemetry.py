"""What the store counts and times (the screen, ``/metrics``, the MQTT metrics and the benches read it): counters,
each path's latency from the frame to the unlock on the wire, each stage's share, and the grants whose door
acknowledgement is awaited to close a timing. Nothing here decides anything."""

from __future__ import annotations

import itertools
from typing import Any

from ..metrics import Histogram

ENTRY_STAGES = ("captured", "decoded", "verified", "committed", "granted", "written", "acked")
EXIT_STAGES = ("captured", "picked", "decoded", "decided", "handled", "inventory", "committed", "sent", "answered",
               "granted", "written", "acked")
COUNTS = ("entries", "refused", "left", "charged", "declined", "failed", "fallback_qr", "abandoned", "timed_out",
          "alarms", "zero_baskets", "recovery", "fail_open", "stale_dropped")
AWAITED_MAX = 200  # grants awaiting their door's acknowledgement (an offline board never sends one)


class Telemetry:
    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNTS, 0)
        self.latency: dict[str, Histogram] = {"entry_ms": Histogram(), "exit_ms": Histogram()}
        self.stage_ms: dict[str, dict[str, Histogram]] = {"entry": {}, "exit": {}}
        self._awaiting: dict[str, tuple[str, dict[str, float]]] = {}  # grant tag → (path, stage times)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def await_ack(self, tag: str, path: str, stages: dict[str, float]) -> None:
        """A timed grant: its door's acknowledgement (``unlock_written``) closes the timing."""
        self._awaiting[tag] = (path, stages)
        for old in list(self._awaiting)[:-AWAITED_MAX]:
            del self._awaiting[old]

    def acked(self, tag: str | None, written: float | None, acked: float | None) -> tuple[str, dict[str, float],
                                                                                        float] | None:
        """The door acknowledged the grant ``tag``: (path, its stage times, the latency in ms), recorded; None
        when it was not a timed grant."""
        got = self._awaiting.pop(tag, None) if tag else None
        if got is None:
            return None
        path, stages = got
        if written is not None:
            stages["written"] = written
        if acked is not None:
            stages["acked"] = acked
        order = ENTRY_STAGES if path == "entry" else EXIT_STAGES
        seen = [(s, stages[s]) for s in order if stages.get(s) is not None]
        for (a, ta), (b, tb) in itertools.pairwise(seen):
            self.stage_ms[path].setdefault(f"{a}→{b}", Histogram()).add((tb - ta) * 1000)
        total_ms = ((stages.get("written") or stages.get("granted", 0.0)) - stages["captured"]) * 1000
        self.latency[f"{path}_ms"].add(total_ms)
        return path, stages, total_ms

    def snapshot(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "latency": {k: h.summary() for k, h in self.latency.items()},
                "stages_ms": {p: {k: h.summary() for k, h in st.items()} for p, st in self.stage_ms.items()}}
