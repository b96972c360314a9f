"""Shopping: the entrance's door cycles (who came in) and the shelves (who took what, as ``Attribution`` decides:
the one shopper inside, alone and seen, or nobody for certain — then the exit reader decides at checkout)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..devices.events import DeviceEvent
from ..domain.visit import S

if TYPE_CHECKING:
    from .store import StoreCore
    from .visits import Visit

log = logging.getLogger(__name__)


COUNTER_SLACK_S = 1.0  # a people counter's pulse this long after the door closed is still that opening's


class Shopping:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        # the entrance's current opening, for a people counter (``passage_input``): whose grant it was, the people
        # counted through it, and when the door closed (None: still open)
        self.opening: tuple[Visit | None, int, float | None] | None = None
        core.on_device(self.device)

    def device(self, ev: DeviceEvent) -> None:
        lay = self.core.lay
        if ev.kind == "unlock_written":
            return
        if ev.device == lay.entry_door:
            self.entry_door(ev)
        elif ev.kind in ("tag_gone", "tag_seen") and ev.device != lay.exit_reader and ev.device != lay.exit_door:
            self.shelf(ev)

    def entry_door(self, ev: DeviceEvent) -> None:
        core = self.core
        if ev.kind == "passage":
            self.counted(ev)
            return
        if ev.kind == "door_opened":
            self.opening = (None, 0, None)  # (whose: set below when a grant opened it)
            waiting = core.book.waiting_at_entrance()
            if not waiting:
                self.companion_in(ev)
                return
            v = waiting[-1]  # the newest grant is the one that unlocked the door now
            others = [o for o in core.book.inside() if o is not v]
            with core.book.commit([v, *others], [(v, "door_cycle", {"door": ev.device, "opened": ev.t,
                                                                    **({"passage": 1} if v.group > 1 else {})})]):
                v.machine.fire("door_opened")
                v.entered_at = ev.t
                v.passages = 1
                if others or core.attribution.unknown_inside() or "tailgating" in v.flags:
                    for o in [*others, v]:
                        o.alone = False
            self.opening = (v, 0, None)
            core.face_billing.publish_candidates()
        elif ev.kind == "door_closed":
            if self.opening is not None:
                self.opening = (self.opening[0], self.opening[1], ev.t)
            entered = [v for v in core.book if v.state == S.entered]
            if entered:
                with core.book.commit(entered):
                    for v in entered:
                        v.machine.fire("door_closed")
        elif ev.kind == "alarm" and ev.data.get("alarm") == "door_forced":
            core.attribution.stranger_inside(ev.t, "stranger_inside")  # someone came in without a code (no host)

    def passage_open(self, v: Visit, t: float) -> bool:
        """Is the entrance unlocked for ``v``'s next companion (granted, not yet used, within the door's window)?"""
        if v.passage_granted_at is None:
            return False
        door = next((d for d in self.core.cfg.doors if d.name == self.core.lay.entry_door), None)
        return t - v.passage_granted_at <= (door.unlock_s if door else 5.0) + 1.0

    def companion_in(self, ev: DeviceEvent) -> None:
        """The entrance opened with no shopper's grant waiting: the next of a group, on the passage their code
        opened (anyone else through a locked door is the door's forced-open alarm)."""
        core = self.core
        granted = [v for v in core.book.inside() if self.passage_open(v, ev.t)]
        if not granted:
            return
        v = max(granted, key=lambda g: g.passage_granted_at or 0.0)
        with core.book.commit([v], [(v, "door_cycle", {"door": ev.device, "opened": ev.t,
                                                       "passage": v.passages + 1})]):
            v.passages += 1
        v.passage_granted_at = None
        self.opening = (v, 0, None)

    def counted(self, ev: DeviceEvent) -> None:
        """The doorway's people counter saw someone through: more than one person through an opening granted for
        one is tailgating (said, flagged, the newcomer a stranger inside), as more faces than the code's people."""
        core = self.core
        if self.opening is None:
            return
        v, n, closed = self.opening
        if closed is not None and ev.t - closed > COUNTER_SLACK_S:
            return  # (through a shut door: the door's own forced-open alarm says it)
        n += 1
        self.opening = (v, n, closed)
        if v is None or n <= 1:
            return  # (an opening nobody was granted: the forced-door alarm; the first one through: the shopper)
        with core.book.commit([v], [(v, "people_counted", {"through": n, "granted": 1})]):
            pass
        if n == 2:  # (one alarm an opening; each further person is counted, and is one more stranger inside)
            core.alarm("tailgating", core.lay.entry_door, {"visit": v.id, "by": "people_counter"})
        core.attribution.stranger_inside(ev.t, "tailgating", v)

    def shelf(self, ev: DeviceEvent) -> None:
        core = self.core
        epc = ev.data.get("epc")
        if epc is None:
            return
        if core.store.state == "maintenance":  # restocking: nobody's basket
            core.journal.evidence(None, "restock", {"epc": epc, "reader": ev.device, "change": ev.kind})
            return
        if ev.kind == "tag_gone":
            v = core.attribution.taker(ev.device, ev.t)
            if v is not None:
                with core.book.commit([v], [(v, "tag_taken", {"epc": epc, "reader": ev.device})]):
                    v.basket.add(epc, f"shelf:{ev.device}", ev.t)
            else:  # a shelf that could not see (or just came back), or several inside: at an unknown time, by anyone
                core.attribution.took(epc, ev.t)
                core.journal.evidence(None, "tag_taken_unattributed", {
                    "epc": epc, "reader": ev.device, "blind": core.attribution.shelf_blind(ev.device, ev.t),
                    "inside": [v.id for v in core.book.inside()]})
        else:  # back on a shelf: nobody pays for it (a visit already charging keeps what it was charged for)
            core.attribution.put_back(epc)
            holders = [v for v in core.book if epc in v.basket.items and not v.leaving]
            if holders:
                with core.book.commit(holders, [(v, "tag_put_back", {"epc": epc, "reader": ev.device})
                                                for v in holders]):
                    for v in holders:
                        v.basket.remove(epc)
