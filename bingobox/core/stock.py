"""Stock: what each shelf holds, from its reader's tag_seen / tag_gone (this object is its one owner). A product
whose count in the store falls below its minimum (``[stock] minimum``) raises one ``restock_needed`` alarm until it
is back at its minimum; an item on a shelf that does not carry its product (``[stock] carries``) is listed as
misplaced. Batches on the shelves in their markdown days or past their date are listed (``expiring``; an expired
lot raises one ``expired_on_shelf`` alarm while any of it is out). A tag gone from the shelves that neither came
back, nor was charged to a visit, nor left in a visit flagged for an operator, is shrink (listed; one ``shrink``
alarm per round that finds some). Shown on the status screen and in the MQTT state (the fleet's chain-wide restock
list)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..devices.events import DeviceEvent
from ..domain import review
from ..domain.batches import Batch

log = logging.getLogger(__name__)
NEAR_DAYS = 2  # a lot this near its date is listed even for a product without markdowns
SHRINK_AFTER_S = 60.0  # a tag gone this long, not back on a shelf, is looked for in the visits of its time
MAX_GONE = 5000  # tags gone and not yet accounted for, at most (the oldest are judged first)

SETTLE_S = 30.0  # after a start, the shelves' first rounds: nothing is short before they have all been read
CHECK_EVERY_S = 5.0

if TYPE_CHECKING:
    from .store import StoreCore


class Stock:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        self.minimum = dict(core.cfg.stock.minimum)
        self.carries = {shelf: set(skus) for shelf, skus in core.cfg.stock.carries.items()}
        self.shelves: dict[str, dict[str, str]] = {}  # shelf → {epc: sku} present now
        self.low: set[str] = set()  # SKUs said to need restocking (until back at their minimum)
        self.dated: dict[str, Batch] = {}  # epc → its batch, for the batched tags on the shelves now
        self.products = sorted(p.sku for p in core.catalog.products())[:100]  # (Home Assistant: a sensor each)
        self.expired_said: set[str] = set()  # lots whose expired_on_shelf alarm is raised (until none is out)
        self.gone: dict[str, tuple[float, str, list[str]]] = {}  # epc → (gone at, sku, the visits open then)
        self.shrink: list[dict[str, Any]] = []  # the latest tags found missing (bounded)
        self.shrink_count: dict[str, int] = {}  # SKU → tags found missing since the start
        self._checked_at = 0.0
        core.on_device(self.device)
        core.every_tick(self.tick)

    def device(self, ev: DeviceEvent) -> None:
        core = self.core
        if ev.kind not in ("tag_seen", "tag_gone") or ev.device == core.lay.exit_reader:
            return
        epc = ev.data.get("epc")
        if not isinstance(epc, str):
            return
        shelf = self.shelves.setdefault(ev.device, {})
        if ev.kind == "tag_seen":
            p = core.catalog.lookup(epc)
            shelf[epc] = p.sku if p else ""
            batch = core.catalog.batch_of(epc, p) if p else None
            if batch is not None:
                self.dated[epc] = batch
            self.gone.pop(epc, None)  # (back on a shelf: it was never missing)
        else:
            sku = shelf.pop(epc, None)
            if not any(epc in s for s in self.shelves.values()):
                self.dated.pop(epc, None)
            if sku and core.store.state not in ("starting", "maintenance"):
                if len(self.gone) >= MAX_GONE:
                    self.gone.pop(next(iter(self.gone)))
                self.gone[epc] = (ev.t, sku, [v.id for v in core.book])  # (open visits, leaving ones too)
        self.check()

    def tick(self, now: float) -> None:
        if now - self._checked_at >= CHECK_EVERY_S:
            self.check()
            if self.core.store.state not in ("starting", "maintenance"):
                self._judge_gone(now)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for shelf in self.shelves.values():
            for sku in shelf.values():
                if sku:
                    out[sku] = out.get(sku, 0) + 1
        return out

    def check(self) -> None:
        """Restock alarms: once per product when it falls below its minimum (again once it was back at it). Not while
        the store is being restocked, nor in the first ``SETTLE_S`` after a start (a store starting is not empty)."""
        core = self.core
        now = core.clock()
        self._checked_at = now
        if core.store.state in ("starting", "maintenance") or now - core.started_at < SETTLE_S:
            return
        counts = self.counts()
        for sku, least in self.minimum.items():
            n = counts.get(sku, 0)
            if n < least and sku not in self.low:
                self.low.add(sku)
                p = core.catalog.by_sku(sku)
                core.alarm("restock_needed", None, {"sku": sku, "name": p.name if p else sku, "count": n,
                                                    "minimum": least})
            elif n >= least:
                self.low.discard(sku)
        today = core.catalog.day(now)
        out = {b.lot: b for b in self.dated.values() if b.expires < today}
        for lot in sorted(set(out) - self.expired_said):
            b = out[lot]
            p = core.catalog.gtins.get(b.gtin)
            core.alarm("expired_on_shelf", None, {"lot": lot, "sku": p.sku if p else b.gtin,
                                                  "expires": b.expires.isoformat(),
                                                  "count": sum(x.lot == lot for x in self.dated.values())})
        self.expired_said = set(out)

    def _judge_gone(self, now: float) -> None:
        """Tags gone ``SHRINK_AFTER_S`` ago whose visits (those inside when they went) have all ended: accounted
        for if a basket of theirs holds it or one of them is flagged for an operator; shrink otherwise."""
        core = self.core
        open_ids = {v.id for v in core.book}
        ripe = [(e, g) for e, g in self.gone.items() if now - g[0] >= SHRINK_AFTER_S and not set(g[2]) & open_ids]
        if not ripe:
            return
        try:
            outcomes = core.journal.visit_outcomes([vid for _, g in ripe for vid in g[2]])
        except Exception as e:  # (the journal unreadable now: judged on a later round)
            log.warning("stock: the visits of gone tags could not be read: %s", e)
            return
        found = []
        for epc, (t, sku, ids) in ripe:
            del self.gone[epc]
            if any(epc in outcomes.get(v, (set(), []))[0] or review.causes(outcomes.get(v, (set(), []))[1])
                   for v in ids):
                continue
            found.append({"epc": epc, "sku": sku, "gone_at": t, "inside": len(ids)})
            self.shrink_count[sku] = self.shrink_count.get(sku, 0) + 1
        if found:
            self.shrink = (self.shrink + found)[-200:]
            core.alarm("shrink", None, {"count": len(found), "skus": sorted({f["sku"] for f in found}),
                                        "epcs": [f["epc"] for f in found[:20]]})

    def expiring(self) -> list[dict[str, Any]]:
        """The lots on the shelves past their date or in their last days (their markdown days, at least
        ``NEAR_DAYS``), soonest first: what an operator pulls or checks the price labels of."""
        core = self.core
        now = core.clock()
        today = core.catalog.day(now)
        lots: dict[str, dict[str, Any]] = {}
        for epc, b in self.dated.items():
            p = core.catalog.gtins.get(b.gtin)
            if p is None:
                continue
            left = (b.expires - today).days
            if left > max([NEAR_DAYS, *(d for d, _ in p.markdowns)]):
                continue
            row = lots.get(b.lot)
            if row is None:
                pr = core.catalog.price(epc, now)
                row = lots[b.lot] = {"lot": b.lot, "sku": p.sku, "expires": b.expires.isoformat(), "days_left": left,
                                     "count": 0, "pct_off": pr.pct_off if pr else 0, "expired": left < 0}
            row["count"] += 1
        return sorted(lots.values(), key=lambda r: (r["expires"], r["lot"]))[:200]

    def misplaced(self) -> list[dict[str, Any]]:
        out = []
        for shelf, items in sorted(self.shelves.items()):
            carries = self.carries.get(shelf)
            if carries is None:
                continue
            for epc, sku in sorted(items.items()):
                if sku and sku not in carries:
                    out.append({"epc": epc, "sku": sku, "shelf": shelf,
                                "belongs": sorted(s for s, c in self.carries.items() if sku in c)})
        return out[:200]

    def status(self) -> dict[str, Any]:
        counts = self.counts()
        restock = [{"sku": sku, "count": counts.get(sku, 0), "minimum": least}
                   for sku, least in sorted(self.minimum.items()) if counts.get(sku, 0) < least]
        return {"counts": dict(sorted(counts.items())), "restock": restock, "misplaced": self.misplaced(),
                "expiring": self.expiring(), "products": self.products,
                "shrink": {"by_sku": dict(sorted(self.shrink_count.items())), "latest": self.shrink[-20:]}}
