"""The exit door: opening it for a shopper (the grant committed first, so a restart never opens it again behind
them), its door cycles (who left; an opening nobody was granted for is said, never guessed), the visit finished
(receipt stored, templates destroyed), the timeouts of leaving — and ``fail_open``: nobody is ever kept inside by
an error; every failure after identification opens the exit, records what failed and raises an alarm."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..devices.events import DeviceEvent
from ..domain import panel
from ..domain.catalog import CARRIED_BY_COMPANION
from ..domain.visit import FINAL, IN_STORE, UNSEEN_ENTRY, S
from .events import CompanionCarried
from .visits import Visit

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)
GRANT_PASSAGE_SLACK_S = 2.0  # (the door relocks when its grant window ends: later, only the button opens it)


class ExitDoor:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        core.on_device(self.device)
        core.on(CompanionCarried, self.companion_carried)
        door = next((d for d in core.cfg.doors if d.name == core.lay.exit_door), None)
        # an opening this long after the exit's grant can still be that shopper (the grant window, then the button)
        self.grant_passage_s = (door.unlock_s if door else 5.0) + GRANT_PASSAGE_SLACK_S

    def grant(self, v: Visit, why: str) -> None:
        """Open the exit for ``v`` (the grant is committed first, so a restart knows not to open it again)."""
        core = self.core
        try:
            with core.book.commit([v], [(v, "exit_unlocked", {"door": core.lay.exit_door, "why": why})]) as tx:
                v.exit_granted_at = tx.now
        except Exception as e:
            self.fail_open(v, "grant", e)
            return
        self.unlock(v, why)

    def unlock(self, v: Visit, why: str) -> None:
        """The door's grant itself (the visit's grant committed already); once the board has unlocked, the panel
        says goodbye and how the charge went (``why`` the exit opens)."""
        core = self.core
        timed = "captured" in v.stages and "granted" not in v.stages  # the first grant of a timed identification
        if timed:
            v.stages["granted"] = core.clock()
            core.telemetry.await_ack(v.id, "exit", v.stages)
        core.panels.after_unlock("exit", v.id, panel.goodbye(why, v.amount_fen))
        core.doors[core.lay.exit_door].grant(tag=v.id)

    def device(self, ev: DeviceEvent) -> None:
        core = self.core
        if ev.device != core.lay.exit_door or ev.kind == "unlock_written":
            return
        if ev.kind == "door_closed":
            core.attribution.exit_closed(ev.t)
            return
        if ev.kind != "door_opened":
            return
        # whose exit this is: a visit the exit opened for lately (an opening long after a grant — one made before a
        # restart, whose own door cycle nobody saw — is someone else's: the button, a companion, a stranger)
        leaving = [v for v in core.book if v.exit_granted_at is not None and v.leaving
                   and ev.t - v.exit_granted_at <= self.grant_passage_s]
        if not leaving:
            group = self.companion_leaving()
            if group is not None:
                self.companion_out(group, ev.t)
                return
            core.attribution.unidentified_exit(ev.t)
            present = [v.id for v in core.book if v.inside or v.leaving]
            if present:  # someone left unidentified (request-to-exit, or behind another shopper): say so, don't guess
                core.alarm("exit_unidentified", ev.device, {"inside": present})
            groups = [v for v in core.book if (v.inside or v.leaving) and v.companions_inside > 0]
            if groups:  # perhaps a companion, with goods nobody can now bill: an operator must look
                with core.book.commit(groups, [(v, "flag", {"flag": "group_exit_unidentified"}) for v in groups]):
                    for v in groups:
                        v.flag("group_exit_unidentified")
                        v.flag("review")
            return
        for v in leaving:
            self.finish(v, ev.t, None)

    def companion_leaving(self) -> Visit | None:
        """The exit opened for nobody: the group whose companion this is, when that is certain — the only visit
        present is a group with companions still inside that has been alone all along (with anyone else inside, now
        or before, it could be anyone)."""
        present = [v for v in self.core.book if v.inside or v.leaving]
        g = present[0] if len(present) == 1 else None
        if g is not None and g.companions_inside > 0 and g.passages - 1 > g.members_out and g.alone and \
                not self.core.attribution.unknown_inside():  # (a companion seen coming in, and not yet out)
            return g  # (alone: nobody else has been inside with them — a stranger who left would do too)
        return None

    def companion_out(self, v: Visit, t: float) -> None:
        """A companion of ``v`` left first (the exit button): not a stranger. What they carried is read by the exit
        reader and billed to ``v`` (``companion_carried``)."""
        core = self.core
        r = core.exit_reader
        reading = r is not None and r.online()
        with core.book.commit([v], [(v, "companion_left", {"door": core.lay.exit_door, "opened": t,
                                                           "inside": v.companions_inside - 1})]):
            v.members_out += 1
            if reading:  # until the reader's word is in (a restart in between loses it: then an operator looks)
                v.flag("companion_carried_unread")
        start = core.attribution.exit_window_start(v, t, core.settings.exit_window_s)
        if r is None or not reading:
            return  # nothing can say what they carried: the checkout flags what is not seen for review
        r.when_ready(start, t, core.settings.exit_min_rounds, lambda: core.post(CompanionCarried(v.id, start, t)),
                     core.settings.exit_inventory_timeout_s)

    def companion_carried(self, ev: CompanionCarried) -> None:
        """What a companion carried out through the exit: the group's, billed with ``v``'s basket — never what is
        another shopper's or was just charged."""
        core = self.core
        v = core.book.get(ev.visit_id)
        r = core.exit_reader
        if v is None or v.state in FINAL or r is None:
            return
        try:
            epcs = r.window(ev.t0, ev.t, core.settings.exit_min_rounds)
        except Exception:
            log.exception("exit reader failed: what the companion of %s carried stays as attributed", v.id)
            return
        if epcs is None:
            return
        held = core.attribution.claimed_elsewhere(v)
        carried = sorted(e for e in epcs if e not in held)
        with core.book.commit([v], [(v, "companion_carried", {"epcs": carried,
                                                              "excluded": sorted(epcs & held)})]):
            for e in carried:
                v.basket.items[e] = CARRIED_BY_COMPANION
                v.basket.taken.setdefault(e, ev.t)
            if "companion_carried_unread" in v.flags:
                v.flags.remove("companion_carried_unread")
        core.attribution.settled(carried)

    def finish(self, v: Visit, t: float, flag: str | None) -> None:
        """The shopper is out: receipt stored, the visit closed, templates destroyed."""
        core = self.core
        lines = core.checkout.priced(v)[0]  # (what was charged: expired and off-sale items are not)
        st = core.outbox.visit_state(v.id)
        receipt = {"visit": v.id, "account": v.account, "lines": lines,
                   "total_fen": sum(li["amount_fen"] for li in lines),
                   "charge": {"state": st["state"], "charge_id": st["charge_id"]} if st else None}
        if v.group > 1:  # who paid for whom
            receipt["group"] = {"people": v.group, "paid_by": v.account, "passages": v.passages,
                                "left_first": v.members_out}
        with core.book.commit([v], [(v, "door_cycle", {"door": core.lay.exit_door, "opened": t}),
                                    (v, "receipt", receipt)]):
            if flag:
                v.flag(flag)
            if not v.machine.fire("exit_door_cycle"):
                v.machine.fire("walked_out")
            v.left_at = t
            v.receipt = receipt
        core.telemetry.count("left")
        core.attribution.carried_out(v, t)
        core.face_billing.forget(v)

    def tick_visit(self, v: Visit, now: float) -> bool:
        s = self.core.settings
        if v.leaving and v.exit_granted_at is None and v.exit_deadline and now >= v.exit_deadline:
            self.grant(v, "exit_without_answer")  # the charge is safe in the outbox: nobody waits for the network
            return True
        if v.leaving and v.exit_granted_at is not None and now - v.exit_granted_at > s.exit_unseen_close_s:
            self.finish(v, now, "exit_not_seen")  # the door cycle was missed (or they left through the entrance)
            return True
        return False

    def fail_open(self, v: Visit, stage: str, error: BaseException | None = None) -> None:
        """Something failed after ``v`` was identified: open the exit anyway, record what failed, raise an alarm.
        The record (the visit flagged, the alarm) is committed before the door opens, in one transaction, so a crash
        in between cannot lose it; if the journal itself is what fails, the door opens all the same."""
        core = self.core
        core.telemetry.count("fail_open")
        log.error("checkout of %s failed at %s (%r): opening the exit", v.id, stage, error, exc_info=error)
        if v.state in IN_STORE or v.state in UNSEEN_ENTRY:
            v.machine.set(S.at_exit)
        v.flag("checkout_failed")
        first_grant = v.exit_granted_at is None
        v.exit_granted_at = v.exit_granted_at or core.clock()  # (in memory whatever the journal does)
        alarm: dict[str, Any] = {"visit": v.id, "account": v.account, "stage": stage, "error": repr(error),
                                 "basket": sorted(v.basket.items)}
        try:
            with core.book.commit([v], [(v, "checkout_failed", {"stage": stage, "error": repr(error)})]) as tx:
                tx.alarm("checkout_failed", core.lay.exit_door, alarm)
            core.telemetry.count("alarms")
            log.warning("alarm checkout_failed on %s: %s", core.lay.exit_door, alarm)
        except Exception as e:
            log.error("visit %s not saved after the failure (%s): the alarm stays in memory", v.id, e)
            core.alarm("checkout_failed", core.lay.exit_door, alarm)
        if first_grant:
            try:
                self.unlock(v, "fail_open")
            except Exception as e:
                log.error("exit door grant for %s failed too: %s", v.id, e)
