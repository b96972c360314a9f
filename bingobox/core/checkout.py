"""Checkout: a shopper identified at the exit (face, or a fresh code) → what they carry out → a durable charge
intent → the exit door opens on the gateway's answer (or after ``exit_charge_wait_s`` with the charge queued).

What they carry out is their basket (what left a shelf while they were alone inside) plus what the exit reader
read in the *window around their identification* (``domain.exit_window``; where it starts: ``Attribution``). Items
in another open visit's basket, or just carried out and charged, are never added. Every failure after the
identification still opens the exit (``ExitDoor.fail_open``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..domain import panel, review, tokens
from ..domain.cards import CardEntry
from ..domain.catalog import CARRIED_BY_COMPANION
from ..domain.visit import UNSEEN_ENTRY, S, VisitMachine
from .events import ChargeUpdate, CodeSeen, FaceDecided, InventoryReady
from .visits import CodeUsed, Evidence, Tx, Visit

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)
OPENS_EXIT = ("charge_succeeded", "charge_declined", "charge_failed")
COUNTED = {"charge_succeeded": "charged", "charge_declined": "declined", "charge_failed": "failed"}


class Checkout:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        core.on(FaceDecided, self.face)
        core.on(InventoryReady, self.inventory)
        core.on(ChargeUpdate, self.charge_update)
        core.on_code("exit", self.code)

    # identification --------------------------------------------------------------------------------------
    def face(self, ev: FaceDecided) -> None:
        core, d = self.core, ev.decision
        if d.reason != "matched":
            core.panels.prompt("exit", panel.face_prompt(d.reason))  # "please show your code"
        if d.reason == "matched":
            v = core.book.get(d.match)
            if v is not None and v.inside:
                how: dict[str, Any] = {"by": "face", "distance": d.distance, "margin": d.margin}
                if ev.undecided:  # why the door opened later than the first look at them
                    how |= {"undecided_looks": ev.undecided, "first_look": ev.first_look}
                self.identify(v, ev.frame_t, how, {**ev.stages, "captured": ev.frame_t})
            return
        v = core.book.get(d.nearest)
        if d.reason == "unsure_margin" and v is not None and v.machine.can("not_sure"):
            # probably them, but not sure enough to charge: they are asked to scan their code
            with core.book.commit([v], [(v, "face_unsure", {"distance": d.distance, "margin": d.margin,
                                                            "reason": d.reason})]):
                v.machine.fire("not_sure")

    def code(self, ev: CodeSeen) -> None:
        core = self.core
        stages = {**ev.stages, "captured": ev.frame_t}
        d = core.gate.check(ev.text, core.lay.exit_door)
        if d.claims is None or d.reason not in (None, "unpaid_charges", "store_offline_limit"):
            log.warning("exit code refused: %s %s", d.reason, d.detail)
            core.panels.say("exit", panel.refusal(d.reason or "refused"))
            return  # limits never apply to leaving; a forged or replayed code identifies nobody
        c = d.claims
        v = core.book.of_account(c.account)
        if v is not None and v.leaving:
            self._code_again(v, c, ev.frame_t)
        elif v is None:
            self.recovery(c, ev.frame_t, stages)
        else:
            core.telemetry.count("fallback_qr")
            self.identify(v, ev.frame_t, {"by": "qr", "jti": c.jti}, stages, claims=c)

    def card(self, entry: CardEntry, t: float) -> None:
        """A bound card tapped at the exit: identifies its account's visit, like an exit code (a card visit of a
        shopper without face billing leaves this way)."""
        core = self.core
        v = core.book.of_account(entry.account)
        if v is None or not (v.inside or v.leaving):
            core.panels.say("exit", panel.refusal("card_no_visit"))
            return
        if v.leaving:  # identified already: the exit opens again if it was opened before this tap
            if v.exit_granted_at is not None and v.exit_granted_at < t:
                core.exit_door.grant(v, "card_again")
            return
        core.telemetry.count("exit_card")
        self.identify(v, t, {"by": "card", "card": entry.card_id}, {"tapped": t})

    def _code_again(self, v: Visit, c: tokens.EntryClaims, frame_t: float) -> None:
        """A fresh code from someone already identified: the exit did not open for them (a restart relocked it, or
        it relocked before they went through). Open it again — unless it was opened after that frame was taken (they
        may be gone through it). Nothing new is charged."""
        try:
            with self.core.book.commit([v], [(v, "exit_code_again", {"jti": c.jti, "frame_t": frame_t})]) as tx:
                tx.use_code(c)
        except CodeUsed:
            return
        if v.exit_granted_at is not None and v.exit_granted_at < frame_t:
            self.core.exit_door.grant(v, "code_again")

    def identify(self, v: Visit, frame_t: float, how: dict[str, Any], stages: dict[str, float],
                 claims: tokens.EntryClaims | None = None, new: bool = False) -> None:
        """Identified at the exit (by face or code): charge now if the exit reader has looked, else once it has."""
        core = self.core
        now = core.clock()
        stages["handled"] = now
        start = core.attribution.exit_window_start(v, frame_t, core.settings.exit_window_s)
        evidence: Evidence = [(v, "identified", {**how, "frame_t": frame_t, "window_from": start})]
        if v.state in UNSEEN_ENTRY:  # they are at the exit, so they came in: the door cycle was missed
            evidence.append((v, "entry_cycle_not_seen", {}))

        def first(tx: Tx) -> None:
            if not new:
                v.machine.fire("identified")
                if "entry_cycle_not_seen" in [k for _, k, _ in evidence]:
                    v.alone = False  # what they took was not attributed to them: the exit reader decides
            v.identified_at = frame_t
            v.exit_from = start
            v.stages = stages
            if claims is not None:
                tx.use_code(claims)

        try:
            ready, epcs = self._window(start, frame_t)
            if ready:
                self.charge(v, epcs, evidence, first=first, new=new)
                self._checking(v)
                return
            with core.book.commit([] if new else [v], evidence, new=[v] if new else []) as tx:
                first(tx)
            v.exit_deadline = None
            v.inventory_deadline = now + core.settings.exit_inventory_timeout_s
            core.face_billing.publish_candidates()
            assert core.exit_reader is not None  # (not ready: there is a reader to wait for)
            core.exit_reader.when_ready(start, self._window_end(frame_t), core.settings.exit_min_rounds,
                                        lambda: core.post(InventoryReady(v.id)), core.settings.exit_inventory_timeout_s)
            self._checking(v)
        except CodeUsed:
            log.warning("an exit code of visit %s was used already", v.id)
        except Exception as e:
            if new and v.id not in core.book.visits:
                core.book.visits[v.id] = v  # a recovery visit whose row could not be written: kept in memory
            core.exit_door.fail_open(v, "identify", e)

    def _checking(self, v: Visit) -> None:
        """The exit's panel while the shopper waits for the inventory or the wallet (said after the decision's work,
        never before it; not once the exit has opened for them)."""
        if v.exit_granted_at is None:
            s = self.core.settings
            self.core.panels.say("exit", panel.PanelMessage("exit.checking", hold_s=s.exit_inventory_timeout_s
                                                            + s.exit_charge_wait_s + 2.0))

    def recovery(self, c: tokens.EntryClaims, frame_t: float, stages: dict[str, float]) -> None:
        """An exit code of an account with no open visit (a visit lost to a fault, or never recorded): a *recovery
        visit*, charged for what the exit reader saw around the scan, flagged for review. Without goods it only
        opens the exit (and says so in its record)."""
        core = self.core
        now = core.clock()
        vid = "v_" + uuid.UUID(int=core.rng.getrandbits(128), version=4).hex[:16]
        v = Visit(vid, c.account, False, VisitMachine(vid, initial=S.at_exit), now, alone=False,
                  flags=["recovery"], code=c.jti)
        log.warning("an exit code of an account with no open visit: recovery visit %s", vid)
        self.identify(v, frame_t, {"by": "qr", "recovery": True, "jti": c.jti}, stages, claims=c, new=True)

    def _window_end(self, frame_t: float) -> float:
        """The exit window holds the rounds up to the first that ended after this (``exit_settle_s`` past the frame:
        a camera that sees shoppers before their goods are read)."""
        return frame_t + self.core.settings.exit_settle_s

    def _window(self, start: float, frame_t: float) -> tuple[bool, set[str] | None]:
        """(ready, EPCs): ready with None when there is no exit reader to wait for (unconfigured or offline)."""
        r = self.core.exit_reader
        try:
            if r is None or not r.online():
                return True, None
            epcs = r.window(start, self._window_end(frame_t), self.core.settings.exit_min_rounds)
        except Exception:  # a failing reader is an absent one: the basket as attributed, flagged (never kept inside)
            log.exception("exit reader failed: charging what was attributed")
            return True, None
        return (epcs is not None), epcs

    def inventory(self, ev: InventoryReady) -> None:
        v = self.core.book.get(ev.visit_id)
        if v is None or v.state != S.at_exit:
            return
        _, epcs = self._window(v.exit_from or v.identified_at or 0.0, v.identified_at or 0.0)
        try:
            self.charge(v, epcs, [])
        except Exception as e:
            self.core.exit_door.fail_open(v, "inventory", e)

    # the charge ---------------------------------------------------------------------------------------------
    def charge(self, v: Visit, epcs: set[str] | None, evidence: Evidence, first: Callable[[Tx], None] | None = None,
               new: bool = False) -> None:
        """The basket (with what the exit reader read), a durable charge intent and the visit in ``charging``, in one
        commit; then the sender is woken. A zero basket opens the exit at once."""
        core = self.core
        att = core.attribution
        now = core.clock()
        evidence = list(evidence)
        added: list[str] = []
        not_seen: list[str] = []
        unverified = None
        if epcs is None:
            if core.exit_reader is not None and "exit_reader_unavailable" not in v.flags:
                evidence.append((v, "flag", {"flag": "exit_reader_unavailable"}))
            if core.exit_reader is not None and not att.certain(v):
                # nobody can tell what they carry beyond what was theirs with certainty: an operator must look
                unverified = {"visit": v.id, "account": v.account, "unattributed": sorted(att.pool),
                              "basket": sorted(v.basket.items), "blind_shelves": sorted(att.shelf_offline)}
        else:
            held = att.claimed_elsewhere(v)
            excluded = sorted(e for e in epcs if e in held)
            added = sorted(e for e in epcs - set(excluded) if e not in v.basket.items)
            # taken off a shelf while they were alone, but not carried through the exit area: put back where no
            # shelf reader saw it (or shielded). Not charged; the record says so.
            not_seen = sorted(e for e, how in v.basket.items.items() if e not in epcs and how != CARRIED_BY_COMPANION)
            evidence.append((v, "exit_inventory", {"epcs": sorted(epcs), "added": added, "excluded": excluded,
                                                   "not_carried_out": not_seen}))
        with core.book.commit([] if new else [v], evidence, new=[v] if new else []) as tx:
            if first is not None:
                first(tx)
            if epcs is None and core.exit_reader is not None:
                v.flag("exit_reader_unavailable")
            if unverified is not None:
                v.flag("review")
            for e in added:
                v.basket.add(e, "exit_reader", now)
            if epcs is not None:
                for e in not_seen:
                    v.basket.remove(e)
                if not_seen:
                    v.flag("attributed_not_seen")
            if "group_unwatched" in v.flags or "companion_carried_unread" in v.flags or (v.members_out and not_seen):
                # a companion may have walked out with goods nobody read (before the shopper, or while nobody
                # watched the exit): not charged beyond what is known, and an operator looks
                v.flag("group_goods_unsure")
                v.flag("review")
            total = self.charge_in(tx, v)
            v.machine.fire("charge")
            if "recovery" in v.flags and total:
                v.flag("review")
            if "stranger_inside" in v.flags and att.unknown_inside():
                # someone who came in without a code is still inside: they may be beside them at the exit
                v.flag("stranger_at_exit")
            why_free = "card_limit" if "card_limit" in v.flags else "nothing to pay"
            if not total:
                v.exit_granted_at = tx.now
                tx.add(v, "exit_unlocked", {"door": core.lay.exit_door, "why": why_free})
        att.settled(added)
        if unverified is not None:
            core.alarm("exit_unverified", core.lay.exit_door, unverified)
        v.stages["inventory"] = v.stages.get("inventory") or now
        v.stages["committed"] = core.clock()
        v.exit_deadline = now + core.settings.exit_charge_wait_s
        if "recovery" in v.flags and total:
            core.telemetry.count("recovery")
        core.face_billing.publish_candidates()
        if total:
            core.outbox.wake()
        else:
            core.telemetry.count("zero_baskets" if why_free == "nothing to pay" else "card_limit")
            core.exit_door.unlock(v, why_free)
        left = att.left_unidentified_between(v.identified_at or now, now)
        if left is not None and v.exit_granted_at is None:
            # the exit opened for nobody after they were seen and before we decided: they walked out then
            core.exit_door.finish(v, left, "left_before_decision")

    def charge_in(self, tx: Tx, v: Visit) -> int:
        """Receipt lines and the charge intent of ``v``'s basket inside ``tx``; returns what is charged now (fen:
        the total, or 0 for a card visit above its limit)."""
        core = self.core
        for e in v.basket.items:  # (priced now if nobody saw when it was taken; kept, so its receipt agrees)
            v.basket.taken.setdefault(e, tx.now)
        lines, unknown, expired, off = self.priced(v)
        if off:  # taken from a zone whose goods are off sale (its cold chain broke): not charged, listed
            v.flag("off_sale_taken")
            tx.add(v, "off_sale_taken", {"lines": off})
        if expired:  # of a batch past its date: off sale, not charged, listed (an alarm: the shelf has more)
            v.flag("expired_taken")
            tx.add(v, "expired_taken", {"items": expired})
            tx.alarm("expired_taken", None, {"visit": v.id, "items": expired[:20]})
        unchecked = core.cabinets.unchecked(v, {li["sku"] for li in lines})
        if unchecked and v.flag("restricted_unchecked"):  # (charged: they have it; an operator looks at the rest)
            tx.add(v, "restricted_unchecked", {"skus": unchecked})
            tx.alarm("restricted_taken", None, {"visit": v.id, "skus": unchecked})
        total = sum(int(li["amount_fen"]) for li in lines)
        v.amount_fen = total
        if unknown:
            tx.add(v, "unknown_items", {"epcs": unknown})
        tx.add(v, "basket", {"lines": lines, "total_fen": total, "items": dict(v.basket.items)})
        limit = core.cards.limit_fen()
        if "card_entry" in v.flags and total > limit:
            # a card can be cloned: a card visit above its limit is not charged until an operator has looked
            v.flag("card_limit")
            tx.add(v, "card_limit", {"total_fen": total, "limit_fen": limit})
            return 0
        if total:
            core.outbox.add_intent_in(tx.journal, v.id, v.account, total, lines, entry_jti=v.code)
        return total

    def priced(self, v: Visit) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]], list[dict[str, Any]]]:
        """``v``'s basket priced (each item at the moment it was taken): the lines charged, the EPCs the catalog
        does not know, the expired items and the lines of off-sale zones (neither charged)."""
        core = self.core
        lines, unknown, expired = v.basket.priced(core.catalog, core.clock())
        spoiled = core.cold_chain.off_sale_skus()
        off = [li for li in lines if li["sku"] in spoiled]
        return [li for li in lines if li["sku"] not in spoiled], unknown, expired, off

    def charge_update(self, ev: ChargeUpdate) -> None:
        core = self.core
        data = ev.data
        if ev.kind in COUNTED:
            core.telemetry.count(COUNTED[ev.kind])
        if ev.kind == "charge_failed":
            core.alarm("charge_failed", None, {"visit": data.get("visit_id"), "reason": data.get("reason"),
                                               "amount_fen": data.get("amount_fen")})
        v = core.book.get(data.get("visit_id"))
        if v is None:  # the shopper has left already (the exit opened after exit_charge_wait_s): the record says so
            core.journal.evidence(data.get("visit_id"), ev.kind, data)
            if ev.kind == "charge_failed" and data.get("visit_id"):
                core.journal.enqueue_review(data["visit_id"], [review.CAUSES["charge_failed"]])
            return
        if data.get("sent_at"):
            v.stages.update(sent=data["sent_at"], answered=data["answered_at"])
        opens = ev.kind in OPENS_EXIT and v.exit_granted_at is None and v.state in (S.charging, S.declined)
        try:
            with core.book.commit([v], [(v, ev.kind, data)]) as tx:
                if ev.kind == "charge_declined":
                    v.machine.fire("charge_declined")  # debt: the shopper still leaves
                elif ev.kind == "charge_failed":
                    v.flag("charge_failed")
                if opens:
                    v.exit_granted_at = tx.now
                    tx.add(v, "exit_unlocked", {"door": core.lay.exit_door, "why": ev.kind})
        except Exception as e:
            if v.leaving:
                core.exit_door.fail_open(v, "charge_answer", e)
            return
        if opens:
            core.exit_door.unlock(v, ev.kind)

    def tick_visit(self, v: Visit, now: float) -> bool:
        if v.state == S.at_exit and v.exit_granted_at is None and now >= (v.inventory_deadline or 0) + 1.0:
            self.charge(v, None, [(v, "exit_inventory_timeout", {})])  # the reader never answered: charge the basket
            return True
        return False
