"""The mock wallet app: a phone-sized page served by the gateway under /app/ (no build step, no external assets),
and its JSON API under /app/api/ (a session cookie — HttpOnly, SameSite=Strict, Path=/app — plus an X-CSRF-Token
header on every change).

Passwords are scrypt hashes (the status screen's cost); ID numbers are kept only as a keyed hash (which is also how
a shopper logs in); failed logins are throttled per (ID, source) and per source, counted before the hash runs, and
one hash runs at a time. Entry codes are shown as a server-rendered PNG QR code (segno): what the page shows is what
a door camera decodes.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import secrets
import sqlite3
import time
from importlib import resources
from typing import Annotated, Literal

import segno
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from bingobox.domain import tokens
from bingobox.screen.auth import LoginThrottle, check_password, hash_password, same_token

from . import shopper_db as sdb
from .db import adult_from_of

COOKIE = "bbx_wallet"
_DUMMY = f"scrypt${2**17}$8$1${'00' * 16}${'00' * 32}"  # an unknown ID costs what a known one does
CODE_LIFETIME_S = 60  # like a wallet's payment code: the page replaces it before it expires
FAILURES_PER_MINUTE = 5  # per (ID number, source)
PER_SOURCE_PER_MINUTE = 10
SIGNUPS_PER_SOURCE_PER_MINUTE = 10
MAX_TOPUP_FEN = 1_000_000  # 10 000 CNY at a time
CODES_PER_MINUTE = 6  # the page renews its code every ~50 s; a retry or two on top
REQUEST_EVERY_S = 600  # a shopper's data request, at most this often
PRIVACY = {
    "controller": "the store's operator runs the store box; the wallet (this app) holds your account",
    "face": "Face billing is off unless you turn it on. When it is on, the entrance camera's frames are turned into "
            "face templates in the store box's memory when you walk in; they are used to recognise you at the exit "
            "so you can walk out without scanning, and dropped when you leave. Templates and photos are never "
            "written to disk or sent anywhere. Turn it off at any time: without it you scan your code at the exit.",
    "store_records": "The store keeps a record of each visit (your code check, the doors, which shelf reader saw "
                     "which item taken, how you were identified at the exit, what was charged) to bill you and to "
                     "answer disputes. It sends a copy to the wallet: your receipts show it.",
    "id_number": "Your ID number is not kept: only a keyed hash of it, to find your account at log-in.",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignupIn(_Strict):
    real_name: str = Field(min_length=1, max_length=100)
    id_number: str = Field(min_length=6, max_length=32, pattern=r"^[0-9A-Za-z]+$")
    password: str = Field(min_length=8, max_length=200)


class LoginIn(_Strict):
    id_number: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=200)


class TopUpIn(_Strict):
    amount_fen: StrictInt = Field(ge=1, le=MAX_TOPUP_FEN)


class ConsentIn(_Strict):
    face_consent: StrictBool


class DoorNameIn(_Strict):
    door_name: str | None = Field(None, max_length=64)  # None: greet me without a name


class CodeIn(_Strict):
    purpose: Literal["entry", "exit"] = "entry"
    store_id: str | None = Field(None, max_length=64)
    companions: StrictInt = Field(0, ge=0, le=8, description="people coming in on this code with the shopper, who "
                                  "pays for what the group takes")


class DisputeIn(_Strict):
    store_id: str = Field(min_length=1, max_length=64)
    visit_id: str = Field(min_length=1, max_length=64)
    skus: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=100)
    note: str = Field(min_length=1, max_length=500)


class RequestIn(_Strict):
    kind: Literal["export"]


class DeleteIn(_Strict):
    password: str = Field(min_length=1, max_length=200)
    confirm: Literal["delete my account"]


WALLET_LANGUAGES = ("zh_Hans",)  # besides English (the message ids)


@functools.cache
def wallet_catalog(lang: str) -> dict[str, str]:
    """The wallet app's catalog for ``lang`` (``locale/<lang>/LC_MESSAGES/wallet.po``, read with Babel): fuzzy and
    empty entries left out."""
    from babel.messages.pofile import read_po

    with resources.files(__package__).joinpath("locale", lang, "LC_MESSAGES", "wallet.po").open("rb") as f:
        po = read_po(f, locale=lang.replace("_Hans", ""))
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def qr_png_data_uri(text: str) -> str:
    """The code as a PNG QR image (error correction M, 4 px modules, the 4-module quiet zone: ~310 px wide, shown
    at its own size so that no scaling blurs a module)."""
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=4, border=4)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def add_wallet_app(app: FastAPI, db, retention: sdb.Retention, api_error: type[Exception]) -> None:
    page = resources.files(__package__).joinpath("static")
    assets = {n: page.joinpath(n).read_text(encoding="utf-8") for n in ("wallet.html", "wallet.js", "wallet.css")}
    logins = LoginThrottle(FAILURES_PER_MINUTE, PER_SOURCE_PER_MINUTE)  # (no fleet-wide cap: it would lock out all)
    signups = LoginThrottle(SIGNUPS_PER_SOURCE_PER_MINUTE, SIGNUPS_PER_SOURCE_PER_MINUTE)  # every sign-up counts
    codes = LoginThrottle(CODES_PER_MINUTE, CODES_PER_MINUTE)  # every code counts (per account)

    def source(request: Request) -> str:
        return request.client.host if request.client else ""

    def shopper(request: Request, change: bool = False) -> str:
        """The logged-in account (and, for a change, the CSRF header checked)."""
        got = sdb.session(db, request.cookies.get(COOKIE))
        if got is None:
            raise api_error(401, "not_logged_in", "log in first")
        account_id, csrf = got
        if change and not same_token(request.headers.get("x-csrf-token"), csrf):
            raise api_error(403, "csrf", "missing or wrong X-CSRF-Token header")
        return account_id

    app.state.shopper = shopper  # (the card routes' login check)

    def hashed(fn, *args):
        got = logins.hash(fn, *args)  # (one scrypt at a time, sign-ups and log-ins together)
        if got is None:
            raise api_error(503, "busy", "another log-in is being checked: try again")
        return got

    def with_session(request: Request, account_id: str, body: dict) -> JSONResponse:
        token, csrf = sdb.new_session(db, account_id)
        resp = JSONResponse({**body, "csrf": csrf})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=sdb.SESSION_TTL_S, path="/app",
                        secure=request.url.scheme == "https")
        return resp

    def me_json(account_id: str) -> dict:
        acc = db.account(account_id)
        stores = [r["store_id"] for r in db.all("SELECT store_id FROM stores ORDER BY store_id")]
        return {"account": {k: acc[k] for k in ("id", "real_name", "balance_fen", "face_consent", "frozen",
                                                   "door_name", "adult_from")},
                "visit": sdb.current_visit(db, account_id), "stores": stores}

    # the page ------------------------------------------------------------------------------------
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
               "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

    @app.get("/app", include_in_schema=False)
    @app.get("/app/", response_class=HTMLResponse, tags=["wallet app"])
    def index() -> HTMLResponse:
        return HTMLResponse(assets["wallet.html"], headers=headers)

    @app.get("/app/wallet.js", include_in_schema=False)
    def script() -> Response:
        return Response(assets["wallet.js"], media_type="text/javascript", headers=headers)

    @app.get("/app/i18n/{lang}.json", tags=["wallet app"], responses={404: {}})
    def catalog(lang: str) -> Response:
        """The app's words in ``lang`` (a shipped gettext catalog): English text → translation. The app picks the
        phone's language; a text the catalog lacks stays English."""
        if lang not in WALLET_LANGUAGES:
            raise api_error(404, "no_such_language", f"languages: en, {', '.join(WALLET_LANGUAGES)}")
        return Response(json.dumps({"lang": lang, "messages": wallet_catalog(lang)}, ensure_ascii=False),
                        media_type="application/json", headers=headers)

    @app.get("/app/wallet.css", include_in_schema=False)
    def style() -> Response:
        return Response(assets["wallet.css"], media_type="text/css", headers=headers)

    # accounts ------------------------------------------------------------------------------------
    @app.post("/app/api/signup", tags=["wallet app"], responses={409: {}, 429: {}})
    def signup(body: SignupIn, request: Request):
        if not signups.reserve("", source(request)):
            raise api_error(429, "throttled", "too many sign-ups from here: wait a minute")
        pw = hashed(hash_password, body.password)
        account_id = "acc_" + secrets.token_hex(8)
        try:
            with db.tx() as c:  # the account and its login together: an ID number is never left without a login
                c.execute("INSERT INTO accounts (id, real_name, id_hash, balance_fen, frozen, face_consent, "
                          "created_at, adult_from) VALUES (?, ?, ?, 0, 0, 0, ?, ?)",
                          (account_id, body.real_name, db.id_hash(body.id_number), time.time(),
                           adult_from_of(body.id_number)))
                c.execute("INSERT INTO shopper_logins VALUES (?, ?, ?)", (account_id, pw, time.time()))
                sdb.event_in(c, account_id, "signed_up", {"source": source(request)})
        except sqlite3.IntegrityError:
            raise api_error(409, "already_registered", "an account with this ID number exists: log in") from None
        return with_session(request, account_id, me_json(account_id))

    @app.post("/app/api/login", tags=["wallet app"], responses={401: {}, 429: {}})
    def login(body: LoginIn, request: Request):
        src = source(request)
        id_hash = db.id_hash(body.id_number)
        if not logins.reserve(id_hash, src):
            raise api_error(429, "throttled", "too many failed log-ins: wait a minute")
        row = sdb.login_of(db, id_hash)
        ok = hashed(check_password, body.password, row["password_hash"] if row else _DUMMY)
        if not ok or row is None:
            raise api_error(401, "bad_credentials", "unknown ID number or wrong password")
        logins.succeeded(id_hash, src)
        with db.tx() as c:
            sdb.event_in(c, row["id"], "logged_in", {"source": src})
        return with_session(request, row["id"], me_json(row["id"]))

    @app.post("/app/api/logout", tags=["wallet app"])
    def logout(request: Request):
        sdb.end_session(db, request.cookies.get(COOKIE))
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE, path="/app")
        return resp

    @app.get("/app/api/me", tags=["wallet app"], responses={401: {}})
    def me(request: Request):
        account_id = shopper(request)
        got = sdb.session(db, request.cookies.get(COOKIE))
        return {**me_json(account_id), "csrf": got[1] if got else None}

    @app.post("/app/api/topup", tags=["wallet app"], responses={409: {}})
    def topup(body: TopUpIn, request: Request):
        account_id = shopper(request, change=True)
        with db.tx() as c:
            bal = c.execute("SELECT balance_fen FROM accounts WHERE id=?", (account_id,)).fetchone()[0]
            if bal + body.amount_fen > 10**12:
                raise api_error(409, "balance_limit", "balance would exceed the limit")
            c.execute("UPDATE accounts SET balance_fen = balance_fen + ? WHERE id=?", (body.amount_fen, account_id))
            c.execute("INSERT INTO topups (account_id, amount_fen, created_at) VALUES (?, ?, ?)",
                      (account_id, body.amount_fen, time.time()))
            sdb.event_in(c, account_id, "topped_up", {"amount_fen": body.amount_fen})
        return me_json(account_id)

    @app.post("/app/api/consent", tags=["wallet app"])
    def consent(body: ConsentIn, request: Request):
        account_id = shopper(request, change=True)
        with db.tx() as c:
            was = bool(c.execute("SELECT face_consent FROM accounts WHERE id=?", (account_id,)).fetchone()[0])
            if was != body.face_consent:
                c.execute("UPDATE accounts SET face_consent=? WHERE id=?", (int(body.face_consent), account_id))
                sdb.event_in(c, account_id, "face_consent_given" if body.face_consent else "face_consent_withdrawn",
                             {"text": PRIVACY["face"]})
        return me_json(account_id)

    @app.post("/app/api/door-name", tags=["wallet app"], responses={422: {}})
    def door_name(body: DoorNameIn, request: Request):
        """The first name a door panel greets the shopper by (carried in their next codes; None: a neutral
        welcome). It is shown on a screen in a public place: only a first name, only if they choose."""
        account_id = shopper(request, change=True)
        name = body.door_name.strip() if body.door_name else None
        if name is not None and not tokens.door_name_ok(name):
            raise api_error(422, "bad_door_name", f"a first name of at most {tokens.MAX_NAME_LEN} letters "
                            "(spaces, hyphens and apostrophes between them)")
        with db.tx() as c:
            c.execute("UPDATE accounts SET door_name=? WHERE id=?", (name, account_id))
            sdb.event_in(c, account_id, "door_name_set" if name else "door_name_cleared")
        return me_json(account_id)

    # codes ---------------------------------------------------------------------------------------
    @app.post("/app/api/codes", tags=["wallet app"], responses={402: {}, 404: {}})
    def new_code(body: CodeIn, request: Request):
        """A fresh one-time code (entry, or the exit's QR fallback) as text and as a PNG QR image."""
        account_id = shopper(request, change=True)
        if not codes.reserve(account_id, account_id):  # (per account; each code is a row kept for days: L2)
            raise api_error(429, "throttled", f"at most {CODES_PER_MINUTE} codes a minute: show the one you have")
        acc = db.account(account_id)
        if acc["frozen"]:
            raise api_error(402, "account_frozen", "your account is frozen")
        stores = [r["store_id"] for r in db.all("SELECT store_id FROM stores ORDER BY store_id")]
        store_id = body.store_id or (stores[0] if stores else None)
        if store_id is None or store_id not in stores:
            raise api_error(404, "no_such_store", "no such store")
        got = sdb.issue_code(db, account_id, store_id, "*", CODE_LIFETIME_S, acc["face_consent"],
                             door_name=acc["door_name"], group=1 + body.companions)
        return {**got, "store_id": store_id, "purpose": body.purpose, "lifetime_s": CODE_LIFETIME_S,
                "group": 1 + body.companions,
                "qr_png": qr_png_data_uri(got["code"]), "now": time.time()}

    @app.get("/app/api/codes/{jti}", tags=["wallet app"], responses={404: {}})
    def code(jti: str, request: Request):
        """Whether a shown code was used (the store reported the visit it opened): the page replaces it at once."""
        account_id = shopper(request)
        got = sdb.code_state(db, account_id, jti[:64])
        if got is None:
            raise api_error(404, "no_such_code", "no such code of yours")
        return {**got, "visit": sdb.current_visit(db, account_id)}

    # receipts and disputes -------------------------------------------------------------------------
    @app.get("/app/api/receipts", tags=["wallet app"])
    def get_receipts(request: Request):
        return {"data": sdb.receipts(db, shopper(request))}

    @app.post("/app/api/disputes", tags=["wallet app"], responses={404: {}, 409: {}})
    def dispute(body: DisputeIn, request: Request):
        account_id = shopper(request, change=True)
        try:
            return sdb.open_dispute(db, account_id, body.store_id, body.visit_id, sorted(set(body.skus)), body.note)
        except sdb.Refused as e:
            raise api_error(e.status, e.code, str(e)) from None

    # my data ---------------------------------------------------------------------------------------
    @app.get("/app/api/privacy", tags=["wallet app"])
    def privacy():
        return {**PRIVACY, "retention": retention.describe(), "kept_after_erasure": sdb.KEPT_AFTER_ERASURE}

    @app.get("/app/api/my-data", tags=["wallet app"])
    def my_data(request: Request, download: bool = False):
        account_id = shopper(request)
        data = {"exported_at": time.time(), "privacy": privacy(), **sdb.export(db, account_id)}
        if not download:
            return data
        return Response(json.dumps(data, indent=1, default=str), media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="my-data-{account_id}.json"', "Cache-Control": "no-store"})

    @app.post("/app/api/data-requests", tags=["wallet app"])
    def ask_stores(body: RequestIn, request: Request):
        """Ask the stores that know you for what they hold (answered within seconds while a store is online); once
        every ``REQUEST_EVERY_S`` at most (each has every such store search its journal)."""
        account_id = shopper(request, change=True)
        try:
            return {"data": sdb.request_data(db, account_id, body.kind, REQUEST_EVERY_S)}
        except sdb.Refused as e:
            raise api_error(e.status, e.code, str(e)) from None

    @app.post("/app/api/delete-account", tags=["wallet app"], responses={401: {}, 409: {}})
    def delete_account(body: DeleteIn, request: Request):
        """Erase the account (the password again, and the words "delete my account")."""
        account_id = shopper(request, change=True)
        name, src = "delete:" + account_id, source(request)  # (the log-in throttle, before the hash: M8)
        if not logins.reserve(name, src):
            raise api_error(429, "throttled", "too many wrong passwords: wait a minute")
        row = db.one("SELECT password_hash FROM shopper_logins WHERE account_id=?", (account_id,))
        if row is None or not hashed(check_password, body.password, row["password_hash"]):
            raise api_error(401, "bad_credentials", "wrong password")
        logins.succeeded(name, src)
        try:
            got = sdb.erase(db, account_id)
        except sdb.Refused as e:
            raise api_error(e.status, e.code, str(e)) from None
        resp = JSONResponse(got)
        resp.delete_cookie(COOKIE, path="/app")
        return resp
