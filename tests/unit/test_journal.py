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


def test_journals_are_migrated_by_their_version_one_step_at_a_time(tmp_path):
    """PRAGMA user_version and an ordered list: an unversioned journal of the first kind (a charge intent without
    'failed' in its CHECK, no entry codes on visits) is brought to the latest version, its rows kept; a new journal
    is made at it; each step runs once."""
    from bingobox.journal import VERSION

    path = tmp_path / "first.db"
    with sqlite3.connect(path) as c:
        c.executescript("""
CREATE TABLE visits (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, state TEXT NOT NULL, face_consent INTEGER NOT NULL,
  alone INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, updated_at REAL NOT NULL, entered_at REAL,
  left_at REAL, basket TEXT NOT NULL DEFAULT '{}', amount_fen INTEGER, receipt TEXT, flags TEXT NOT NULL DEFAULT '[]');
CREATE TABLE charge_intents (id INTEGER PRIMARY KEY, visit_id TEXT NOT NULL, account_id TEXT NOT NULL,
  amount_fen INTEGER NOT NULL, currency TEXT NOT NULL DEFAULT 'CNY', items TEXT NOT NULL, idem_key TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL CHECK (state IN ('pending', 'paying', 'succeeded', 'declined', 'canceled')), charge_id TEXT,
  reason TEXT, attempts INTEGER NOT NULL DEFAULT 0, first_attempt_at REAL, next_attempt_at REAL NOT NULL,
  last_error TEXT, supersedes INTEGER, retried INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
  updated_at REAL NOT NULL);
INSERT INTO visits (id, account_id, state, face_consent, created_at, updated_at) VALUES ('v1', 'a', 'inside', 0, 1, 1);
INSERT INTO charge_intents (visit_id, account_id, amount_fen, items, idem_key, state, next_attempt_at, created_at,
  updated_at) VALUES ('v0', 'a', 350, '[]', 'k0', 'pending', 1, 1, 1);
""")
    j = Journal(path)
    try:
        assert j.user_version() == VERSION
        assert j.open_visits()[0]["entry_jti"] is None and j.one("SELECT amount_fen FROM charge_intents")[0] == 350
        assert (j.open_visits()[0]["group_size"], j.open_visits()[0]["members_out"]) == (1, 0)  # v3: groups
        assert j.open_visits()[0]["taken"] == "{}"  # v4: when each item was taken (its price then)
        with j.tx() as c:  # the rebuilt CHECK takes 'failed'; the new column is there
            c.execute("UPDATE charge_intents SET state='failed', entry_jti='j1'")
    finally:
        j.close()
    Journal(path).close()
    fresh = Journal(tmp_path / "new.db")
    assert fresh.user_version() == VERSION
    fresh.close()


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
