"""Opening hours: when the entrance admits shoppers. Pure: the caller passes the time.

A store left without hours is open around the clock. Hours are given per day as "HH:MM-HH:MM" (a span past
midnight, "22:00-06:00", belongs to the day it starts on) or "closed"; dates in ``closed_dates`` (holidays) are
closed whatever the weekday says. The exit is never affected: this only decides whether a new visit may start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_span(text: str) -> tuple[time, time] | None:
    """"07:00-23:00" → (07:00, 23:00); "closed" → None. "24:00" ends a day. Raises ValueError otherwise."""
    if text == "closed":
        return None
    m = _SPAN.match(text)
    if not m or (m.group(3) == "24" and m.group(4) != "00"):
        raise ValueError(f"{text!r} is not 'HH:MM-HH:MM' or 'closed'")
    start = time(int(m.group(1)), int(m.group(2)))
    end = time(0, 0) if m.group(3) == "24" else time(int(m.group(3)), int(m.group(4)))
    if start == end and m.group(3) != "24":
        raise ValueError(f"{text!r} opens and closes at the same minute (for all day say '00:00-24:00')")
    return start, end


@dataclass
class Hours:
    tz: ZoneInfo
    spans: dict[str, tuple[time, time] | None] = field(default_factory=dict)  # day → span; missing: all day
    closed_dates: frozenset[date] = frozenset()

    def _open_on(self, day: date, at: time, carry: bool) -> bool:
        """Open at ``at`` by ``day``'s span (``carry``: the part of the span that runs past midnight)."""
        if day in self.closed_dates:
            return False
        name = DAYS[day.weekday()]
        if name not in self.spans:
            return not carry
        span = self.spans[name]
        if span is None:
            return False
        start, end = span
        overnight = end <= start  # "22:00-06:00", or "...-24:00" (end 00:00)
        if carry:
            return overnight and at < end
        return start <= at and (overnight or at < end)

    def is_open(self, when: datetime) -> bool:
        local = when.astimezone(self.tz)
        today, at = local.date(), local.time()
        return self._open_on(today, at, carry=False) or self._open_on(today - timedelta(days=1), at, carry=True)

    def today(self, when: datetime) -> str | None:
        """Today's opening hours as a shopper reads them ("07:00-23:00"; all day: "00:00-24:00"), None if closed
        all day."""
        local = when.astimezone(self.tz)
        day = local.date()
        name = DAYS[day.weekday()]
        if day in self.closed_dates or (name in self.spans and self.spans[name] is None):
            return None
        span = self.spans.get(name)
        if span is None:
            return "00:00-24:00"
        start, end = span
        return f"{start:%H:%M}-{'24:00' if end == time(0, 0) else f'{end:%H:%M}'}"
