"""The fleet believes only what a store may say (second audit, H2 and M5): every message checked at the edge, one
bad message costs only itself, times bounded by reception, events keyed per store, stores known only by their own
status, a flooding store held to its own queue."""

import json
import sqlite3
import threading
import time

import pytest

from bingobox.fleet.db import VERSION, FleetDB
from bingobox.fleet.schema import Refused, parse
from bingobox.fleet.service import FairQueue
from bingobox.mqtt import messages as m

NOW = 1_800_000_000.0


def alarm(store: str, row: int, t: float = NOW, **data) -> tuple[str, str, bytes, float]:
    body = m.event_payload(store, "alarm", row, t, {"alarm_id": row, "alarm": "door_forced", "device": "e", **data})
    return (store, "event/alarm", m.dumps(body), NOW)


def online(store: str) -> tuple[str, str, bytes, float]:
    return (store, "status", b"online", NOW)


@pytest.fixture
def db(tmp_path):
    d = FleetDB(tmp_path / "fleet.db")
    yield d
    d.close()


def test_one_bad_message_among_good_alarms_costs_only_itself(db):
    """The audit's H2 batch: an event whose t is a string, one whose data is not an object, a state with
    open_alarms 1e30 — between good alarms of other stores, in one batch."""
    bad = [("evil", "event/alarm", json.dumps({"id": "evil:0:1", "t": "yesterday", "data": {}}).encode(), NOW),
           ("evil", "event/alarm", json.dumps({"id": "evil:0:2", "t": NOW, "data": [1, 2]}).encode(), NOW),
           ("evil", "state", json.dumps({"t": NOW, "open_alarms": 1e30}).encode(), NOW),
           ("evil", "state", b'{"t": 1e999}', NOW), ("evil", "metrics", b"\xff\xfe", NOW),
           ("evil", "event/alarm", json.dumps({"id": "evil:0:3", "t": NOW, "data": {"alarm_id": "x"}}).encode(), NOW)]
    batch = [online("a"), online("b"), online("evil"), alarm("a", 1), *bad, alarm("b", 1), alarm("a", 2)]
    got = db.apply(batch)
    assert got.applied == 6 and sorted(r for _, r in got.refused) == ["invalid"] * 6
    assert sorted((a["store_id"], a["alarm_id"]) for a in db.alarms()) == [("a", 1), ("a", 2), ("b", 1)]
    evil = next(s for s in db.stores() if s["id"] == "evil")
    assert evil["refused"] == 6 and "invalid" in evil["refused_last"]


def test_times_are_bounded_by_reception(db):
    """A state dated ten years ahead no longer freezes the store's row; an alarm from the future is not on top of
    the page for ever."""
    db.apply([online("s1"), ("s1", "state", m.dumps({"t": NOW + 10 * 365 * 86400, "state": "lockdown"}), NOW)])
    db.apply([("s1", "state", m.dumps({"t": NOW + 1, "state": "ready"}), NOW + 2)])
    assert db.store("s1")["state"]["state"] == "ready"
    got = db.apply([alarm("s1", 5, t=NOW + 86400)])
    assert got.clamped == 1 and db.alarms()[0]["t"] == NOW and db.alarms()[0]["late"]
    with pytest.raises(Refused, match="too_old"):
        parse("s1", "state", m.dumps({"t": NOW - 40 * 86400}), NOW)


def test_only_a_store_s_own_status_makes_it_known(db):
    """Phantom stores: Home Assistant's user may write bingobox/<any>/ha/lockdown/set; nothing but a status
    (which the ACL lets only the store itself write) creates a store."""
    got = db.apply([("ghost", "ha/lockdown/set", b"ON", NOW), ("ghost2", "state", m.dumps({"t": NOW}), NOW),
                    ("ghost3", "whatever/x", b"{}", NOW), ("../x", "status", b"online", NOW)])
    assert got.applied == 0 and db.stores() == []
    assert sorted(r for _, r in got.refused) == ["bad_store_id", "unknown_store", "unknown_topic", "unknown_topic"]


def test_event_ids_are_per_store(db):
    """Another store cannot claim (and so suppress) an event id: the key is (store, id)."""
    same = m.dumps({"id": "x:0:1", "t": NOW, "data": {"alarm_id": 1, "alarm": "door_forced"}})
    db.apply([online("s1"), online("s2"), ("s2", "event/alarm", same, NOW), ("s1", "event/alarm", same, NOW)])
    assert sorted(a["store_id"] for a in db.alarms()) == ["s1", "s2"]


def test_a_payload_naming_another_store_is_refused(db):
    got = db.apply([online("s1"), ("s1", "state", m.dumps({"store_id": "s2", "t": NOW}), NOW)])
    assert got.refused == [("s1", "store_mismatch")]


