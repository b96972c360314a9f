"""The invariants a simulated run must keep, checked against the simulated ledger and the world's truth:

- lost: a shopper left through the exit with goods and has neither a successful charge nor a recorded debt;
- doubled: more than one successful charge for one shopper's visit;
- wrong_amount: the successful charge (or the debt) is not the price of what they carried out;
- wrong_person: a charge includes an item its shopper did not carry out (someone else's, or one on a shelf);
- charged_without_entry: someone who never came in was charged;
- stranded: a visit still open once the run has settled;
- kept_inside: someone had to press the exit button although the controller was running all the while;
- exit_granted_nobody: the exit was unlocked for nobody (the exit area empty, no fire, nobody pressing its button,
  the door shut);
- door_left_unlocked: a door's relay unlocked once the run has settled;
- charge_unbound: the store sent a charge that did not name the code of its visit (the gateway refuses it);
- tailgater_unnoticed: someone came in without a code of their own (behind a shopper or a group) in a run the
  controller watched throughout (no restart, no fire), and no alarm said so.

Groups: a shopper's companions come in on their code; everything the group carries out is owed by the shopper (a
companion who leaves first carries it out in the shopper's name). A companion leaving first while anyone else is
inside cannot be told from anyone: the store flags the group's visit for review (``group_exit_unidentified``); so does
a checkout that cannot account for a companion's goods (``group_goods_unsure``: a restart with companions inside, a
companion's exit the reader's word on it was lost, goods not seen at the shopper's exit after a companion left).
What they carried, if unbilled, is counted as ``unbilled_for_review`` — as are a companion's goods carried out
through an exit the store raised ``exit_unidentified`` for (a group that came in unseen, say through doors a fire
released, has no visit to flag).

Fleeing a fire and tailgating (in without a code, out by the button) leave unbilled goods by design: alarms, not
violations. So does a shopper who leaves while the exit reader is unplugged with goods nobody could attribute, or
whose checkout failed (the charge intent could not be written): the store must let them out, flag the visit and
raise an alarm (then it is counted as ``unbilled_for_review``; without the flag it is ``lost``).
"""

from __future__ import annotations

import collections
import json
import sqlite3
from pathlib import Path

from bingobox.domain.visit import FINAL

from .world import World


