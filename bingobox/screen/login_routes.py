"""The operator login routes the store's status screen and the fleet page share: ``POST /api/login``,
``POST /api/logout``, ``GET /api/me`` — an HttpOnly, SameSite=Strict session cookie (Secure over TLS), the CSRF token
in the answer, every login (and a throttled source once a minute) and logout written to the audit log."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .auth import Auth


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=200)


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def add_login_routes(app: FastAPI, auth: Auth, audit: Callable[..., object], cookie: str, grant: str) -> None:
    """``audit(operator, action, args, outcome, source=…)``; ``grant``: what the session's grant is called in the
    answers (``may_refund`` on the store's screen, ``may_command`` on the fleet page)."""

    def me_json(s) -> dict:
        return {"operator": s.operator, "csrf": s.csrf, grant: s.may_refund}

    @app.post("/api/login")
    def login(body: LoginIn, request: Request) -> JSONResponse:
        source = request.client.host if request.client else ""
        got = auth.login(body.name, body.password, source)
        if isinstance(got, str):
            if auth.audit_worthy(got, source):  # (a name that is no operator may be a password typed there)
                audit(body.name if auth.known(body.name) else "(unknown name)", "login", {}, got, source=source)
            status, message = {"throttled": (429, "too many failed logins: wait a minute"),
                               "busy": (503, "another login is being checked: try again")}.get(
                got, (401, "unknown operator or wrong password"))
            return error(status, got, message)
        token, session = got
        audit(session.operator, "login", {}, "ok", source=source)
        resp = JSONResponse(me_json(session))
        resp.set_cookie(cookie, token, httponly=True, samesite="strict", max_age=int(auth.ttl_s), path="/",
                        secure=request.url.scheme == "https")
        return resp

    @app.post("/api/logout")
    def logout(request: Request) -> JSONResponse:
        s = auth.session(request.cookies.get(cookie))
        if s is not None:
            audit(s.operator, "logout", {}, "ok")
        auth.logout(request.cookies.get(cookie))
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(cookie, path="/")
        return resp

    @app.get("/api/me")
    def me(request: Request) -> JSONResponse:
        s = auth.session(request.cookies.get(cookie))
        if s is None:
            return error(401, "not_logged_in", "log in to act")
        return JSONResponse(me_json(s))
