"""The cold-chain rule of a chilled zone, pure: readings in, what happened out.

- Above ``max_c`` for ``alarm_after_s`` in one go: the zone is **warm** (an alarm, once per excursion).
- The time spent above ``max_c``, cumulated across excursions until staff clear the zone, is its time-temperature
  budget: once it reaches ``budget_s`` the zone's goods are **off sale** (they stay so until staff clear it: a fridge
  that cools down again does not make spoiled food safe).
- Between two readings the zone is taken to have stayed as the first one said, for at most ``silent_after_s`` (a
  probe that went quiet is its own alarm; its silence never counts as a normal reading).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ZoneRule:
    max_c: float
    alarm_after_s: float
    budget_s: float
    silent_after_s: float


@dataclass
class ZoneState:
    above_s: float = 0.0  # cumulated time above max_c since staff last cleared the zone
    off_sale_at: float | None = None
    above_since: float | None = None  # the current excursion's start
    warm: bool = False  # the current excursion has raised its alarm
    last_t: float | None = None  # the last reading
    last_c: float | None = None
    silent: bool = False  # said to be silent (no reading for silent_after_s)

    @property
    def off_sale(self) -> bool:
        return self.off_sale_at is not None


def reading(rule: ZoneRule, st: ZoneState, t: float, temp_c: float) -> list[str]:
    """Take a reading at ``t``; what it changed: "warm" (the alarm is due), "off_sale" (the budget is spent),
    "back" (below the limit again after an excursion), "heard" (a silent probe answers again)."""
    out: list[str] = []
    if st.silent:
        st.silent = False
        out.append("heard")
    if st.last_t is not None and st.last_c is not None and st.last_c > rule.max_c and t > st.last_t:
        st.above_s += min(t - st.last_t, rule.silent_after_s)
    st.last_t, st.last_c = t, temp_c
    if temp_c > rule.max_c:
        if st.above_since is None:
            st.above_since = t
        if not st.warm and t - st.above_since >= rule.alarm_after_s:
            st.warm = True
            out.append("warm")
    elif st.above_since is not None:
        st.above_since, st.warm = None, False
        out.append("back")
    if st.off_sale_at is None and st.above_s >= rule.budget_s:
        st.off_sale_at = t
        out.append("off_sale")
    return out


def silence(rule: ZoneRule, st: ZoneState, now: float) -> bool:
    """True once, when the zone has had no reading for ``silent_after_s`` (its probe is down or stuck on the bus)."""
    since = st.last_t
    if st.silent or since is None or now - since < rule.silent_after_s:
        return False
    st.silent = True
    return True


def cleared(st: ZoneState) -> None:
    """Staff replaced the zone's goods (and fixed its fridge): the budget starts again."""
    st.above_s, st.off_sale_at, st.warm = 0.0, None, False
    st.above_since = st.last_t if st.above_since is not None else None
