"""Admission: an entry code in the entry camera's frame → the offline check → the visit (its row, the code used
up and the evidence in one commit) → the entrance unlocked. A consenting shopper's face is enrolled afterwards,
off this path."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from ..domain import tokens
from ..domain.visit import UNSEEN_ENTRY, VisitMachine
from ..journal import Journal
from .events import CodeSeen, ConsentWithdrawn, Enrolled
from .visits import Visit

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)


class CodeUsed(Exception):
    """The code was used up between its check and its commit."""


REFUSALS_PER_MINUTE = 30  # evidence rows per reason; past it refusals are counted, not each written (a flood of
# distinct bad codes held to the camera would otherwise be an fsync'd row each, and fill the disk)


def refuse(core: StoreCore, reason: str, detail: str, account: str | None = None) -> None:
    core.counts["refused"] += 1
    now = core.clock()
    window = core.refusals.setdefault(reason, {"start": now, "written": 0, "suppressed": 0})
    if now - window["start"] >= 60:
        if window["suppressed"]:
            core.journal.evidence(None, "code_refused_suppressed", {"reason": reason, "count": window["suppressed"],
                                                                    "since": window["start"]})
        window.update(start=now, written=0, suppressed=0)
    if window["written"] >= REFUSALS_PER_MINUTE:
        window["suppressed"] += 1
        return
    window["written"] += 1
    log.warning("entry refused: %s %s", reason, detail)
    core.journal.evidence(None, "code_refused", {"reason": reason, "detail": detail, "account": account})
    if reason == "clock_behind" and window["written"] == 1:  # once a minute at most
        core.alarm("clock_behind", None, {"detail": detail})


def entry_code(core: StoreCore, ev: CodeSeen) -> None:
    stages = {**ev.stages, "captured": ev.frame_t}
    if not core.store.admits:
        refuse(core, "store_not_admitting", core.store.state)
        return
    if not core.open_now():
        refuse(core, "store_closed", "outside the opening hours")  # the code stays unused
        return
    if core.disk_low:  # a visit needs rows; the disk's reserve is for the exits of those inside
        refuse(core, "disk_low", f"the journal's disk has {core.free_mb} MiB free")
        return
    r = core.exit_reader
    if r is not None and not r.online() and core.book.inside():
        # with several inside, only the exit reader can tell who carries what: one shopper at a time until it is back
        refuse(core, "exit_reader_down", "one shopper at a time while the exit reader is offline")
        return
    d = core.gate.check(ev.text, core.lay.entry_door)
    if not d.ok or d.claims is None:
        refuse(core, d.reason or "refused", d.detail, getattr(d.claims, "account", None))
        return
    c = d.claims
    stages["verified"] = core.clock()
    earlier = core.book.of_account(c.account)
    replaced = None
    if earlier is not None:
        if _not_really_inside(earlier):
            replaced = earlier  # they are at the entrance again: the earlier grant was never used
        else:
            refuse(core, "already_inside", "one open visit per account", c.account)
            return
    now = core.clock()
    vid = "v_" + uuid.UUID(int=core.rng.getrandbits(128), version=4).hex[:16]
    v = Visit(vid, c.account, c.face_consent, VisitMachine(vid), now, stages=stages, code=c.jti)
    evidence = [(v, "code_accepted", {"jti": c.jti, "kid": c.kid, "face_consent": c.face_consent,
                                      "door": core.lay.entry_door})]
    touched = []
    if replaced is not None:
        touched.append(replaced)
        evidence.append((replaced, "replaced", {"by": v.id, "reason": "a new code at the entrance"}))
    try:
        with core.book.commit(touched, evidence, new=[v]) as tx:
            if replaced is not None:
                replaced.machine.fire("replaced")
                replaced.flag("replaced_at_entrance")
            if not Journal.remember_jti_in(tx.c, c.jti, c.exp, tx.now, keep_s=tokens.CLOCK_SKEW_S):
                raise CodeUsed(c.jti)
    except CodeUsed:
        refuse(core, "replayed", "this code was used already", c.account)
        return
    v.stages["committed"] = core.clock()
    v.stages["granted"] = core.clock()
    core.awaiting_ack[v.id] = ("entry", v.stages)
    core.doors[core.lay.entry_door].grant(tag=v.id)
    core.counts["entries"] += 1
    if replaced is not None:
        core.counts["abandoned"] += 1
        forget_face(core, replaced)
    if c.face_consent and core.faces is not None and core.cfg.vision.faces:
        core.faces.enrol(v.id)


def _not_really_inside(v: Visit) -> bool:
    """An open visit of an account now showing a code at the entrance: let in but never seen coming in (or presumed
    inside across a restart) and nothing in its basket — the shopper is evidently outside."""
    return v.state in UNSEEN_ENTRY or ("entry_not_seen" in v.flags and v.inside and not v.basket.items)


def on_enrolled(core: StoreCore, ev: Enrolled) -> None:
    v = core.book.get(ev.visit_id)
    if v is None:
        return
    r = ev.result
    with core.book.commit([v], [(v, "face_enrolment", {k: r.get(k) for k in ("ok", "reason", "templates", "face_px",
                                                                             "sharpness", "frames")})]):
        v.enrolled = bool(r.get("ok"))
        if r.get("reason") == "several_faces":
            v.flag("tailgating")
            v.alone = False
    if v.enrolled and not v.face_consent:  # consent withdrawn while the templates were being made
        forget_face(core, v)
    if r.get("reason") == "several_faces":  # two people on one code: the second is a stranger inside
        core.alarm("tailgating", core.lay.entry_door, {"visit": v.id})
        core.stranger_inside(core.clock(), "tailgating", v)
    publish_candidates(core)


def publish_candidates(core: StoreCore) -> None:
    """Tell the exit matcher whom it may recognise: the enrolled shoppers inside."""
    if core.faces is not None:
        core.faces.set_candidates([v.id for v in core.book if v.enrolled and v.inside])


def on_consent_withdrawn(core: StoreCore, ev: ConsentWithdrawn) -> None:
    """The shopper withdrew face-billing consent: their visit in progress forgets their face at once (they scan
    their code at the exit)."""
    for v in [v for v in core.book if v.account == ev.account and v.face_consent]:
        with core.book.commit([v], [(v, "face_consent_withdrawn", {"templates_dropped": v.enrolled})]):
            v.face_consent = False
        forget_face(core, v)


def forget_face(core: StoreCore, v: Visit) -> None:
    if core.faces is not None and v.enrolled:
        try:
            core.faces.forget(v.id)
        except Exception as e:  # a dead worker has lost every template anyway
            log.warning("could not forget the templates of %s: %s", v.id, e)
        v.enrolled = False
    publish_candidates(core)
