"""Checkout: a shopper identified at the exit (face, or a fresh code) → what they carry out → a durable charge
intent → the exit door opens on the gateway's answer (or after ``exit_charge_wait_s`` with the charge queued).

What they carry out is their basket (what left a shelf while they were alone inside) plus what the exit reader
read in the *window around their identification*: rounds that ended after the window's start (the later of a few
seconds before the frame, the exit door last closing behind the previous shopper, their entry) up to the first
round after the frame. So a decision taken late never bills what the reader sees *now*. Items in another open
visit's basket, or just carried out and charged, are never added.

Nobody is ever kept inside by an error: every failure after identification still opens the exit, records what
failed and raises an alarm (``fail_open``).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from ..devices.events import DeviceEvent
from ..domain import tokens
from ..domain.visit import IN_STORE, UNSEEN_ENTRY, S, VisitMachine
from ..journal import Journal
from .admission import CodeUsed, forget_face, publish_candidates
from .events import ChargeUpdate, CodeSeen, FaceDecided, InventoryReady
from .visits import Evidence, Tx, Visit

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)
OPENS_EXIT = ("charge_succeeded", "charge_declined", "charge_failed")


# identification ----------------------------------------------------------------------------------------
def on_face(core: StoreCore, ev: FaceDecided) -> None:
    d = ev.decision
    if d.reason == "matched":
        v = core.book.get(d.match)
        if v is not None and v.inside:
            identify(core, v, ev.frame_t, {"by": "face", "distance": d.distance, "margin": d.margin},
                     {**ev.stages, "captured": ev.frame_t})
        return
    v = core.book.get(d.nearest)
    if d.reason == "unsure_margin" and v is not None and v.machine.can("not_sure"):
        # probably them, but not sure enough to charge: they are asked to scan their code
        with core.book.commit([v], [(v, "face_unsure", {"distance": d.distance, "margin": d.margin,
                                                        "reason": d.reason})]):
            v.machine.fire("not_sure")


def exit_code(core: StoreCore, ev: CodeSeen) -> None:
    stages = {**ev.stages, "captured": ev.frame_t}
    d = core.gate.check(ev.text, core.lay.exit_door)
    if d.claims is None or d.reason not in (None, "unpaid_charges", "store_offline_limit"):
        log.warning("exit code refused: %s %s", d.reason, d.detail)
        return  # limits never apply to leaving; a forged or replayed code identifies nobody
    c = d.claims
    v = core.book.of_account(c.account)
    if v is not None and v.leaving:
        _code_again(core, v, c, ev.frame_t)
    elif v is None:
        recovery(core, c, ev.frame_t, stages)
    else:
        core.counts["fallback_qr"] += 1
        identify(core, v, ev.frame_t, {"by": "qr", "jti": c.jti}, stages, claims=c)


def _code_again(core: StoreCore, v: Visit, c: tokens.EntryClaims, frame_t: float) -> None:
    """A fresh code from someone already identified: the exit did not open for them (a restart relocked it, or it
    relocked before they went through). Open it again — unless it was opened after that frame was taken (they may
    be gone through it). Nothing new is charged."""
    try:
        with core.book.commit([v], [(v, "exit_code_again", {"jti": c.jti, "frame_t": frame_t})]) as tx:
            _use_code(tx, c)
    except CodeUsed:
        return
    if v.exit_granted_at is not None and v.exit_granted_at < frame_t:
        grant_exit(core, v, "code_again")


def identify(core: StoreCore, v: Visit, frame_t: float, how: dict, stages: dict,
             claims: tokens.EntryClaims | None = None, new: bool = False) -> None:
    """Identified at the exit (by face or code): charge now if the exit reader has looked, else once it has."""
    now = core.clock()
    stages["handled"] = now
    start = max(frame_t - core.settings.exit_window_s, core.exit_closed_at, v.entered_at or v.created_at)
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
            _use_code(tx, claims)

    try:
        ready, epcs = _window(core, start, frame_t)
        if ready:
            charge(core, v, epcs, evidence, first=first, new=new)
            return
        with core.book.commit([] if new else [v], evidence, new=[v] if new else []) as tx:
            first(tx)
        v.exit_deadline = None
        v.inventory_deadline = now + core.settings.exit_inventory_timeout_s
        publish_candidates(core)
        core.exit_reader.when_ready(start, frame_t, core.settings.exit_min_rounds,
                                    lambda: core.post(InventoryReady(v.id)), core.settings.exit_inventory_timeout_s)
    except CodeUsed:
        log.warning("an exit code of visit %s was used already", v.id)
    except Exception as e:
        if new and v.id not in core.book.visits:
            core.book.visits[v.id] = v  # a recovery visit whose row could not be written: kept in memory
        fail_open(core, v, "identify", e)


def recovery(core: StoreCore, c: tokens.EntryClaims, frame_t: float, stages: dict) -> None:
    """An exit code of an account with no open visit (a visit lost to a fault, or never recorded): a *recovery
    visit*, charged for what the exit reader saw around the scan, flagged for review. Without goods it only opens
    the exit (and says so in its record)."""
    now = core.clock()
    vid = "v_" + uuid.UUID(int=core.rng.getrandbits(128), version=4).hex[:16]
    v = Visit(vid, c.account, False, VisitMachine(vid, initial=S.at_exit), now, alone=False,
              flags=["recovery"], code=c.jti)
    log.warning("an exit code of an account with no open visit: recovery visit %s", vid)
    identify(core, v, frame_t, {"by": "qr", "recovery": True, "jti": c.jti}, stages, claims=c, new=True)


def _use_code(tx: Tx, c: tokens.EntryClaims) -> None:
    if not Journal.remember_jti_in(tx.c, c.jti, c.exp, tx.now, keep_s=tokens.CLOCK_SKEW_S):
        raise CodeUsed(c.jti)


def _window(core: StoreCore, start: float, frame_t: float) -> tuple[bool, set[str] | None]:
    """(ready, EPCs): ready with None when there is no exit reader to wait for (unconfigured or offline)."""
    r = core.exit_reader
    try:
        if r is None or not r.online():
            return True, None
        epcs = r.window(start, frame_t, core.settings.exit_min_rounds)
    except Exception:  # a failing reader is an absent one: the basket as attributed, flagged (never kept inside)
        log.exception("exit reader failed: charging what was attributed")
        return True, None
    return (epcs is not None), epcs


def on_inventory(core: StoreCore, ev: InventoryReady) -> None:
    v = core.book.get(ev.visit_id)
    if v is None or v.state != S.at_exit:
        return
    _, epcs = _window(core, v.exit_from or v.identified_at or 0.0, v.identified_at or 0.0)
    try:
        charge(core, v, epcs, [])
    except Exception as e:
        fail_open(core, v, "inventory", e)


# the charge ---------------------------------------------------------------------------------------------
def charge(core: StoreCore, v: Visit, epcs: set[str] | None, evidence: Evidence, first=None,
           new: bool = False) -> None:
    """The basket (with what the exit reader read), a durable charge intent and the visit in ``charging``, in one
    commit; then the sender is woken. A zero basket opens the exit at once."""
    now = core.clock()
    evidence = list(evidence)
    added: list[str] = []
    unverified = None
    if epcs is None:
        if core.exit_reader is not None and "exit_reader_unavailable" not in v.flags:
            evidence.append((v, "flag", {"flag": "exit_reader_unavailable"}))
        if core.exit_reader is not None and (core.unattributed or not v.alone
                                             or core.shelves_blind_since(v.entered_at or v.created_at)):
            # nobody can tell what they carry beyond what was theirs with certainty: an operator must look
            unverified = {"visit": v.id, "account": v.account, "unattributed": sorted(core.unattributed),
                          "basket": sorted(v.basket.items), "blind_shelves": sorted(core.shelf_offline)}
    else:
        held = {e for o in core.book if o is not v for e in o.basket.items}
        excluded = sorted(e for e in epcs if e in held or e in core.recently_left)
        added = sorted(e for e in epcs - set(excluded) if e not in v.basket.items)
        # taken off a shelf while they were alone, but not carried through the exit area: put back where no shelf
        # reader saw it (or shielded). Not charged; the record says so.
        not_seen = sorted(e for e in v.basket.items if e not in epcs)
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
            v.basket.add(e, "exit_reader")
        if epcs is not None:
            for e in not_seen:
                v.basket.remove(e)
            if not_seen:
                v.flag("attributed_not_seen")
        total = charge_in(core, tx, v)
        v.machine.fire("charge")
        if "recovery" in v.flags and total:
            v.flag("review")
        if not total:
            v.exit_granted_at = tx.now
            tx.add(v, "exit_unlocked", {"door": core.lay.exit_door, "why": "nothing to pay"})
    for e in added:
        core.unattributed.pop(e, None)
    if unverified is not None:
        core.alarm("exit_unverified", core.lay.exit_door, unverified)
    v.stages["inventory"] = v.stages.get("inventory") or now
    v.stages["committed"] = core.clock()
    v.exit_deadline = now + core.settings.exit_charge_wait_s
    if "recovery" in v.flags and total:
        core.counts["recovery"] += 1
    publish_candidates(core)
    if total:
        core.outbox.wake()
    else:
        core.counts["zero_baskets"] += 1
        _door_grant(core, v)
    left_meanwhile = [t for t in core.exit_cycles_unidentified if (v.identified_at or now) < t <= now]
    if left_meanwhile and v.exit_granted_at is None:
        # the exit opened for nobody after they were seen and before we decided: they walked out then
        finish(core, v, left_meanwhile[0], "left_before_decision")


def charge_in(core: StoreCore, tx: Tx, v: Visit) -> int:
    """Receipt lines and the charge intent of ``v``'s basket inside ``tx``; returns the total (fen)."""
    lines, unknown = v.basket.lines(core.catalog)
    total = sum(li["amount_fen"] for li in lines)
    v.amount_fen = total
    if unknown:
        tx.add(v, "unknown_items", {"epcs": unknown})
    tx.add(v, "basket", {"lines": lines, "total_fen": total, "items": dict(v.basket.items)})
    if total:
        core.outbox.add_intent_in(tx.c, v.id, v.account, total, lines, entry_jti=v.code)
    return total


