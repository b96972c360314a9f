"""The mock wallet gateway's HTTP API (FastAPI; served OpenAPI at /openapi.json).

Terminal endpoints (/v1/charges, /v1/refunds) need a signed request (bingobox.wallet.signing); charges and
refunds need an Idempotency-Key: same key + same body → the stored response replayed (errors included) for
24 h; same key + other body → 422; same key while the first is in flight → 409; missing/bad key → 400.
Admin endpoints (/admin/..., and /v1/entry-codes, which stands in for the shopper's wallet app) need the
X-Admin-Token header. Errors are {"error": {"code", "message"}}.

Protocol 2: what a store says about an account is bound to an entry code this gateway issued to that account for
that store — a charge names its visit and the code that opened it (``visit_id``, ``entry_jti``), a visit's record
names its codes (``jtis``); the first visit named with a code binds it. A store of protocol 1 (no ``entry_jti``)
gets 400; a code of another account or store 403; a code bound to another visit 409.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from bingobox.domain import tokens

from .cards import card_visit_charged
from .db import IDEMPOTENCY_TTL_S, IN_FLIGHT_STALE_S, GatewayDB, charge_json
from .shopper_db import Refused, Retention, bind_code, current_visit, issue_code
from .terminal_auth import TerminalAuth

log = logging.getLogger(__name__)
MAX_CHARGE_FEN = 10_000_000  # 100 000 CNY
MAX_BALANCE_FEN = 10**12
ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class ConnectionDropped(Exception):
    """Raised after the response headers went out: the client sees the connection break (fault injection)."""


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 503, 429])
    drop_rate: float = 0.0  # drop the connection after committing
    outage: bool = False
    pending_s: float = 0.0  # new charges stay "pending" (user paying) this long


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReceiptLine(Strict):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    qty: StrictInt = Field(ge=1, le=1000)
    unit_fen: StrictInt = Field(ge=0, le=MAX_CHARGE_FEN)
    amount_fen: StrictInt = Field(ge=0, le=MAX_CHARGE_FEN)


class ChargeIn(Strict):
    account_id: ID
    amount_fen: StrictInt = Field(ge=1, le=MAX_CHARGE_FEN, description="integer fen (1 CNY = 100 fen)")
    currency: Literal["CNY"]
    visit_id: ID
    entry_jti: ID = Field(description="the id of the entry code that opened the visit: issued to this account for "
                          "this store, and bound to this visit by its first use (protocol 2)")
    description: str | None = Field(None, max_length=200)
    items: list[ReceiptLine] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _items_add_up(self) -> ChargeIn:
        if self.items and sum(i.amount_fen for i in self.items) != self.amount_fen:
            raise ValueError("items do not add up to amount_fen")
        for i in self.items:
            if i.qty * i.unit_fen != i.amount_fen:
                raise ValueError(f"item {i.sku}: qty * unit_fen != amount_fen")
        return self


class RefundIn(Strict):
    charge_id: ID
    amount_fen: StrictInt | None = Field(None, ge=1, le=MAX_CHARGE_FEN)
    reason: str | None = Field(None, max_length=200)


class AccountIn(Strict):
    real_name: str = Field(min_length=1, max_length=100)
    id_number: str = Field(min_length=6, max_length=32, pattern=r"^[0-9A-Za-z]+$")
    balance_fen: StrictInt = Field(0, ge=0, le=MAX_BALANCE_FEN)
    face_consent: StrictBool = False
    door_name: str | None = Field(None, max_length=64, description="the first name door panels greet (optional)")


class TopUpIn(Strict):
    amount_fen: StrictInt = Field(ge=1, le=MAX_BALANCE_FEN)


class FreezeIn(Strict):
    frozen: StrictBool


class StoreIn(Strict):
    store_id: ID
    secret: str | None = Field(None, min_length=16, max_length=200)


class EntryCodeIn(Strict):
    account_id: ID
    store_id: ID
    door: Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9_.:-]{1,64})$", description="a door, or * for any")] = "*"
    lifetime_s: StrictInt = Field(60, ge=5, le=tokens.MAX_LIFETIME_S)
    face_consent: StrictBool | None = None
    issued_ago_s: StrictInt = Field(0, ge=0, le=86_400, description="backdated (an expired code, for tests)")
    group: StrictInt = Field(1, ge=1, le=tokens.MAX_GROUP, description="the shopper and their companions")


class FaultsIn(Strict):
    latency_ms: float | None = Field(None, ge=0, le=120_000)
    error_rate: float | None = Field(None, ge=0, le=1)
    error_statuses: list[Literal[429, 500, 502, 503, 504]] | None = None
    drop_rate: float | None = Field(None, ge=0, le=1)
    outage: StrictBool | None = None
    pending_s: float | None = Field(None, ge=0, le=3600)


class Superseded(ApiError):
    """A slow request whose idempotency key a retry took over: it must commit nothing."""


MAX_BODY = 64 * 1024  # bytes: a charge with a full basket is a few KiB
MAX_ANSWER_BODY = 4 * 2**20  # a store's answer to a data request (every visit of an account it still keeps)
MAX_RECORD_BODY = 2**20  # a store's record of one visit (a basket of hundreds of items, each in several events)


def body_limit(method: str, path: str) -> int:
    """The largest body a request may declare: none for methods that take none (GET, HEAD, DELETE, OPTIONS)."""
    if method not in ("POST", "PUT", "PATCH"):
        return 0
    return MAX_ANSWER_BODY if path.startswith("/v1/data-requests/") else \
        MAX_RECORD_BODY if path.startswith("/v1/visits/") else MAX_BODY


class BodyLimit:
    """A body limit for every method, before anything reads the body (plain ASGI: no buffering, no task group): a
    declared length over ``body_limit`` is 413, a body without a declared length (chunked) is 411."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            length = headers.get(b"content-length", b"").decode("latin-1")
            limit = body_limit(scope["method"], scope["path"])
            refusal = None
            if not length and b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                refusal = ApiError(411, "length_required", "send a Content-Length") if limit else \
                    ApiError(413, "body_too_large", f"{scope['method']} takes no body")
            elif length and (not length.isdigit() or len(length) > 12 or int(length) > limit):
                refusal = ApiError(413, "body_too_large", f"at most {limit} bytes" if limit else
                                   f"{scope['method']} takes no body")
            if refusal is not None:
                await JSONResponse(refusal.body(), status_code=refusal.status,
                                   headers={"Connection": "close"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class DropAfterCommit:
    """Fault injection (plain ASGI, no task group): a request whose handler set ``request.state.drop`` gets its
    response head, then the connection breaks — the client does not learn the outcome of what was committed."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_or_drop(message) -> None:
            if message["type"] == "http.response.body" and scope.get("state", {}).get("drop"):
                raise ConnectionDropped("fault injection: connection dropped after commit")
            await send(message)

        await self.app(scope, receive, send_or_drop)


def create_app(db: GatewayDB, admin_token: str, faults: Faults | None = None, seed: int | None = None,
               in_flight_stale_s: float = IN_FLIGHT_STALE_S, retention: Retention | None = None,
               card_limit_fen: int = 20_000) -> FastAPI:
    """``card_limit_fen``: the most a visit opened by an NFC card may be charged in all (a card can be cloned).
    ``in_flight_stale_s``: after this long, a request whose key is still in flight is taken to have died and a
    retry with the key runs (the first, if it was only slow, then finds itself superseded and commits nothing)."""
    app = FastAPI(title="bingobox mock wallet gateway", version="2.0",
                  description=__doc__.split("\n\n", 1)[1] if __doc__ else "")
    app.add_middleware(DropAfterCommit)
    app.add_middleware(TerminalAuth, secret_of=db.store_secret, use_nonce=db.use_nonce)
    app.add_middleware(BodyLimit)  # (added last: runs first)
    app.state.faults = faults or Faults()
    app.state.injected = {"outage": 0, "errors": 0, "drops": 0, "delayed": 0, "pending": 0}
    rng = random.Random(seed)

    # errors --------------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        """The framework's own refusals (a body that does not decode, an unknown path, a wrong method) in the
        gateway's error format too."""
        code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse({"error": {"code": code, "message": str(e.detail)}}, status_code=e.status_code,
                            headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        msg = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid request")
        return JSONResponse({"error": {"code": "invalid_request", "message": msg}}, status_code=400)

    # dependencies --------------------------------------------------------------------------------
    def admin(x_admin_token: Annotated[str | None, Header()] = None) -> None:
        if not x_admin_token or not hmac.compare_digest(x_admin_token.encode(), admin_token.encode()):
            raise ApiError(401, "unauthorized", "admin token missing or wrong")

    async def infra_faults() -> None:
        f: Faults = app.state.faults
        if f.outage:
            app.state.injected["outage"] += 1
            raise ApiError(503, "unavailable", "gateway outage (fault injection)")
        if f.error_rate and rng.random() < f.error_rate:
            app.state.injected["errors"] += 1
            status = rng.choice(f.error_statuses)
            raise ApiError(status, "rate_limited" if status == 429 else "server_error",
                           f"injected {status} (fault injection)")

    async def terminal(request: Request) -> str:
        """The store id ``TerminalAuth`` verified (signature over the store id, the Idempotency-Key and the body; a
        fresh nonce), then the injected infrastructure faults."""
        store_id = getattr(request.state, "store_id", None)
        if store_id is None:  # (a terminal route outside TerminalAuth's prefixes would land here)
            raise ApiError(401, "unsigned", "X-Store-Id, X-Timestamp, X-Nonce and X-Signature are required")
        await infra_faults()
        return store_id

    def idem_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
        k = idempotency_key
        if k is None or k == "":
            raise ApiError(400, "idempotency_key_missing", "Idempotency-Key header is required")
        if len(k) > 255 or not all(0x21 <= ord(c) <= 0x7E for c in k):
            raise ApiError(400, "idempotency_key_invalid", "Idempotency-Key must be 1..255 printable ASCII characters")
        return k

    def maybe_drop(request: Request) -> None:
        f: Faults = app.state.faults
        if f.drop_rate and rng.random() < f.drop_rate:
            app.state.injected["drops"] += 1
            request.state.drop = True

    async def idempotent(request: Request, store_id: str, key: str, endpoint: str, payload: dict, run):
        """Stripe-style idempotency around ``run()`` (which returns (status, body) inside its own transaction)."""
        rh = hashlib.sha256(json.dumps([endpoint, payload], sort_keys=True).encode()).hexdigest()
        now = time.time()
        with db.tx() as c:
            c.execute("DELETE FROM idempotency WHERE created_at < ?", (now - IDEMPOTENCY_TTL_S,))
            row = c.execute("SELECT * FROM idempotency WHERE store_id=? AND key=?", (store_id, key)).fetchone()
            if row is not None:
                if row["request_hash"] != rh:
                    raise ApiError(422, "idempotency_key_reused",
                                   "this Idempotency-Key was used with a different request")
                if row["state"] == "done":
                    maybe_drop(request)
                    return JSONResponse(json.loads(row["body"]), status_code=row["status"],
                                        headers={"Idempotent-Replayed": "true"})
                if now - row["created_at"] < in_flight_stale_s:
                    raise ApiError(409, "idempotency_key_in_use", "a request with this key is still in flight; "
                                   "retry later with the same key")
                # taken over: this request now owns the key (its created_at is the owner's mark)
                c.execute("UPDATE idempotency SET created_at=? WHERE store_id=? AND key=?", (now, store_id, key))
            else:
                c.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, 'in_flight', NULL, NULL, ?)",
                          (store_id, key, endpoint, rh, now))
        f: Faults = app.state.faults
        if f.latency_ms:
            app.state.injected["delayed"] += 1
            await asyncio.sleep(f.latency_ms / 1000)
        try:
            with db.tx() as c:
                status, body = run(c)
                done = c.execute("UPDATE idempotency SET state='done', status=?, body=? WHERE store_id=? AND key=? "
                                 "AND state='in_flight' AND created_at=?",
                                 (status, json.dumps(body), store_id, key, now))
                if done.rowcount != 1:  # a retry took the key over while this one was slow: its work is undone
                    raise Superseded(409, "idempotency_key_in_use", "this request was superseded by a retry with "
                                   "its key: ask again with the same key for the outcome")
        except Superseded:
            raise
        except BaseException:
            with db.tx() as c:
                c.execute("DELETE FROM idempotency WHERE store_id=? AND key=? AND state='in_flight' AND created_at=?",
                          (store_id, key, now))
            raise
        maybe_drop(request)
        return JSONResponse(body, status_code=status)

    # terminal endpoints --------------------------------------------------------------------------
    @app.post("/v1/charges", tags=["terminal"], responses={202: {}, 402: {}, 404: {}, 409: {}, 422: {}})
    async def create_charge(body: ChargeIn, request: Request, store_id: str = Depends(terminal),
                            key: str = Depends(idem_key)):
        """Charge a wallet for a visit. 200 succeeded, 202 pending (user paying), 402 declined; 403 when
        ``entry_jti`` is not a code issued to the account for this store, 409 when it is another visit's."""
        pending_s = app.state.faults.pending_s

        def run(c):
            now = time.time()
            acc = c.execute("SELECT balance_fen, frozen FROM accounts WHERE id=?", (body.account_id,)).fetchone()
            if acc is None:
                return 404, ApiError(404, "account_not_found", f"no account {body.account_id}").body()
            try:
                bind_code(c, store_id, body.account_id, body.entry_jti, body.visit_id, now)
            except Refused as e:
                return e.status, ApiError(e.status, e.code, str(e)).body()
            if body.entry_jti.startswith("card.") and \
                    card_visit_charged(c, store_id, body.visit_id) + body.amount_fen > card_limit_fen:
                return 403, ApiError(403, "card_limit", f"a visit opened by a card is charged at most "
                                     f"{card_limit_fen} fen in all").body()
            cid = "ch_" + secrets.token_hex(10)
            status, reason = "succeeded", None
            if acc["frozen"]:
                status, reason = "failed", "account_frozen"
            elif pending_s:
                status = "pending"
                app.state.injected["pending"] += 1
            elif acc["balance_fen"] < body.amount_fen:
                status, reason = "failed", "insufficient_balance"
            c.execute("INSERT INTO charges VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?,?,?)",
                      (cid, store_id, key, body.account_id, body.amount_fen, body.currency, status, reason,
                       body.description, json.dumps([i.model_dump() for i in body.items]), body.visit_id,
                       now + pending_s if status == "pending" else None, now, now))
            if status == "succeeded":
                c.execute("UPDATE accounts SET balance_fen = balance_fen - ? WHERE id=?",
                          (body.amount_fen, body.account_id))
            charge = charge_json(c.execute("SELECT * FROM charges WHERE id=?", (cid,)).fetchone())
            if status == "failed":
                return 402, ApiError(402, "declined", f"declined: {reason}", reason=reason, charge=charge).body()
            return (202 if status == "pending" else 200), charge

        return await idempotent(request, store_id, key, "POST /v1/charges", body.model_dump(), run)

    @app.get("/v1/charges/{charge_id}", tags=["terminal"], responses={404: {}})
    def get_charge(charge_id: str, request: Request, store_id: str = Depends(terminal)):
        db.resolve_pending(time.time())
        row = db.charge_row(charge_id, store_id)
        if row is None:
            raise ApiError(404, "charge_not_found", f"no charge {charge_id} for this store")
        maybe_drop(request)
        return charge_json(row)

    @app.get("/v1/charges", tags=["terminal"])
    def find_charges(request: Request, idempotency_key: Annotated[str, Query(min_length=1, max_length=255)],
                     store_id: str = Depends(terminal)):
        db.resolve_pending(time.time())
        rows = db.all("SELECT * FROM charges WHERE store_id=? AND idem_key=?", (store_id, idempotency_key))
        maybe_drop(request)
        return {"data": [charge_json(r) for r in rows]}

    @app.post("/v1/charges/{charge_id}/cancel", tags=["terminal"], responses={404: {}, 409: {}})
    def cancel_charge(charge_id: str, request: Request, store_id: str = Depends(terminal)):
        """Close a charge whose result is unknown. Pending → canceled (no money moves); already closed → as is;
        succeeded → 409 charge_already_succeeded (query it: the shopper paid)."""
        now = time.time()
        db.resolve_pending(now)
        with db.tx() as c:
            row = c.execute("SELECT * FROM charges WHERE id=? AND store_id=?", (charge_id, store_id)).fetchone()
            if row is None:
                raise ApiError(404, "charge_not_found", f"no charge {charge_id} for this store")
            if row["status"] == "succeeded":
                raise ApiError(409, "charge_already_succeeded", "the charge succeeded; refund it instead")
            if row["status"] == "pending":
                c.execute("UPDATE charges SET status='canceled', updated_at=? WHERE id=?", (now, charge_id))
        maybe_drop(request)
        after = db.charge_row(charge_id)
        if after is None:  # (charges are never deleted)
            raise ApiError(404, "charge_not_found", f"no charge {charge_id} for this store")
        return charge_json(after)

    @app.post("/v1/refunds", tags=["terminal"], responses={404: {}, 409: {}, 422: {}})
    async def create_refund(body: RefundIn, request: Request, store_id: str = Depends(terminal),
                            key: str = Depends(idem_key)):
        def run(c):
            row = c.execute("SELECT * FROM charges WHERE id=? AND store_id=?", (body.charge_id, store_id)).fetchone()
            if row is None:
                return 404, ApiError(404, "charge_not_found", f"no charge {body.charge_id}").body()
            if row["status"] != "succeeded":
                return 409, ApiError(409, "not_refundable", f"charge is {row['status']}").body()
            left = row["amount_fen"] - row["refunded_fen"]
            if left <= 0:  # (a refund of 0 fen after a full refund is no refund)
                return 409, ApiError(409, "refunded_already", "the charge has been refunded in full").body()
            amount = body.amount_fen or left
            if amount > left:
                return 409, ApiError(409, "refund_too_large", f"only {left} fen left to refund").body()
            rid = "re_" + secrets.token_hex(10)
            now = time.time()
            c.execute("INSERT INTO refunds (id, charge_id, amount_fen, reason, created_at, idem_key) VALUES "
                      "(?, ?, ?, ?, ?, ?)", (rid, row["id"], amount, body.reason, now, key))
            c.execute("UPDATE charges SET refunded_fen = refunded_fen + ?, updated_at=? WHERE id=?",
                      (amount, now, row["id"]))
            c.execute("UPDATE accounts SET balance_fen = balance_fen + ? WHERE id=?", (amount, row["account_id"]))
            return 200, {"id": rid, "object": "refund", "charge_id": row["id"], "amount_fen": amount,
                         "reason": body.reason, "created_at": now}

        return await idempotent(request, store_id, key, "POST /v1/refunds", body.model_dump(), run)

    # the wallet app's side -----------------------------------------------------------------------
    @app.get("/v1/public-keys", tags=["public"])
    def public_keys():
        """The entry-code verification keys, for terminals to pin."""
        return {"keys": db.public_keys()}

    @app.post("/v1/entry-codes", tags=["wallet"], dependencies=[Depends(admin)], responses={402: {}, 404: {}})
    def entry_code(body: EntryCodeIn):
        """Issue a one-time entry code for an account (what the shopper's wallet app shows as a QR code)."""
        acc = db.account(body.account_id)
        if acc is None:
            raise ApiError(404, "account_not_found", f"no account {body.account_id}")
        if acc["frozen"]:
            raise ApiError(402, "account_frozen", "account is frozen")
        consent = acc["face_consent"] if body.face_consent is None else body.face_consent
        return issue_code(db, body.account_id, body.store_id, body.door, body.lifetime_s, consent,
                          issued_ago_s=body.issued_ago_s, door_name=acc["door_name"], group=body.group)

    # admin ---------------------------------------------------------------------------------------
    adm = [Depends(admin)]

    @app.post("/admin/accounts", tags=["admin"], dependencies=adm, responses={409: {}})
    def create_account(body: AccountIn):
        """Register an account under a real name; only a keyed hash of the ID number is kept."""
        if body.door_name is not None and not tokens.door_name_ok(body.door_name):
            raise ApiError(422, "bad_door_name", f"a first name of at most {tokens.MAX_NAME_LEN} letters")
        try:
            return db.create_account(body.real_name, body.id_number, body.balance_fen, body.face_consent,
                                     body.door_name)
        except Exception as e:  # sqlite3.IntegrityError: the ID number is registered already
            if "UNIQUE" in str(e):
                raise ApiError(409, "already_registered", "an account with this ID number exists") from None
            raise

    def _account(acc_id: str) -> dict:
        acc = db.account(acc_id)
        if acc is None:
            raise ApiError(404, "account_not_found", f"no account {acc_id}")
        return acc

    @app.get("/admin/accounts/{account_id}", tags=["admin"], dependencies=adm, responses={404: {}})
    def get_account(account_id: str):
        return _account(account_id)

    @app.get("/admin/accounts/{account_id}/visit", tags=["admin"], dependencies=adm, responses={404: {}})
    def account_visit(account_id: str):
        """The account's visit in progress with its live basket: what the wallet app shows (for test rigs)."""
        _account(account_id)
        return {"visit": current_visit(db, account_id)}

    @app.post("/admin/accounts/{account_id}/topup", tags=["admin"], dependencies=adm, responses={404: {}, 409: {}})
    def topup(account_id: str, body: TopUpIn):
        _account(account_id)
        with db.tx() as c:
            bal = c.execute("SELECT balance_fen FROM accounts WHERE id=?", (account_id,)).fetchone()[0]
            if bal + body.amount_fen > MAX_BALANCE_FEN:
                raise ApiError(409, "balance_limit", "balance would exceed the limit")
            c.execute("UPDATE accounts SET balance_fen = balance_fen + ? WHERE id=?", (body.amount_fen, account_id))
            c.execute("INSERT INTO topups (account_id, amount_fen, created_at) VALUES (?, ?, ?)",
                      (account_id, body.amount_fen, time.time()))
        return _account(account_id)

    @app.post("/admin/accounts/{account_id}/freeze", tags=["admin"], dependencies=adm, responses={404: {}})
    def freeze(account_id: str, body: FreezeIn):
        _account(account_id)
        with db.tx() as c:
            c.execute("UPDATE accounts SET frozen=? WHERE id=?", (int(body.frozen), account_id))
        return _account(account_id)

    @app.get("/admin/accounts/{account_id}/receipts", tags=["admin"], dependencies=adm, responses={404: {}})
    def receipts(account_id: str):
        """The wallet's receipts: every successful charge with its items."""
        _account(account_id)
        rows = db.all("SELECT * FROM charges WHERE account_id=? AND status='succeeded' ORDER BY created_at",
                      (account_id,))
        return {"data": [charge_json(r) for r in rows]}

    @app.post("/admin/stores", tags=["admin"], dependencies=adm)
    def create_store(body: StoreIn):
        return {"store_id": body.store_id, "secret": db.upsert_store(body.store_id, body.secret)}

    @app.get("/admin/charges", tags=["admin"], dependencies=adm)
    def ledger(store_id: Annotated[str | None, Query(max_length=64)] = None,
               visit_id: Annotated[str | None, Query(max_length=64)] = None):
        """Every charge (the ledger tests compare against)."""
        db.resolve_pending(time.time())
        sql, args = "SELECT * FROM charges WHERE 1=1", list[str]()
        if store_id:
            sql, args = sql + " AND store_id=?", [*args, store_id]
        if visit_id:
            sql, args = sql + " AND visit_id=?", [*args, visit_id]
        return {"data": [charge_json(r) for r in db.all(sql + " ORDER BY created_at", tuple(args))]}

    @app.post("/admin/keys/rotate", tags=["admin"], dependencies=adm)
    def rotate():
        return {"kid": db.rotate_key(), "keys": db.public_keys()}

    @app.get("/admin/faults", tags=["admin"], dependencies=adm)
    def get_faults():
        """The switches, and how often each fault was injected since start."""
        return {**asdict(app.state.faults), "injected": app.state.injected}

    @app.post("/admin/faults", tags=["admin"], dependencies=adm)
    def set_faults(body: FaultsIn):
        """Switch faults on or off; omitted fields keep their value."""
        for k, v in body.model_dump(exclude_none=True).items():
            setattr(app.state.faults, k, v)
        log.warning("faults now %s", asdict(app.state.faults))
        return asdict(app.state.faults)

    @app.get("/healthz", tags=["public"])
    def healthz():
        return {"ok": True}

    from .cards import add_card_routes
    from .store_routes import add_store_routes
    from .wallet_app import add_wallet_app

    add_store_routes(app, db, terminal, ApiError)
    add_wallet_app(app, db, retention or Retention(), ApiError)
    add_card_routes(app, db, terminal, app.state.shopper, ApiError, card_limit_fen)

    return app
