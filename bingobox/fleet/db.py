"""The fleet service's state (a SQLite file, or PostgreSQL given a DSN: ``sql``): each store's latest state and
since when it is online or offline, the alarm history (open first), recent events, commands sent with their
results, and the fleet operators' audit log. Messages are applied in batches (one transaction per batch:
thousands of stores' telemetry per second)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from .sql import open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS stores (id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, since FLOAT8 NOT NULL,
  last_seen FLOAT8 NOT NULL, state TEXT, state_t FLOAT8, metrics TEXT, open_alarms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS alarms (event_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, alarm_id INTEGER,
  kind TEXT NOT NULL, device TEXT, t FLOAT8 NOT NULL, data TEXT NOT NULL, received_at FLOAT8 NOT NULL,
  late INTEGER NOT NULL, cleared_at FLOAT8, cleared_by TEXT);
CREATE INDEX IF NOT EXISTS alarms_open ON alarms (cleared_at, t);
CREATE INDEX IF NOT EXISTS alarms_store ON alarms (store_id, alarm_id);
CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, kind TEXT NOT NULL,
  t FLOAT8 NOT NULL, data TEXT NOT NULL, received_at FLOAT8 NOT NULL, late INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_t ON events (received_at);
CREATE TABLE IF NOT EXISTS commands (tx TEXT PRIMARY KEY, store_id TEXT NOT NULL, name TEXT NOT NULL,
  args TEXT NOT NULL, operator TEXT NOT NULL, sent_at FLOAT8 NOT NULL, result TEXT, result_at FLOAT8);
CREATE TABLE IF NOT EXISTS audit (id {serial}, t FLOAT8 NOT NULL, operator TEXT, action TEXT NOT NULL,
  args TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT, source TEXT);
"""
KEEP_EVENTS_S = 7 * 86_400


class FleetDB:
    def __init__(self, target) -> None:
        """``target``: a SQLite file, or a PostgreSQL DSN (postgresql://user@host/db)."""
        from .sql import is_dsn

        serial = "BIGSERIAL PRIMARY KEY" if is_dsn(str(target)) else "INTEGER PRIMARY KEY"
        self.s = open_store(str(target), SCHEMA.replace("{serial}", serial))
        self.tx, self.one, self.all = self.s.tx, self.s.one, self.s.all

    def close(self) -> None:
        self.s.close()

    def apply(self, batch: Iterable[tuple[str, str, bytes, float]], delays: list | None = None) -> int:
        """Apply received messages ``(store_id, subtopic, payload, received_at)`` in one transaction; the number
        applied. Duplicates (QoS 1 resends) are dropped by event id. ``delays`` gets (``state``/``event``, ms from
        the message's time to its arrival) of each, from the JSON parsed here."""
        n = 0
        with self.tx() as c:
            for store_id, sub, payload, now in batch:
                n += 1
                c.execute("INSERT INTO stores (id, since, last_seen) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                          "last_seen=excluded.last_seen", (store_id, now, now))
                if sub == "status":
                    online = payload == b"online"
                    c.execute("UPDATE stores SET online=?, since=CASE WHEN online=? THEN since ELSE ? END WHERE id=?",
                              (int(online), int(online), now, store_id))
                    continue
                try:
                    body = json.loads(payload) if payload else None
                except ValueError:
                    continue
                if not isinstance(body, dict):
                    continue
                if delays is not None and (sub == "state" or sub.startswith("event/")) \
                        and isinstance(body.get("t"), int | float):
                    delays.append(("state" if sub == "state" else "event", max(0.0, (now - body["t"]) * 1000)))
                if sub == "state":  # (never an older state over a newer one: shared subscriptions may reorder)
                    t = body.get("t") if isinstance(body.get("t"), int | float) else now
                    c.execute("UPDATE stores SET state=?, state_t=?, open_alarms=? WHERE id=? AND "
                              "(state_t IS NULL OR state_t <= ?)",
                              (payload.decode(), t, int(body.get("open_alarms") or 0), store_id, t))
                elif sub == "metrics":
                    c.execute("UPDATE stores SET metrics=? WHERE id=?", (payload.decode(), store_id))
                elif sub.startswith("event/"):
                    self._event_in(c, store_id, sub[6:], body, now)
                elif sub.startswith("cmd/") and sub.endswith("/result") and isinstance(body.get("tx"), str):
                    c.execute("UPDATE commands SET result=?, result_at=? WHERE tx=? AND store_id=? AND result IS NULL",
                              (payload.decode(), now, body["tx"], store_id))
        return n

    @staticmethod
    def _event_in(c, store_id: str, kind: str, ev: dict, now: float) -> None:
        eid, t, data = str(ev.get("id") or ""), float(ev.get("t") or now), ev.get("data") or {}
        if not eid:
            return
        late = int(bool(ev.get("late")))
        if kind == "alarm":
            c.execute("INSERT INTO alarms (event_id, store_id, alarm_id, kind, device, t, data, received_at, "
                      "late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                      (eid, store_id, data.get("alarm_id"), str(data.get("alarm") or "alarm"), data.get("device"),
                       t, json.dumps(data.get("data") or {}), now, late))
        elif kind == "alarm_cleared":
            c.execute("UPDATE alarms SET cleared_at=?, cleared_by=? WHERE store_id=? AND alarm_id=? AND "
                      "cleared_at IS NULL", (t, data.get("by"), store_id, data.get("alarm_id")))
        c.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  (eid, store_id, kind, t, json.dumps(data), now, late))

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
                        "state_t": r["state_t"], "open_alarms": r["open_n"]})
        return out

    def alarms(self, open_only: bool = True, store_id: str = "", limit: int = 100) -> list[dict]:
        sql, args = "SELECT * FROM alarms WHERE 1=1", []
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

    def audit(self, operator: str | None, action: str, args: dict, outcome: str, detail: str = "",
              source: str = "") -> int:
        with self.tx() as c:
            return int(c.execute("INSERT INTO audit (t, operator, action, args, outcome, detail, source) VALUES "
                                 "(?, ?, ?, ?, ?, ?, ?) RETURNING id", (time.time(), operator, action,
                                                                        json.dumps(args), outcome, detail,
                                                                        source)).fetchone()["id"])

    def set_audit_outcome(self, audit_id: int, outcome: str, detail: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE audit SET outcome=?, detail=? WHERE id=?", (outcome, detail, audit_id))

    def recent_audit(self, limit: int = 30) -> list[dict]:
        return [{**dict(r), "args": json.loads(r["args"])} for r in self.all(
            "SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))]

    def prune(self, now: float) -> int:
        with self.tx() as c:
            return c.execute("DELETE FROM events WHERE received_at < ?", (now - KEEP_EVENTS_S,)).rowcount