def on_charge(core: StoreCore, ev: ChargeUpdate) -> None:
    data = ev.data
    key = {"charge_succeeded": "charged", "charge_declined": "declined", "charge_failed": "failed"}.get(ev.kind)
    if key:
        core.counts[key] += 1
    if ev.kind == "charge_failed":
        core.alarm("charge_failed", None, {"visit": data.get("visit_id"), "reason": data.get("reason"),
                                           "amount_fen": data.get("amount_fen")})
    v = core.book.get(data.get("visit_id"))
    if v is None:  # the shopper has left already (the exit opened after exit_charge_wait_s): the record still says
        core.journal.evidence(data.get("visit_id"), ev.kind, data)
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
            fail_open(core, v, "charge_answer", e)
        return
    if opens:
        _door_grant(core, v)


# the exit door ----------------------------------------------------------------------------------------
def grant_exit(core: StoreCore, v: Visit, why: str) -> None:
    """Open the exit for ``v`` (the grant is committed first, so a restart knows not to open it again)."""
    try:
        with core.book.commit([v], [(v, "exit_unlocked", {"door": core.lay.exit_door, "why": why})]) as tx:
            v.exit_granted_at = tx.now
    except Exception as e:
        fail_open(core, v, "grant", e)
        return
    _door_grant(core, v)


