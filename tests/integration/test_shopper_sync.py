"""The store's side of the shopper's rights against a real gateway process: visit records reported in order (and
only delayed by a gateway outage), disputes taken into the journal for the screen, data requests answered from the
journal (an export; an erasure only once nothing of theirs is open), withdrawn consents passed to the control loop."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time

import pytest

from bingobox.domain.catalog import Catalog, Product
from bingobox.journal import Journal
from bingobox.wallet import records
from bingobox.wallet.client import WalletClient
from bingobox.wallet.sync import ShopperSync
from tests.helpers import STORE_ID, STORE_SECRET, Gateway

pytestmark = pytest.mark.integration
COLA = "E2806894000050240001"
CATALOG = Catalog({COLA: Product("cola", "Cola", 350)})


def visit(journal: Journal, account: str, state: str = "left", items: dict | None = None,
          jti: str | None = None) -> str:
    """A visit in the journal as the store writes it; ``jti``: the code it came in by (issued by the gateway)."""
    vid = "v_" + secrets.token_hex(6)
    now = time.time()
    basket = items or {}
    lines = [{"sku": "cola", "name": "Cola", "qty": len(basket), "unit_fen": 350, "amount_fen": 350 * len(basket)}] \
        if basket else []
    with journal.tx() as c:
        Journal.save_visit_in(c, {"id": vid, "account_id": account, "state": state, "face_consent": 1, "alone": 1,
                                  "created_at": now, "updated_at": now, "entered_at": now, "left_at": None,
                                  "basket": json.dumps(basket), "amount_fen": 350 * len(basket), "receipt": None,
                                  "flags": "[]", "identified_at": None, "exit_granted_at": None}, new=True)
        Journal.evidence_in(c, vid, "code_accepted", {"jti": jti or "j-" + vid, "door": "entrance"}, now)
        Journal.evidence_in(c, vid, "identified", {"by": "face", "distance": 0.41, "margin": 0.12}, now)
        Journal.evidence_in(c, vid, "basket", {"lines": lines, "items": basket}, now)
        Journal.evidence_in(c, None, "code_refused", {"reason": "expired", "account": account}, now)
    return vid


@pytest.fixture
def rig(tmp_path):
    gw = Gateway(tmp_path)
    journal = Journal(tmp_path / "store.db")
    withdrawn: list[str] = []
    sync = ShopperSync(journal, WalletClient(gw.url, STORE_ID, STORE_SECRET), CATALOG, withdrawn.append,
                       inbox_every_s=0)
    yield gw, journal, sync, withdrawn
    journal.close()
    gw.stop()


def test_visit_records_reach_the_wallet_in_order_and_survive_an_outage(rig):
    gw, journal, sync, _ = rig
    acc = gw.account()["id"]
    v1 = visit(journal, acc, items={f"{COLA}0001": "shelf-1", f"{COLA}0002": "exit_reader"}, jti=gw.code(acc))
    assert sync.step(0) is True
    got = [json.loads(r["record"]) for r in _reports(gw, acc)]
    assert len(got) == 1 and got[0]["id"] == v1
    s = got[0]["summary"]
    assert s["identified"] == {"by": "face", "distance": 0.41, "margin": 0.12}
    assert s["lines"][0]["seen_by"] == {"shelf-1": 1, "exit_reader": 1}
    # the gateway goes down: nothing is lost, the next report waits, the order is kept
    gw.faults(outage=True)
    v2 = visit(journal, acc, jti=gw.code(acc))
    assert sync.step(1) is False  # an outage answers 503: the report is not marked sent
    assert journal.one("SELECT 1 FROM visit_reports WHERE visit_id=?", (v2,)) is None
    gw.faults(outage=False)
    assert sync.step(2) is True
    assert [json.loads(r["record"])["id"] for r in _reports(gw, acc)] == [v1, v2]
    assert sync.counts["report_errors"] >= 1 and sync.counts["reports"] == 2


def _reports(gw, account):
    con = sqlite3.connect(gw.db)
    con.row_factory = sqlite3.Row
    try:
        return con.execute("SELECT * FROM visit_reports WHERE account_id=? ORDER BY updated_at", (account,)).fetchall()
    finally:
        con.close()


def test_disputes_requests_and_withdrawn_consent_from_the_inbox(rig):
    gw, journal, sync, withdrawn = rig
    acc = gw.account()["id"]
    vid = visit(journal, acc, state="inside", jti=gw.code(acc))
    sync.step(0)
    con = sqlite3.connect(gw.db)  # a shopper asked for their data, asked for erasure, withdrew consent
    now = time.time()
    con.execute("INSERT INTO data_requests VALUES ('dr_e', ?, ?, 'export', ?, NULL, NULL)", (acc, STORE_ID, now))
    con.execute("INSERT INTO data_requests VALUES ('dr_x', ?, ?, 'erase', ?, NULL, NULL)", (acc, STORE_ID, now))
    con.execute("INSERT INTO account_events (account_id, t, kind, data) VALUES (?, ?, 'face_consent_withdrawn', "
                "'{}')", (acc, now))
    con.commit()
    assert sync.step(1) is True
    answers = {r[0]: (r[1], r[2]) for r in con.execute("SELECT id, answered_at, answer FROM data_requests")}
    export = json.loads(answers["dr_e"][1])
    assert export["visits"][0]["id"] == vid and export["visits"][0]["events"]
    assert export["refused_codes_and_other_evidence"][0]["data"]["reason"] == "expired"
    assert answers["dr_x"][0] is None  # their visit is open: the erasure waits
    assert withdrawn == [acc]
    sync.step(2)
    assert withdrawn == [acc]  # told once
    # they leave: the erasure is done at the next poll
    with journal.tx() as c:
        c.execute("UPDATE visits SET state='left', updated_at=? WHERE id=?", (time.time(), vid))
    assert sync.step(3) is True
    answer = json.loads(con.execute("SELECT answer FROM data_requests WHERE id='dr_x'").fetchone()[0])
    assert answer["erased"]["visit_evidence_rows"] == 4 - 1 and answer["erased"]["refused_codes"] == 1
    assert journal.one("SELECT count(*) FROM visit_events WHERE visit_id=?", (vid,))[0] == 0
    assert journal.one("SELECT amount_fen FROM visits WHERE id=?", (vid,)) is not None  # amounts kept
    assert journal.one("SELECT gone FROM visit_reports WHERE visit_id=?", (vid,))["gone"] == 1  # never sent again
    assert acc not in json.dumps([dict(r) for r in journal.all("SELECT data FROM visit_events")])
    con.close()


def test_an_open_dispute_is_kept_for_the_screen_and_closed_when_decided_elsewhere(rig):
    _, journal, sync, _ = rig
    records.sync_disputes(journal, [{"id": "dp_1", "visit_id": "v", "account_id": "a", "charge_id": "ch",
                                     "claimed_fen": 700, "lines": [], "note": "one can"}])
    assert [d["note"] for d in records.open_disputes(journal)] == ["one can"]
    records.sync_disputes(journal, [], complete=False)  # a page of the open ones: nothing is taken as closed
    assert [d["id"] for d in records.open_disputes(journal)] == ["dp_1"]
    sync.step(0)  # the gateway has no open dispute for this store
    assert records.open_disputes(journal) == [] and records.dispute(journal, "dp_1")["state"] == "closed"


def test_accepting_a_dispute_again_after_a_lost_answer_refunds_once(rig):
    """The refund's answer is lost (the connection drops after the gateway committed); the operator presses Accept
    again, with other words: the same refund is answered, the dispute is decided, the money went back once."""
    from bingobox.actions import ResolveDispute
    from bingobox.wallet.money import Money

    gw, journal, sync, _ = rig
    account = gw.account()
    acc = account["id"]
    ch = gw.signed("POST", "/v1/charges", {"account_id": acc, "amount_fen": 700, "currency": "CNY",
                                           "visit_id": "v1", "entry_jti": account["jti"], "items": []},
                   headers={"Idempotency-Key": "k-v1"}).json()
    con = sqlite3.connect(gw.db)
    con.execute("INSERT INTO disputes (id, account_id, store_id, visit_id, charge_id, lines, claimed_fen, note, "
                "state, created_at) VALUES ('dp_1', ?, ?, 'v1', ?, '[]', 700, 'one can', 'open', ?)",
                (acc, STORE_ID, ch["id"], time.time()))
    con.commit()
    assert sync.step(0)
    resolve = Money(WalletClient(gw.url, STORE_ID, STORE_SECRET), journal).resolve
    gw.faults(drop_rate=1.0)
    ok, detail = resolve("op", ResolveDispute(dispute_id="dp_1", decision="accept", reason="video checked"))
    assert ok is None, detail  # no answer: the operator cannot know
    gw.faults(drop_rate=0.0)
    ok, detail = resolve("op", ResolveDispute(dispute_id="dp_1", decision="accept", reason="yes, one can only"))
    assert ok is True, detail
    refunds = con.execute("SELECT amount_fen FROM refunds WHERE charge_id=?", (ch["id"],)).fetchall()
    assert refunds == [(700,)]
    assert con.execute("SELECT state, reason FROM disputes WHERE id='dp_1'").fetchone() == \
        ("accepted", "yes, one can only")
    con.close()


@pytest.mark.parametrize("items", [500, 3000])
def test_a_big_baskets_record_still_reaches_the_wallet(rig, items):
    """Hundreds of items (each in the basket, its event and the summary): the record is taken; thousands: the
    receipt goes without the raw events (they stay in the store), never refused for good."""
    gw, journal, sync, _ = rig
    acc = gw.account()["id"]
    vid = visit(journal, acc, items={f"{COLA}{i:04X}": "shelf-1" for i in range(items)}, jti=gw.code(acc))
    assert sync.step(0) is True
    assert journal.one("SELECT gone FROM visit_reports WHERE visit_id=?", (vid,))["gone"] == 0
    got = json.loads(_reports(gw, acc)[0]["record"])
    assert got["summary"]["lines"][0]["qty"] == items and len(got["summary"]["items"]) == items


def test_a_refused_signature_keeps_the_record_for_later(rig, tmp_path):
    """A 401 (the store's clock or secret wrong) is not "refused for good": the record is sent once it is mended."""
    gw, journal, _, _ = rig
    acc = gw.account()["id"]
    vid = visit(journal, acc, jti=gw.code(acc))
    wrong = ShopperSync(journal, WalletClient(gw.url, STORE_ID, "not-the-secret-" * 2), CATALOG, lambda a: None)
    assert wrong.step(0) is False
    assert journal.one("SELECT 1 FROM visit_reports WHERE visit_id=?", (vid,)) is None
    right = ShopperSync(journal, WalletClient(gw.url, STORE_ID, STORE_SECRET), CATALOG, lambda a: None)
    assert right.step(0) is True and [json.loads(r["record"])["id"] for r in _reports(gw, acc)] == [vid]


def test_an_export_scans_the_journal_off_the_control_loops_lock(rig, monkeypatch):
    """The whole-table scans of an export (refusals, alarms, the audit log) go to a reader connection of their own:
    nothing of them runs behind the journal's lock, which the control loop commits through."""
    _, journal, _, _ = rig
    visit(journal, "acc_1")
    seen: list[str] = []
    for name in ("all", "one"):
        real = getattr(journal, name)
        monkeypatch.setattr(journal, name, lambda sql, args=(), real=real: seen.append(sql) or real(sql, args))
    reader = journal.reader()
    got = records.account_data(journal, "acc_1", reader)
    reader.close()
    assert got["refused_codes_and_other_evidence"] and got["visits"][0]["account_id"] == "acc_1"
    assert seen and not [s for s in seen if "FROM audit" in s or "FROM alarms" in s or "visit_id IS NULL" in s]


def test_an_export_too_big_to_send_at_once_still_reaches_the_wallet(rig):
    """A shopper with many big visits: the answer fits the gateway's 4 MiB (the oldest evidence left out, counted)
    instead of being refused at every poll."""
    gw, journal, sync, _ = rig
    acc = gw.account()["id"]
    for _ in range(20):
        visit(journal, acc, items={f"{COLA}{i:04X}": "shelf-1" for i in range(3000)}, jti=gw.code(acc))
    con = sqlite3.connect(gw.db)
    con.execute("INSERT INTO data_requests VALUES ('dr_big', ?, ?, 'export', ?, NULL, NULL)", (acc, STORE_ID,
                                                                                                time.time()))
    con.commit()
    assert sync.step(0) is True
    answer = json.loads(con.execute("SELECT answer FROM data_requests WHERE id='dr_big'").fetchone()[0])
    assert len(answer["visits"]) == 20 and answer["evidence_rows_left_out"] > 0
    con.close()


def test_a_visit_at_the_exit_is_reported_when_it_ends_not_during_its_checkout(rig):
    gw, journal, sync, _ = rig
    acc = gw.account()["id"]
    vid = visit(journal, acc, state="charging", jti=gw.code(acc))
    assert sync.step(0) is True and _reports(gw, acc) == []  # nothing read or sent during the checkout
    with journal.tx() as c:
        c.execute("UPDATE visits SET state='left', updated_at=? WHERE id=?", (time.time(), vid))
    assert sync.step(1) is True and [r["state"] for r in _reports(gw, acc)] == ["left"]
