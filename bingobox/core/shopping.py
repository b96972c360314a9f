"""Shopping: the entrance's door cycles (who came in) and the shelves (who took what).

Attribution: while exactly one shopper is inside, and nobody unknown came in with them, what leaves a shelf goes to
their basket and what comes back leaves it. Otherwise a taken item goes to the unattributed pool and the exit
reader decides at checkout. A forced entrance or two faces on one code (a tailgater) makes every shopper inside
"not alone" for the rest of their visit, and nobody who comes in while the stranger may still be inside is alone
either (``StoreCore.strangers``): their takes are no longer theirs with certainty. After doors a fire released,
or a controller restart, any number of people may be inside (``StoreCore.unwatched_at``): nobody is alone until
``max_inside_s`` has passed, whoever leaves unidentified meanwhile.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..devices.events import DeviceEvent
from ..domain.visit import S
from .admission import publish_candidates

SHELF_BLIND_GRACE_S = 10.0  # after a shelf reader comes back, what it reports gone left at an unknown time

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)


def entry_door(core: StoreCore, ev: DeviceEvent) -> None:
    if ev.kind == "door_opened":
        waiting = core.book.waiting_at_entrance()
        if not waiting:
            return
        v = waiting[-1]  # the newest grant is the one that unlocked the door now
        others = [o for o in core.book.inside() if o is not v]
        with core.book.commit([v, *others], [(v, "door_cycle", {"door": ev.device, "opened": ev.t})]):
            v.machine.fire("door_opened")
            v.entered_at = ev.t
            if others or core.unknown_inside() or "tailgating" in v.flags:
                for o in [*others, v]:
                    o.alone = False
        publish_candidates(core)
    elif ev.kind == "door_closed":
        entered = [v for v in core.book if v.state == S.entered]
        if entered:
            with core.book.commit(entered):
                for v in entered:
                    v.machine.fire("door_closed")
    elif ev.kind == "alarm" and ev.data.get("alarm") == "door_forced":
        core.stranger_inside(ev.t, "possible_tailgater")  # someone came in without a code


def shelf(core: StoreCore, ev: DeviceEvent) -> None:
    epc = ev.data.get("epc")
    if epc is None:
        return
    if core.store.state == "maintenance":  # restocking: nobody's basket
        core.journal.evidence(None, "restock", {"epc": epc, "reader": ev.device, "change": ev.kind})
        return
    if ev.kind == "tag_gone":
        inside = core.book.inside()
        # a shelf that could not see, or just came back, reports late what left it: at an unknown time, by anyone
        blind = ev.device in core.shelf_offline or ev.t < core.shelf_back_at.get(ev.device, -1.0) + \
            SHELF_BLIND_GRACE_S
        if len(inside) == 1 and inside[0].alone and not blind:
            v = inside[0]
            with core.book.commit([v], [(v, "tag_taken", {"epc": epc, "reader": ev.device})]):
                v.basket.add(epc, f"shelf:{ev.device}")
        else:
            core.unattributed[epc] = ev.t
            core.journal.evidence(None, "tag_taken_unattributed", {"epc": epc, "reader": ev.device, "blind": blind,
                                                                   "inside": [v.id for v in inside]})
    else:  # back on a shelf: nobody pays for it (a visit already charging keeps what it was charged for)
        core.unattributed.pop(epc, None)
        core.recently_left.pop(epc, None)
        holders = [v for v in core.book if epc in v.basket.items and not v.leaving]
        if holders:
            with core.book.commit(holders, [(v, "tag_put_back", {"epc": epc, "reader": ev.device})
                                            for v in holders]):
                for v in holders:
                    v.basket.remove(epc)
