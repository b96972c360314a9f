"""``bingobox gateway``: run the mock wallet gateway (uvicorn on loopback)."""

from __future__ import annotations

import logging
import os
import secrets
import sys

import uvicorn

from bingobox.serving import serve

from .app import ConnectionDropped, Faults, create_app
from .db import GatewayDB
from .shopper_db import Retention, prune

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 600.0


def chain_has(exc: BaseException | None, kind: type[BaseException], limit: int = 64) -> bool:
    """Is an exception of ``kind`` anywhere in ``exc``'s causes, contexts and groups? Each exception is looked at
    once and at most ``limit`` in all: a chain may loop (an exception group whose member's context is the group)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < limit:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return True
        todo.extend((e.__cause__, e.__context__))
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions[:limit])
    return False


class _QuietDrops(logging.Filter):
    """Injected connection drops are expected; don't log them as application crashes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not chain_has(record.exc_info[1] if record.exc_info else None, ConnectionDropped)


def _secrets(args) -> tuple[str, dict[str, str]] | str:
    """The admin token and the stores' secrets, from files or the environment (never from the command line, where
    ``ps`` shows them); an error message when one is missing or unsafe."""
    from pathlib import Path

    from bingobox.secretfiles import read_secret, write_secret

    try:
        if args.admin_token_file:
            token = read_secret(Path(args.admin_token_file), "admin token")
        elif os.environ.get("BINGOBOX_GATEWAY_ADMIN_TOKEN"):
            token = os.environ["BINGOBOX_GATEWAY_ADMIN_TOKEN"]
        else:  # generated: written next to the database, owner-only; its path (not the token) is printed
            token = secrets.token_urlsafe(24)
            path = write_secret(Path(f"{args.db}.admin-token"), token)
            print(f"admin token written to {path}", flush=True)
        stores = {}
        for spec in args.store or []:
            sid, _, ref = spec.partition("=")
            if not sid or not ref.startswith("@"):
                return (f"--store takes STORE_ID=@FILE (the secret in a file, mode 600), got {sid or spec!r}=…: "
                        "a secret on the command line is visible to every user in `ps`")
            stores[sid] = read_secret(Path(ref[1:]), f"store {sid}'s secret")
    except ValueError as e:
        return str(e)
    return token, stores


def run(args) -> int:
    got = _secrets(args)
    if isinstance(got, str):
        print(f"bingobox gateway: {got}", file=sys.stderr)
        return 2
    token, stores = got
    for name in ("keep_visits_days", "keep_codes_days", "keep_requests_days", "keep_history_days"):
        if not 0 < getattr(args, name) <= 3650:
            print(f"bingobox gateway: --{name.replace('_', '-')} must be in (0, 3650] days", file=sys.stderr)
            return 2
    db = GatewayDB(args.db)
    for sid, secret in stores.items():
        db.upsert_store(sid, secret)
    faults = Faults(latency_ms=args.latency_ms, error_rate=args.error_rate, drop_rate=args.drop_rate,
                    outage=args.outage, pending_s=args.pending_s)
    retention = Retention(args.keep_visits_days, args.keep_codes_days, args.keep_requests_days,
                          args.keep_history_days)
    app = create_app(db, token, faults, seed=args.seed, in_flight_stale_s=args.in_flight_stale_s,
                     retention=retention, card_limit_fen=args.card_visit_limit_fen)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key} if args.tls_cert else {}
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=3, **tls)
    server = uvicorn.Server(config)

    def retain() -> None:
        """The retention job: a bounded batch each time."""
        got = prune(db, retention)
        if any(got.values()):
            log.warning("retention: pruned %s", got)

    try:
        serve(server, lambda port: f"bingobox gateway: {'https' if tls else 'http'}://{args.host}:{port}  db {args.db}",
              (("retention", PRUNE_EVERY_S, retain),))
    finally:
        db.close()
    return 0
