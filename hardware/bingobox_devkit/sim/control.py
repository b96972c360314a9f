"""The simulator's control interface: HTTP JSON on loopback, and the client the CLI and tests use.

``GET /status`` — every device's state; ``GET /actions`` — the action names;
``POST /action`` with ``{"action": "door.open", "door": "entrance"}`` — act or inject a fault.
Every request carries ``Authorization: Bearer TOKEN`` (the token is in RUN_DIR/sim.json, mode 600) and a Host of
this loopback port; POST bodies are ``Content-Type: application/json``. So a web page open in a browser on the box
(which can send requests to loopback, and rebind a DNS name to it) cannot open the simulated doors.
Errors come back as ``{"error": {"code": ..., "message": ...}}`` with a 4xx status.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from . import SHUTDOWN_POLL_S
from .store import ActionError, VirtualStore

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


def serve_control(store: VirtualStore, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args) -> None:
            log.debug("control: " + fmt, *args)

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body, default=str).encode()
            close = "Connection: close\r\n" if self.close_connection else ""
            head = (f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\nContent-Type: application/json\r\n"
                    f"{close}Content-Length: {len(data)}\r\n\r\n").encode()
            self.wfile.write(head + data)  # one write: no Nagle/delayed-ACK stall on keep-alive

        def _error(self, status: int, code: str, message: str) -> None:
            self._reply(status, {"error": {"code": code, "message": message}})

        def _allowed(self) -> bool:
            port = self.server.server_address[1]  # type: ignore[index]  # (an IPv4 (host, port) pair)
            if self.headers.get("Host", "") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                self._error(403, "bad_host", "the control API answers only to its loopback address")
                return False
            auth = self.headers.get("Authorization", "")
            if not (auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(),
                                                                        store.token.encode())):
                self._error(401, "unauthorized", "Authorization: Bearer TOKEN (the token is in RUN_DIR/sim.json)")
                return False
            return True

        def do_GET(self) -> None:
            if not self._allowed():
                return
            if self.path == "/status":
                self._reply(200, store.status())
            elif self.path == "/actions":
                self._reply(200, {"actions": sorted(store.actions)})
            elif self.path == "/manifest":
                self._reply(200, store.manifest())
            else:
                self._error(404, "not_found", "GET /status, /actions or /manifest; POST /action")

        def do_POST(self) -> None:
            asked_close = self.close_connection
            self.close_connection = True  # (until the request is known good: its body is not read otherwise)
            if not self._allowed():
                return
            if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
                self._error(415, "bad_content_type", "POST bodies are Content-Type: application/json")
                return
            self.close_connection = asked_close
            if self.path != "/action":
                self._error(404, "not_found", "POST /action")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                self.close_connection = True
                self._error(400 if length <= 0 else 413, "bad_length", f"body must be 1..{MAX_BODY} bytes of JSON")
                return
            try:
                body = json.loads(self.rfile.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                self._error(400, "bad_json", f"body is not JSON: {e}")
                return
            if not isinstance(body, dict) or not isinstance(body.get("action"), str):
                self._error(400, "bad_request", 'body must be an object with "action": "<name>"')
                return
            action = body.pop("action")
            try:
                self._reply(200, store.act(action, **body))
            except ActionError as e:
                self._error(e.status, "action_failed", str(e))

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    # (shutdown waits for the next poll: 0.05 s, not the default 0.5 s, so a stopped simulator ends at once)
    threading.Thread(target=srv.serve_forever, args=(SHUTDOWN_POLL_S,), name="sim-control", daemon=True).start()
    return srv


class SimError(RuntimeError):
    pass


class SimClient:
    """Talks to a running simulator's control interface."""

    def __init__(self, url: str, token: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, timeout: float = 5.0) -> SimClient:
        """The client of the simulator whose manifest is RUN_DIR/sim.json (URL and token)."""
        manifest = json.loads((Path(run_dir) / "sim.json").read_text())
        return cls(manifest["control"], manifest["token"], timeout)

    def _check(self, r: requests.Response) -> dict:
        try:
            body = r.json()
        except ValueError:
            raise SimError(f"simulator answered {r.status_code} without JSON") from None
        if r.status_code != 200:
            raise SimError(body.get("error", {}).get("message", str(body)))
        return body

    def status(self) -> dict:
        return self._check(self.session.get(f"{self.url}/status", timeout=self.timeout))

    def manifest(self) -> dict:
        return self._check(self.session.get(f"{self.url}/manifest", timeout=self.timeout))

    def act(self, action: str, **args: Any) -> dict:
        return self._check(self.session.post(f"{self.url}/action", json={"action": action, **args},
                                             timeout=self.timeout))
