"""The durable queue of events that matter, in the journal: alarms, charge outcomes and visits ended are collected
from the journal's own tables into ``mqtt_outbox`` (cursors advanced in the same transaction), device faults are
added by the link; a row leaves the queue only when the broker has acknowledged it (QoS 1). A broker outage loses
nothing: rows wait, and go out late, in order, marked ``late``."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time

from ..domain.visit import FINAL
from ..journal import Journal
from . import evidence

_FINAL = tuple(str(s) for s in FINAL)
_OUTCOMES = ("succeeded", "declined", "failed", "canceled")
PERSONAL = ("account", "accounts", "account_id")  # never in an event: the fleet sees stores, not shoppers
MAX_ROWS = 50_000  # events waiting for the broker (a week's outage of a busy store is ~10 000)
MAX_AGE_S = 30 * 86_400  # older than this the fleet refuses them anyway


def _clean(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in PERSONAL}


def add_in(c: sqlite3.Connection, kind: str, t: float, data: dict) -> None:
    c.execute("INSERT INTO mqtt_outbox (kind, t, data) VALUES (?, ?, ?)", (kind, t, json.dumps(data, default=str)))


def add(journal: Journal, kind: str, t: float, data: dict) -> None:
    with journal.tx() as c:
        add_in(c, kind, t, data)


def _alarm(r) -> dict:
    return {"alarm_id": r["id"], "alarm": r["kind"], "device": r["device"], "data": _clean(json.loads(r["data"]))}


def _charge(r) -> dict:
    return {"intent": r["id"], "visit_id": r["visit_id"], "outcome": r["state"], "amount_fen": r["amount_fen"],
            "reason": r["reason"], "attempts": r["attempts"]}


def _visit(r) -> dict:
    return {"visit_id": r["id"], "state": r["state"], "amount_fen": r["amount_fen"], "entered_at": r["entered_at"],
            "left_at": r["left_at"], "flags": json.loads(r["flags"])}


_OUT, _DONE = ",".join("?" * len(_OUTCOMES)), ",".join("?" * len(_FINAL))
# cursor → (event kind, columns, table and filter, its filter's arguments, time column, row column, payload):
# rows after the cursor (time, row) in that order (alarms: after the row, their times need not rise with it)
SOURCES = {
    "alarm": ("alarm", "id, t, kind, device, data", "alarms WHERE 1=1", (), None, "id", _alarm),  # by id alone
    "cleared": ("alarm_cleared", "id, cleared_at, cleared_by", "alarms WHERE cleared_at IS NOT NULL", (),
                "cleared_at", "id", lambda r: {"alarm_id": r["id"], "by": r["cleared_by"]}),
    "charge": ("charge", "id, visit_id, amount_fen, state, reason, attempts, updated_at",
               f"charge_intents WHERE state IN ({_OUT})", _OUTCOMES, "updated_at", "id", _charge),
    "visit": ("visit_ended", "rowid, id, state, amount_fen, entered_at, left_at, flags, updated_at",
              f"visits WHERE state IN ({_DONE})", _FINAL, "updated_at", "rowid", _visit),
    "review": ("review_opened", "rowid, visit_id, causes, opened_at", "reviews WHERE 1=1", (), "opened_at", "rowid",
               lambda r: {"visit_id": r["visit_id"], "causes": json.loads(r["causes"])}),
    "decided": ("review_decided", "rowid, visit_id, causes, decision, reason, operator, amount_fen, decided_at",
                "reviews WHERE state='decided'", (), "decided_at", "rowid",
                lambda r: {"visit_id": r["visit_id"], "causes": json.loads(r["causes"]), "decision": r["decision"],
                           "reason": r["reason"], "operator": r["operator"], "amount_fen": r["amount_fen"]}),
}


def collect(journal: Journal, now: float | None = None, limit: int = 500) -> int:
    """Move what happened since the cursors into the queue; the number of events queued. The first call on a
    journal starts the cursors at now (history is not replayed). Only the link's thread moves the cursors: it reads
    first and writes (one durable commit) only when something happened — an idle store costs no commit."""
    now = now or time.time()
    cur = {r["name"]: (r["t"], r["row"]) for r in journal.all("SELECT name, t, row FROM mqtt_cursor")}
    if not cur:
        with journal.tx() as c:
            top = c.execute("SELECT coalesce(max(id), 0) FROM alarms").fetchone()[0]
            c.executemany("INSERT INTO mqtt_cursor VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING",
                          [(name, 0.0, top) if name == "alarm" else (name, now, 0) for name in SOURCES]
                          + [("epoch", now, secrets.randbelow(2**31))])
        return 0
    found = []
    for name, (kind, cols, where, args, tcol, rcol, payload) in SOURCES.items():
        last = cur.get(name, (now, 0))
        if tcol is None:
            rows = journal.all(f"SELECT {cols} FROM {where} AND {rcol} > ? ORDER BY {rcol} LIMIT ?",
                               (*args, last[1], limit))
        else:
            rows = journal.all(f"SELECT {cols} FROM {where} AND ({tcol} > ? OR ({tcol} = ? AND {rcol} > ?)) "
                               f"ORDER BY {tcol}, {rcol} LIMIT ?", (*args, last[0], last[0], last[1], limit))
        if rows:
            events = [(kind, r["t"] if tcol is None else r[tcol], payload(r)) for r in rows]
            if kind == "review_opened":  # (the evidence one click away on the fleet page, nobody named)
                for _, _, data in events:
                    data["evidence"] = evidence.digest(journal, data["visit_id"])
            found.append((name, events, (0.0 if tcol is None else rows[-1][tcol], rows[-1][rcol])))
    if not found:
        return 0
    with journal.tx() as c:
        for name, events, last in found:
            for kind, t, data in events:
                add_in(c, kind, t, data)
            c.execute("INSERT INTO mqtt_cursor VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET t=excluded.t, "
                      "row=excluded.row", (name, *last))
    return sum(len(events) for _, events, _ in found)


def epoch(journal: Journal) -> int:
    """This journal's mark in event ids (rows are numbered per journal: a new journal must not reuse old ids)."""
    row = journal.one("SELECT row FROM mqtt_cursor WHERE name='epoch'")
    return int(row["row"]) if row else 0


