"""Serving the status screen from the controller process: uvicorn in a thread, stopped with the controller."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

from ..config import ScreenConfig, StoreConfig
from ..secretfiles import read_secret
from ..wallet import records
from ..wallet.client import WalletClient, refund_outcome
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
        ok = refund_outcome(status, body)
        if ok:
            amount = body.get("amount_fen", args.amount_fen)
            return True, f"refunded {amount} fen of {args.charge_id} ({body.get('id')})"
        if ok is None:
            return None, f"outcome unknown ({detail}): retry this same refund to learn it"
        return False, detail

    return refund


def dispute_resolver(client: WalletClient, journal: Any):
    """Decide a shopper's dispute: accepted → the refund (key ``dispute-<id>``: however often the operator presses
    Accept, it is refunded once), then the decision to the wallet; rejected → the decision with its reason."""

    def resolve(operator: str, args: Any) -> tuple[bool | None, str]:
        d = records.dispute(journal, args.dispute_id)
        if d is None:
            return False, f"no dispute {args.dispute_id}"
        if d["state"] != "open":
            return False, f"dispute {d['id']} is {d['state']} already"
        refund_id, decision = None, "accepted" if args.decision == "accept" else "rejected"
        if decision == "accepted":
            amount = args.amount_fen or d["claimed_fen"]
            if amount > d["claimed_fen"]:
                return False, f"the shopper claimed {d['claimed_fen']} fen: refund at most that"
            # the body depends on the dispute alone (not on this press's reason): pressing Accept again is the same
            # request under the same key, so it is answered as the first was and never refunds twice
            status, body, detail = client.refund(f"dispute-{d['id']}", d["charge_id"], amount, f"dispute {d['id']}")
            ok = refund_outcome(status, body)
            if ok is None:
                return None, f"refund outcome unknown ({detail}): accept again (it is refunded once)"
            if not ok:
                return False, f"refund refused: {detail}"
            refund_id = body["id"]
        status, body, err = client.call("POST", f"/v1/disputes/{d['id']}/resolution",
                                        {"decision": decision, "reason": args.reason, "operator": operator,
                                         "refund_id": refund_id})
        if status == 200:
            records.decided(journal, d["id"], decision, args.reason, operator, refund_id)
            return True, f"dispute {d['id']} {decision}" + (f": refunded ({refund_id})" if refund_id else "")
        error = (body or {}).get("error") or {}
        if status is None or status >= 500 or status == 429:
            return None, f"decision not delivered ({err or status}): decide again (nothing is refunded twice)"
        return False, f"HTTP {status} {error.get('code', '')}: {error.get('message', '')}"

    return resolve


def _resolver(cfg: StoreConfig, journal: Any):
    w = cfg.wallet
    if w is None:
        return None
    return dispute_resolver(WalletClient(w.gateway_url, cfg.store.id, w.secret(), w.connect_timeout_s,
                                         w.read_timeout_s), journal)


class ScreenServer:
    def __init__(self, store: Any, cfg: StoreConfig) -> None:
        sc: ScreenConfig = cfg.screen or ScreenConfig()
        ops = sc.all_operators()
        operators = {o.name: o.password_hash for o in ops}
        auth = Auth(operators, sc.session_ttl_s, sc.login_failures_per_minute,
                    per_source_per_minute=sc.login_failures_per_source_per_minute,
                    per_name_per_minute=sc.login_failures_per_name_per_minute,
                    refunders={o.name for o in ops if o.may_refund})
        app = make_app(store, auth, _refunder(cfg), sc.push_interval_s, sc.view_requires_login,
                       allowed_hosts=sc.hosts(), max_streams=sc.max_streams,
                       resolve_dispute=_resolver(cfg, store.journal),
                       metrics_token=read_secret(sc.metrics_token_file, "the metrics token")
                       if sc.metrics_token_file else None)
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
