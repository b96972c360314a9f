"""``bingobox gateway``: run the mock wallet gateway (uvicorn on loopback)."""

from __future__ import annotations

import logging
import os
import secrets
import sys

import uvicorn

from .app import ConnectionDropped, Faults, create_app
from .db import GatewayDB


class _QuietDrops(logging.Filter):
    """Injected connection drops are expected; don't log them as application crashes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, ConnectionDropped):
                return False
            exc = exc.__cause__ or exc.__context__ or (exc.exceptions[0] if hasattr(exc, "exceptions") else None)
        return True


def run(args) -> int:
    token = args.admin_token or os.environ.get("BINGOBOX_GATEWAY_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    db = GatewayDB(args.db)
    for spec in args.store or []:
        if "=" not in spec:
            print(f"--store takes STORE_ID=SECRET, got {spec!r}", file=sys.stderr)
            return 2
        sid, secret = spec.split("=", 1)
        if len(secret) < 16:
            print(f"--store {sid}: the secret must be at least 16 characters", file=sys.stderr)
            return 2
        db.upsert_store(sid, secret)
    faults = Faults(latency_ms=args.latency_ms, error_rate=args.error_rate, drop_rate=args.drop_rate,
                    outage=args.outage, pending_s=args.pending_s)
    app = create_app(db, token, faults, seed=args.seed)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)

    async def announce() -> None:
        import asyncio

        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"bingobox gateway: http://{args.host}:{port}  db {args.db}", flush=True)
        if not (args.admin_token or os.environ.get("BINGOBOX_GATEWAY_ADMIN_TOKEN")):
            print(f"admin token: {token}", flush=True)
        print("ready", flush=True)

    import asyncio

    async def main() -> None:
        task = asyncio.create_task(announce())
        await server.serve()
        task.cancel()

    try:
        asyncio.run(main())
    finally:
        db.close()
    return 0
