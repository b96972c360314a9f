"""What the store tells the wallet about a shopper, read from (and erased in) the journal: each visit's record for the
shopper's receipt (with how the store decided), everything the store holds about an account, erasure, and the
disputes operators decide. Plain functions over a ``Journal``; no network here (``sync`` does that)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from ..domain.catalog import Catalog
from ..domain.visit import FINAL, LEAVING
from ..journal import Journal

_FINAL = tuple(str(s) for s in FINAL)
MAX_EVENTS = 150  # per report: the first 100 and the last 50
MAX_REPORT_BYTES = 900 * 1024  # the gateway takes a visit record up to 1 MiB: past this the raw events stay home
FACE_TEMPLATES = ("none on disk: face templates live only in the store box's memory during a visit, and are "
                  "dropped when the shopper leaves or withdraws consent")


def _last(events: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((e["data"] for e in reversed(events) if e["kind"] == kind), None)


def summary(rec: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """The receipt's view of a visit record: lines with the readers that saw each item taken, how the shopper was
    identified at the exit, what the exit reader read, and the charge intents."""
    events = rec.get("events") or []
    lines = ((_last(events, "receipt") or _last(events, "basket") or {}).get("lines")) or []
    items = []
    seen: dict[str, dict[str, int]] = {}
    for epc, source in sorted((rec.get("basket") or {}).items()):
        p = catalog.lookup(epc)
        sku = p.sku if p else None
        items.append({"epc": epc, "sku": sku, "name": p.name if p else "(not in the catalog: not charged)",
                      "seen_by": source})
        per = seen.setdefault(sku or "", {})
        per[source] = per.get(source, 0) + 1
    ident = _last(events, "identified")
    inv = _last(events, "exit_inventory")
    return {
        "state": rec.get("state"), "entered_at": rec.get("entered_at"), "left_at": rec.get("left_at"),
        "lines": [{**li, "seen_by": seen.get(li.get("sku", ""), {})} for li in lines], "items": items,
        "total_fen": rec.get("amount_fen"),
        "identified": None if ident is None else {k: ident.get(k) for k in ("by", "distance", "margin", "recovery")
                                                  if ident.get(k) is not None},
        "exit_reader": None if inv is None else {"read": len(inv.get("epcs", [])), "added": inv.get("added", []),
                                                 "not_carried_out": inv.get("not_carried_out", [])},
        "flags": rec.get("flags") or [], "charges": rec.get("charges") or [],
        "review": None if (rv := _last(events, "review_decided")) is None else {
            k: rv.get(k) for k in ("decision", "reason", "amount_fen")},
        "group": (_last(events, "receipt") or {}).get("group") or (
            {"people": rec["group_size"]} if (rec.get("group_size") or 1) > 1 else None),
    }


def _trimmed(rec: dict[str, Any]) -> dict[str, Any]:
    events = rec.get("events") or []
    if len(events) <= MAX_EVENTS:
        return rec
    kept = [*events[:100], {"t": events[100]["t"], "kind": "omitted", "data": {"events": len(events) - 150}},
            *events[-50:]]
    return {**rec, "events": kept}


# reports ---------------------------------------------------------------------------------------------
_LEAVING = tuple(str(s) for s in LEAVING)


def due_reports(journal: Journal, since: float, limit: int = 20) -> list[tuple[str, float]]:
    """(visit, updated_at) of visits changed since their last report (oldest first), from ``since`` on. A visit
    at the exit is not reported until it ends: its checkout is the store's critical moment (nothing is read or sent
    for it then), and "identified, charging" is nothing a shopper waits for."""
    rows = journal.all(f"SELECT v.id, v.updated_at FROM visits v LEFT JOIN visit_reports r ON r.visit_id = v.id "
                       f"WHERE v.updated_at >= ? AND v.state NOT IN ({','.join('?' * len(_LEAVING))}) AND "
                       "(r.visit_id IS NULL OR (r.gone = 0 AND r.sent_updated_at < v.updated_at)) "
                       "ORDER BY v.updated_at LIMIT ?", (since, *_LEAVING, limit))
    return [(r["id"], r["updated_at"]) for r in rows]


def report(journal: Journal, catalog: Catalog, visit_id: str) -> dict[str, Any] | None:
    """The body of ``PUT /v1/visits/{id}``: the record, its summary, the codes it used."""
    rec = journal.visit_record(visit_id)
    if rec is None:
        return None
    events = rec["events"]
    jtis = sorted({e["data"]["jti"] for e in events if isinstance(e["data"].get("jti"), str)})[:20]
    body = {"account_id": rec["account_id"], "state": rec["state"], "final": rec["state"] in _FINAL,
            "updated_at": rec["updated_at"], "jtis": jtis,
            "record": {"summary": summary(rec, catalog), **_trimmed(rec)}}
    if len(json.dumps(body, separators=(",", ":"), default=str)) > MAX_REPORT_BYTES:
        # a basket of thousands: the receipt (summary) goes, the raw evidence stays in the store (My data asks it)
        body["record"] = {"summary": body["record"]["summary"], "id": rec["id"], "state": rec["state"],
                          "events_omitted": len(events), "note": "too large to send: ask the store (My data)"}
    return body


def mark_reported(journal: Journal, visit_id: str, updated_at: float, gone: bool = False) -> None:
    with journal.tx() as c:
        c.execute("INSERT INTO visit_reports VALUES (?, ?, ?) ON CONFLICT(visit_id) DO UPDATE SET "
                  "sent_updated_at=max(sent_updated_at, excluded.sent_updated_at), gone=max(gone, excluded.gone)",
                  (visit_id, updated_at, int(gone)))


# an account's data -----------------------------------------------------------------------------------
def _mentions(conn: sqlite3.Connection, table: str, column: str, needles: list[str],
              limit: int = 500) -> list[dict[str, Any]]:
    if not needles:
        return []
    where = " OR ".join(f"{column} LIKE ?" for _ in needles)
    rows = conn.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY id LIMIT ?",
                        (*[f"%{n}%" for n in needles], limit)).fetchall()
    return [dict(r) for r in rows]


def account_data(journal: Journal, account: str, reader: sqlite3.Connection) -> dict[str, Any]:
    """Everything this store's journal holds about ``account``. The scans of whole tables (refusals, alarms, the
    audit log: hundreds of milliseconds on a busy store's journal) run on ``reader`` (``journal.reader()``), not
    behind the journal's lock the control loop commits through."""
    visit_ids = [r["id"] for r in reader.execute("SELECT id FROM visits WHERE account_id=? ORDER BY created_at",
                                                 (account,))]
    refusals = [{**dict(r), "data": json.loads(r["data"])} for r in reader.execute(
        "SELECT t, kind, data FROM visit_events WHERE visit_id IS NULL AND data LIKE ? ORDER BY id LIMIT 500",
        (f"%{account}%",))]
    return {
        "visits": [journal.visit_record(v) for v in visit_ids],
        "charge_intents": [dict(r) for r in reader.execute("SELECT * FROM charge_intents WHERE account_id=? "
                                                           "ORDER BY id", (account,))],
        "refused_codes_and_other_evidence": refusals,
        "alarms": _mentions(reader, "alarms", "data", [account, *visit_ids[-200:]]),
        "operator_actions": _mentions(reader, "audit", "args", [account, *visit_ids[-200:]]),
        "disputes": [dict(r) for r in reader.execute("SELECT * FROM disputes WHERE account_id=? ORDER BY seen_at",
                                                     (account,))],
        "face_templates": FACE_TEMPLATES,
    }


