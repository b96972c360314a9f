"""The shopper's side of the gateway's database: wallet-app logins and sessions, the account's own history, the
stores' visit records (receipts with how the store decided), disputes, requests for the stores' data, erasure and
retention. Functions over a ``GatewayDB`` (``tx``/``one``/``all``); every change is one short transaction."""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

SHOPPER_SCHEMA = """
CREATE TABLE IF NOT EXISTS shopper_logins (account_id TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
  created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shopper_sessions (token_hash TEXT PRIMARY KEY, account_id TEXT NOT NULL, csrf TEXT NOT NULL,
  created_at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS account_events (id INTEGER PRIMARY KEY, account_id TEXT NOT NULL, t REAL NOT NULL,
  kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS account_events_account ON account_events (account_id);
CREATE INDEX IF NOT EXISTS account_events_kind ON account_events (kind, t);
CREATE TABLE IF NOT EXISTS visit_reports (store_id TEXT NOT NULL, visit_id TEXT NOT NULL, account_id TEXT NOT NULL,
  state TEXT NOT NULL, final INTEGER NOT NULL, record TEXT NOT NULL, updated_at REAL NOT NULL,
  received_at REAL NOT NULL, opened_at REAL, PRIMARY KEY (store_id, visit_id));
CREATE INDEX IF NOT EXISTS visit_reports_account ON visit_reports (account_id);
CREATE TABLE IF NOT EXISTS disputes (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, store_id TEXT NOT NULL,
  visit_id TEXT NOT NULL, charge_id TEXT NOT NULL, lines TEXT NOT NULL, claimed_fen INTEGER NOT NULL,
  note TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('open', 'accepted', 'rejected')), refund_fen INTEGER,
  refund_id TEXT, reason TEXT, operator TEXT, created_at REAL NOT NULL, resolved_at REAL);
CREATE INDEX IF NOT EXISTS disputes_store ON disputes (store_id, state);
CREATE TABLE IF NOT EXISTS dispute_events (id INTEGER PRIMARY KEY, dispute_id TEXT NOT NULL, t REAL NOT NULL,
  actor TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS data_requests (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, store_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('export', 'erase')), created_at REAL NOT NULL, answered_at REAL, answer TEXT);
CREATE INDEX IF NOT EXISTS data_requests_store ON data_requests (store_id, answered_at);
CREATE TABLE IF NOT EXISTS cards (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, card_hash TEXT NOT NULL UNIQUE,
  created_at REAL NOT NULL, store_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cards_account ON cards (account_id);
CREATE TABLE IF NOT EXISTS removed_cards (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, created_at REAL NOT NULL,
  removed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS card_pairings (code TEXT PRIMARY KEY, account_id TEXT NOT NULL, created_at REAL NOT NULL,
  expires_at REAL NOT NULL, used_at REAL);
"""

SESSION_TTL_S = 12 * 3600
OPEN_VISIT_S = 12 * 3600  # a visit open this long after its code was issued (a store gone) stops counting as open
CHARGE_WINDOW_S = 30 * 86_400  # a visit's code binds charges and records this long after it was issued
_OPEN = "final=0 AND coalesce(opened_at, received_at) >= ?"  # a visit still open, by the gateway's own times
CONSENT_NOTICE_S = 15 * 60  # a withdrawn face consent is announced to the stores this long (their inbox)
KEPT_AFTER_ERASURE = ("charges and refunds (amounts, items, store, times) stay in the ledger under the account's "
                      "number, which no longer leads to a name or an ID number: accounting law requires the "
                      "amounts to be kept; resolved disputes keep their amounts, not their notes")


