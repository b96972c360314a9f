"""The store's journal: one SQLite database per store (WAL, synchronous=FULL, checked at start).

Holds the charge outbox and the entry-code replay cache (and, as the controller grows, visits, evidence,
alarms and the audit log). Face templates never go in here.
"""

from __future__ import annotations

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
"""


class Journal(Database):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA)

    # entry-code replay cache ----------------------------------------------------------------------
    def remember_jti(self, jti: str, exp: float, now: float, keep_s: float = 30.0) -> bool:
        """Record a used entry-code id; False if it was used before (it is kept until exp + keep_s)."""
        with self.tx() as c:
            c.execute("DELETE FROM entry_replay WHERE exp < ?", (now - keep_s,))
            if c.execute("SELECT 1 FROM entry_replay WHERE jti=?", (jti,)).fetchone():
                return False
            c.execute("INSERT INTO entry_replay VALUES (?, ?, ?)", (jti, exp, now))
        return True
