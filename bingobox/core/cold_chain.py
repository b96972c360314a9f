"""The goods' temperature: each chilled zone's readings (from its probes), its cold-chain rule
(``domain.cold_chain``), its alarms, whether its goods are off sale, and a bounded history to plot. This object is
the zones' one owner; what must survive a restart (the budget spent, off sale) is kept in the journal.

An item of an off-sale zone taken anyway is not charged: ``Checkout`` asks ``off_sale_skus`` and lists it for an
operator (the visit enters the review queue, cause ``off_sale``)."""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from ..devices.events import DeviceEvent
from ..domain import cold_chain as cc

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)
HISTORY_EVERY_S = 30.0  # one point of the plot per this long (or sooner when the temperature moves 0.5 °C)
HISTORY_POINTS = 2880  # 24 hours at one point per 30 s
SAVE_EVERY_S = 30.0  # the budget spent is written at most this often while it grows (and at every change of state)


class ColdChain:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        self.rules = {z.name: cc.ZoneRule(z.max_c, z.alarm_after_s, z.budget_s, z.silent_after_s)
                      for z in core.cfg.zones}
        self.skus = {z.name: set(z.skus) for z in core.cfg.zones}
        self.states = {z: cc.ZoneState() for z in self.rules}
        self.history: dict[str, deque[tuple[float, float]]] = {z: deque(maxlen=HISTORY_POINTS) for z in self.rules}
        self.rh: dict[str, float | None] = {}
        self._saved: dict[str, tuple[float, float]] = {}  # zone → (when, the budget spent) last written
        try:
            for zone, (above_s, off_sale_at) in core.journal.zone_states().items():
                if zone in self.states:
                    self.states[zone].above_s, self.states[zone].off_sale_at = above_s, off_sale_at
        except Exception as e:  # (a journal that cannot be read: the store says so elsewhere; zones start clean)
            log.error("cold chain: the zones' record could not be read: %s", e)
        core.on_device(self.device)
        core.every_tick(self.tick)

    def off_sale_skus(self) -> set[str]:
        return {sku for z, st in self.states.items() if st.off_sale for sku in self.skus[z]}

    def device(self, ev: DeviceEvent) -> None:
        if ev.kind != "reading" or ev.data.get("zone") not in self.rules:
            return
        zone, temp = str(ev.data["zone"]), ev.data.get("temp_c")
        if not isinstance(temp, int | float):
            return
        rule, st = self.rules[zone], self.states[zone]
        happened = cc.reading(rule, st, ev.t, float(temp))
        self.rh[zone] = ev.data.get("rh")
        h = self.history[zone]
        if not h or ev.t - h[-1][0] >= HISTORY_EVERY_S or abs(h[-1][1] - temp) >= 0.5:
            h.append((ev.t, round(float(temp), 2)))
        core = self.core
        for what in happened:
            if what == "warm":
                core.alarm("cold_chain_warm", ev.device, {"zone": zone, "temp_c": temp, "max_c": rule.max_c,
                                                          "since": st.above_since})
            elif what == "off_sale":
                log.warning("zone %s: %.0f s above %.1f °C: its goods are off sale", zone, st.above_s, rule.max_c)
                core.alarm("cold_chain_off_sale", ev.device, {"zone": zone, "above_s": round(st.above_s),
                                                              "budget_s": rule.budget_s,
                                                              "skus": sorted(self.skus[zone])})
            elif what == "heard":
                log.info("zone %s: its probe answers again", zone)
        saved_t, saved_above = self._saved.get(zone, (0.0, 0.0))
        if happened or (st.above_s != saved_above and ev.t - saved_t >= SAVE_EVERY_S):
            self._save(zone, ev.t)

    def _save(self, zone: str, t: float) -> None:
        st = self.states[zone]
        try:
            self.core.journal.save_zone(zone, st.above_s, st.off_sale_at, t)
            self._saved[zone] = (t, st.above_s)
        except Exception as e:
            log.error("cold chain: zone %s not saved: %s", zone, e)

    def tick(self, now: float) -> None:
        for zone, st in self.states.items():
            if cc.silence(self.rules[zone], st, now):
                self.core.alarm("probe_silent", None, {"zone": zone, "last_reading": st.last_t})

    def clear(self, zone: str) -> None:
        """Staff replaced the zone's goods (the operator action): its budget starts again, its goods are on sale."""
        cc.cleared(self.states[zone])
        self._save(zone, self.core.clock())

    def status(self) -> dict[str, Any]:
        """Each zone now, and its last two hours as at most 240 points (the screen's plot)."""
        now = self.core.clock()
        out: dict[str, Any] = {}
        for zone, st in self.states.items():
            rule = self.rules[zone]
            recent = [p for p in self.history[zone] if now - p[0] <= 7200]
            step = max(1, len(recent) // 240)
            out[zone] = {"temp_c": st.last_c, "rh": self.rh.get(zone), "at": st.last_t, "max_c": rule.max_c,
                         "above_s": round(st.above_s), "budget_s": rule.budget_s, "warm": st.warm,
                         "off_sale": st.off_sale, "off_sale_at": st.off_sale_at, "silent": st.silent,
                         "skus": sorted(self.skus[zone]), "history": [list(p) for p in recent[::step]]}
        return out