class Refused(Exception):
    """A shopper's request that cannot be done now (the message says why)."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.status = code, status


@dataclass
class Retention:
    """How long the gateway keeps what (days). The ledger (charges, refunds, top-ups) is not pruned."""

    visits_days: float = 90  # the stores' visit records (receipts' evidence)
    codes_days: float = 7  # issued entry codes
    requests_days: float = 30  # answered data requests (an export holds personal data)
    history_days: float = 365  # the account's own history (logins, consents) and resolved disputes

    def describe(self) -> dict:
        return {"visit_records_days": self.visits_days, "entry_codes_days": self.codes_days,
                "entry_codes_of_visits_days": max(self.visits_days, CHARGE_WINDOW_S / 86_400),
                "data_request_answers_days": self.requests_days, "account_history_days": self.history_days,
                "ledger": "charges, refunds and top-ups are kept (accounting); after erasure without your name"}


def _j(data: Any) -> str:
    return json.dumps(data, default=str, separators=(",", ":"))


def event_in(c: sqlite3.Connection, account_id: str, kind: str, data: dict | None = None,
             t: float | None = None) -> None:
    """One line of the account's own history (sign-up, logins, top-ups, consent, requests): shown in My data."""
    c.execute("INSERT INTO account_events (account_id, t, kind, data) VALUES (?, ?, ?, ?)",
              (account_id, t or time.time(), kind, _j(data or {})))


def issue_code(db, account_id: str, store_id: str, door: str, lifetime_s: int, face_consent: bool,
               issued_ago_s: int = 0, door_name: str | None = None, group: int = 1) -> dict:
    """Sign a one-time entry code (what the wallet app shows as a QR code) and remember it was issued
    (``issued_ago_s``: backdated, from the admin API only: an expired code for tests; ``door_name``: the first
    name the shopper chose to be greeted by, carried in the code — never stored by the store)."""
    from bingobox.domain import tokens

    kid, key = db.active_key()
    acc = db.account(account_id)
    adult = date.fromisoformat(acc["adult_from"]) if acc and acc.get("adult_from") else None
    code = tokens.issue(key, kid, account_id, store_id, door, int(time.time()) - issued_ago_s, lifetime_s,
                        face_consent, name=door_name, group=group, adult_from=adult)
    claims = tokens.claims_of(code)
    with db.tx() as c:
        c.execute("INSERT INTO entry_codes (jti, account_id, store_id, door, iat, exp) VALUES (?, ?, ?, ?, ?, ?)",
                  (claims["jti"], account_id, store_id, door, claims["iat"], claims["exp"]))
    return {"code": code, "expires_at": claims["exp"], "jti": claims["jti"], "face_consent": face_consent}


# logins and sessions ---------------------------------------------------------------------------------------
def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_of(db, id_hash: str) -> sqlite3.Row | None:
    """The account and password hash registered under an ID number's keyed hash (None: no such login)."""
    return db.one("SELECT a.id, l.password_hash FROM accounts a JOIN shopper_logins l ON l.account_id = a.id "
                  "WHERE a.id_hash=? AND a.erased_at IS NULL", (id_hash,))


def new_session(db, account_id: str, now: float | None = None) -> tuple[str, str]:
    """(cookie token, CSRF token). Only the token's hash is stored: a copy of the database logs nobody in."""
    now = now or time.time()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with db.tx() as c:
        c.execute("DELETE FROM shopper_sessions WHERE expires_at < ?", (now,))
        c.execute("INSERT INTO shopper_sessions VALUES (?, ?, ?, ?, ?)",
                  (_token_hash(token), account_id, csrf, now, now + SESSION_TTL_S))
    return token, csrf


def session(db, token: str | None) -> tuple[str, str] | None:
    """(account id, CSRF token) of a live session."""
    if not token or len(token) > 100:
        return None
    row = db.one("SELECT account_id, csrf FROM shopper_sessions WHERE token_hash=? AND expires_at >= ?",
                 (_token_hash(token), time.time()))
    return (row["account_id"], row["csrf"]) if row else None


def end_session(db, token: str | None) -> None:
    if token:
        with db.tx() as c:
            c.execute("DELETE FROM shopper_sessions WHERE token_hash=?", (_token_hash(token),))