def due(journal: Journal, after: int, limit: int = 100) -> list[dict]:
    """Queued events after row ``after``, oldest first."""
    return [{"id": r["id"], "kind": r["kind"], "t": r["t"], "data": json.loads(r["data"])} for r in journal.all(
        "SELECT id, kind, t, data FROM mqtt_outbox WHERE id > ? ORDER BY id LIMIT ?", (after, limit))]


def done(journal: Journal, row_ids: list[int]) -> None:
    if row_ids:
        with journal.tx() as c:
            c.execute(f"DELETE FROM mqtt_outbox WHERE id IN ({','.join('?' * len(row_ids))})", row_ids)


def backlog(journal: Journal) -> int:
    row = journal.one("SELECT count(*) FROM mqtt_outbox")
    return int(row[0]) if row else 0


def prune(journal: Journal, now: float, max_rows: int = MAX_ROWS, max_age_s: float = MAX_AGE_S) -> int:
    """Bound the queue (a broker gone for weeks must not fill the disk the exit's charges need): events older than
    ``max_age_s``, then beyond ``max_rows`` the oldest — alarms last. Returns the events dropped (read first: no
    write when nothing is over)."""
    row = journal.one("SELECT count(*), min(t) FROM mqtt_outbox")
    n, oldest = (row[0], row[1]) if row else (0, None)
    if n <= max_rows and (oldest is None or oldest >= now - max_age_s):
        return 0
    with journal.tx() as c:
        gone = c.execute("DELETE FROM mqtt_outbox WHERE t < ?", (now - max_age_s,)).rowcount
        over = c.execute("SELECT count(*) FROM mqtt_outbox").fetchone()[0] - max_rows
        if over > 0:
            gone += c.execute("DELETE FROM mqtt_outbox WHERE id IN (SELECT id FROM mqtt_outbox ORDER BY "
                              "kind = 'alarm', id LIMIT ?)", (over,)).rowcount
    return gone

