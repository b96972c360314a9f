"""The journal opens a database written before alarms could be cleared (adds the column) and clears alarms once."""

import sqlite3

from bingobox.journal import Journal


def test_an_older_journal_gains_alarm_clearing(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE alarms (id INTEGER PRIMARY KEY, t REAL NOT NULL, kind TEXT NOT NULL, device TEXT, "
                  "data TEXT NOT NULL, cleared_at REAL)")
        c.execute("INSERT INTO alarms (t, kind, device, data) VALUES (1, 'door_forced', 'exit', '{}')")
    j = Journal(path)
    try:
        assert [a["kind"] for a in j.open_alarms()] == ["door_forced"]
        assert j.clear_alarm(1, "alice") and not j.clear_alarm(1, "alice")  # only an open alarm clears
        assert j.open_alarms() == [] and j.one("SELECT cleared_by FROM alarms")["cleared_by"] == "alice"
    finally:
        j.close()
    Journal(path).close()  # opening again changes nothing


def test_retention_prunes_what_is_old_and_ended_and_nothing_else(tmp_path):
    day = 86_400.0
    now = 1_800_000_000.0
    j = Journal(tmp_path / "store.db")
    with j.tx() as c:
        for vid, state, age in [("v_old_left", "left", 100), ("v_old_open", "inside", 100), ("v_new", "left", 10),
                                ("v_old_abandoned", "abandoned", 95)]:
            j.save_visit_in(c, {"id": vid, "account_id": "acc_1", "state": state, "face_consent": 0,
                                "created_at": now - age * day, "updated_at": now - age * day}, new=True)
            j.evidence_in(c, vid, "code_accepted", {}, now - age * day)
        for age in (10, 3):
            j.evidence_in(c, None, "code_refused", {"reason": "malformed"}, now - age * day)
    j.alarm("door_forced", "exit", {}, now - 100 * day)
    j.clear_alarm(1, "alice", now - 99 * day)
    j.alarm("door_held_open", "exit", {}, now - 100 * day)  # still open: kept however old
    j.audit("alice", "login", {}, "ok")
    got = j.prune(now, 90 * day, 7 * day, 365 * day)
    assert got == {"visits": 2, "visit_events": 3, "alarms": 1, "audit": 0}
    assert {r["id"] for r in j.all("SELECT id FROM visits")} == {"v_old_open", "v_new"}
    assert len(j.all("SELECT 1 FROM visit_events WHERE visit_id IS NULL")) == 1
    assert [a["kind"] for a in j.all("SELECT kind FROM alarms")] == ["door_held_open"]
    assert j.prune(now, 90 * day, 7 * day, 365 * day) == {"visits": 0, "visit_events": 0, "alarms": 0, "audit": 0}


def test_retention_works_in_bounded_batches(tmp_path):
    now = 1_800_000_000.0
    j = Journal(tmp_path / "store.db")
    with j.tx() as c:
        for i in range(25):
            j.evidence_in(c, None, "code_refused", {}, now - 30 * 86_400 - i)
    assert j.prune(now, 90 * 86_400, 7 * 86_400, 365 * 86_400, limit=10)["visit_events"] == 10
    assert j.prune(now, 90 * 86_400, 7 * 86_400, 365 * 86_400, limit=10)["visit_events"] == 10
    assert j.prune(now, 90 * 86_400, 7 * 86_400, 365 * 86_400, limit=10)["visit_events"] == 5
