"""The durable queue of events that matter, in the journal: alarms, charge outcomes and visits ended are collected
from the journal's own tables into ``mqtt_outbox`` (cursors advanced in the same transaction), device faults are
added by the link; a row leaves the queue only when the broker has acknowledged it (QoS 1). A broker outage loses
nothing: rows wait, and go out late, in order, marked ``late``."""

from __future__ import annotations

import json
import sqlite3
import time

from ..domain.visit import FINAL
from ..journal import Journal

_FINAL = tuple(str(s) for s in FINAL)
_OUTCOMES = ("succeeded", "declined", "failed", "canceled")
PERSONAL = ("account", "accounts", "account_id")  # never in an event: the fleet sees stores, not shoppers


def _clean(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in PERSONAL}


def add_in(c: sqlite3.Connection, kind: str, t: float, data: dict) -> None:
    c.execute("INSERT INTO mqtt_outbox (kind, t, data) VALUES (?, ?, ?)", (kind, t, json.dumps(data, default=str)))


def add(journal: Journal, kind: str, t: float, data: dict) -> None:
    with journal.tx() as c:
        add_in(c, kind, t, data)


def collect(journal: Journal, now: float | None = None, limit: int = 500) -> int:
    """Move what happened since the cursors into the queue; the number of events queued. The first call on a
    journal starts the cursors at now (history is not replayed)."""
    now = now or time.time()
    with journal.tx() as c:
        cur = {r["name"]: (r["t"], r["row"]) for r in c.execute("SELECT name, t, row FROM mqtt_cursor")}
        if not cur:
            top = c.execute("SELECT coalesce(max(id), 0) FROM alarms").fetchone()[0]
            c.executemany("INSERT INTO mqtt_cursor VALUES (?, ?, ?)",
                          [("alarm", 0.0, top), ("charge", now, 0), ("visit", now, 0), ("cleared", now, 0)])
            return 0
        cur.setdefault("cleared", (now, 0))
        c.execute("INSERT OR IGNORE INTO mqtt_cursor VALUES ('cleared', ?, 0)", (now,))
        n = 0
        last = cur["alarm"]
        for r in c.execute("SELECT id, t, kind, device, data FROM alarms WHERE id > ? ORDER BY id LIMIT ?",
                           (last[1], limit)).fetchall():
            add_in(c, "alarm", r["t"], {"alarm_id": r["id"], "alarm": r["kind"], "device": r["device"],
                                        "data": _clean(json.loads(r["data"]))})
            last, n = (r["t"], r["id"]), n + 1
        c.execute("UPDATE mqtt_cursor SET t=?, row=? WHERE name='alarm'", last)
        last = cur["cleared"]
        rows = c.execute("SELECT id, cleared_at, cleared_by FROM alarms WHERE cleared_at IS NOT NULL AND "
                         "(cleared_at > ? OR (cleared_at = ? AND id > ?)) ORDER BY cleared_at, id LIMIT ?",
                         (last[0], last[0], last[1], limit)).fetchall()
        for r in rows:
            add_in(c, "alarm_cleared", r["cleared_at"], {"alarm_id": r["id"], "by": r["cleared_by"]})
            last, n = (r["cleared_at"], r["id"]), n + 1
        c.execute("UPDATE mqtt_cursor SET t=?, row=? WHERE name='cleared'", last)
        last = cur["charge"]
        marks = ",".join("?" * len(_OUTCOMES))
        rows = c.execute(f"SELECT id, visit_id, amount_fen, state, reason, attempts, updated_at FROM charge_intents "
                         f"WHERE state IN ({marks}) AND (updated_at > ? OR (updated_at = ? AND id > ?)) "
                         "ORDER BY updated_at, id LIMIT ?", (*_OUTCOMES, last[0], last[0], last[1], limit)).fetchall()
        for r in rows:
            add_in(c, "charge", r["updated_at"], {"intent": r["id"], "visit_id": r["visit_id"], "outcome": r["state"],
                                                  "amount_fen": r["amount_fen"], "reason": r["reason"],
                                                  "attempts": r["attempts"]})
            last, n = (r["updated_at"], r["id"]), n + 1
        c.execute("UPDATE mqtt_cursor SET t=?, row=? WHERE name='charge'", last)
        last = cur["visit"]
        marks = ",".join("?" * len(_FINAL))
        rows = c.execute(f"SELECT rowid, id, state, amount_fen, entered_at, left_at, flags, updated_at FROM visits "
                         f"WHERE state IN ({marks}) AND (updated_at > ? OR (updated_at = ? AND rowid > ?)) "
                         "ORDER BY updated_at, rowid LIMIT ?", (*_FINAL, last[0], last[0], last[1], limit)).fetchall()
        for r in rows:
            add_in(c, "visit_ended", r["updated_at"], {"visit_id": r["id"], "state": r["state"],
                                                       "amount_fen": r["amount_fen"], "entered_at": r["entered_at"],
                                                       "left_at": r["left_at"], "flags": json.loads(r["flags"])})
            last, n = (r["updated_at"], r["rowid"]), n + 1
        c.execute("UPDATE mqtt_cursor SET t=?, row=? WHERE name='visit'", last)
    return n


def due(journal: Journal, after: int, limit: int = 100) -> list[dict]:
    """Queued events after row ``after``, oldest first."""
    return [{"id": r["id"], "kind": r["kind"], "t": r["t"], "data": json.loads(r["data"])} for r in journal.all(
        "SELECT id, kind, t, data FROM mqtt_outbox WHERE id > ? ORDER BY id LIMIT ?", (after, limit))]


def done(journal: Journal, row_ids: list[int]) -> None:
    if row_ids:
        with journal.tx() as c:
            c.execute(f"DELETE FROM mqtt_outbox WHERE id IN ({','.join('?' * len(row_ids))})", row_ids)


def backlog(journal: Journal) -> int:
    return int(journal.one("SELECT count(*) FROM mqtt_outbox")[0])
