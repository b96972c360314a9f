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