# codes bind what a store may say about an account ---------------------------------------------------------
def bind_code(c: sqlite3.Connection, store_id: str, account_id: str, jti: str, visit_id: str, now: float) -> float:
    """A store may charge an account, or write its receipts, only for a visit opened by an entry code this gateway
    issued to that account for that store; the first visit named with a code binds it (one code, one visit).
    Returns the code's issue time; ``Refused`` otherwise. A card visit names its card instead (``cards.bind_card``)."""
    if jti.startswith("card."):
        from .cards import bind_card

        return bind_card(c, account_id, jti)
    row = c.execute("SELECT account_id, store_id, iat, visit_id FROM entry_codes WHERE jti=?", (jti,)).fetchone()
    if row is None or row["account_id"] != account_id or row["store_id"] != store_id:
        raise Refused("not_your_code", "no entry code of this account issued for this store has that id", 403)
    if now - row["iat"] > CHARGE_WINDOW_S:
        raise Refused("code_too_old", f"the visit's code was issued over {CHARGE_WINDOW_S // 86400} days ago", 403)
    if row["visit_id"] is None:
        c.execute("UPDATE entry_codes SET visit_id=? WHERE jti=? AND visit_id IS NULL", (visit_id, jti))
    elif row["visit_id"] != visit_id:
        raise Refused("code_bound_elsewhere", "that code belongs to another visit", 409)
    return float(row["iat"])


# the stores' visit records ------------------------------------------------------------------------------
def save_report(db, store_id: str, visit_id: str, account_id: str, state: str, final: bool, record: dict,
                updated_at: float, jtis: list[str]) -> bool:
    """Keep (or update) a store's record of a visit; codes it used are marked used (the app replaces them at once).
    The record must name the codes of its visit (``bind_code``: ``Refused``); a time ahead of the gateway's is
    taken as now. False when the account is erased (the record is not kept)."""
    now = time.time()
    updated_at = min(updated_at, now)
    if not jtis:
        raise Refused("no_code", "a visit's record names the entry code(s) of its visit (jtis)", 422)
    with db.tx() as c:
        acc = c.execute("SELECT erased_at FROM accounts WHERE id=?", (account_id,)).fetchone()
        if acc is None or acc["erased_at"] is not None:
            return False
        opened = min(bind_code(c, store_id, account_id, jti, visit_id, now) for jti in jtis)
        c.execute("INSERT INTO visit_reports (store_id, visit_id, account_id, state, final, record, updated_at, "
                  "received_at, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(store_id, visit_id) DO "
                  "UPDATE SET state=excluded.state, final=excluded.final, record=excluded.record, "
                  "updated_at=excluded.updated_at, received_at=excluded.received_at, "
                  "opened_at=min(coalesce(visit_reports.opened_at, excluded.opened_at), excluded.opened_at) "
                  "WHERE excluded.updated_at >= visit_reports.updated_at AND visit_reports.account_id = "
                  "excluded.account_id",
                  (store_id, visit_id, account_id, state, int(final), _j(record), updated_at, now, opened))
        for jti in jtis:
            c.execute("UPDATE entry_codes SET used_at=? WHERE jti=? AND account_id=? AND used_at IS NULL",
                      (now, jti, account_id))
    return True


def save_live_basket(db, store_id: str, visit_id: str, account_id: str, basket: dict) -> None:
    """Keep the live basket a store reports for a visit in progress (what the app shows while the shopper is
    inside; replaced by each newer one). The visit must be this store's, of this account, and still open."""
    with db.tx() as c:
        row = c.execute("SELECT account_id, final FROM visit_reports WHERE store_id=? AND visit_id=?",
                        (store_id, visit_id)).fetchone()
        if row is None:
            raise Refused("no_such_visit", "no report of this visit yet: send the visit first", 404)
        if row["account_id"] != account_id:
            raise Refused("not_its_account", "that visit is another account's", 409)
        if row["final"]:
            raise Refused("visit_over", "that visit has ended: its receipt is the record", 409)
        c.execute("UPDATE visit_reports SET live=? WHERE store_id=? AND visit_id=? AND (live IS NULL OR "
                  "json_extract(live, '$.at') <= ?)", (_j(basket), store_id, visit_id, basket["at"]))


def code_state(db, account_id: str, jti: str) -> dict | None:
    row = db.one("SELECT jti, store_id, exp, used_at FROM entry_codes WHERE jti=? AND account_id=?",
                 (jti, account_id))
    return None if row is None else {"jti": row["jti"], "store_id": row["store_id"], "expires_at": row["exp"],
                                     "used": row["used_at"] is not None}