def _door_grant(core: StoreCore, v: Visit) -> None:
    timed = "captured" in v.stages and "granted" not in v.stages  # the first grant of a timed identification
    if timed:
        v.stages["granted"] = core.clock()
        core.awaiting_ack[v.id] = ("exit", v.stages)
    core.doors[core.lay.exit_door].grant(tag=v.id if timed else None)


def exit_door(core: StoreCore, ev: DeviceEvent) -> None:
    if ev.kind == "door_closed":
        core.exit_closed_at = ev.t
        return
    if ev.kind != "door_opened":
        return
    leaving = [v for v in core.book if v.exit_granted_at is not None and v.leaving]
    if not leaving:
        core.exit_cycles_unidentified.append(ev.t)
        if core.strangers:
            core.strangers.pop(0)  # most likely the stranger, going out by the button
        present = [v.id for v in core.book if v.inside or v.leaving]
        if present:  # someone left unidentified (request-to-exit, or behind another shopper): say so, don't guess
            core.alarm("exit_unidentified", ev.device, {"inside": present})
        return
    for v in leaving:
        finish(core, v, ev.t, None)


def finish(core: StoreCore, v: Visit, t: float, flag: str | None) -> None:
    """The shopper is out: receipt stored, the visit closed, templates destroyed."""
    lines, _ = v.basket.lines(core.catalog)
    st = core.outbox.visit_state(v.id)
    receipt = {"visit": v.id, "account": v.account, "lines": lines, "total_fen": sum(li["amount_fen"] for li in lines),
               "charge": {"state": st["state"], "charge_id": st["charge_id"]} if st else None}
    with core.book.commit([v], [(v, "door_cycle", {"door": core.lay.exit_door, "opened": t}),
                                (v, "receipt", receipt)]):
        if flag:
            v.flag(flag)
        if not v.machine.fire("exit_door_cycle"):
            v.machine.fire("walked_out")
        v.left_at = t
        v.receipt = receipt
    core.counts["left"] += 1
    for epc in v.basket.items:
        core.recently_left[epc] = (v.id, t)
    forget_face(core, v)


