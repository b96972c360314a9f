"""The fleet service's state (a SQLite file, or PostgreSQL given a DSN: ``sql``): each store's latest state and
since when it is online or offline, the alarm history (open first), recent events, commands sent with their
results, and the fleet operators' audit log. Messages are applied in batches (one transaction per batch:
thousands of stores' telemetry per second)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from ..audit import AuditLog
from .schema import STORE_ID, Message, Refused, alarm_data, parse, review_data
from .sql import open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS stores (id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, since FLOAT8 NOT NULL,
  last_seen FLOAT8 NOT NULL, state TEXT, state_t FLOAT8, metrics TEXT, open_alarms INTEGER NOT NULL DEFAULT 0,
  refused INTEGER NOT NULL DEFAULT 0, refused_last TEXT);
CREATE TABLE IF NOT EXISTS alarms (event_id TEXT NOT NULL, store_id TEXT NOT NULL, alarm_id BIGINT,
  kind TEXT NOT NULL, device TEXT, t FLOAT8 NOT NULL, data TEXT NOT NULL, received_at FLOAT8 NOT NULL,
  late INTEGER NOT NULL, cleared_at FLOAT8, cleared_by TEXT, PRIMARY KEY (store_id, event_id));
CREATE INDEX IF NOT EXISTS alarms_open ON alarms (cleared_at, t);
CREATE INDEX IF NOT EXISTS alarms_store ON alarms (store_id, alarm_id);
CREATE TABLE IF NOT EXISTS events (event_id TEXT NOT NULL, store_id TEXT NOT NULL, kind TEXT NOT NULL,
  t FLOAT8 NOT NULL, data TEXT NOT NULL, received_at FLOAT8 NOT NULL, late INTEGER NOT NULL,
  PRIMARY KEY (store_id, event_id));
CREATE INDEX IF NOT EXISTS events_t ON events (received_at);
CREATE TABLE IF NOT EXISTS reviews (store_id TEXT NOT NULL, visit_id TEXT NOT NULL, causes TEXT NOT NULL,
  opened_at FLOAT8 NOT NULL, decided_at FLOAT8, decision TEXT, PRIMARY KEY (store_id, visit_id));
CREATE INDEX IF NOT EXISTS reviews_open ON reviews (decided_at, opened_at);
CREATE TABLE IF NOT EXISTS commands (tx TEXT PRIMARY KEY, store_id TEXT NOT NULL, name TEXT NOT NULL,
  args TEXT NOT NULL, operator TEXT NOT NULL, sent_at FLOAT8 NOT NULL, result TEXT, result_at FLOAT8);
CREATE TABLE IF NOT EXISTS audit (id {serial}, t FLOAT8 NOT NULL, operator TEXT, action TEXT NOT NULL,
  args TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT, source TEXT);
CREATE INDEX IF NOT EXISTS audit_t ON audit (t);
CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
"""
KEEP_EVENTS_S = 7 * 86_400
KEEP_ALARMS_S = 365 * 86_400  # cleared alarms (the history); open ones are kept until cleared

# Ordered migrations, each (the version it brings, statements); ``@schema`` runs SCHEMA again. A database without a
# version row is version 1 (a new one too: its migration then moves empty tables). Each table is copied aside and
# made again (PostgreSQL keeps a primary key's name with a renamed table, so it is dropped, not renamed).
_COLUMNS = {"stores": "id, online, since, last_seen, state, state_t, metrics, open_alarms",
            "alarms": "event_id, store_id, alarm_id, kind, device, t, data, received_at, late, cleared_at, cleared_by",
            "events": "event_id, store_id, kind, t, data, received_at, late"}