def _charges_of(db, account_id: str, store_id: str, visit_id: str) -> list[dict]:
    out = []
    for r in db.all("SELECT id, status, amount_fen, refunded_fen, failure_reason, items, created_at, updated_at "
                    "FROM charges WHERE account_id=? AND store_id=? AND visit_id=? ORDER BY created_at",
                    (account_id, store_id, visit_id)):
        refunds = [dict(x) for x in db.all("SELECT id, amount_fen, reason, created_at FROM refunds "
                                           "WHERE charge_id=? ORDER BY created_at", (r["id"],))]
        out.append({**dict(r), "items": json.loads(r["items"] or "[]"), "refunds": refunds})
    return out


def receipts(db, account_id: str, limit: int = 20) -> list[dict]:
    """The account's latest visits, newest first: the store's record (items, which reader saw each, how the shopper
    was identified at the exit), the charges with their refunds, and any disputes. Reads only (no write lock: the
    app asks every few seconds)."""
    out = []
    for r in db.all("SELECT * FROM visit_reports WHERE account_id=? ORDER BY updated_at DESC LIMIT ?",
                    (account_id, limit)):
        disputes = [dispute_json(d) for d in db.all(
            "SELECT * FROM disputes WHERE account_id=? AND store_id=? AND visit_id=? ORDER BY created_at",
            (account_id, r["store_id"], r["visit_id"]))]
        out.append({"store_id": r["store_id"], "visit_id": r["visit_id"], "state": r["state"],
                    "final": bool(r["final"]), "updated_at": r["updated_at"], "received_at": r["received_at"],
                    "record": json.loads(r["record"]),
                    "charges": _charges_of(db, account_id, r["store_id"], r["visit_id"]), "disputes": disputes})
    return out


def current_visit(db, account_id: str) -> dict | None:
    """The account's visit in progress, with its live basket (None before the store sent one)."""
    r = db.one(f"SELECT store_id, visit_id, state, updated_at, live FROM visit_reports WHERE account_id=? AND "
               f"{_OPEN} ORDER BY updated_at DESC LIMIT 1", (account_id, time.time() - OPEN_VISIT_S))
    if r is None:
        return None
    return {**{k: r[k] for k in ("store_id", "visit_id", "state", "updated_at")},
            "basket": json.loads(r["live"]) if r["live"] else None}


# disputes --------------------------------------------------------------------------------------------
def dispute_json(r: sqlite3.Row) -> dict:
    return {**dict(r), "lines": json.loads(r["lines"])}


def dispute_event_in(c, dispute_id: str, actor: str, kind: str, data: dict) -> None:
    c.execute("INSERT INTO dispute_events (dispute_id, t, actor, kind, data) VALUES (?, ?, ?, ?, ?)",
              (dispute_id, time.time(), actor, kind, _j(data)))