def check(world: World, journal_path: Path, excused: list[dict] | None = None) -> list[dict]:
    """The violations of the invariants; ``excused`` (if given) receives the losses a device fault forced and the
    store flagged for review (they are counted, not violations)."""
    with sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True) as c:
        c.row_factory = sqlite3.Row
        visits = [dict(r) for r in c.execute("SELECT * FROM visits")]
        intents = [dict(r) for r in c.execute("SELECT * FROM charge_intents ORDER BY id")]
    out: list[dict] = []

    def bad(kind: str, **detail) -> None:
        out.append({"kind": kind, **detail})

    succeeded = world.gateway.succeeded()
    by_account = collections.defaultdict(list)
    for ch in succeeded:
        by_account[ch.account].append(ch)
    debts = collections.defaultdict(list)  # a visit's debt once: its newest intent, if declined (a debt retried
    newest = {it["visit_id"]: it for it in intents}  # hourly leaves a declined intent for every try)
    for it in newest.values():
        if it["state"] == "declined":
            debts[it["account_id"]].append(it)
    reviewed = {v["account_id"]: ("review" in json.loads(v["flags"]) and (
        "exit_reader_unavailable" in json.loads(v["flags"]) or "group_exit_unidentified" in json.loads(v["flags"])
        or "group_goods_unsure" in json.loads(v["flags"])))
        or "checkout_failed" in json.loads(v["flags"]) for v in visits}
    excused = excused if excused is not None else []
    with sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True) as c:
        said = [r[0] for r in c.execute("SELECT t FROM alarms WHERE kind='exit_unidentified'")]

    def companions_said(s) -> int:
        """What companions of ``s`` carried out through exits the store said it could not identify (alarmed: an
        operator looks) — unbilled by design, like a tailgater's goods."""
        return sum(world.price(e) for t, items in s.companion_exits for e in items
                   if any(abs(t - a) < 2.0 for a in said))
    owner = {}
    for s in world.shoppers:
        for e in s.carried_out:
            owner[e] = s
    for s in world.shoppers:
        paid = by_account.get(s.account, [])
        if s.tailgater:
            continue
        if not s.entered and paid:
            bad("charged_without_entry", shopper=s.n, charges=[c.id for c in paid])
            continue
        owed = world.owed(s)
        unsaid = owed - companions_said(s)  # owed beyond what left through an exit the store said it did not know
        per_visit = collections.Counter(c.visit for c in paid)
        if any(n > 1 for n in per_visit.values()) or len(paid) > 1:
            bad("doubled", shopper=s.n, charges=[(c.id, c.amount_fen) for c in paid])
        total_paid = sum(c.amount_fen for c in paid)
        debt = sum(d["amount_fen"] for d in debts.get(s.account, [])) if not paid else 0
        if s.left_how == "fire":
            if total_paid > owed:
                bad("wrong_amount", shopper=s.n, owed=owed, paid=total_paid, how="fire")
            continue
        if unsaid < owed and (total_paid or debt) == unsaid:  # all but what the store said it could not see
            excused.append({"kind": "unbilled_for_review", "shopper": s.n, "owed": owed, "paid": total_paid or debt,
                            "companion_exit_alarmed": owed - unsaid})
        elif owed and not paid and not debt:
            if reviewed.get(s.account):  # a device fault hid what they carried; flagged and alarmed for an operator
                excused.append({"kind": "unbilled_for_review", "shopper": s.n, "owed": owed})
            else:
                bad("lost", shopper=s.n, owed=owed, left=s.left_how)
        elif paid and total_paid < owed and reviewed.get(s.account):
            excused.append({"kind": "unbilled_for_review", "shopper": s.n, "owed": owed, "paid": total_paid})
        elif paid and total_paid != owed:
            bad("wrong_amount", shopper=s.n, owed=owed, paid=total_paid)
        elif debt and not paid and debt < owed and reviewed.get(s.account):  # declined, and flagged as above
            excused.append({"kind": "unbilled_for_review", "shopper": s.n, "owed": owed, "debt": debt})
        elif debt and not paid and debt != owed:
            bad("wrong_amount", shopper=s.n, owed=owed, debt=debt)
        if s.rex_while_up:
            bad("kept_inside", shopper=s.n, waited_s=round(s.waited_exit_s, 1))
    account_of_visit = {v["id"]: v["account_id"] for v in visits}
    basket_of = {v["id"]: json.loads(v["basket"]) for v in visits}
    charged_visits = {c.visit for c in succeeded} | {it["visit_id"] for it in intents if it["state"] == "declined"}
    shopper_of = {s.account: s for s in world.shoppers}
    for vid in charged_visits:
        payer = shopper_of.get(account_of_visit.get(vid, ""))
        for epc in basket_of.get(vid, {}):
            if payer is None or epc not in payer.carried_out:
                who = owner.get(epc)
                bad("wrong_person", visit=vid, epc=epc, charged_to=payer.n if payer else None,
                    carried_by=(who.n if who else None), tailgater=bool(who and who.tailgater))
    for v in visits:
        if v["state"] not in FINAL:
            bad("stranded", visit=v["id"], state=v["state"])
    for t in world.exit_grants_nobody:
        bad("exit_granted_nobody", t=round(t - world.start, 2))
    for name, d in world.doors.items():
        if d.relay_unlocked:
            bad("door_left_unlocked", door=name)
    if world.gateway.counts["unbound"]:
        bad("charge_unbound", charges=world.gateway.counts["unbound"])
    with sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True) as c:
        noticed = c.execute("SELECT count(*) FROM alarms WHERE kind IN ('tailgating', 'door_forced')").fetchone()[0]
    came_in = [s for s in world.shoppers if s.tailgater and s.entered]
    watched = not world.down_spans and not world.had_fire  # (a restart or a fire: nobody is counted, by design)
    if watched and len(came_in) > noticed:
        bad("tailgater_unnoticed", tailgaters=[s.n for s in came_in], alarms=noticed)
    return out


def reviews(journal_path: Path) -> dict:
    """The review queue a run left: visits that ended, visits that entered the queue, their causes."""
    with sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True) as c:
        ended = c.execute("SELECT count(*) FROM visits WHERE state IN ('left', 'abandoned', 'timed_out')").fetchone()[0]
        causes = [json.loads(r[0]) for r in c.execute("SELECT causes FROM reviews")]
    by_cause = collections.Counter(x for cs in causes for x in cs)
    return {"visits": ended, "reviews": len(causes), "by_cause": dict(sorted(by_cause.items()))}
