"""The store's locked cabinets (this object is their one owner): a request at a cabinet — its button, or a code
shown to its camera — is decided by ``domain.cabinet`` and opens its door for ``open_s``; its panel says what
happened and, at rest, what it takes to open it (a cold zone's cabinet stays shut while its goods are off sale).

Every opening of an age-restricted cabinet is recorded with the visit (``cabinet_opened``; the visit is flagged
``age_checked``), every refusal as evidence. A restricted product charged to a visit that was never admitted to
a restricted cabinet raises ``restricted_taken`` and puts the visit in front of an operator (``Checkout`` asks
``unchecked``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from ..config import CabinetConfig
from ..devices.events import DeviceEvent
from ..domain import cabinet, panel
from ..domain.hours import DAYS, Hours, parse_span
from .events import CodeSeen

if TYPE_CHECKING:
    from .store import StoreCore
    from .visits import Visit

log = logging.getLogger(__name__)
CODE_REASONS_OK = (None, "replayed", "unpaid_charges", "store_offline_limit")  # (a code still identifies its holder)


class Cabinets:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        self.by_door: dict[str, CabinetConfig] = {c.door: c for c in core.cfg.cabinets}
        tz = core.cfg.store.tz()
        self.tz = tz
        self.hours: dict[str, Hours | None] = {
            c.name: Hours(tz, dict.fromkeys(DAYS, parse_span(c.sale_hours))) if c.sale_hours else None
            for c in core.cfg.cabinets}
        self.restricted_skus = {s for c in core.cfg.cabinets if c.restricted for s in c.skus}
        self.counts: dict[str, dict[str, int]] = {c.name: {"opened": 0, "refused": 0} for c in core.cfg.cabinets}
        for c in core.cfg.cabinets:
            if c.camera is not None:
                core.on_code(f"cabinet:{c.name}", self._code_at(c))
        core.on_device(self.device)

    # what the panels and checkout ask ---------------------------------------------------------------------
    def off_sale(self, c: CabinetConfig) -> bool:
        return c.zone is not None and self.core.cold_chain.states[c.zone].off_sale

    def idle(self, door: str) -> panel.PanelMessage:
        c = self.by_door[door]
        return cabinet.idle(c.restricted, self.off_sale(c), c.sale_hours)

    def unchecked(self, v: Visit, skus: set[str]) -> list[str]:
        """The age-restricted products among ``skus`` if ``v`` was never admitted to a restricted cabinet."""
        if "age_checked" in v.flags:
            return []
        return sorted(skus & self.restricted_skus)

    def status(self) -> dict[str, Any]:
        return {c.name: {"door": c.door, "restricted": c.restricted, "zone": c.zone, "off_sale": self.off_sale(c),
                         "sale_hours": c.sale_hours, **self.counts[c.name]} for c in self.core.cfg.cabinets}

    # requests ---------------------------------------------------------------------------------------------
    def device(self, ev: DeviceEvent) -> None:
        c = self.by_door.get(ev.device)
        if c is None or ev.kind != "rex_pressed":
            return
        self._ask(c, cabinet.Ask("button", c.restricted, self.off_sale(c), False, None, self._today(),
                                 self._in_hours(c)), None, {"by": "button"})

    def _code_at(self, c: CabinetConfig) -> Callable[[CodeSeen], None]:
        return lambda ev: self.code(c, ev)

    def code(self, c: CabinetConfig, ev: CodeSeen) -> None:
        core = self.core
        d = core.gate.check(ev.text, c.door)
        if d.claims is None or d.reason not in CODE_REASONS_OK:
            log.info("cabinet %s: code refused: %s %s", c.name, d.reason, d.detail)
            self.counts[c.name]["refused"] += 1
            core.panels.say_at(c.door, panel.refusal(d.reason or "refused"))
            return
        v = core.book.of_account(d.claims.account)
        inside = v is not None and v.inside
        ask = cabinet.Ask("code", c.restricted, self.off_sale(c), inside, d.claims.adult_from, self._today(),
                          self._in_hours(c))
        self._ask(c, ask, v if inside else None, {"by": "code", "jti": d.claims.jti})

    def _ask(self, c: CabinetConfig, ask: cabinet.Ask, v: Visit | None, how: dict[str, Any]) -> None:
        core = self.core
        why = cabinet.refusal(ask)
        data = {"cabinet": c.name, **how, **({"refused": why} if why else {})}
        if why is not None:
            self.counts[c.name]["refused"] += 1
            core.journal.evidence(v.id if v else None, "cabinet_refused", data)
            core.panels.say_at(c.door, cabinet.refused(why, c.sale_hours))
            return
        if v is not None and c.restricted:  # the age check is part of the visit's record before the door opens
            with core.book.commit([v], [(v, "cabinet_opened", data)]):
                v.flag("age_checked")
        else:
            core.journal.evidence(v.id if v else None, "cabinet_opened", data)
        self.counts[c.name]["opened"] += 1
        tag = f"cabinet-{c.name}-{core.clock():.3f}"
        core.doors[c.door].grant(c.open_s, tag=tag)
        core.panels.after_unlock_at(c.door, tag, cabinet.opened(), cabinet.refused("door", None))

    def _today(self) -> date:
        return datetime.fromtimestamp(self.core.clock(), self.tz).date()

    def _in_hours(self, c: CabinetConfig) -> bool:
        h = self.hours.get(c.name)
        now = datetime.fromtimestamp(self.core.clock(), UTC)
        return (h is None or h.is_open(now)) and self.core.open_now()
