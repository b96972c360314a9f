"""The operator status screen: a page, a live event stream, authenticated actions, Prometheus metrics.

Served by the controller process (uvicorn in a thread). It only reads snapshots the control loop publishes
(``StoreApp.view``, schema ``bingobox.view.View``) and the journal, and it acts only through ``StoreApp.act`` — the
loop stays the one place where decisions are made. Every action attempt and every login is written to the
journal's audit table.

    GET  /panel/DOOR            a door's panel (no login; ``panel_routes``)
    GET  /                      the page (no build step, no external assets: it works on a box without internet)
    GET  /api/state             operators: the snapshot + open alarms, recent charges, the audit log, history;
                                anyone else: state and counts only (shortened account ids, no audit, no addresses)
    GET  /api/stream            the same, pushed as server-sent events (live, no refresh; at most ``max_streams``)
    POST /api/login | /api/logout, GET /api/me
    POST /api/actions/{name}    session cookie + X-CSRF-Token header; body: the action's arguments (JSON); refunds
                                and shoppers' disputes (accept: refund once; reject: with a reason) need may_refund
    GET  /api/visits/{id}       one visit's evidence record (operators only)
    GET  /metrics               Prometheus text format
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from importlib import resources
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import i18n
from ..actions import ACTIONS, MONEY_ACTIONS, MONEY_DECISIONS, DecideReview, Refund, ResolveDispute
from ..core.store import short_account
from ..panel_hub import PanelHub
from ..view import View
from ..wallet import records
from .auth import Auth, Session, bearer_ok, same_token
from .login_routes import add_login_routes
from .metrics import exposition
from .panel_routes import add_panel_routes

COOKIE = "bbx_session"
HISTORY = 600  # samples kept for the charts (10 min at one push per second)


class Store(Protocol):
    """What the screen needs of the controller."""

    view: View
    journal: Any

    def act(self, operator: str, action: str, args: Any, timeout: float = 5.0) -> dict: ...


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class History:
    """Samples of traffic and latency for the charts, taken at most once per second."""

    def __init__(self) -> None:
        self.samples: deque[dict] = deque(maxlen=HISTORY)

    def sample(self, view: View) -> None:
        t = view.get("t")
        if t is None or (self.samples and t - self.samples[-1]["t"] < 0.9):
            return
        lat, counts = view.get("latency", {}), view.get("counts", {})
        self.samples.append({"t": round(t, 1), "entries": counts.get("entries", 0), "left": counts.get("left", 0),
                             "inside": view.get("inside", 0),
                             "entry_p99": lat.get("entry_ms", {}).get("p99"),
                             "exit_p99": lat.get("exit_ms", {}).get("p99")})


def public_view(data: dict) -> dict:
    """What an anonymous viewer sees: the store's state and counts; accounts shortened; no audit log, no review
    list, no device addresses or error texts, no alarm details."""
    devices = {n: {k: d.get(k) for k in ("kind", "name", "role", "state", "online", "door_open", "lock_engaged",
                                         "tags_present", "rounds", "fps") if k in d}
               for n, d in (data.get("devices") or {}).items()}
    charges = [{"id": c.get("id"), "visit_id": c.get("visit_id"),
                "account_id": short_account(str(c.get("account_id") or "")),
                "amount_fen": c.get("amount_fen"), "state": c.get("state"), "created_at": c.get("created_at")}
               for c in data.get("recent_charges") or []]
    alarms = [{k: a.get(k) for k in ("id", "t", "kind", "device")} for a in data.get("alarms") or []]
    hidden = {"audit", "review", "devices", "recent_charges", "alarms", "problems", "buses", "disputes"}
    return {**{k: v for k, v in data.items() if k not in hidden}, "devices": devices, "recent_charges": charges,
            "alarms": alarms, "problems": [f"{len(data.get('problems') or [])} problem(s): log in to see them"]
            if data.get("problems") else [], "public": True}


def make_app(store: Store, auth: Auth, refund: Callable[[str, Any], tuple[bool | None, str]] | None = None,
             push_interval_s: float = 1.0, view_requires_login: bool = False,
             allowed_hosts: list[str] | None = None, max_streams: int = 20,
             resolve_dispute: Callable[[str, Any], tuple[bool | None, str]] | None = None,
             metrics_token: str | None = None, panels: PanelHub | None = None, language: str = "en") -> FastAPI:
    """``refund(idempotency_key, args)`` calls the wallet gateway (outside the control loop: it waits on the
    network) and says (True: refunded, False: refused, None: unknown) and why; ``resolve_dispute(operator, args)``
    likewise for a shopper's dispute.
    ``view_requires_login``: nothing of the store for anyone but logged-in operators (``/metrics``: or a scraper
    with ``metrics_token``).
    ``panels``: the door panels' messages (their pages need no login: each shows only its door's latest message).
    ``language``: the words for the store's identifiers (``/api/words``; a page may ask for another shipped one).
    ``allowed_hosts``: the Host header values accepted (a page on another site rebinding its DNS name to the box
    is refused); None: any (tests only)."""
    app = FastAPI(title="bingobox status screen", docs_url=None, redoc_url=None)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    history = History()
    streams = {"open": 0, "refused": 0}
    page = resources.files(__package__).joinpath("static")
    assets = {name: page.joinpath(name).read_text(encoding="utf-8") for name in ("index.html", "app.js", "style.css")}

    @app.exception_handler(RequestValidationError)
    async def _bad_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, "bad_request", f"{where}: {first.get('msg', 'invalid')}".strip(": "))

    cached: dict = {"t": None, "full": "", "public": ""}

    def state_json(full: bool) -> str:
        """The page's state as JSON (for operators, or the public part), built once per controller snapshot
        however many pages watch (its journal reads share the lock the control loop writes through)."""
        view = store.view
        if view.get("t") is None or view.get("t") != cached["t"]:
            history.sample(view)
            data = {**view, "alarms": store.journal.open_alarms(),
                    "recent_charges": store.journal.recent_charges(15),
                    "review": [{**r, "account_id": short_account(r["account_id"])}
                               for r in store.journal.open_reviews()],
                    "audit": store.journal.recent_audit(15),
                    "disputes": [{**d, "account_id": short_account(d["account_id"])}
                                 for d in records.open_disputes(store.journal)],
                    "history": list(history.samples)[-120:],
                    "screen": {"streams": streams["open"], "streams_refused": streams["refused"]}}
            cached.update(t=view.get("t"), full=json.dumps(data, default=str),
                          public=json.dumps(public_view(data), default=str))
        return cached["full" if full else "public"]

    def session_of(request: Request) -> Session | None:
        return auth.session(request.cookies.get(COOKIE))

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(assets["index.html"], headers={"Cache-Control": "no-store"})

    @app.get("/app.js")
    def script() -> Response:
        return Response(assets["app.js"], media_type="text/javascript")

    @app.get("/style.css")
    def style() -> Response:
        return Response(assets["style.css"], media_type="text/css")

    @app.get("/api/words")
    def words(lang: str | None = None) -> Response:
        """The screen's words for counters, flags, alarms and review causes in ``lang`` (default: the screen's)."""
        chosen = lang if lang in i18n.LANGUAGES else language
        return Response(json.dumps({"lang": chosen, "words": i18n.operator_words(chosen)}, ensure_ascii=False),
                        media_type="application/json", headers={"Cache-Control": "no-store"})

    def may_view(request: Request) -> bool:
        return not view_requires_login or session_of(request) is not None

    @app.get("/api/state")
    def get_state(request: Request) -> Response:
        if not may_view(request):
            return _error(401, "not_logged_in", "log in to see the store")
        return Response(state_json(session_of(request) is not None), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    @app.get("/api/stream", response_model=None)
    async def stream(request: Request) -> StreamingResponse | JSONResponse:
        if not may_view(request):
            return _error(401, "not_logged_in", "log in to see the store")
        if streams["open"] >= max_streams:
            streams["refused"] += 1
            return JSONResponse({"error": {"code": "too_many_streams", "message": f"{max_streams} live views are "
                                           "open already: close one, or reload /api/state"}},
                                status_code=503, headers={"Retry-After": "10"})
        streams["open"] += 1

        async def events():
            try:
                yield "retry: 2000\n\n"
                while not await request.is_disconnected() and may_view(request):
                    data = await asyncio.to_thread(state_json, session_of(request) is not None)
                    yield f"event: state\ndata: {data}\n\n"
                    await asyncio.sleep(push_interval_s)
            finally:
                streams["open"] -= 1

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    add_login_routes(app, auth, store.journal.audit, COOKIE, "may_refund")
    if panels is not None:
        add_panel_routes(app, panels)

    @app.get("/api/visits/{visit_id}")
    def visit(visit_id: str, request: Request) -> JSONResponse:
        """One visit's evidence record, for operators (it names the account and holds face scores)."""
        s = session_of(request)
        if s is None:
            return _error(401, "not_logged_in", "log in to see a visit's evidence")
        record = store.journal.visit_record(visit_id[:64])
        if record is None:
            return _error(404, "no_such_visit", f"no visit {visit_id[:64]!r}")
        return JSONResponse(json.loads(json.dumps(record, default=str)))

    @app.post("/api/actions/{name}")
    async def action(name: str, request: Request) -> JSONResponse:
        s = session_of(request)
        if s is None:
            return _error(401, "not_logged_in", "log in to act")
        if not same_token(request.headers.get("x-csrf-token"), s.csrf):
            return _error(403, "csrf", "missing or wrong X-CSRF-Token header")
        if name not in ACTIONS:
            return _error(404, "unknown_action", f"no action {name!r} (actions: {', '.join(ACTIONS)})")
        if name in MONEY_ACTIONS and not s.may_refund:
            return _error(403, "no_refund_permission", f"{s.operator} may not give money back "
                          "(operators.may_refund)")
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
            args = ACTIONS[name].model_validate(body)
        except (ValueError, ValidationError) as e:
            detail = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()) \
                if isinstance(e, ValidationError) else f"not JSON: {e}"
            store.journal.audit(s.operator, name, {"body": raw[:200].decode("utf-8", "replace")}, "rejected", detail,
                                request.client.host if request.client else "")
            return _error(422, "bad_request", detail)
        if isinstance(args, DecideReview) and args.decision in MONEY_DECISIONS and not s.may_refund:
            return _error(403, "no_refund_permission", f"{s.operator} may not charge or refund a reviewed visit "
                          "(operators.may_refund)")
        source = request.client.host if request.client else ""
        audit_id = await asyncio.to_thread(store.journal.audit, s.operator, name, args.model_dump(), "started", "",
                                           source)
        ok: bool | None
        result: dict[str, Any]
        if isinstance(args, Refund):  # one key per refund asked for: a retry of the same request cannot refund twice
            if refund is None:
                ok, detail = False, "no wallet gateway configured"
            else:
                ok, detail = await asyncio.to_thread(refund, f"refund-{args.request_id}", args)
            result = {"ok": ok, "detail": detail, **({} if ok else {
                "error": "refund_failed" if ok is False else "outcome_unknown"})}
        elif isinstance(args, ResolveDispute) or (isinstance(args, DecideReview) and args.decision == "refund"):
            if resolve_dispute is None:
                ok, detail = False, "no wallet gateway configured"
            else:
                ok, detail = await asyncio.to_thread(resolve_dispute, s.operator, args)
            result = {"ok": ok, "detail": detail, **({} if ok else {
                "error": "not_resolved" if ok is False else "outcome_unknown"})}
        else:
            result = await asyncio.to_thread(store.act, s.operator, name, args)
        outcome = {True: "ok", False: "failed", None: "unknown"}[result["ok"]]
        await asyncio.to_thread(store.journal.set_audit_outcome, audit_id, outcome, result.get("detail", ""))
        return JSONResponse({**result, "outcome": outcome},
                            status_code={"ok": 200, "failed": 409, "unknown": 202}[outcome])

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        """Open like the page, unless the page needs a login: then an operator's session or the scraper's token
        (``Authorization: Bearer``, [screen] metrics_token_file)."""
        if view_requires_login and session_of(request) is None and not bearer_ok(request, metrics_token):
            return _error(401, "not_logged_in", "log in, or send the metrics token (Authorization: Bearer …)")
        return Response(exposition(store.view, time.time()), media_type="text/plain; version=0.0.4")

    return app
