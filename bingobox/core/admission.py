"""Admission: an entry code in the entry camera's frame → the offline check → the visit (its row, the code used
up and the evidence in one commit) → the entrance unlocked. A consenting shopper's face is enrolled afterwards,
off this path. A refusal is written as evidence (at most ``REFUSALS_PER_MINUTE`` rows per reason)."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from ..domain import panel
from ..domain.budget import MinuteBudget
from ..domain.cards import CardEntry, card_jti, pair_code_of
from ..domain.tokens import MAX_LIFETIME_S, EntryClaims
from ..domain.visit import UNSEEN_ENTRY, VisitMachine
from .events import CodeSeen
from .visits import CodeUsed, Evidence, Visit

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)
REFUSALS_PER_MINUTE = 30  # evidence rows per reason; past it refusals are counted, not each written (a flood of
# distinct bad codes held to the camera would otherwise be an fsync'd row each, and fill the disk)


class Admission:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        self.refusals: dict[str, MinuteBudget] = {}  # per reason: this minute's evidence rows
        core.on_code("entry", self.code)

    def refuse(self, reason: str, detail: str, account: str | None = None) -> None:
        core = self.core
        core.panels.say("entrance", panel.refusal(reason, core.panels.hours_today()))  # before the evidence's budget
        core.telemetry.count("refused")
        now = core.clock()
        budget = self.refusals.setdefault(reason, MinuteBudget(REFUSALS_PER_MINUTE))
        write, left_out = budget.take(now)
        if left_out is not None:
            core.journal.evidence(None, "code_refused_suppressed", {"reason": reason, "count": left_out[0],
                                                                    "since": left_out[1]})
        if not write:
            return
        log.warning("entry refused: %s %s", reason, detail)
        core.journal.evidence(None, "code_refused", {"reason": reason, "detail": detail, "account": account})
        if reason == "clock_behind" and budget.written == 1:  # once a minute at most
            core.alarm("clock_behind", None, {"detail": detail})

    def admits_now(self) -> bool:
        """Whether the store lets anyone in now (else the entrance is told why, and False)."""
        core = self.core
        if not core.store.admits:
            self.refuse("store_not_admitting", core.store.state)
            return False
        if not core.open_now():
            self.refuse("store_closed", "outside the opening hours")  # the code stays unused
            return False
        if core.health.disk_low:  # a visit needs rows; the disk's reserve is for the exits of those inside
            self.refuse("disk_low", f"the journal's disk has {core.health.free_mb} MiB free")
            return False
        r = core.exit_reader
        if r is not None and not r.online() and core.book.inside():
            # with several inside, only the exit reader can tell who carries what: one at a time until it is back
            self.refuse("exit_reader_down", "one shopper at a time while the exit reader is offline")
            return False
        return True

    def code(self, ev: CodeSeen) -> None:
        core = self.core
        stages = {**ev.stages, "captured": ev.frame_t}
        pairing = pair_code_of(ev.text)
        if pairing is not None:  # not an entry code: the shopper is about to tap a card to bind to their account
            core.cards.pairing_shown(pairing)
            return
        if not self.admits_now():
            return
        d = core.gate.check(ev.text, core.lay.entry_door)
        if d.reason == "replayed" and d.claims is not None and self.companion(d.claims, reuse=True):
            return
        if not d.ok or d.claims is None:
            self.refuse(d.reason or "refused", d.detail, getattr(d.claims, "account", None))
            return
        stages["verified"] = core.clock()
        self.admit(d.claims, stages)

    def card(self, entry: CardEntry, t: float) -> None:
        """A bound card tapped at the entrance: like a code of its account (the same refusals), without the code's
        one-time use — a card opens one visit at a time, and the visit is flagged ``card_entry`` (its charge is
        bounded)."""
        core = self.core
        if not self.admits_now():
            return
        now = core.clock()
        d = core.gate.check_account(entry.account)
        if not d.ok:
            self.refuse(d.reason or "refused", d.detail, entry.account)
            return
        lst = core.cards.list
        c = EntryClaims(entry.account, core.cfg.store.id, core.lay.entry_door, int(now), int(now) + 60,
                        card_jti(entry.card_id), entry.face_consent, lst.kid if lst else "", entry.name)
        self.admit(c, {"captured": t, "verified": now}, card=entry.card_id)

    def admit(self, c: EntryClaims, stages: dict[str, float], card: str | None = None) -> None:
        """A checked code (or card) of an account: a new visit, a companion of its group, or why not."""
        core = self.core
        if c.group > 1 + core.settings.max_companions:
            self.refuse("group_too_large", f"{c.group} people on one code; this store takes "
                        f"{1 + core.settings.max_companions}", c.account)
            return
        earlier = core.book.of_account(c.account)
        replaced = None
        if earlier is not None:
            if _not_really_inside(earlier):
                replaced = earlier  # they are at the entrance again: the earlier grant was never used
            elif self.companion(c, reuse=card is not None):
                return
            else:
                self.refuse("already_inside", "one open visit per account", c.account)
                return
        now = core.clock()
        vid = "v_" + uuid.UUID(int=core.rng.getrandbits(128), version=4).hex[:16]
        v = Visit(vid, c.account, c.face_consent, VisitMachine(vid), now, stages=stages, code=c.jti, group=c.group)
        evidence: Evidence = [(v, "code_accepted", {"jti": c.jti, "kid": c.kid, "face_consent": c.face_consent,
                                                    "door": core.lay.entry_door, "group": c.group,
                                                    **({"card": card} if card else {})})]
        touched = []
        if replaced is not None:
            touched.append(replaced)
            evidence.append((replaced, "replaced", {"by": v.id, "reason": "a new code at the entrance"}))
        try:
            with core.book.commit(touched, evidence, new=[v]) as tx:
                if replaced is not None:
                    replaced.machine.fire("replaced")
                    replaced.flag("replaced_at_entrance")
                if card is None:
                    tx.use_code(c)
                else:
                    v.flag("card_entry")  # (a card is used again and again: its visits are bounded instead)
        except CodeUsed:
            self.refuse("replayed", "this code was used already", c.account)
            return
        v.stages["committed"] = core.clock()
        v.stages["granted"] = core.clock()
        core.telemetry.await_ack(v.id, "entry", v.stages)
        core.panels.after_unlock("entrance", v.id, panel.welcome(c.name, c.group), refused=panel.door_stuck())
        core.doors[core.lay.entry_door].grant(tag=v.id)
        core.telemetry.count("entries")
        if replaced is not None:
            core.telemetry.count("abandoned")
            core.face_billing.forget(replaced)
        core.face_billing.enrol(v)


    def companion(self, c: EntryClaims, reuse: bool) -> bool:
        """The code of a group inside (again, or a fresh one of the same account; or its card) shown for the next
        companion: the entrance opens once more while the group has passages left and its time to come in lasts. True
        when this was such a code (granted, or told why not). ``reuse``: nothing to use up."""
        core = self.core
        v = core.book.of_account(c.account)
        if v is None or v.group <= 1 or not v.inside or (reuse and c.iat < v.created_at - MAX_LIFETIME_S):
            return False  # (a used code of this account issued before this visit: not the group's)
        now = core.clock()
        first = v.entered_at or v.created_at
        if v.passages >= v.group or now - first > core.settings.group_enter_within_s:
            self.refuse("group_complete", f"{v.passages} of {v.group} came in", c.account)
            return True
        if core.shopping.passage_open(v, now):
            return True  # the door is open for the next one already (the code is still in front of the camera)
        try:
            with core.book.commit([v], [(v, "companion_granted", {"passage": v.passages + 1, "of": v.group,
                                                                  "jti": c.jti})]) as tx:
                if not reuse:
                    tx.use_code(c)
        except CodeUsed:
            self.refuse("replayed", "this code was used already", c.account)
            return True
        v.passage_granted_at = now
        tag = f"{v.id}:{v.passages + 1}"
        core.panels.after_unlock("entrance", tag, panel.companion(v.group - v.passages), refused=panel.door_stuck())
        core.doors[core.lay.entry_door].grant(tag=tag)
        return True


def _not_really_inside(v: Visit) -> bool:
    """An open visit of an account now showing a code at the entrance: let in but never seen coming in (or presumed
    inside across a restart) and nothing in its basket — the shopper is evidently outside."""
    return v.state in UNSEEN_ENTRY or ("entry_not_seen" in v.flags and v.inside and not v.basket.items)