MAX_ANSWER_BYTES = 3_500_000  # the gateway takes an answer up to 4 MiB


def fitted(data: dict[str, Any], budget: int = MAX_ANSWER_BYTES) -> dict[str, Any]:
    """An export that fits the gateway: past ``budget`` the visits keep their rows and lose their evidence rows,
    oldest first (what was left out is counted, and the operator can hand it over from the journal)."""
    size = len(json.dumps(data, separators=(",", ":"), default=str))
    if size <= budget:
        return data
    visits, left_out = [dict(v) for v in data["visits"]], 0
    for v in visits:
        if size <= budget:
            break
        cut = len(json.dumps(v.get("events") or [], separators=(",", ":"), default=str))
        left_out += len(v.get("events") or [])
        v["events"], size = [], size - cut
    return {**data, "visits": visits, "evidence_rows_left_out": left_out,
            "note": "too much to send at once: the oldest visits' evidence rows are left out; ask the store"}


def erase_account(journal: Journal, account: str) -> dict[str, Any] | str:
    """Erase ``account``'s evidence from the journal; what was erased and kept, or why not now (a visit or a charge
    of theirs still open: the request is answered once it is settled)."""
    if journal.one(f"SELECT 1 FROM visits WHERE account_id=? AND state NOT IN ({','.join('?' * len(_FINAL))})",
                   (account, *_FINAL)):
        return "a visit of this account is open"
    if journal.one("SELECT 1 FROM charge_intents WHERE account_id=? AND state IN ('pending', 'paying')", (account,)):
        return "a charge of this account is in progress"
    with journal.tx() as c:
        ids = [r[0] for r in c.execute("SELECT id FROM visits WHERE account_id=?", (account,))]
        marks = ",".join("?" * len(ids))
        events = c.execute(f"DELETE FROM visit_events WHERE visit_id IN ({marks})", ids).rowcount if ids else 0
        baskets = c.execute("UPDATE visits SET basket='{}', taken='{}' WHERE account_id=?", (account,)).rowcount
        refusals = c.execute("DELETE FROM visit_events WHERE visit_id IS NULL AND data LIKE ?",
                             (f"%{account}%",)).rowcount
        alarms = c.execute("UPDATE alarms SET data=replace(data, ?, '(erased)') WHERE data LIKE ?",
                           (account, f"%{account}%")).rowcount
        audit = c.execute("UPDATE audit SET args=replace(args, ?, '(erased)') WHERE args LIKE ?",
                          (account, f"%{account}%")).rowcount
        disputes = c.execute("UPDATE disputes SET data='{}' WHERE account_id=?", (account,)).rowcount
        for vid in ids:
            c.execute("INSERT INTO visit_reports VALUES (?, ?, 1) ON CONFLICT(visit_id) DO UPDATE SET gone=1",
                      (vid, time.time()))
    return {"erased": {"visit_evidence_rows": events, "visit_baskets": baskets, "refused_codes": refusals,
                       "alarm_mentions": alarms, "audit_mentions": audit, "dispute_notes": disputes},
            "kept": "visit rows and charge intents (times, amounts, receipt lines) under the account number: the "
                    "ledger must keep amounts; nothing else names the account",
            "face_templates": FACE_TEMPLATES}