def unlock_written(core: StoreCore, ev: DeviceEvent) -> None:
    """The door driver wrote (and the board acknowledged) an unlock we asked for: the path's last stages."""
    tag = ev.data.get("tag")
    path_stages = core.awaiting_ack.pop(tag, None) if tag else None
    if path_stages is None:
        return
    path, stages = path_stages
    stages.update(written=ev.data.get("written"), acked=ev.data.get("acked"))
    core.record_stages(path, stages)
    total = (stages["written"] or stages.get("granted", 0)) - stages["captured"]
    core.metrics[f"{path}_ms"].add(total * 1000)
    try:
        core.journal.evidence(tag, "stages", {"path": path, "latency_ms": round(total * 1000, 2),
                                              **{k: round(t, 4) for k, t in stages.items() if t is not None}})
    except Exception as e:
        log.warning("stage times of %s not recorded: %s", tag, e)


# never kept inside ------------------------------------------------------------------------------------
def fail_open(core: StoreCore, v: Visit, stage: str, error: BaseException | None = None) -> None:
    """Something failed after ``v`` was identified: open the exit anyway, record what failed, raise an alarm.
    The record (the visit flagged, the alarm) is committed before the door opens, in one transaction, so a crash
    in between cannot lose it; if the journal itself is what fails, the door opens all the same."""
    core.counts["fail_open"] += 1
    log.error("checkout of %s failed at %s (%r): opening the exit", v.id, stage, error, exc_info=error)
    if v.state in IN_STORE or v.state in UNSEEN_ENTRY:
        v.machine.set(S.at_exit)
    v.flag("checkout_failed")
    first_grant = v.exit_granted_at is None
    v.exit_granted_at = v.exit_granted_at or core.clock()  # (in memory whatever the journal does)
    alarm = {"visit": v.id, "account": v.account, "stage": stage, "error": repr(error),
             "basket": sorted(v.basket.items)}
    try:
        with core.book.commit([v], [(v, "checkout_failed", {"stage": stage, "error": repr(error)})]) as tx:
            Journal.alarm_in(tx.c, "checkout_failed", core.lay.exit_door, alarm, tx.now)
        core.counts["alarms"] += 1
        log.warning("alarm checkout_failed on %s: %s", core.lay.exit_door, alarm)
    except Exception as e:
        log.error("visit %s not saved after the failure (%s): the alarm stays in memory", v.id, e)
        core.alarm("checkout_failed", core.lay.exit_door, alarm)
    if first_grant:
        try:
            _door_grant(core, v)
        except Exception as e:
            log.error("exit door grant for %s failed too: %s", v.id, e)


# timeouts ---------------------------------------------------------------------------------------------
def tick_visit(core: StoreCore, v: Visit, now: float) -> None:
    s = core.settings
    if v.state in UNSEEN_ENTRY and now - v.created_at > s.enter_within_s:
        with core.book.commit([v], [(v, "abandoned", {"waited_s": s.enter_within_s})]):
            v.machine.fire("abandon")
        core.counts["abandoned"] += 1
        forget_face(core, v)
    elif v.inside and now - (v.entered_at or v.created_at) > s.max_inside_s:
        with core.book.commit([v], [(v, "flag", {"flag": "timed_out"})]) as tx:
            v.flag("timed_out")
            charge_in(core, tx, v)  # only what was attributed with certainty
            v.machine.fire("time_out")
        core.outbox.wake()
        core.counts["timed_out"] += 1
        forget_face(core, v)
    elif v.state == S.at_exit and v.exit_granted_at is None and now >= (v.inventory_deadline or 0) + 1.0:
        charge(core, v, None, [(v, "exit_inventory_timeout", {})])  # the reader never answered: charge the basket
    elif v.leaving and v.exit_granted_at is None and v.exit_deadline and now >= v.exit_deadline:
        grant_exit(core, v, "exit_without_answer")  # the charge is safe in the outbox: nobody waits for the network
    elif v.leaving and v.exit_granted_at is not None and now - v.exit_granted_at > s.exit_unseen_close_s:
        finish(core, v, now, "exit_not_seen")  # the door cycle was missed (or they left through the entrance)
