"""The deterministic simulation of the store core: a bounded campaign (every commit of a visit's life a crash point)
finds no violation, replays exactly, and — a checker that cannot fail is no checker — finds the bugs it exists
for when their fixes are taken out again: the visit lost across a restart (the seed-7 bug of the demo) and the
shopper trapped at the exit by an exception."""

import logging

import pytest

from bingobox.core import restore
from bingobox.core.checkout import Checkout
from bingobox.core.exit_door import ExitDoor
from bingobox.domain.visit import S
from bingobox_devkit.simcore import run
from bingobox_devkit.simcore.campaign import campaign


@pytest.fixture(autouse=True)
def quiet():
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


def test_a_bounded_campaign_finds_no_violation():
    out = campaign(runs=6, seed=1000, jobs=2)  # (the same runs in two processes: results do not depend on it)
    assert out["crash_points"] > 60 and out["plays"] == out["runs"] + out["crash_points"]
    assert out["violations"] == [], out["violations"][:5]


def test_a_bounded_campaign_with_groups_finds_no_violation():
    """Groups on: companions' passages, their takes billed to the shopper, some leaving first by the exit button;
    a crash after every commit of one visit's life, as without."""
    out = campaign(runs=8, seed=2000, groups=True, jobs=2)
    assert out["crash_points"] > 60 and out["groups"] is True
    assert out["violations"] == [], out["violations"][:5]
    plans = [run.Plan.draw(seed, 6, groups=True) for seed in range(2000, 2008)]
    assert sum(sp.get("group", 1) > 1 for p in plans for sp in p.shoppers) >= 3  # (the seeds do have groups)


def test_shoppers_seen_on_approach_are_charged_right_and_a_store_that_did_not_wait_for_their_goods_is_caught(
        monkeypatch):
    """``--exit-settle-s``: the exit camera sees shoppers as they step into the exit area with their goods, and the
    store waits that long past the frame for the exit reader to read them. A crash after every commit of a visit's
    life, as at the door. A store that did not wait charges what the reader had not read yet to nobody, or to the
    next shopper: the checker finds it (these seeds did, of 60 tried)."""
    out = campaign(runs=3, seed=900, exit_settle_s=0.6, jobs=2)
    assert out["crash_points"] > 20 and out["exit_settle_s"] == 0.6
    assert out["violations"] == [], out["violations"][:5]
    plan = run.replace(run.Plan.draw(905), exit_settle_s=0.6)
    assert plan.shoppers == run.Plan.draw(905).shoppers  # the same schedule as seen at the door
    seen_at_the_door = run.store_config
    monkeypatch.setattr(run, "store_config", lambda settle=0.0: seen_at_the_door(0.0))  # does not wait
    found = [v for seed in (905, 910, 942) for v in run.run_seed(seed, every_k=False, exit_settle_s=0.6)["violations"]]
    assert {v["kind"] for v in found} & {"wrong_amount", "lost"}, found


def test_an_exit_settle_the_store_would_refuse_is_a_clear_error(capsys):
    import argparse

    from bingobox_devkit.simcore.campaign import main

    args = argparse.Namespace(runs=1, seed=1, shoppers=1, no_crashes=True, jobs=1, json=True, exit_settle_s=9.0)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--exit-settle-s 9.0" in err and "Traceback" not in err


def test_batched_goods_are_charged_exactly_and_a_store_that_ignored_markdowns_would_be_caught(tmp_path,
                                                                                              monkeypatch):
    """Fresh, marked-down and expired lots on the shelves: the oracle prices each tag itself (goods.py); the store
    charges each exactly, never an expired one — and the oracle sees a store that charged the list price."""
    import json
    import sqlite3

    from bingobox.domain import catalog

    names, expired = set(), 0
    for seed in range(40, 52):
        played = run.play(run.Plan.draw(seed, 6, batches=True), None, tmp_path)
        assert played.violations == [], played.violations
        db = sqlite3.connect(tmp_path / f"journal-{seed}-None.db")
        names |= {li["name"] for (d,) in db.execute("SELECT data FROM visit_events WHERE kind='basket'")
                  for li in json.loads(d)["lines"]}
        expired += db.execute("SELECT count(*) FROM visit_events WHERE kind='expired_taken'").fetchone()[0]
        db.close()
    assert {"Onigiri tuna -40%", "Canned coffee -30%"} <= names and expired  # (the seeds do take them)

    def list_price(self, epc, t):
        got = real(self, epc, t)
        return got if got is None or got.expired else catalog.Price(got.product, got.product.price_fen)

    real = catalog.Catalog.price
    monkeypatch.setattr(catalog.Catalog, "price", list_price)
    wrong = [v for seed in range(40, 52)
             for v in run.play(run.Plan.draw(seed, 6, batches=True), None, tmp_path).violations]
    assert wrong and {v["kind"] for v in wrong} == {"wrong_amount"}