# disputes, as the operators see them -------------------------------------------------------------------------
def sync_disputes(journal: Journal, open_at_gateway: list[dict[str, Any]], complete: bool = True,
                  now: float | None = None) -> None:
    """Keep the gateway's open disputes of this store; one open here but no longer there was decided elsewhere
    (``complete``: the list holds every open one — a page of them closes nothing)."""
    now = now or time.time()
    ids = {d["id"] for d in open_at_gateway}
    with journal.tx() as c:
        for d in open_at_gateway:
            c.execute("INSERT INTO disputes (id, visit_id, account_id, charge_id, claimed_fen, data, state, seen_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, 'open', ?) ON CONFLICT(id) DO NOTHING",
                      (d["id"], d["visit_id"], d["account_id"], d["charge_id"], d["claimed_fen"],
                       json.dumps({"lines": d.get("lines", []), "note": d.get("note", ""),
                                   "created_at": d.get("created_at")}), now))
        for (did,) in c.execute("SELECT id FROM disputes WHERE state='open'").fetchall() if complete else ():
            if did not in ids:
                c.execute("UPDATE disputes SET state='closed', resolved_at=? WHERE id=?", (now, did))


def open_disputes(journal: Journal, limit: int = 50) -> list[dict[str, Any]]:
    rows = journal.all("SELECT id, visit_id, account_id, charge_id, claimed_fen, data, state, seen_at FROM disputes "
                       "WHERE state='open' ORDER BY seen_at LIMIT ?", (limit,))
    return [{**{k: r[k] for k in ("id", "visit_id", "account_id", "charge_id", "claimed_fen", "state", "seen_at")},
             **json.loads(r["data"])} for r in rows]


def dispute(journal: Journal, dispute_id: str) -> dict[str, Any] | None:
    r = journal.one("SELECT * FROM disputes WHERE id=?", (dispute_id,))
    return None if r is None else {**dict(r), **json.loads(r["data"])}


def decided(journal: Journal, dispute_id: str, decision: str, reason: str, operator: str,
            refund_id: str | None) -> None:
    with journal.tx() as c:
        c.execute("UPDATE disputes SET state=?, reason=?, operator=?, refund_id=?, resolved_at=? WHERE id=?",
                  (decision, reason, operator, refund_id, time.time(), dispute_id))