MIGRATIONS: list[tuple[int, list[str]]] = [
    (2, [  # events and alarms keyed by (store, event id); stores count what was refused of theirs
        *[f"CREATE TABLE {t}_v1 AS SELECT {cols} FROM {t}" for t, cols in _COLUMNS.items()],
        *[f"DROP TABLE {t}" for t in _COLUMNS],
        "@schema",
        *[f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {t}_v1" for t, cols in _COLUMNS.items()],
        *[f"DROP TABLE {t}_v1" for t in _COLUMNS]]),
]
VERSION = MIGRATIONS[-1][0]


@dataclass
class Applied:
    """What one batch did: messages applied, and the refused ones with their reasons."""

    applied: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (store id, reason)
    clamped: int = 0  # dated in the future: taken as received


class FleetDB(AuditLog):
    def __init__(self, target) -> None:
        """``target``: a SQLite file, or a PostgreSQL DSN (postgresql://user@host/db)."""
        from .sql import is_dsn

        serial = "BIGSERIAL PRIMARY KEY" if is_dsn(str(target)) else "INTEGER PRIMARY KEY"
        schema = SCHEMA.replace("{serial}", serial)
        self.s = open_store(str(target), schema, lambda c: self._migrate(c, schema))

    def tx(self) -> AbstractContextManager[Any]:
        return self.s.tx()

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self.s.one(sql, args)

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return self.s.all(sql, args)

    @staticmethod
    def _migrate(c, schema: str) -> None:
        """Bring the database to ``VERSION`` (in the transaction that made its schema)."""
        row = c.execute("SELECT version FROM schema_version WHERE id=1").fetchone()
        version = row["version"] if row is not None else 1
        if row is None:
            c.execute("INSERT INTO schema_version VALUES (1, 1)")
        for target, statements in MIGRATIONS:
            if version >= target:
                continue
            for stmt in statements:
                for part in (schema.split(";") if stmt == "@schema" else [stmt]):
                    if part.strip():
                        c.execute(part)
            c.execute("UPDATE schema_version SET version=? WHERE id=1", (target,))

    def close(self) -> None:
        self.s.close()

    def apply(self, batch: Iterable[tuple[str, str, bytes, float]], delays: list | None = None) -> Applied:
        """Apply received messages ``(store_id, subtopic, payload, received_at)`` in one transaction, each checked
        (``schema.parse``) and written in a savepoint of its own: a message that is invalid or fails to write is
        refused alone and the others go on. Only a store's own ``status`` makes it known to the fleet (the ACL
        lets nobody else write it); anything else from a store not known is refused. Duplicates (QoS 1 resends)
        are dropped by (store, event id). ``delays`` gets (``state``/``event``, ms from the message's time to
        its arrival) of each message not dated in the future."""
        out = Applied()
        with self.tx() as c:
            known: dict[str, bool] = {}
            for store_id, sub, payload, now in batch:
                try:
                    msg = parse(store_id, sub, payload, now)
                except Refused as e:
                    out.refused.append((store_id, e.reason))
                    self._note_refusal(c, store_id, str(e), known)
                    continue
                c.execute("SAVEPOINT msg")
                try:
                    if self._apply_one(c, msg, known):
                        out.applied += 1
                        out.clamped += msg.clamped
                        if delays is not None and msg.sub in ("state", "event") and not msg.clamped:
                            delays.append((msg.sub, max(0.0, (now - msg.body.t) * 1000)))
                    else:
                        out.refused.append((store_id, "unknown_store"))
                    c.execute("RELEASE SAVEPOINT msg")
                except Exception as e:  # (a value the database will not take): this message only
                    c.execute("ROLLBACK TO SAVEPOINT msg")
                    c.execute("RELEASE SAVEPOINT msg")
                    out.refused.append((store_id, "not_stored"))
                    self._note_refusal(c, store_id, f"not_stored: {type(e).__name__}: {e}"[:200], known)
        return out

    @staticmethod
    def _note_refusal(c, store_id: str, why: str, known: dict[str, bool]) -> None:
        """Count a refused message on its store's row (if the store is known): the page shows it."""
        if STORE_ID.fullmatch(store_id):
            c.execute("UPDATE stores SET refused = refused + 1, refused_last=? WHERE id=?", (why[:200], store_id))

    def _apply_one(self, c, msg: Message, known: dict[str, bool]) -> bool:
        sid, now = msg.store_id, msg.received_at
        if msg.sub == "status":
            c.execute("INSERT INTO stores (id, since, last_seen) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                      "last_seen=excluded.last_seen", (sid, now, now))
            c.execute("UPDATE stores SET online=?, since=CASE WHEN online=? THEN since ELSE ? END WHERE id=?",
                      (int(msg.online), int(msg.online), now, sid))
            known[sid] = True
            return True
        if sid not in known:
            known[sid] = c.execute("SELECT 1 FROM stores WHERE id=?", (sid,)).fetchone() is not None
        if not known[sid]:
            return False
        c.execute("UPDATE stores SET last_seen=? WHERE id=?", (now, sid))
        if msg.sub == "state":  # (never an older state over a newer one: shared subscriptions may reorder)
            c.execute("UPDATE stores SET state=?, state_t=?, open_alarms=? WHERE id=? AND "
                      "(state_t IS NULL OR state_t <= ?)", (msg.text, msg.t, msg.body.open_alarms, sid, msg.t))
        elif msg.sub == "metrics":
            c.execute("UPDATE stores SET metrics=? WHERE id=?", (msg.text, sid))
        elif msg.sub == "event":
            self._event_in(c, msg)
        elif msg.sub == "result":
            c.execute("UPDATE commands SET result=?, result_at=? WHERE tx=? AND store_id=? AND result IS NULL",
                      (msg.text, now, msg.body.tx, sid))
        return True

    @staticmethod
    def _event_in(c, msg: Message) -> None:
        ev, sid, now = msg.body, msg.store_id, msg.received_at
        late = int(ev.late or msg.clamped)
        if msg.kind == "alarm":
            a = alarm_data(msg)
            c.execute("INSERT INTO alarms (event_id, store_id, alarm_id, kind, device, t, data, received_at, "
                      "late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                      (ev.id, sid, a.alarm_id, a.alarm, a.device, msg.t, json.dumps(a.data, default=str), now, late))
        elif msg.kind == "alarm_cleared":
            a = alarm_data(msg)
            c.execute("UPDATE alarms SET cleared_at=?, cleared_by=? WHERE store_id=? AND alarm_id=? AND "
                      "cleared_at IS NULL", (msg.t, a.by, sid, a.alarm_id))
        elif msg.kind in ("review_opened", "review_decided"):
            r = review_data(msg)
            if msg.kind == "review_opened":
                c.execute("INSERT INTO reviews (store_id, visit_id, causes, opened_at) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT DO NOTHING", (sid, r.visit_id, json.dumps(r.causes), msg.t))
            else:
                c.execute("INSERT INTO reviews (store_id, visit_id, causes, opened_at, decided_at, decision) VALUES "
                          "(?, ?, ?, ?, ?, ?) ON CONFLICT (store_id, visit_id) DO UPDATE SET "
                          "decided_at=excluded.decided_at, decision=excluded.decision",
                          (sid, r.visit_id, json.dumps(r.causes), msg.t, msg.t, r.decision))
        c.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  (ev.id, sid, msg.kind, msg.t, json.dumps(ev.data, default=str), now, late))

    # reads for the page ---------------------------------------------------------------------------
    def summary(self, now: float) -> dict:
        row = self.one("SELECT count(*) AS n, coalesce(sum(online), 0) AS up FROM stores")
        alarms = self.one("SELECT count(*) AS n FROM alarms WHERE cleared_at IS NULL")["n"]
        return {"stores": row["n"], "online": row["up"], "offline": row["n"] - row["up"], "open_alarms": alarms,
                "t": now}

    def stores(self, text: str = "", status: str = "", state: str = "", limit: int = 200) -> list[dict]:
        """Stores matching the filters: open alarms first, then offline, then by id."""
        sql = ("SELECT s.*, coalesce(a.n, 0) AS open_n FROM stores s LEFT JOIN (SELECT store_id, count(*) AS n "
               "FROM alarms WHERE cleared_at IS NULL GROUP BY store_id) a ON a.store_id = s.id WHERE 1=1")
        args: list = []
        if text:
            sql, args = sql + " AND s.id LIKE ?", [*args, f"%{text}%"]
        if status in ("online", "offline"):
            sql, args = sql + " AND s.online=?", [*args, int(status == "online")]
        if state:
            sql, args = sql + f" AND {self.s.json_text('s.state', 'state')}=?", [*args, state]
        out = []
        for r in self.all(sql + " ORDER BY open_n DESC, s.online ASC, s.id LIMIT ?", (*args, limit)):
            st = json.loads(r["state"]) if r["state"] else {}
            out.append({"id": r["id"], "online": bool(r["online"]), "since": r["since"], "last_seen": r["last_seen"],
                        "state": st.get("state"), "what_works": st.get("what_works"), "inside": st.get("inside"),
                        "doors": st.get("doors") or {}, "problems": st.get("problems") or [],
                        "charges_pending": st.get("charges_pending"), "gateway_up": st.get("gateway_up"),
                        "reviews_open": st.get("reviews_open", 0), "review_rate": st.get("review_rate", 0.0),
                        "restock": st.get("restock") or [], "off_sale_zones": st.get("off_sale_zones") or [],
                        "state_t": r["state_t"], "open_alarms": r["open_n"], "refused": r["refused"],
                        "refused_last": r["refused_last"]})
        return out

    def reviews_page(self, limit: int = 50) -> dict:
        """The chain's review queue: visits a store was not sure of and no operator has decided yet, oldest first
        (each with how many its store has open), and how many are open in all."""
        rows = self.all("SELECT r.*, (SELECT count(*) FROM reviews o WHERE o.store_id = r.store_id AND "
                        "o.decided_at IS NULL) AS store_open FROM reviews r WHERE r.decided_at IS NULL "
                        "ORDER BY r.opened_at LIMIT ?", (limit,))
        total = self.one("SELECT count(*) AS n FROM reviews WHERE decided_at IS NULL")["n"]
        return {"open": total, "oldest": [{"store_id": r["store_id"], "visit_id": r["visit_id"],
                                           "causes": json.loads(r["causes"]), "opened_at": r["opened_at"],
                                           "store_open": r["store_open"]} for r in rows]}

    def review_evidence(self, store_id: str, visit_id: str) -> dict | None:
        """What the store sent of a reviewed visit (its review_opened event: causes and evidence), or None."""
        row = self.one("SELECT data, t FROM events WHERE store_id=? AND kind='review_opened' AND data LIKE ? "
                       "ESCAPE '\\' ORDER BY received_at DESC LIMIT 1",
                       (store_id, f'%"visit_id": "{_like(visit_id)}"%'))
        if row is None:
            return None
        data = json.loads(row["data"])
        if data.get("visit_id") != visit_id:
            return None
        return {"store_id": store_id, "visit_id": visit_id, "opened_at": row["t"], "causes": data.get("causes", []),
                "evidence": data.get("evidence") or {}}

    def alarms_page(self, limit: int = 50, per_store: int = 3) -> list[dict]:
        """The newest open alarms for the page, at most ``per_store`` of each store (each row says how many its
        store has open): one store's flood of alarms cannot push every other store's off the page."""
        rows = self.all("SELECT * FROM (SELECT a.*, ROW_NUMBER() OVER (PARTITION BY store_id ORDER BY t DESC) AS rn, "
                        "COUNT(*) OVER (PARTITION BY store_id) AS store_open FROM alarms a WHERE cleared_at IS NULL) "
                        "x WHERE rn <= ? ORDER BY t DESC LIMIT ?", (per_store, limit))
        return [{**{k: v for k, v in dict(r).items() if k != "rn"}, "data": json.loads(r["data"]),
                 "late": bool(r["late"])} for r in rows]

    def alarms(self, open_only: bool = True, store_id: str = "", limit: int = 100) -> list[dict]:
        sql, args = "SELECT * FROM alarms WHERE 1=1", list[Any]()
        if open_only:
            sql += " AND cleared_at IS NULL"
        if store_id:
            sql, args = sql + " AND store_id=?", [*args, store_id]
        rows = self.all(sql + " ORDER BY t DESC LIMIT ?", (*args, limit))
        return [{**dict(r), "data": json.loads(r["data"]), "late": bool(r["late"])} for r in rows]

    def store(self, store_id: str) -> dict | None:
        r = self.one("SELECT * FROM stores WHERE id=?", (store_id,))
        if r is None:
            return None
        return {"id": r["id"], "online": bool(r["online"]), "since": r["since"], "last_seen": r["last_seen"],
                "state": json.loads(r["state"]) if r["state"] else None,
                "metrics": json.loads(r["metrics"]) if r["metrics"] else None,
                "alarms": self.alarms(False, store_id, 50),
                "events": [{**dict(e), "data": json.loads(e["data"])} for e in self.all(
                    "SELECT * FROM events WHERE store_id=? ORDER BY received_at DESC LIMIT 50", (store_id,))]}

    # commands and audit ------------------------------------------------------------------------------
    def command_sent(self, tx: str, store_id: str, name: str, args: dict, operator: str) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO commands (tx, store_id, name, args, operator, sent_at) VALUES (?, ?, ?, ?, ?, ?)",
                      (tx, store_id, name, json.dumps(args), operator, time.time()))

    def command_result(self, tx: str) -> dict | None:
        r = self.one("SELECT result FROM commands WHERE tx=?", (tx,))
        return json.loads(r["result"]) if r and r["result"] else None

    def prune(self, now: float, limit: int = 5000) -> dict[str, int]:
        """Retention, a bounded batch each call: events after ``KEEP_EVENTS_S``, cleared alarms after
        ``KEEP_ALARMS_S``, audit rows after a year."""
        with self.tx() as c:
            return {
                "events": c.execute("DELETE FROM events WHERE received_at < ?", (now - KEEP_EVENTS_S,)).rowcount,
                "alarms": c.execute("DELETE FROM alarms WHERE cleared_at IS NOT NULL AND cleared_at < ?",
                                    (now - KEEP_ALARMS_S,)).rowcount,
                "audit": c.execute("DELETE FROM audit WHERE t < ?", (now - KEEP_ALARMS_S,)).rowcount,
            }



def _like(text: str) -> str:
    """``text`` inside a LIKE pattern (``ESCAPE '\\'``): its wildcards and quotes taken literally."""
    return "".join("\\" + ch if ch in "%_\\" else ch for ch in text if ch != '"')
