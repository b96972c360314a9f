"""The store's journal: one SQLite database per store (WAL, synchronous=FULL, checked at start).

Holds the charge outbox, the entry-code replay cache, visits and their evidence, alarms, and the operators' audit
log. Face templates never go in here.

A visit's transition is one transaction: its row, the evidence of what happened and (at checkout) the charge
intent are written together with ``tx()`` and the ``*_in`` helpers, so no transition exists only in memory.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .audit import AuditLog
from .storage import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS entry_replay (jti TEXT PRIMARY KEY, exp REAL NOT NULL, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS clock_mark (id INTEGER PRIMARY KEY CHECK (id = 1), high_water REAL NOT NULL);
CREATE TABLE IF NOT EXISTS charge_intents (
  id INTEGER PRIMARY KEY,
  visit_id TEXT NOT NULL,
  account_id TEXT NOT NULL,
  amount_fen INTEGER NOT NULL CHECK (amount_fen > 0 AND typeof(amount_fen) = 'integer'),
  currency TEXT NOT NULL DEFAULT 'CNY',
  items TEXT NOT NULL,
  idem_key TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL CHECK (state IN ('pending', 'paying', 'succeeded', 'declined', 'canceled', 'failed')),
  charge_id TEXT,
  reason TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  first_attempt_at REAL,
  next_attempt_at REAL NOT NULL,
  last_error TEXT,
  supersedes INTEGER REFERENCES charge_intents(id),
  retried INTEGER NOT NULL DEFAULT 0,
  rejections INTEGER NOT NULL DEFAULT 0,
  entry_jti TEXT,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS intents_due ON charge_intents (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS intents_visit ON charge_intents (visit_id);
CREATE TABLE IF NOT EXISTS visits (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, state TEXT NOT NULL, face_consent INTEGER NOT NULL,
  alone INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, updated_at REAL NOT NULL, entered_at REAL,
  left_at REAL, basket TEXT NOT NULL DEFAULT '{}', amount_fen INTEGER, receipt TEXT,
  flags TEXT NOT NULL DEFAULT '[]', identified_at REAL, exit_granted_at REAL, entry_jti TEXT,
  group_size INTEGER NOT NULL DEFAULT 1, passages INTEGER NOT NULL DEFAULT 0, members_out INTEGER NOT NULL DEFAULT 0,
  taken TEXT NOT NULL DEFAULT '{}');
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
CREATE INDEX IF NOT EXISTS visits_updated ON visits (updated_at);
CREATE INDEX IF NOT EXISTS audit_t ON audit (t);
CREATE TABLE IF NOT EXISTS visit_reports (visit_id TEXT PRIMARY KEY, sent_updated_at REAL NOT NULL,
  gone INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS mqtt_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, t REAL NOT NULL,
  data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mqtt_cursor (name TEXT PRIMARY KEY, t REAL NOT NULL, row INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
  visit_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, causes TEXT NOT NULL, opened_at REAL NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'decided')), decision TEXT, reason TEXT, operator TEXT,
  amount_fen INTEGER, intent_id INTEGER, decided_at REAL);
CREATE INDEX IF NOT EXISTS reviews_open ON reviews (state, opened_at);
CREATE TABLE IF NOT EXISTS cold_zones (zone TEXT PRIMARY KEY, above_s REAL NOT NULL, off_sale_at REAL,
  updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS disputes (
  id TEXT PRIMARY KEY, visit_id TEXT NOT NULL, account_id TEXT NOT NULL, charge_id TEXT NOT NULL,
  claimed_fen INTEGER NOT NULL, data TEXT NOT NULL, state TEXT NOT NULL, seen_at REAL NOT NULL, resolved_at REAL,
  reason TEXT, operator TEXT, refund_id TEXT);
"""


VISIT_COLUMNS = ("id", "account_id", "state", "face_consent", "alone", "created_at", "updated_at", "entered_at",
                 "left_at", "basket", "amount_fen", "receipt", "flags", "identified_at", "exit_granted_at", "entry_jti")


def _add_columns(c: sqlite3.Connection, columns: dict[str, dict[str, str]]) -> None:
    """Add the columns a table lacks (a journal from before the versions knew only some of them)."""
    for table, cols in columns.items():
        have = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
        for col, decl in cols.items():
            if col not in have:
                c.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")


