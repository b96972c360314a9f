"""The door panels' pages: ``/panel/DOOR`` for a small screen next to the door (kiosk browser, no login, no external
assets), its state and its live messages (server-sent events, pushed as the store decides: never polled).

    GET /panel/DOOR          the page (in the door's language; ``?lang=en`` or ``?lang=zh_Hans`` for another)
    GET /panel/DOOR/state    its door, role, language, fixed words and latest message (JSON)
    GET /panel/DOOR/events   the messages as they come (SSE, ``message`` events; a comment every 15 s)
    GET /panel-assets/…      the page's script and style
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from ..panel_hub import PanelHub

KEEPALIVE_S = 15.0
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {**HEADERS, "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
                "connect-src 'self'; img-src 'self'; frame-ancestors 'none'", "Referrer-Policy": "no-referrer"}


def add_panel_routes(app: FastAPI, hub: PanelHub) -> None:
    static = resources.files(__package__).joinpath("static")
    assets = {name: static.joinpath(name).read_text(encoding="utf-8") for name in ("panel.html", "panel.js",
                                                                                   "panel.css")}

    def unknown(door: str) -> JSONResponse:
        return JSONResponse({"error": {"code": "no_such_panel", "message": f"no panel for {door[:40]!r} (panels: "
                                       f"{', '.join(sorted(hub.roles))})"}}, status_code=404, headers=HEADERS)

    @app.get("/panel-assets/panel.js")
    def script() -> Response:
        return Response(assets["panel.js"], media_type="text/javascript", headers=HEADERS)

    @app.get("/panel-assets/panel.css")
    def style() -> Response:
        return Response(assets["panel.css"], media_type="text/css", headers=HEADERS)

    @app.get("/panel/{door}", response_model=None)
    def page(door: str) -> HTMLResponse | JSONResponse:
        if door not in hub.roles:
            return unknown(door)
        return HTMLResponse(assets["panel.html"], headers=PAGE_HEADERS)

    @app.get("/panel/{door}/state")
    def state(door: str) -> JSONResponse:
        if door not in hub.roles:
            return unknown(door)
        return JSONResponse(hub.state(door), headers=HEADERS)

    @app.get("/panel/{door}/events", response_model=None)
    async def events(door: str, request: Request) -> StreamingResponse | JSONResponse:
        if door not in hub.roles:
            return unknown(door)
        q = hub.open_stream(door)
        if q is None:
            return JSONResponse({"error": {"code": "too_many_streams", "message": f"{hub.cfg.max_streams_per_door} "
                                           f"panels of {door} are open already"}}, status_code=503,
                                headers={**HEADERS, "Retry-After": "10"})

        async def stream():
            try:
                yield "retry: 1000\n\n"
                latest = hub.state(door)["message"]
                if latest is not None:
                    yield f"data: {json.dumps(latest)}\n\n"
                while not await request.is_disconnected():
                    try:
                        item = await asyncio.wait_for(q.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    yield f"data: {json.dumps(item)}\n\n"
            finally:
                hub.close_stream(door, q)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={**HEADERS, "X-Accel-Buffering": "no"})
