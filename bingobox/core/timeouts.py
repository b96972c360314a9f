"""The timeouts of a visit before the exit: a grant never used (the shopper did not come in within
``enter_within_s``: abandoned), and a shopper inside longer than ``max_inside_s`` (timed out: charged what was
theirs with certainty, flagged)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain.visit import UNSEEN_ENTRY
from .visits import Visit

if TYPE_CHECKING:
    from .store import StoreCore


class Timeouts:
    def __init__(self, core: StoreCore) -> None:
        self.core = core

    def tick_visit(self, v: Visit, now: float) -> bool:
        core, s = self.core, self.core.settings
        if v.state in UNSEEN_ENTRY and now - v.created_at > s.enter_within_s:
            with core.book.commit([v], [(v, "abandoned", {"waited_s": s.enter_within_s})]):
                v.machine.fire("abandon")
            core.telemetry.count("abandoned")
            core.face_billing.forget(v)
            return True
        if v.inside and now - (v.entered_at or v.created_at) > s.max_inside_s:
            with core.book.commit([v], [(v, "flag", {"flag": "timed_out"})]) as tx:
                v.flag("timed_out")
                core.checkout.charge_in(tx, v)  # only what was attributed with certainty
                v.machine.fire("time_out")
            core.outbox.wake()
            core.telemetry.count("timed_out")
            core.face_billing.forget(v)
            return True
        return False