def _v1_the_first_journals(c: sqlite3.Connection) -> None:
    """Columns added before journals had a version, and the charge intents' CHECK gaining 'failed' (a CHECK
    changes only by rebuilding its table)."""
    _add_columns(c, {"alarms": {"cleared_by": "TEXT"}, "visits": {"identified_at": "REAL", "exit_granted_at": "REAL"},
                     "charge_intents": {"rejections": "INTEGER NOT NULL DEFAULT 0"}})
    table = c.execute("SELECT sql FROM sqlite_master WHERE name='charge_intents'").fetchone()
    if table is not None and "'failed'" not in table[0]:
        c.execute("ALTER TABLE charge_intents RENAME TO charge_intents_old")
        c.execute("DROP INDEX IF EXISTS intents_due")
        c.execute("DROP INDEX IF EXISTS intents_visit")
        for stmt in SCHEMA.split(";"):
            if "charge_intents" in stmt and stmt.strip():
                c.execute(stmt)
        cols = ", ".join(r[1] for r in c.execute("PRAGMA table_info(charge_intents_old)")
                         if r[1] in {x[1] for x in c.execute("PRAGMA table_info(charge_intents)")})
        c.execute(f"INSERT INTO charge_intents ({cols}) SELECT {cols} FROM charge_intents_old")
        c.execute("DROP TABLE charge_intents_old")


def _v2_codes_bind_charges(c: sqlite3.Connection) -> None:
    """Wallet protocol 2: a visit and its charges name the entry code that opened the visit."""
    _add_columns(c, {"visits": {"entry_jti": "TEXT"}, "charge_intents": {"entry_jti": "TEXT"}})


def _v3_groups(c: sqlite3.Connection) -> None:
    """Groups: a visit's people on one code, its door passages, and the companions who left first."""
    _add_columns(c, {"visits": {"group_size": "INTEGER NOT NULL DEFAULT 1", "passages": "INTEGER NOT NULL DEFAULT 0",
                                "members_out": "INTEGER NOT NULL DEFAULT 0"}})


def _v4_taken_at(c: sqlite3.Connection) -> None:
    """Batches and markdowns: when each item of a basket was taken (its price is the one at that moment)."""
    _add_columns(c, {"visits": {"taken": "TEXT NOT NULL DEFAULT '{}'"}})


# the journal's versions (PRAGMA user_version), in order: an older journal is brought up one step at a time, each in
# its own transaction; a new one is made at the latest
MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [(1, _v1_the_first_journals),
                                                                      (2, _v2_codes_bind_charges),
                                                                      (3, _v3_groups),
                                                                      (4, _v4_taken_at)]
VERSION = MIGRATIONS[-1][0]


class VisitTx:
    """An open transaction as the store core writes through it (``Journal.visit_tx``; the core's ``ports.JournalTx``):
    a visit's row, its evidence, a used code, an alarm — and the charge queue's intent (``execute``)."""

    def __init__(self, c: sqlite3.Connection, now: float) -> None:
        self.c, self.now = c, now

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self.c.execute(sql, args)

    def save_visit(self, row: dict, new: bool) -> None:
        Journal.save_visit_in(self.c, row, new)

    def evidence(self, visit_id: str | None, kind: str, data: dict) -> None:
        Journal.evidence_in(self.c, visit_id, kind, data, self.now)

    def remember_code(self, jti: str, exp: float, keep_s: float) -> bool:
        return Journal.remember_jti_in(self.c, jti, exp, self.now, keep_s)

    def alarm(self, kind: str, device: str | None, data: dict) -> None:
        Journal.alarm_in(self.c, kind, device, data, self.now)

    def review(self, visit_id: str, account: str, causes: list[str]) -> None:
        Journal.review_in(self.c, visit_id, account, causes, self.now)


