"""Serving the status screen from the controller process: uvicorn in a thread, stopped with the controller."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

from ..config import ScreenConfig, StoreConfig
from ..wallet.client import WalletClient
from .app import make_app
from .auth import Auth

log = logging.getLogger(__name__)


def _refunder(cfg: StoreConfig):
    w = cfg.wallet
    if w is None:
        return None
    client = WalletClient(w.gateway_url, cfg.store.id, w.secret(), w.connect_timeout_s, w.read_timeout_s)

    def refund(key: str, args: Any) -> tuple[bool | None, str]:
        """True: refunded; False: the gateway refused (no money moved); None: no clear answer (a timeout, a 5xx,
        the same refund still in flight) — the operator retries the same request, never a new one."""
        status, body, detail = client.refund(key, args.charge_id, args.amount_fen, args.reason)
        if status == 200 and body is not None:
            amount = body.get("amount_fen", args.amount_fen)
            return True, f"refunded {amount} fen of {args.charge_id} ({body.get('id')})"
        code = ((body or {}).get("error") or {}).get("code")
        if status is None or status >= 500 or status == 429 or code == "idempotency_key_in_use":
            return None, f"outcome unknown ({detail}): retry this same refund to learn it"
        return False, detail

    return refund


class ScreenServer:
    def __init__(self, store: Any, cfg: StoreConfig) -> None:
        sc: ScreenConfig = cfg.screen or ScreenConfig()
        ops = sc.all_operators()
        operators = {o.name: o.password_hash for o in ops}
        auth = Auth(operators, sc.session_ttl_s, sc.login_failures_per_minute,
                    per_source_per_minute=sc.login_failures_per_source_per_minute,
                    global_per_minute=sc.login_failures_per_minute_all,
                    refunders={o.name for o in ops if o.may_refund})
        app = make_app(store, auth, _refunder(cfg), sc.push_interval_s, sc.view_requires_login,
                       allowed_hosts=sc.hosts(), max_streams=sc.max_streams)
        tls = {"ssl_certfile": str(sc.tls_cert), "ssl_keyfile": str(sc.tls_key)} if sc.tls_cert else {}
        self.scheme = "https" if tls else "http"
        self.server = uvicorn.Server(uvicorn.Config(app, host=sc.host, port=sc.port, log_level="warning",
                                                    access_log=False, lifespan="off",
                                                    limit_concurrency=sc.max_connections, **tls))
        self.host = sc.host
        self.port: int | None = None
        self._thread = threading.Thread(target=self._serve, name="screen", daemon=True)
        if not operators:
            log.warning("status screen: no operators configured: it shows the store but nobody can act")
        if sc.host not in ("127.0.0.1", "::1", "localhost") and not sc.view_requires_login:
            log.warning("status screen on %s without view_requires_login: anyone who reaches it sees the store",
                        sc.host)

    def _serve(self) -> None:
        try:
            self.server.run()
        except SystemExit:  # uvicorn exits when it cannot bind; it has logged why, and start() reports it
            pass

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the status screen could not listen on {self.host}:{self.server.config.port} "
                              "(port taken or address not on this host)")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self.url

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/"

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5)