def test_a_group_schedule_is_the_same_schedule_with_companions():
    a, b = run.Plan.draw(2001), run.Plan.draw(2001, groups=True)
    strip = [{k: v for k, v in sp.items() if k not in ("group", "companion_first")} for sp in b.shoppers]
    assert a.shoppers == strip and a.faults == b.faults and a.tailgaters == b.tailgaters


def test_the_checker_finds_a_tailgater_the_store_did_not_notice(tmp_path, monkeypatch):
    """A group's companions are expected faces; one face more than the group is a stranger. Without that rule (every
    face of a group taken as expected), a tailgater behind a group walks in unnoticed."""
    from bingobox.core import face_billing

    plan = run.Plan(seed=5, shoppers=[{"n": 0, "arrive": 1.0, "face": True, "balance_fen": 10_000, "takes": 1,
                                       "put_back": False, "tailgated": True, "group": 2}],
                    tailgaters=[{"host": 0, "forced": False, "takes": 1}], faults=[], lag_max=0.0, p_face_unsure=0.0,
                    fire=None)
    assert run.play(plan, None, tmp_path).violations == []
    real = face_billing.FaceBilling.enrolled

    def lenient(self, ev):
        r = dict(ev.result)
        if r.get("reason") == "several_faces":
            r["faces"] = 1  # every face taken as one of the group's
        return real(self, type(ev)(ev.visit_id, r))

    monkeypatch.setattr(face_billing.FaceBilling, "enrolled", lenient)
    assert "tailgater_unnoticed" in [v["kind"] for v in run.play(plan, None, tmp_path).violations]


def test_a_play_replays_exactly(tmp_path):
    plan = run.Plan.draw(7)
    a, b = run.play(plan, 5, tmp_path), run.play(plan, 5, tmp_path)
    assert (a.commits, a.violations, a.sim_s, a.stats) == (b.commits, b.violations, b.sim_s, b.stats)


def _old_reconcile(core):
    """The restore before the fix: rows back as they were saved (a visit let in but not seen coming in stays
    'door_unlocked', so the tick abandons it), nothing presumed."""
    for v in core.book.restore():
        if v.state in (S.charging, S.declined) and v.exit_granted_at is None:
            v.exit_deadline = core.clock() + core.settings.exit_charge_wait_s


def _old_recovery(self, claims, frame_t, stages):
    """Before the fix: an exit code of an account with no open visit just opened the exit."""
    self.core.doors[self.core.lay.exit_door].grant()


def test_the_checker_finds_the_visit_lost_across_a_restart_without_the_fix(monkeypatch):
    monkeypatch.setattr(restore, "reconcile", _old_reconcile)
    monkeypatch.setattr(Checkout, "recovery", _old_recovery)
    found = []
    for seed in range(1, 6):
        found += run.run_seed(seed)["violations"]
    assert any(v["kind"] == "lost" for v in found), found[:5]


def _old_fail_open(self, v, stage, error=None):
    """Before the fix: an exception after identification was logged, and nobody opened the exit."""
    self.core.telemetry.count("fail_open")


def test_the_checker_finds_the_trapped_exit_without_the_fix(tmp_path, monkeypatch):
    plan = run.Plan(seed=3, shoppers=[{"n": 0, "arrive": 1.0, "face": False, "balance_fen": 10_000, "takes": 2,
                                       "put_back": False, "tailgated": False}],
                    tailgaters=[], faults=[(0.0, "outbox_error", {"for": 600.0})], lag_max=0.0, p_face_unsure=0.0,
                    fire=None)
    fixed = run.play(plan, None, tmp_path)
    assert fixed.violations == [] and fixed.stats["excused"]  # out, unbilled, flagged for review
    monkeypatch.setattr(ExitDoor, "fail_open", _old_fail_open)
    broken = run.play(plan, None, tmp_path)
    kinds = {v["kind"] for v in broken.violations}
    assert "kept_inside" in kinds, broken.violations