class Journal(Database, AuditLog):
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path, SCHEMA)
        self.clock = self.audit_clock = clock
        self._migrate()

    def _migrate(self) -> None:
        """Bring an older journal to ``VERSION`` (``MIGRATIONS``), or mark a new one as made at it."""
        version = self.user_version()
        if self.fresh:
            with self.tx() as c:
                c.execute(f"PRAGMA user_version={VERSION}")
            return
        for target, step in MIGRATIONS:
            if version < target:
                with self.tx() as c:
                    step(c)
                    c.execute(f"PRAGMA user_version={target}")

    def user_version(self) -> int:
        row = self.one("PRAGMA user_version")
        return int(row[0]) if row else 0

    # visits: one transaction per transition ---------------------------------------------------------
    @contextmanager
    def visit_tx(self, now: float) -> Iterator[VisitTx]:
        """A write transaction for a visit's transition (committed durably on exit, rolled back on an error)."""
        with self.tx() as c:
            yield VisitTx(c, now)

    @staticmethod
    def save_visit_in(c: sqlite3.Connection, row: dict, new: bool = False) -> None:
        """Write a visit's row inside an open transaction (``row``: VISIT_COLUMNS, JSON fields already encoded)."""
        if new:
            cols = ", ".join(row)
            c.execute(f"INSERT INTO visits ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
        else:
            sets = ", ".join(f"{k}=?" for k in row if k != "id")
            c.execute(f"UPDATE visits SET {sets} WHERE id=?", (*[v for k, v in row.items() if k != "id"], row["id"]))

    @staticmethod
    def evidence_in(c: sqlite3.Connection, visit_id: str | None, kind: str, data: dict, t: float) -> None:
        c.execute("INSERT INTO visit_events (visit_id, t, kind, data) VALUES (?, ?, ?, ?)",
                  (visit_id, t, kind, json.dumps(data, default=str)))

    def open_visits(self) -> list[dict]:
        """Every visit not in a final state, oldest first (for a restart)."""
        from .domain.visit import FINAL

        final = tuple(str(s) for s in FINAL)
        rows = self.all(f"SELECT * FROM visits WHERE state NOT IN ({','.join('?' * len(final))}) ORDER BY created_at",
                        final)
        return [dict(r) for r in rows]

    def ever_let_in(self) -> bool:
        """Has this store let anyone in before (a visit, or a code used)? A restart of such a store happened with
        people possibly inside; the first start of a new journal did not."""
        return self.one("SELECT 1 FROM visits LIMIT 1") is not None or self.clock_high_water() > 0

    def recent_baskets(self, since: float) -> dict[str, tuple[str, float]]:
        """EPC → (visit, left at) for the baskets of visits that left since ``since`` (just carried out)."""
        out: dict[str, tuple[str, float]] = {}
        for r in self.all("SELECT id, basket, left_at FROM visits WHERE left_at >= ? AND state='left' "
                          "ORDER BY left_at", (since,)):
            for epc in json.loads(r["basket"]):
                out[epc] = (r["id"], r["left_at"])
        return out

    def visit_outcomes(self, ids: list[str]) -> dict[str, tuple[set[str], list[str]]]:
        """Visit → (its basket's EPCs, its flags), for the visits among ``ids`` (at most 500 asked at once)."""
        out: dict[str, tuple[set[str], list[str]]] = {}
        ids = list(dict.fromkeys(ids))[:500]
        if ids:
            marks = ", ".join("?" * len(ids))
            for r in self.all(f"SELECT id, basket, flags FROM visits WHERE id IN ({marks})", tuple(ids)):
                out[r["id"]] = (set(json.loads(r["basket"])), json.loads(r["flags"]))
        return out

    def list_visits(self, limit: int = 50) -> list[dict]:
        rows = self.all("SELECT id, account_id, state, amount_fen, flags, created_at FROM visits "
                        "ORDER BY created_at DESC LIMIT ?", (limit,))
        return [{**dict(r), "flags": json.loads(r["flags"])} for r in rows]

    # evidence --------------------------------------------------------------------------------------
    def evidence(self, visit_id: str | None, kind: str, data: dict, t: float | None = None) -> None:
        """One line of a visit's evidence record (code check, door cycle, tag, face score, charge, receipt).
        Never a frame or a face template."""
        with self.tx() as c:
            self.evidence_in(c, visit_id, kind, data, t or self.clock())

    def zone_states(self) -> dict[str, tuple[float, float | None]]:
        """Each chilled zone's cumulated time above its limit and when it went off sale (the cold chain's record:
        a restart must not forget that a fridge's goods are spoiled)."""
        return {r["zone"]: (float(r["above_s"]), r["off_sale_at"]) for r in self.all("SELECT * FROM cold_zones")}

    def save_zone(self, zone: str, above_s: float, off_sale_at: float | None, t: float | None = None) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO cold_zones (zone, above_s, off_sale_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT"
                      "(zone) DO UPDATE SET above_s=excluded.above_s, off_sale_at=excluded.off_sale_at, "
                      "updated_at=excluded.updated_at", (zone, above_s, off_sale_at, t or self.clock()))

    def alarm(self, kind: str, device: str | None, data: dict, t: float | None = None) -> None:
        with self.tx() as c:
            self.alarm_in(c, kind, device, data, t or self.clock())

    @staticmethod
    def alarm_in(c: sqlite3.Connection, kind: str, device: str | None, data: dict, t: float) -> None:
        c.execute("INSERT INTO alarms (t, kind, device, data) VALUES (?, ?, ?, ?)",
                  (t, kind, device, json.dumps(data, default=str)))

    # the review queue -----------------------------------------------------------------------------
    @staticmethod
    def review_in(c: sqlite3.Connection, visit_id: str, account: str, causes: list[str], t: float) -> None:
        """Put a visit in the review queue (or add causes to its open review; a decided one is not reopened)."""
        row = c.execute("SELECT causes, state FROM reviews WHERE visit_id=?", (visit_id,)).fetchone()
        if row is None:
            c.execute("INSERT INTO reviews (visit_id, account_id, causes, opened_at, state) VALUES (?, ?, ?, ?, "
                      "'open')", (visit_id, account, json.dumps(sorted(set(causes))), t))
        elif row["state"] == "open":
            merged = sorted(set(json.loads(row["causes"])) | set(causes))
            c.execute("UPDATE reviews SET causes=? WHERE visit_id=?", (json.dumps(merged), visit_id))

    def enqueue_review(self, visit_id: str, causes: list[str], t: float | None = None) -> bool:
        """Put an ended visit in the review queue (a charge that failed after the shopper left); False: no such
        visit."""
        with self.tx() as c:
            row = c.execute("SELECT account_id FROM visits WHERE id=?", (visit_id,)).fetchone()
            if row is None:
                return False
            self.review_in(c, visit_id, row["account_id"], causes, t or self.clock())
        return True

    def review_of(self, visit_id: str) -> dict | None:
        r = self.one("SELECT * FROM reviews WHERE visit_id=?", (visit_id,))
        return {**dict(r), "causes": json.loads(r["causes"])} if r else None

    def open_reviews(self, limit: int = 50) -> list[dict]:
        """The queue, oldest first: each open review with its visit's account, state, amount and flags."""
        rows = self.all("SELECT r.*, v.state AS visit_state, v.amount_fen AS visit_amount_fen, v.flags, v.left_at "
                        "FROM reviews r LEFT JOIN visits v ON v.id = r.visit_id WHERE r.state='open' "
                        "ORDER BY r.opened_at LIMIT ?", (limit,))
        return [{**dict(r), "causes": json.loads(r["causes"]), "flags": json.loads(r["flags"] or "[]")} for r in rows]

    def decide_review(self, visit_id: str, decision: str, reason: str, operator: str, amount_fen: int | None,
                      charge: Callable[[sqlite3.Connection], int] | None = None, t: float | None = None) -> bool:
        """An operator's decision on an open review, in one transaction: the review decided, the supplementary
        charge's intent (``charge(c)`` writes it), the visit's evidence, and its row touched so that the shopper's
        receipt is sent again with the decision. False: no open review of that visit (nothing written)."""
        t = t or self.clock()
        with self.tx() as c:
            if c.execute("SELECT 1 FROM reviews WHERE visit_id=? AND state='open'", (visit_id,)).fetchone() is None:
                return False
            intent = charge(c) if charge is not None else None
            c.execute("UPDATE reviews SET state='decided', decision=?, reason=?, operator=?, amount_fen=?, "
                      "intent_id=?, decided_at=? WHERE visit_id=?",
                      (decision, reason, operator, amount_fen, intent, t, visit_id))
            self.evidence_in(c, visit_id, "review_decided", {"decision": decision, "reason": reason,
                                                             "operator": operator, "amount_fen": amount_fen,
                                                             "intent": intent}, t)
            c.execute("UPDATE visits SET updated_at=? WHERE id=?", (t, visit_id))
        return True

    def review_stats(self, since: float) -> dict:
        """Since ``since``: visits that ended, visits that entered the queue (by cause), the review rate, and the
        queue's length now (open reviews of any age)."""
        row = self.one("SELECT count(*) FROM visits WHERE updated_at >= ? AND state IN ('left', 'abandoned', "
                       "'timed_out')", (since,))
        ended = row[0] if row else 0
        by_cause: dict[str, int] = {}
        opened = 0
        for r in self.all("SELECT causes FROM reviews WHERE opened_at >= ?", (since,)):
            opened += 1
            for cause in json.loads(r["causes"]):
                by_cause[cause] = by_cause.get(cause, 0) + 1
        waiting = self.one("SELECT count(*), min(opened_at) FROM reviews WHERE state='open'")
        return {"since": since, "visits": ended, "reviews": opened,
                "review_rate": round(opened / ended, 4) if ended else 0.0, "by_cause": dict(sorted(by_cause.items())),
                "open": waiting[0] if waiting else 0, "oldest_open_at": waiting[1] if waiting else None}

    def clear_alarm(self, alarm_id: int, operator: str, t: float | None = None) -> bool:
        """Mark an open alarm cleared; False if there is no such open alarm."""
        with self.tx() as c:
            cur = c.execute("UPDATE alarms SET cleared_at=?, cleared_by=? WHERE id=? AND cleared_at IS NULL",
                            (t or self.clock(), operator, alarm_id))
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
    def recent_charges(self, limit: int = 30) -> list[dict]:
        rows = self.all("SELECT id, visit_id, account_id, amount_fen, state, charge_id, reason, attempts, created_at, "
                        "updated_at FROM charge_intents ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # retention --------------------------------------------------------------------------------------
    def prune(self, now: float, keep_visits_s: float, keep_refusals_s: float, keep_audit_s: float,
              limit: int = 2000) -> dict[str, int]:
        """Delete what is older than its retention, at most ``limit`` rows of each kind per call (a call stays short
        on the loop thread; the next one goes on): ended visits with their evidence, evidence of no visit (refused
        codes...), cleared alarms, audit rows. Open visits, charge intents and open alarms are never pruned."""
        from .domain.visit import FINAL

        final = tuple(str(s) for s in FINAL)
        marks = ",".join("?" * len(final))
        with self.tx() as c:
            old = [r[0] for r in c.execute(f"SELECT id FROM visits WHERE state IN ({marks}) AND updated_at < ? "
                                           "LIMIT ?", (*final, now - keep_visits_s, limit))]
            events = 0
            for vid in old:
                events += c.execute("DELETE FROM visit_events WHERE visit_id=?", (vid,)).rowcount
            visits = c.execute(f"DELETE FROM visits WHERE id IN ({','.join('?' * len(old))})", old).rowcount \
                if old else 0
            if old:
                c.execute(f"DELETE FROM visit_reports WHERE visit_id IN ({','.join('?' * len(old))})", old)
            c.execute("DELETE FROM disputes WHERE id IN (SELECT id FROM disputes WHERE resolved_at < ? LIMIT ?)",
                      (now - keep_visits_s, limit))
            loose = c.execute("DELETE FROM visit_events WHERE id IN (SELECT id FROM visit_events WHERE visit_id IS "
                              "NULL AND t < ? LIMIT ?)", (now - keep_refusals_s, limit)).rowcount
            alarms = c.execute("DELETE FROM alarms WHERE id IN (SELECT id FROM alarms WHERE cleared_at IS NOT NULL "
                               "AND cleared_at < ? LIMIT ?)", (now - keep_visits_s, limit)).rowcount
            audit = c.execute("DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE t < ? LIMIT ?)",
                              (now - keep_audit_s, limit)).rowcount
        return {"visits": visits, "visit_events": events + loose, "alarms": alarms, "audit": audit}

    # entry-code replay cache ----------------------------------------------------------------------
    def jti_used(self, jti: str) -> bool:
        return self.one("SELECT 1 FROM entry_replay WHERE jti=?", (jti,)) is not None

    def clock_high_water(self) -> float:
        """The latest wall-clock time at which a code was used (persisted): a clock behind it has been set back,
        and codes the replay cache has forgotten since could enter again."""
        row = self.one("SELECT high_water FROM clock_mark WHERE id=1")
        return float(row["high_water"]) if row else 0.0

    def reset_clock_mark(self, now: float) -> float:
        """Accept the clock as it is now (an operator's decision after a wrong clock was corrected); the old mark."""
        with self.tx() as c:
            old = c.execute("SELECT high_water FROM clock_mark WHERE id=1").fetchone()
            c.execute("INSERT INTO clock_mark VALUES (1, ?) "
                      "ON CONFLICT(id) DO UPDATE SET high_water=excluded.high_water", (now,))
        return float(old["high_water"]) if old else 0.0

    @staticmethod
    def remember_jti_in(c: sqlite3.Connection, jti: str, exp: float, now: float, keep_s: float = 30.0) -> bool:
        """Record a used entry-code id inside an open transaction; False if it was used before (kept until
        exp + keep_s: a row is never purged by a clock behind the time it was seen, as exp > seen_at). Raises the
        time high-water mark, which entry checks (a clock stepped forward purges rows; set back, their codes live)."""
        c.execute("INSERT INTO clock_mark VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET "
                  "high_water=max(high_water, excluded.high_water)", (now,))
        c.execute("DELETE FROM entry_replay WHERE exp < ?", (now - keep_s,))
        if c.execute("SELECT 1 FROM entry_replay WHERE jti=?", (jti,)).fetchone():
            return False
        c.execute("INSERT INTO entry_replay VALUES (?, ?, ?)", (jti, exp, now))
        return True

    def remember_jti(self, jti: str, exp: float, now: float, keep_s: float = 30.0) -> bool:
        """Record a used entry-code id; False if it was used before (it is kept until exp + keep_s)."""
        with self.tx() as c:
            return self.remember_jti_in(c, jti, exp, now, keep_s)
