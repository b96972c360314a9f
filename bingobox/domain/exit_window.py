"""The exit window: what a shopper identified at the exit carries out, as the exit reader saw it — the one rule,
used by the reader drivers (``devices.tag_field``), the deterministic simulation's reader and the tests' fakes.

A round is (the time it ended, the EPCs it read). The window is the rounds that ended after ``t0`` (the later of a
few seconds before the identifying frame, the exit door last closing, the shopper's entry) up to and including the
first round that ended after ``t_after`` (the frame) — or later, until it holds ``min_rounds`` rounds, since one
round misses a tag now and then and several do not. So a decision taken late never bills what the reader sees now.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable


def window(rounds: Iterable[tuple[float, Collection[str]]], t0: float, t_after: float,
           min_rounds: int = 1) -> set[str] | None:
    """The EPCs of the window over ``rounds`` (in the order they ended); None while it is not complete."""
    out: set[str] = set()
    n = 0
    for end, epcs in rounds:
        if end <= t0:
            continue
        n += 1
        out.update(epcs)
        if end > t_after and n >= min_rounds:
            return out
    return None
