"""The live basket: what the store attributes to each shopper inside, as it changes — takes, put-backs, the running
total — and whether that is certain (alone inside, every shelf seeing, nothing taken that nobody is known to hold)
or only what the exit will decide. This object owns what was last published per visit; whoever shows it (the
wallet app, through the shopper sync) listens through ``out`` (``ports.BasketOut``), told on the loop's thread,
never blocking. Nothing here is money owed: the exit decides, and the receipt is the record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .ports import BasketOut

if TYPE_CHECKING:
    from .store import StoreCore
    from .visits import Visit


class LiveBaskets:
    def __init__(self, core: StoreCore, out: BasketOut | None = None) -> None:
        self.core = core
        self.out = out
        self.published: dict[str, tuple[Any, ...]] = {}  # visit → what it was last told (its key)
        if out is not None:
            core.every_tick(self.tick)

    def why_uncertain(self, v: Visit) -> list[str]:
        """Why what is attributed to ``v`` may not be all they carry (empty: certain)."""
        a = self.core.attribution
        why = []
        if not v.alone:
            why.append("others_inside")
        if a.pool:
            why.append("takes_unattributed")
        if a.blind_since(v.entered_at or v.created_at):
            why.append("shelf_blind")
        return why

    def view(self, v: Visit) -> dict[str, Any]:
        lines = self.core.checkout.priced(v)[0]
        why = self.why_uncertain(v)
        return {"lines": lines, "total_fen": sum(li["amount_fen"] for li in lines), "certain": not why,
                "why": why, "at": self.core.clock()}

    def tick(self, now: float) -> None:
        assert self.out is not None
        inside = [v for v in self.core.book if v.inside]
        for v in inside:
            key = (tuple(sorted(v.basket.items)), v.alone, bool(self.core.attribution.pool),
                   self.core.attribution.blind_since(v.entered_at or v.created_at))
            if self.published.get(v.id) != key:
                self.published[v.id] = key
                self.out(v.id, v.account, self.view(v))
        for vid in set(self.published) - {v.id for v in inside}:
            del self.published[vid]