def open_dispute(db, account_id: str, store_id: str, visit_id: str, skus: list[str], note: str) -> dict:
    """A shopper says (some items of) a visit's charge is wrong. ``skus`` empty: the whole visit. The amount
    claimed is those lines' amounts, at most what is left to refund."""
    with db.tx() as c:
        if c.execute("SELECT 1 FROM visit_reports WHERE account_id=? AND store_id=? AND visit_id=?",
                     (account_id, store_id, visit_id)).fetchone() is None:
            raise Refused("no_such_visit", "no such visit of yours", 404)
        if c.execute("SELECT 1 FROM disputes WHERE account_id=? AND store_id=? AND visit_id=? AND state='open'",
                     (account_id, store_id, visit_id)).fetchone():
            raise Refused("dispute_open", "this visit has an open dispute already: wait for its outcome")
        ch = c.execute("SELECT * FROM charges WHERE account_id=? AND store_id=? AND visit_id=? AND status='succeeded'"
                       " ORDER BY created_at DESC LIMIT 1", (account_id, store_id, visit_id)).fetchone()
        if ch is None:
            raise Refused("nothing_charged", "nothing was charged for this visit (yet): nothing to give back")
        left = ch["amount_fen"] - ch["refunded_fen"]
        items = json.loads(ch["items"] or "[]")
        unknown = sorted(set(skus) - {i["sku"] for i in items})
        if unknown:
            raise Refused("not_on_receipt", f"not on this receipt: {', '.join(unknown)}", 400)
        lines = [i for i in items if not skus or i["sku"] in skus]
        claimed = min(left, sum(i["amount_fen"] for i in lines))
        if claimed <= 0:
            raise Refused("refunded_already", "this charge has been refunded in full already")
        did = "dp_" + secrets.token_hex(8)
        c.execute("INSERT INTO disputes (id, account_id, store_id, visit_id, charge_id, lines, claimed_fen, note, "
                  "state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                  (did, account_id, store_id, visit_id, ch["id"], _j(lines), claimed, note, time.time()))
        dispute_event_in(c, did, "shopper", "opened", {"skus": skus, "claimed_fen": claimed, "note": note})
        event_in(c, account_id, "dispute_opened", {"dispute": did, "visit": visit_id, "claimed_fen": claimed})
        return dispute_json(c.execute("SELECT * FROM disputes WHERE id=?", (did,)).fetchone())


def resolve_dispute(db, store_id: str, dispute_id: str, decision: str, reason: str, operator: str,
                    refund_id: str | None) -> tuple[dict, bool]:
    """The store's operator decided. ``accepted`` needs the refund (made through POST /v1/refunds with the key
    ``dispute-<id>``) to exist on the dispute's charge. Idempotent: the same decision again is answered as it was
    (second value False); another decision on a closed dispute is refused."""
    with db.tx() as c:
        d = c.execute("SELECT * FROM disputes WHERE id=? AND store_id=?", (dispute_id, store_id)).fetchone()
        if d is None:
            raise Refused("no_such_dispute", f"no dispute {dispute_id} for this store", 404)
        if d["state"] != "open":
            if d["state"] == decision:
                return dispute_json(d), False
            raise Refused("dispute_closed", f"the dispute was {d['state']} already")
        refund_fen = None
        if decision == "accepted":  # its own refund: the one made with the key dispute-<id>, not any of the charge
            r = c.execute("SELECT amount_fen FROM refunds WHERE id=? AND charge_id=? AND idem_key=?",
                          (refund_id or "", d["charge_id"], f"dispute-{dispute_id}")).fetchone()
            if r is None:
                raise Refused("no_refund", f"accepting needs the dispute's own refund (made with the key "
                              f"dispute-{dispute_id}) as refund_id", 422)
            refund_fen = r["amount_fen"]
        now = time.time()
        c.execute("UPDATE disputes SET state=?, reason=?, operator=?, refund_id=?, refund_fen=?, resolved_at=? "
                  "WHERE id=?", (decision, reason, operator, refund_id, refund_fen, now, dispute_id))
        dispute_event_in(c, dispute_id, f"store {store_id}: {operator}", decision,
                         {"reason": reason, "refund_id": refund_id, "refund_fen": refund_fen})
        event_in(c, d["account_id"], f"dispute_{decision}", {"dispute": dispute_id, "refund_fen": refund_fen})
        return dispute_json(c.execute("SELECT * FROM disputes WHERE id=?", (dispute_id,)).fetchone()), True


def dispute_events(c, dispute_ids: list[str]) -> list[dict]:
    if not dispute_ids:
        return []
    rows = c.execute(f"SELECT * FROM dispute_events WHERE dispute_id IN ({','.join('?' * len(dispute_ids))}) "
                     "ORDER BY id", dispute_ids).fetchall()
    return [{**dict(r), "data": json.loads(r["data"])} for r in rows]


# the stores' inbox ----------------------------------------------------------------------------------
def inbox(db, store_id: str, now: float | None = None) -> dict:
    """What a store has to act on: open disputes (the oldest 200, and how many are open), unanswered data requests,
    face consents withdrawn lately by shoppers it has a visit open for (those visits drop their templates)."""
    now = now or time.time()
    disputes = [dispute_json(r) for r in db.all("SELECT * FROM disputes WHERE store_id=? AND state='open' "
                                                "ORDER BY created_at LIMIT 200", (store_id,))]
    requests = [dict(r) for r in db.all("SELECT id, account_id, kind, created_at FROM data_requests WHERE store_id=? "
                                        "AND answered_at IS NULL ORDER BY created_at LIMIT 50", (store_id,))]
    withdrawn = sorted({r["account_id"] for r in db.all(  # (only this store's shoppers: no store learns of others)
        "SELECT account_id FROM account_events WHERE kind='face_consent_withdrawn' AND t >= ? AND account_id IN "
        f"(SELECT account_id FROM visit_reports WHERE store_id=? AND {_OPEN})",
        (now - CONSENT_NOTICE_S, store_id, now - OPEN_VISIT_S))})
    total = db.one("SELECT count(*) AS n FROM disputes WHERE store_id=? AND state='open'", (store_id,))["n"]
    return {"disputes": disputes, "disputes_open": total, "data_requests": requests, "consent_withdrawn": withdrawn}


def stores_of(c: sqlite3.Connection, account_id: str) -> list[str]:
    """The stores that may hold something of the account: those it was issued codes for, that reported a visit of
    it or charged it. Only they are asked for its data (no other store learns who asked)."""
    rows = c.execute("SELECT store_id FROM entry_codes WHERE account_id=? UNION SELECT store_id FROM visit_reports "
                     "WHERE account_id=? UNION SELECT store_id FROM charges WHERE account_id=? ORDER BY 1",
                     (account_id, account_id, account_id)).fetchall()
    return [r[0] for r in rows]


def request_in(c: sqlite3.Connection, account_id: str, kind: str, now: float,
               stores: list[str] | None = None) -> list[dict]:
    """Ask the stores that may hold something of the account (``stores_of``) for it (``export``) or to erase it
    (``erase``), inside the caller's transaction; a request still unanswered is not asked twice."""
    out = []
    for store_id in stores if stores is not None else stores_of(c, account_id):
        pending = c.execute("SELECT id FROM data_requests WHERE account_id=? AND store_id=? AND kind=? AND "
                            "answered_at IS NULL", (account_id, store_id, kind)).fetchone()
        rid = pending["id"] if pending else "dr_" + secrets.token_hex(8)
        if not pending:
            c.execute("INSERT INTO data_requests VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                      (rid, account_id, store_id, kind, now))
        out.append({"id": rid, "store_id": store_id, "kind": kind})
    event_in(c, account_id, f"{kind}_requested", {"stores": [r["store_id"] for r in out]}, now)
    return out


def request_data(db, account_id: str, kind: str, every_s: float = 0.0) -> list[dict]:
    """A shopper's request to the stores; refused if the last one of this kind is less than ``every_s`` old."""
    now = time.time()
    with db.tx() as c:
        last = c.execute("SELECT max(created_at) FROM data_requests WHERE account_id=? AND kind=?",
                         (account_id, kind)).fetchone()[0]
        if last is not None and now - last < every_s:
            raise Refused("asked_recently", f"you asked {now - last:.0f} s ago; the stores' answers come within "
                          f"seconds: ask again in {every_s - (now - last):.0f} s", 429)
        return request_in(c, account_id, kind, now)


def answer_request(db, store_id: str, request_id: str, answer: dict) -> bool:
    with db.tx() as c:
        row = c.execute("SELECT account_id, kind, answered_at FROM data_requests WHERE id=? AND store_id=?",
                        (request_id, store_id)).fetchone()
        if row is None:
            raise Refused("no_such_request", f"no data request {request_id} for this store", 404)
        if row["answered_at"] is not None:
            return False
        c.execute("UPDATE data_requests SET answered_at=?, answer=? WHERE id=?", (time.time(), _j(answer), request_id))
    return True


def data_requests(db, account_id: str) -> list[dict]:
    rows = db.all("SELECT * FROM data_requests WHERE account_id=? ORDER BY created_at DESC LIMIT 200", (account_id,))
    return [{**dict(r), "answer": json.loads(r["answer"]) if r["answer"] else None} for r in rows]


# everything about an account; erasure ------------------------------------------------------------------
def export(db, account_id: str) -> dict:
    """Everything the gateway holds about the account, and the stores' answers to its data requests."""
    acc = db.one("SELECT id, real_name, balance_fen, frozen, face_consent, door_name, created_at, erased_at "
                 "FROM accounts WHERE id=?", (account_id,))
    with db.tx() as c:
        charges = [{**dict(r), "items": json.loads(r["items"] or "[]")} for r in c.execute(
            "SELECT id, store_id, visit_id, status, amount_fen, refunded_fen, failure_reason, items, created_at "
            "FROM charges WHERE account_id=? ORDER BY created_at", (account_id,))]
        refunds = [dict(r) for r in c.execute(
            "SELECT r.* FROM refunds r JOIN charges ch ON ch.id = r.charge_id WHERE ch.account_id=? "
            "ORDER BY r.created_at", (account_id,))]
        disputes = [dispute_json(r) for r in c.execute("SELECT * FROM disputes WHERE account_id=? ORDER BY created_at",
                                                       (account_id,))]
        events = dispute_events(c, [d["id"] for d in disputes])
        history = [{**dict(r), "data": json.loads(r["data"])} for r in c.execute(
            "SELECT t, kind, data FROM account_events WHERE account_id=? ORDER BY id", (account_id,))]
        codes = [dict(r) for r in c.execute("SELECT jti, store_id, door, iat, exp, used_at FROM entry_codes "
                                            "WHERE account_id=? ORDER BY iat", (account_id,))]
        topups = [dict(r) for r in c.execute("SELECT amount_fen, created_at FROM topups WHERE account_id=? "
                                             "ORDER BY id", (account_id,))]
        cards = [dict(r) for r in c.execute("SELECT id, created_at, store_id FROM cards WHERE account_id=? "
                                            "ORDER BY created_at", (account_id,))]
        sessions = c.execute("SELECT count(*) FROM shopper_sessions WHERE account_id=? AND expires_at >= ?",
                             (account_id, time.time())).fetchone()[0]
    return {"account": {**dict(acc), "id_number": "not kept: only a keyed hash of it, to find your account",
                        "password": "not kept: only a scrypt hash of it", "sessions_open": sessions},
            "face_consent": {"given": bool(acc["face_consent"]),
                             "what": "the store box computes face templates from the entrance camera when you walk "
                                     "in and keeps them in memory only, for the visit; they are never written to "
                                     "disk or sent anywhere, and are dropped when you leave"},
            "cards": {"bound": cards, "what": "a card is kept as a hash of its UID (the UID itself is not kept)"},
            "history": history, "top_ups": topups, "entry_codes": codes, "visits": receipts(db, account_id, 10_000),
            "charges": charges, "refunds": refunds, "disputes": disputes, "dispute_events": events,
            "store_requests": data_requests(db, account_id)}


def erase(db, account_id: str) -> dict:
    """Erase the account's personal data (refused while a visit or a charge is open, or a dispute awaits its
    outcome); the ledger keeps amounts under the bare account number. Returns what was erased and kept."""
    now = time.time()
    with db.tx() as c:
        if c.execute(f"SELECT 1 FROM visit_reports WHERE account_id=? AND {_OPEN}",
                     (account_id, now - OPEN_VISIT_S)).fetchone():
            raise Refused("visit_open", "you are in a store (or the store has not closed your visit yet): "
                          "ask again after you have left")
        if c.execute("SELECT 1 FROM charges WHERE account_id=? AND status='pending'", (account_id,)).fetchone():
            raise Refused("charge_pending", "a charge of yours is still pending: ask again when it is settled")
        if c.execute("SELECT 1 FROM disputes WHERE account_id=? AND state='open'", (account_id,)).fetchone():
            raise Refused("dispute_open", "a dispute of yours awaits the store's answer: ask again after it")
        bal = c.execute("SELECT balance_fen FROM accounts WHERE id=?", (account_id,)).fetchone()["balance_fen"]
        stores = stores_of(c, account_id)  # (before the codes and records that name them are gone)
        c.execute("UPDATE accounts SET real_name='(erased)', id_hash=?, face_consent=0, door_name=NULL, frozen=1, "
                  "balance_fen=0, erased_at=? WHERE id=?", ("erased:" + secrets.token_hex(16), now, account_id))
        erased = {
            "sessions": c.execute("DELETE FROM shopper_sessions WHERE account_id=?", (account_id,)).rowcount,
            "login": c.execute("DELETE FROM shopper_logins WHERE account_id=?", (account_id,)).rowcount,
            "entry_codes": c.execute("DELETE FROM entry_codes WHERE account_id=?", (account_id,)).rowcount,
            "cards": c.execute("DELETE FROM cards WHERE account_id=?", (account_id,)).rowcount
            + c.execute("DELETE FROM card_pairings WHERE account_id=?", (account_id,)).rowcount,
            "visit_records": c.execute("DELETE FROM visit_reports WHERE account_id=?", (account_id,)).rowcount,
            "history": c.execute("DELETE FROM account_events WHERE account_id=?", (account_id,)).rowcount,
            "export_answers": c.execute("DELETE FROM data_requests WHERE account_id=? AND kind='export'",
                                        (account_id,)).rowcount,
            "dispute_notes": c.execute("UPDATE disputes SET note='(erased)' WHERE account_id=?",
                                       (account_id,)).rowcount,
            "dispute_history_notes": c.execute(
                "UPDATE dispute_events SET data=json_remove(data, '$.note') WHERE json_extract(data, '$.note') IS NOT "
                "NULL AND dispute_id IN (SELECT id FROM disputes WHERE account_id=?)", (account_id,)).rowcount,
        }
        event_in(c, account_id, "erased", {"balance_paid_out_fen": bal}, now)
        # in the erasure's own transaction: a crash cannot leave the stores never asked
        asked = request_in(c, account_id, "erase", now, stores)
    return {"erased": {"name": True, "id_number_hash": True, "password": True, **erased},
            "balance_paid_out_fen": bal, "kept": KEPT_AFTER_ERASURE,
            "stores_asked": [s["store_id"] for s in asked]}


def prune(db, r: Retention, now: float | None = None, limit: int = 5000) -> dict[str, int]:
    """Apply the retention (a bounded batch of each kind per call)."""
    now = now or time.time()
    day = 86_400.0
    with db.tx() as c:
        def gone(sql: str, *args) -> int:
            return c.execute(sql, (*args, limit)).rowcount

        return {
            "visit_records": gone("DELETE FROM visit_reports WHERE rowid IN (SELECT rowid FROM visit_reports "
                                  "WHERE final=1 AND updated_at < ? LIMIT ?)", now - r.visits_days * day),
            "entry_codes": gone("DELETE FROM entry_codes WHERE rowid IN (SELECT rowid FROM entry_codes WHERE exp < ? "
                                "AND (visit_id IS NULL OR exp < ?) LIMIT ?)", now - r.codes_days * day,
                                now - max(r.visits_days * day, CHARGE_WINDOW_S)),
            "sessions": gone("DELETE FROM shopper_sessions WHERE rowid IN (SELECT rowid FROM shopper_sessions "
                             "WHERE expires_at < ? LIMIT ?)", now),
            "data_requests": gone("DELETE FROM data_requests WHERE rowid IN (SELECT rowid FROM data_requests WHERE "
                                  "answered_at < ? LIMIT ?)", now - r.requests_days * day),
            "history": gone("DELETE FROM account_events WHERE id IN (SELECT id FROM account_events WHERE t < ? "
                            "AND kind != 'erased' LIMIT ?)", now - r.history_days * day),
            "disputes": gone("DELETE FROM disputes WHERE rowid IN (SELECT rowid FROM disputes WHERE state != 'open' "
                             "AND resolved_at < ? LIMIT ?)", now - r.history_days * day),
            "dispute_events": gone("DELETE FROM dispute_events WHERE id IN (SELECT id FROM dispute_events WHERE "
                                   "dispute_id NOT IN (SELECT id FROM disputes) LIMIT ?)"),
        }
