"""The fleet page and its API (FastAPI), served by ``bingobox fleet``; the same care as the store's screen:
operator logins (scrypt, throttled), an HttpOnly SameSite=Strict session cookie and a CSRF header for commands,
every command and login audited, no external assets, ``/metrics`` for Prometheus.

    GET  /                         the page (live: server-sent events)
    GET  /api/state?q=&status=&state=   the fleet: counts, open alarms first, stores (filtered; 200 at most)
    GET  /api/stream?…             the same, pushed (operators only)
    GET  /api/stores/{id}          one store: its state, metrics, alarms, events
    POST /api/login | /api/logout, GET /api/me
    POST /api/commands/{store}/{name}   a signed command to a store (X-CSRF-Token); waits for its result
    GET  /metrics                  (an operator's session, or the scraper's token)
"""

from __future__ import annotations

import asyncio
import json
import time
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from ..actions import ACTIONS
from ..mqtt.messages import COMMANDS
from ..screen.auth import Auth, bearer_ok, same_token
from ..screen.login_routes import add_login_routes
from .db import FleetDB
from .service import FleetService

COOKIE = "bbx_fleet"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def make_app(db: FleetDB, service: FleetService, auth: Auth, push_interval_s: float = 1.0,
             allowed_hosts: list[str] | None = None, metrics_token: str | None = None) -> FastAPI:
    """``allowed_hosts``: the Host header values accepted (a page elsewhere rebinding its DNS name to the fleet
    service is refused); None: any (tests only). ``metrics_token``: what a Prometheus scraper sends (Authorization:
    Bearer) — /metrics otherwise needs an operator's session, like everything else here."""
    app = FastAPI(title="bingobox fleet", docs_url=None, redoc_url=None)
    if allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    page = resources.files(__package__).joinpath("static")
    assets = {n: page.joinpath(n).read_text(encoding="utf-8") for n in ("fleet.html", "fleet.js", "fleet.css")}
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
               "X-Content-Type-Options": "nosniff"}

    def session(request: Request):
        return auth.session(request.cookies.get(COOKIE))

    cache: dict[tuple, tuple[float, dict]] = {}

    def view(q: str, status: str, state: str) -> dict:
        """The page's data for these filters, computed at most five times a second whoever is watching."""
        key, mono = (q[:64], status, state[:32]), time.monotonic()
        hit = cache.get(key)
        if hit is not None and mono - hit[0] < 0.2:
            return hit[1]
        if len(cache) > 100:
            cache.clear()
        data = _view(*key)
        cache[key] = (mono, data)
        return data

    def _view(q: str, status: str, state: str) -> dict:
        now = time.time()
        return {**db.summary(now), "broker_connected": service.connected, "alarms": db.alarms_page(50),
                "reviews": db.reviews_page(50),
                "stores_shown": db.stores(q, status, state), "audit": db.recent_audit(15),
                "delay_ms": service.delay_ms["event"].summary()}

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(assets["fleet.html"], headers=headers)

    @app.get("/fleet.js")
    def script() -> Response:
        return Response(assets["fleet.js"], media_type="text/javascript", headers=headers)

    @app.get("/fleet.css")
    def style() -> Response:
        return Response(assets["fleet.css"], media_type="text/css", headers=headers)

    @app.get("/api/state")
    def state(request: Request, q: str = "", status: str = "", state: str = "") -> JSONResponse:
        if session(request) is None:
            return _error(401, "not_logged_in", "log in to see the fleet")
        return JSONResponse(view(q, status, state), headers={"Cache-Control": "no-store"})

    @app.get("/api/stream", response_model=None)
    async def stream(request: Request, q: str = "", status: str = "", state: str = ""):
        if session(request) is None:
            return _error(401, "not_logged_in", "log in to see the fleet")

        async def events():
            yield "retry: 2000\n\n"
            while not await request.is_disconnected() and session(request) is not None:
                data = await asyncio.to_thread(view, q, status, state)
                yield f"event: state\ndata: {json.dumps(data, default=str)}\n\n"
                service.changed.clear()
                await asyncio.to_thread(service.changed.wait, push_interval_s)  # sooner when something arrived
                await asyncio.sleep(0.2)  # (at most five pushes a second)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/stores/{store_id}")
    def store(store_id: str, request: Request) -> JSONResponse:
        if session(request) is None:
            return _error(401, "not_logged_in", "log in to see the fleet")
        got = db.store(store_id[:64])
        return JSONResponse(got) if got else _error(404, "no_such_store", f"no store {store_id[:64]!r}")

    @app.get("/api/reviews/{store_id}/{visit_id}")
    def review(store_id: str, visit_id: str, request: Request) -> JSONResponse:
        """A visit in the chain's review queue with the evidence its store sent (nobody named in it)."""
        if session(request) is None:
            return _error(401, "not_logged_in", "log in to see the fleet")
        got = db.review_evidence(store_id[:64], visit_id[:64])
        return JSONResponse(got) if got else _error(404, "no_such_review", f"no review of {visit_id[:64]!r}")

    add_login_routes(app, auth, db.audit, COOKIE, "may_command")

    @app.post("/api/commands/{store_id}/{name}")
    async def command(store_id: str, name: str, request: Request) -> JSONResponse:
        s = session(request)
        if s is None:
            return _error(401, "not_logged_in", "log in to act")
        if not same_token(request.headers.get("x-csrf-token"), s.csrf):
            return _error(403, "csrf", "missing or wrong X-CSRF-Token header")
        if not s.may_refund:
            return _error(403, "no_command_permission", f"{s.operator} may not command stores (may_command)")
        if name not in COMMANDS:
            return _error(404, "unknown_command", f"no command {name!r} (commands: {', '.join(COMMANDS)})")
        store_id = store_id[:64]
        source = request.client.host if request.client else ""
        try:
            args = ACTIONS[name].model_validate(json.loads(await request.body() or b"{}")).model_dump()
        except (ValueError, ValidationError) as e:
            db.audit(s.operator, f"{name}@{store_id}", {}, "rejected", str(e)[:200], source)
            return _error(422, "bad_request", str(e)[:300])
        audit_id = await asyncio.to_thread(db.audit, s.operator, f"{name}@{store_id}", args, "started", "", source)
        result = await asyncio.to_thread(service.send_command, store_id, name, args, s.operator)
        outcome = {True: "ok", False: "failed", None: "unknown"}[result.get("ok")]
        await asyncio.to_thread(db.set_audit_outcome, audit_id, outcome,
                                f"{result.get('detail', '')} (tx {result.get('tx')})")
        return JSONResponse({**result, "outcome": outcome},
                            status_code={"ok": 200, "failed": 409, "unknown": 202}[outcome])

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        if session(request) is None and not bearer_ok(request, metrics_token):
            return _error(401, "not_logged_in", "log in, or send the metrics token (Authorization: Bearer …)")
        sm = db.summary(time.time())
        lines = [
            "# HELP bingobox_fleet_stores Stores the fleet knows, by status.", "# TYPE bingobox_fleet_stores gauge",
            f'bingobox_fleet_stores{{status="online"}} {sm["online"]}',
            f'bingobox_fleet_stores{{status="offline"}} {sm["offline"]}',
            "# TYPE bingobox_fleet_open_alarms gauge", f"bingobox_fleet_open_alarms {sm['open_alarms']}",
            "# TYPE bingobox_fleet_broker_connected gauge",
            f"bingobox_fleet_broker_connected {int(service.connected)}",
            "# TYPE bingobox_fleet_messages_total counter",
            *[f'bingobox_fleet_messages_total{{what="{k}"}} {v}' for k, v in service.counts.items()],
            "# TYPE bingobox_fleet_backlog gauge", f"bingobox_fleet_backlog {service.backlog()}",
            "# HELP bingobox_fleet_delay_ms Delay from a store's event (or state) to the fleet service.",
            "# TYPE bingobox_fleet_delay_ms summary",
        ]
        for kind, h in service.delay_ms.items():
            sm_ = h.summary()
            for q in ("p50", "p99"):
                if q in sm_:
                    lines.append(f'bingobox_fleet_delay_ms{{kind="{kind}",quantile="0.{q[1:]}"}} {sm_[q]}')
            lines.append(f'bingobox_fleet_delay_ms_count{{kind="{kind}"}} {sm_.get("count", 0)}')
        return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return app
