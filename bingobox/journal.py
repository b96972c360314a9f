"""The store's journal: one SQLite database per store (WAL, synchronous=FULL, checked at start).

Holds the charge outbox, the entry-code replay cache, visits and their evidence, alarms, and the operators' audit
log. Face templates never go in here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .storage import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS entry_replay (jti TEXT PRIMARY KEY, exp REAL NOT NULL, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS charge_intents (
  id INTEGER PRIMARY KEY,
  visit_id TEXT NOT NULL,
  account_id TEXT NOT NULL,
  amount_fen INTEGER NOT NULL CHECK (amount_fen > 0 AND typeof(amount_fen) = 'integer'),
  currency TEXT NOT NULL DEFAULT 'CNY',
  items TEXT NOT NULL,
  idem_key TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL CHECK (state IN ('pending', 'paying', 'succeeded', 'declined', 'canceled')),
  charge_id TEXT,
  reason TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  first_attempt_at REAL,
  next_attempt_at REAL NOT NULL,
  last_error TEXT,
  supersedes INTEGER REFERENCES charge_intents(id),
  retried INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS intents_due ON charge_intents (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS intents_visit ON charge_intents (visit_id);
CREATE TABLE IF NOT EXISTS visits (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, state TEXT NOT NULL, face_consent INTEGER NOT NULL,
  alone INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, updated_at REAL NOT NULL, entered_at REAL,
  left_at REAL, basket TEXT NOT NULL DEFAULT '{}', amount_fen INTEGER, receipt TEXT,
  flags TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS visits_state ON visits (state);
CREATE TABLE IF NOT EXISTS visit_events (
  id INTEGER PRIMARY KEY, visit_id TEXT, t REAL NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS visit_events_visit ON visit_events (visit_id);
CREATE TABLE IF NOT EXISTS alarms (
  id INTEGER PRIMARY KEY, t REAL NOT NULL, kind TEXT NOT NULL, device TEXT, data TEXT NOT NULL, cleared_at REAL,
  cleared_by TEXT);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY, t REAL NOT NULL, operator TEXT, action TEXT NOT NULL, args TEXT NOT NULL,
  outcome TEXT NOT NULL, detail TEXT, source TEXT);
"""


class Journal(Database):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA)
        if "cleared_by" not in {r[1] for r in self.all("PRAGMA table_info(alarms)")}:  # a journal from before it
            with self.tx() as c:
                c.execute("ALTER TABLE alarms ADD COLUMN cleared_by TEXT")

    # evidence --------------------------------------------------------------------------------------
    def evidence(self, visit_id: str | None, kind: str, data: dict, t: float | None = None) -> None:
        """One line of a visit's evidence record (code check, door cycle, tag, face score, charge, receipt).
        Never a frame or a face template."""
        with self.tx() as c:
            c.execute("INSERT INTO visit_events (visit_id, t, kind, data) VALUES (?, ?, ?, ?)",
                      (visit_id, t or time.time(), kind, json.dumps(data, default=str)))

    def alarm(self, kind: str, device: str | None, data: dict, t: float | None = None) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO alarms (t, kind, device, data) VALUES (?, ?, ?, ?)",
                      (t or time.time(), kind, device, json.dumps(data, default=str)))

    def clear_alarm(self, alarm_id: int, operator: str, t: float | None = None) -> bool:
        """Mark an open alarm cleared; False if there is no such open alarm."""
        with self.tx() as c:
            cur = c.execute("UPDATE alarms SET cleared_at=?, cleared_by=? WHERE id=? AND cleared_at IS NULL",
                            (t or time.time(), operator, alarm_id))
            return cur.rowcount == 1

    def open_alarms(self, limit: int = 50) -> list[dict]:
        rows = self.all("SELECT id, t, kind, device, data FROM alarms WHERE cleared_at IS NULL ORDER BY id DESC "
                        "LIMIT ?", (limit,))
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    def visit_record(self, visit_id: str) -> dict | None:
        """A visit and its evidence, in order (code check → door cycle → items → face → charge → receipt)."""
        v = self.one("SELECT * FROM visits WHERE id=?", (visit_id,))
        if v is None:
            return None
        events = self.all("SELECT t, kind, data FROM visit_events WHERE visit_id=? ORDER BY id", (visit_id,))
        charges = self.all("SELECT id, amount_fen, state, charge_id, reason, attempts, created_at, updated_at "
                           "FROM charge_intents WHERE visit_id=? ORDER BY id", (visit_id,))
        out = dict(v)
        for key in ("basket", "flags", "receipt"):
            out[key] = json.loads(out[key]) if out.get(key) else out.get(key)
        return {**out, "events": [{"t": e["t"], "kind": e["kind"], "data": json.loads(e["data"])} for e in events],
                "charges": [dict(c) for c in charges]}

    # audit log -------------------------------------------------------------------------------------
    def audit(self, operator: str | None, action: str, args: dict, outcome: str, detail: str = "",
              source: str = "") -> int:
        """One operator action (or login), whatever its outcome; returns its id."""
        with self.tx() as c:
            cur = c.execute("INSERT INTO audit (t, operator, action, args, outcome, detail, source) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (time.time(), operator, action, json.dumps(args, default=str), outcome, detail, source))
            return int(cur.lastrowid)

    def set_audit_outcome(self, audit_id: int, outcome: str, detail: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE audit SET outcome=?, detail=? WHERE id=?", (outcome, detail, audit_id))

    def recent_audit(self, limit: int = 30) -> list[dict]:
        rows = self.all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [{**dict(r), "args": json.loads(r["args"])} for r in rows]

    def recent_charges(self, limit: int = 30) -> list[dict]:
        rows = self.all("SELECT id, visit_id, account_id, amount_fen, state, charge_id, reason, attempts, created_at, "
                        "updated_at FROM charge_intents ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # entry-code replay cache ----------------------------------------------------------------------
    def remember_jti(self, jti: str, exp: float, now: float, keep_s: float = 30.0) -> bool:
        """Record a used entry-code id; False if it was used before (it is kept until exp + keep_s)."""
        with self.tx() as c:
            c.execute("DELETE FROM entry_replay WHERE exp < ?", (now - keep_s,))
            if c.execute("SELECT 1 FROM entry_replay WHERE jti=?", (jti,)).fetchone():
                return False
            c.execute("INSERT INTO entry_replay VALUES (?, ?, ?)", (jti, exp, now))
        return True
