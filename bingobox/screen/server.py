"""Serving the status screen from the controller process: uvicorn in a thread, stopped with the controller."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from ..config import ScreenConfig, StoreConfig
from ..secretfiles import read_secret
from .app import make_app
from .auth import Auth

log = logging.getLogger(__name__)
Outcome = tuple[bool | None, str]


class ScreenServer:
    def __init__(self, store: Any, cfg: StoreConfig, refund: Callable[[str, Any], Outcome] | None = None,
                 resolve_dispute: Callable[[str, Any], Outcome] | None = None) -> None:
        """``store``: what the screen reads and acts through (``StoreApp``: ``view``, ``journal``, ``act``);
        ``refund``/``resolve_dispute``: the money actions (``wallet.money.Money``), built by ``StoreApp.build``."""
        sc: ScreenConfig = cfg.screen or ScreenConfig()
        ops = sc.all_operators()
        operators = {o.name: o.password_hash for o in ops}
        auth = Auth(operators, sc.session_ttl_s, sc.login_failures_per_minute,
                    per_source_per_minute=sc.login_failures_per_source_per_minute,
                    per_name_per_minute=sc.login_failures_per_name_per_minute,
                    refunders={o.name for o in ops if o.may_refund})
        app = make_app(store, auth, refund, sc.push_interval_s, sc.view_requires_login,
                       allowed_hosts=sc.hosts(), max_streams=sc.max_streams, resolve_dispute=resolve_dispute,
                       metrics_token=read_secret(sc.metrics_token_file, "the metrics token")
                       if sc.metrics_token_file else None, panels=getattr(store, "panels", None),
                       language=sc.language)
        tls: dict[str, Any] = {"ssl_certfile": str(sc.tls_cert), "ssl_keyfile": str(sc.tls_key)} if sc.tls_cert else {}
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
