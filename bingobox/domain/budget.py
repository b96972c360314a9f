"""A budget of rows a minute for what an outsider can make the store write (refused codes, refused commands): the
first ones are written one by one, the rest only counted, and the count is written once their minute is over."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MinuteBudget:
    per_minute: int
    start: float = float("-inf")
    written: int = 0  # this minute's rows written one by one
    suppressed: int = 0  # … and left out

    def take(self, now: float) -> tuple[bool, tuple[int, float] | None]:
        """(write this one?, (how many the minute that just ended left out, when it began) or None)."""
        left_out = None
        if now - self.start >= 60:
            if self.suppressed:
                left_out = (self.suppressed, self.start)
            self.start, self.written, self.suppressed = now, 0, 0
        if self.written >= self.per_minute:
            self.suppressed += 1
            return False, left_out
        self.written += 1
        return True, left_out