def test_a_flooding_store_fills_only_its_own_queue():
    q = FairQueue(per_store=100, max_bytes=10**6)
    assert all(q.put("flood", ("flood", "event/alarm", b"x" * 100, 0.0)) for _ in range(100))
    assert not q.put("flood", ("flood", "event/alarm", b"x", 0.0))  # its own queue is full …
    assert q.put("good", ("good", "event/alarm", b"y", 0.0))  # … the others' are not
    first = q.take(5, 0)
    assert "good" in [i[0] for i in first[:2]]  # and it gets its turn at once, not after the flood
    big = FairQueue(per_store=10**6, max_bytes=10_000)
    while big.put("flood", ("flood", "x", b"z" * 500, 0.0)):
        pass
    assert len(big) * 700 <= 10_000  # bounded in bytes too


def test_the_page_shows_every_store_s_alarms_however_many_one_store_raises(db):
    db.apply([online("flood"), online("quiet"), alarm("quiet", 1, t=NOW - 60),
              *[alarm("flood", i) for i in range(2, 500)]])
    page = db.alarms_page(50, per_store=3)
    assert ("quiet", 1) in [(a["store_id"], a["alarm_id"]) for a in page]
    assert next(a for a in page if a["store_id"] == "flood")["store_open"] == 498


def test_an_older_fleet_database_is_migrated(tmp_path):
    """A database of the first schema (events keyed by id alone) keeps its rows and gains the per-store key."""
    path = tmp_path / "old.db"
    c = sqlite3.connect(path)
    c.executescript("""
CREATE TABLE stores (id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, since FLOAT8 NOT NULL,
  last_seen FLOAT8 NOT NULL, state TEXT, state_t FLOAT8, metrics TEXT, open_alarms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE alarms (event_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, alarm_id INTEGER,
  kind TEXT NOT NULL, device TEXT, t FLOAT8 NOT NULL, data TEXT NOT NULL, received_at FLOAT8 NOT NULL,
  late INTEGER NOT NULL, cleared_at FLOAT8, cleared_by TEXT);
CREATE TABLE events (event_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, kind TEXT NOT NULL,
  t FLOAT8 NOT NULL, data TEXT NOT NULL, received_at FLOAT8 NOT NULL, late INTEGER NOT NULL);
INSERT INTO stores VALUES ('s1', 1, 1.0, 2.0, NULL, NULL, NULL, 0);
INSERT INTO alarms VALUES ('s1:0:1', 's1', 1, 'door_forced', 'e', 5.0, '{}', 5.0, 0, NULL, NULL);
""")
    c.commit()
    c.close()
    db = FleetDB(path)
    assert db.one("SELECT version FROM schema_version")["version"] == VERSION
    assert [a["event_id"] for a in db.alarms()] == ["s1:0:1"] and db.store("s1")["online"]
    db.apply([online("s2"), ("s2", "event/alarm", m.dumps({"id": "s1:0:1", "t": NOW, "data": {"alarm_id": 1}}),
                             NOW)])
    assert len(db.alarms()) == 2
    db.close()
    assert FleetDB(path).one("SELECT version FROM schema_version")["version"] == VERSION  # once


def test_the_fleet_writer_says_when_it_is_stuck(tmp_path):
    """What the fleet's watchdog pings depend on: a writer that runs and makes progress; one that is not running or
    has made none for a while is named."""
    from bingobox.fleet.service import CommandKeys, FleetService

    db = FleetDB(str(tmp_path / "fleet.db"))
    svc = FleetService("mqtt://127.0.0.1:1", db, CommandKeys(None, None))
    assert "not running" in (svc.stuck() or "")
    svc._writer.start()
    hung, take = threading.Event(), svc._q.take
    try:
        time.sleep(0.5)
        assert svc.stuck() is None
        svc._q.take = lambda limit, timeout: (hung.wait(), [])[1]  # a call that does not return (a hung db)
        time.sleep(1.0)
        assert "no progress for" in (svc.stuck(within_s=0.5) or "")
        assert svc.stuck(within_s=10) is None
    finally:
        hung.set()
        svc._q.take = take
        svc._writer.stop()
        db.close()


def test_a_store_s_state_carries_its_review_queue_and_rate_and_nothing_wrong_of_it_passes():
    view = {"t": NOW, "state": "ready", "reviews": {"open": 2, "review_rate": 0.04, "by_cause": {"tailgating": 1}}}
    payload = m.state_payload(view, "s1", 0)
    assert (payload["reviews_open"], payload["review_rate"], payload["review_causes"]) == (2, 0.04, {"tailgating": 1})
    got = parse("s1", "state", m.dumps(payload), NOW)
    assert got.body.reviews_open == 2 and got.body.review_causes == {"tailgating": 1}
    for bad in ({"reviews_open": -1}, {"review_rate": float("nan")}, {"review_causes": {"x": -3}}):
        with pytest.raises(Refused):
            parse("s1", "state", m.dumps({**payload, **bad}), NOW)


