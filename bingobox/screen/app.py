"""The operator status screen: a page, a live event stream, authenticated actions, Prometheus metrics.

Served by the controller process (uvicorn in a thread). It only reads snapshots the control loop publishes
(``Controller.view``) and the journal, and it acts only through ``Controller.act`` — the loop stays the one place
where decisions are made. Every action attempt and every login is written to the journal's audit table.

    GET  /                      the page (no build step, no external assets: it works on a box without internet)
    GET  /api/state             the snapshot + open alarms, recent charges, the audit log, recent history
    GET  /api/stream            the same, pushed as server-sent events (live, no refresh)
    POST /api/login | /api/logout, GET /api/me
    POST /api/actions/{name}    session cookie + X-CSRF-Token header; body: the action's arguments (JSON)
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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.store import short_account
from ..operations import ACTIONS
from .auth import Auth, Session
from .metrics import exposition

COOKIE = "bbx_session"
HISTORY = 600  # samples kept for the charts (10 min at one push per second)


class Store(Protocol):
    """What the screen needs of the controller."""

    view: dict
    journal: Any

    def act(self, operator: str, action: str, args: Any, timeout: float = 5.0) -> dict: ...


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=200)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class History:
    """Samples of traffic and latency for the charts, taken at most once per second."""

    def __init__(self) -> None:
        self.samples: deque[dict] = deque(maxlen=HISTORY)

    def sample(self, view: dict) -> None:
        t = view.get("t")
        if t is None or (self.samples and t - self.samples[-1]["t"] < 0.9):
            return
        lat, counts = view.get("latency", {}), view.get("counts", {})
        self.samples.append({"t": round(t, 1), "entries": counts.get("entries", 0), "left": counts.get("left", 0),
                             "inside": view.get("inside", 0),
                             "entry_p99": lat.get("entry_ms", {}).get("p99"),
                             "exit_p99": lat.get("exit_ms", {}).get("p99")})


def make_app(store: Store, auth: Auth, refund: Callable[[str, Any], tuple[bool, str]] | None = None,
             push_interval_s: float = 1.0, view_requires_login: bool = False) -> FastAPI:
    """``refund(audit_key, args)`` calls the wallet gateway (outside the control loop: it waits on the network).
    ``view_requires_login``: the store's state (accounts, visits, charges) only for logged-in operators."""
    app = FastAPI(title="bingobox status screen", docs_url=None, redoc_url=None)
    history = History()
    page = resources.files(__package__).joinpath("static")
    assets = {name: page.joinpath(name).read_text(encoding="utf-8") for name in ("index.html", "app.js", "style.css")}

    @app.exception_handler(RequestValidationError)
    async def _bad_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, "bad_request", f"{where}: {first.get('msg', 'invalid')}".strip(": "))

    cached: dict = {"t": None, "json": ""}

    def state_json() -> str:
        """The page's state as JSON, built once per controller snapshot however many pages watch (its journal
        reads share the lock the control loop writes through)."""
        view = store.view
        if view.get("t") is not None and view.get("t") == cached["t"]:
            return cached["json"]
        history.sample(view)
        data = {**view, "alarms": store.journal.open_alarms(), "recent_charges": store.journal.recent_charges(15),
                "review": [{**r, "account_id": short_account(r["account_id"])} for r in store.journal.for_review()],
                "audit": store.journal.recent_audit(15),
                "history": list(history.samples)[-120:]}
        cached.update(t=view.get("t"), json=json.dumps(data, default=str))
        return cached["json"]

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

    def may_view(request: Request) -> bool:
        return not view_requires_login or session_of(request) is not None

    @app.get("/api/state")
    def get_state(request: Request) -> Response:
        if not may_view(request):
            return _error(401, "not_logged_in", "log in to see the store")
        return Response(state_json(), media_type="application/json")

    @app.get("/api/stream", response_model=None)
    async def stream(request: Request) -> StreamingResponse | JSONResponse:
        if not may_view(request):
            return _error(401, "not_logged_in", "log in to see the store")

        async def events():
            yield "retry: 2000\n\n"
            while not await request.is_disconnected() and may_view(request):
                data = await asyncio.to_thread(state_json)
                yield f"event: state\ndata: {data}\n\n"
                await asyncio.sleep(push_interval_s)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/api/login")
    def login(body: LoginIn, request: Request) -> JSONResponse:
        got = auth.login(body.name, body.password)
        source = request.client.host if request.client else ""
        if isinstance(got, str):
            store.journal.audit(body.name, "login", {}, got, source=source)
            status = 429 if got == "throttled" else 401
            return _error(status, got, "too many failed logins: wait a minute" if got == "throttled"
                          else "unknown operator or wrong password")
        token, session = got
        store.journal.audit(session.operator, "login", {}, "ok", source=source)
        resp = JSONResponse({"operator": session.operator, "csrf": session.csrf})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=int(auth.ttl_s), path="/")
        return resp

    @app.post("/api/logout")
    def logout(request: Request) -> JSONResponse:
        s = session_of(request)
        if s is not None:
            store.journal.audit(s.operator, "logout", {}, "ok")
        auth.logout(request.cookies.get(COOKIE))
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/api/me")
    def me(request: Request) -> JSONResponse:
        s = session_of(request)
        if s is None:
            return _error(401, "not_logged_in", "log in to act")
        return JSONResponse({"operator": s.operator, "csrf": s.csrf})

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
        if request.headers.get("x-csrf-token") != s.csrf:
            return _error(403, "csrf", "missing or wrong X-CSRF-Token header")
        if name not in ACTIONS:
            return _error(404, "unknown_action", f"no action {name!r} (actions: {', '.join(ACTIONS)})")
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
        source = request.client.host if request.client else ""
        audit_id = await asyncio.to_thread(store.journal.audit, s.operator, name, args.model_dump(), "started", "",
                                           source)
        if name == "refund":
            if refund is None:
                ok, detail = False, "no wallet gateway configured"
            else:
                ok, detail = await asyncio.to_thread(refund, f"refund-{audit_id}", args)
            result = {"ok": ok, "detail": detail} if ok else {"ok": False, "error": "refund_failed", "detail": detail}
        else:
            result = await asyncio.to_thread(store.act, s.operator, name, args)
        await asyncio.to_thread(store.journal.set_audit_outcome, audit_id, "ok" if result["ok"] else "failed",
                                result.get("detail", ""))
        return JSONResponse(result, status_code=200 if result["ok"] else 409)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(exposition(store.view, time.time()), media_type="text/plain; version=0.0.4")

    return app