def test_cases_a_3000_run_campaign_found(tmp_path):
    # seed 9030, crash after commit 35: restarted just before a shopper reached the exit, the window held 5 rounds
    # of the exit reader and one item was missed in all five (10 % a round): 8 rounds make that 1 in 10^8
    assert run.play(run.Plan.draw(9030), 35, tmp_path).violations == []
    # seeds 9538/9560: a shopper leaves while the exit reader is unplugged and their charge is declined: the debt is
    # what was attributed, flagged for review with an alarm (as for a paid charge): excused, not "wrong amount"
    played = run.play(run.Plan.draw(9538), None, tmp_path)
    assert played.violations == [] and [e["kind"] for e in played.stats["excused"]] == ["unbilled_for_review"]
    # seed 22079 (the next campaign): a shelf reader unplugged while a lone shopper took two of four items, the exit
    # reader down when they left: only what was seen was charged, unflagged. Now the visit is flagged for review
    # (a shelf that could not see makes nobody's basket certain), and the simulated shelf says it was unplugged
    played = run.play(run.Plan.draw(22079), None, tmp_path)
    assert played.violations == [] and [e["kind"] for e in played.stats["excused"]] == ["unbilled_for_review"]
    # seed 30104, crash after commit 7 (the campaign from seed 30000): restarted with no open visit while a fire
    # released the doors; two shoppers walked in unseen, one took four items that the shelf events gave to the next
    # shopper (alone, it seemed) and left by a recovery visit that excluded them as "held": lost. A restart now
    # presumes a stranger whether or not visits were open
    assert run.play(run.Plan.draw(30104), 7, tmp_path).violations == []


def test_cases_the_campaign_from_seed_40000_found(tmp_path):
    # seed 42572 (no crash): a shopper walked in through doors a fire had released, a second one left by the button
    # during the fire, which ended the presumed stranger; the next shopper was "alone" and got the first one's
    # take; the first one's recovery visit excluded it as held: wrong amount. A fire (or a restart) now presumes
    # any number of people inside until max_inside_s, whoever leaves unidentified
    assert run.play(run.Plan.draw(42572), None, tmp_path).violations == []
    # seed 42104, crashes 54-62: a disk fault while the outbox's sender wrote a canceled charge's successor: the
    # step raised again every 50 ms for 7 s (the real sender spun the same way). Now a failing step backs off
    for crash in (54, 62):
        assert run.play(run.Plan.draw(42104), crash, tmp_path).violations == []


def test_a_door_left_open_through_a_fire_is_not_an_exit_granted_for_nobody(tmp_path):
    # seed 190021, crashes 37-39 (the campaign from seed 190000): the exit stood open after a fire when the controller
    # came back; its driver, as designed, keeps the relay of an open door unlocked until the door shuts. The checker
    # took that for an exit unlocked for nobody; an open door's relay lets nobody out who could not already go
    played = run.play(run.Plan.draw(190021), 37, tmp_path)
    assert played.violations == [] and played.crashed


def test_a_long_wallet_outage_admits_within_the_limits_refuses_past_them_and_drains_in_order():
    """The wallet gone for an hour of a busy afternoon (a shopper every 30 s), the store's default offline limits,
    the production sender's timing: entry stops at the limit with its reason, the exit and the charges go on, and
    when the wallet returns every queued charge lands once, in the order of the visits (the oracle: the money)."""
    from types import SimpleNamespace

    from bingobox_devkit.simcore import outage, run

    args = SimpleNamespace(seed=3, hours=2.5, every_s=30.0, start_h=0.5, outage_h=1.0, limits="default")
    plan = outage.draw(args.seed, args.hours, args.every_s, args.start_h, args.outage_h)
    wd = run.workdir()
    try:
        play = outage.OutagePlay(plan, wd, outage.LIMITS["default"], 1800, 5400, args.hours)
        got = outage.report(play, play.run(), args)
    finally:
        import shutil

        shutil.rmtree(wd, ignore_errors=True)
    assert got["violations"] == []
    during = got["shoppers"]["during"]
    assert during["came_in"] > 30 and during["refused"] > 0 and set(got["refused_by_reason"]) == {"store_offline_limit"}
    # the limit stops new entries, never anyone inside: those already in add their charges beyond it
    assert 50 <= got["offline"]["max_pending_count"] <= 60
    assert got["shoppers"]["after"]["refused"] == 0
    back = got["after_return"]
    assert back["charges_landed"] >= 40 and back["landed_after_s"]["max"] < 10 and back["out_of_visit_order"] <= 1