def test_a_store_s_restock_list_reaches_the_fleet_checked_field_by_field(db):
    good = {"t": NOW, "restock": [{"sku": "cola-330", "count": 1, "minimum": 4}], "off_sale_zones": ["chilled"]}
    bad = {"t": NOW, "restock": [{"sku": "cola 330 <b>", "count": -1, "minimum": 4}]}
    got = db.apply([online("a"), online("b"), ("a", "state", json.dumps(good).encode(), NOW),
                    ("b", "state", json.dumps(bad).encode(), NOW)])
    assert [r for _, r in got.refused] == ["invalid"]
    a = next(s for s in db.stores() if s["id"] == "a")
    assert a["restock"] == [{"sku": "cola-330", "count": 1, "minimum": 4}] and a["off_sale_zones"] == ["chilled"]


def test_the_chain_s_review_queue_oldest_first_until_each_is_decided(db):
    def ev(store, kind, row, t, **data):
        return (store, f"event/{kind}", m.dumps(m.event_payload(store, kind, row, t, data)), NOW)

    got = db.apply([online("a"), online("b"),
                    ev("a", "review_opened", 1, NOW - 300, visit_id="v_a1", causes=["unverified"]),
                    ev("b", "review_opened", 1, NOW - 600, visit_id="v_b1", causes=["card_limit", "off_sale"]),
                    ev("a", "review_opened", 2, NOW - 100, visit_id="v_a2", causes=["tailgating"]),
                    ev("a", "review_opened", 3, NOW, visit_id="bad id!", causes=["x"])])
    assert [r for _, r in got.refused] == ["invalid"]
    page = db.reviews_page()
    assert page["open"] == 3 and [r["visit_id"] for r in page["oldest"]] == ["v_b1", "v_a1", "v_a2"]
    assert page["oldest"][1]["store_open"] == 2 and page["oldest"][0]["causes"] == ["card_limit", "off_sale"]
    db.apply([ev("a", "review_decided", 4, NOW, visit_id="v_a1", causes=["unverified"], decision="close")])
    assert [r["visit_id"] for r in db.reviews_page()["oldest"]] == ["v_b1", "v_a2"]


def test_a_review_s_evidence_reaches_the_fleet_without_the_shopper_and_one_click_away(db, tmp_path):
    """The store's review_opened event carries the visit's record (stages, reads, basket, charge) with every key
    that names a shopper taken out, bounded; the fleet answers it for the review's store and visit only."""
    from bingobox.journal import Journal
    from bingobox.mqtt import evidence, outbox

    j = Journal(tmp_path / "store.db")
    try:
        outbox.collect(j, NOW - 10)  # (the cursors start)
        with j.tx() as c:
            c.execute("INSERT INTO visits (id, account_id, state, face_consent, created_at, updated_at, flags) "
                      "VALUES ('v_1', 'acc_secret', 'left', 1, ?, ?, '[\"review\"]')", (NOW - 60, NOW))
            for i in range(200):  # a long record: cut to its first and last events
                c.execute("INSERT INTO visit_events (visit_id, t, kind, data) VALUES ('v_1', ?, 'tag_taken', ?)",
                          (NOW - 50 + i * 0.1, json.dumps({"epc": f"E2{i:022X}", "account": "acc_secret",
                                                           "reader": "shelf-1", "jti": "j" * 20})))
        j.enqueue_review("v_1", ["unverified"], NOW)
        assert outbox.collect(j, NOW) >= 1
        (sent,) = [e for e in outbox.due(j, 0) if e["kind"] == "review_opened"]
    finally:
        j.close()
    text = json.dumps(sent["data"])
    assert "acc_secret" not in text and "jjjj" not in text and len(text) <= evidence.MAX_BYTES + 200
    ev = sent["data"]["evidence"]
    assert ev["flags"] == ["review"] and ev["events"][0]["data"] == {"epc": f"E2{0:022X}", "reader": "shelf-1"}
    assert any(e["kind"] == "…" for e in ev["events"]) or ev.get("cut")
    payload = m.dumps(m.event_payload("a", "review_opened", 7, NOW, sent["data"]))
    got = db.apply([online("a"), ("a", "event/review_opened", payload, NOW)])
    assert not got.refused
    shown = db.review_evidence("a", "v_1")
    assert shown["causes"] == ["unverified"] and shown["evidence"]["flags"] == ["review"]
    assert db.review_evidence("b", "v_1") is None and db.review_evidence("a", "v_%") is None
