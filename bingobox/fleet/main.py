"""``bingobox fleet``: the fleet service — subscribes to every store on the broker, keeps their state and alarm
history (SQLite), serves the fleet page, sends signed commands."""

from __future__ import annotations

import logging
import sys
import time
import tomllib
from pathlib import Path

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import OperatorConfig
from ..screen.auth import Auth
from ..secretfiles import read_secret
from ..serving import serve
from .db import FleetDB
from .service import CommandKeys, FleetService
from .web import make_app

log = logging.getLogger(__name__)


class FleetOperator(OperatorConfig):
    may_command: bool = Field(False, description="may send commands to stores (lock down, release, unlock, …)")


class OperatorsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operators: list[FleetOperator] = Field(default_factory=list)


def load_operators(path: Path) -> list[FleetOperator]:
    return OperatorsFile.model_validate(tomllib.loads(path.read_text())).operators


def run(args) -> int:
    try:
        ops = load_operators(Path(args.operators)) if args.operators else []
        password = read_secret(Path(args.mqtt_password_file), "the MQTT password") if args.mqtt_password_file \
            else None
        token = read_secret(Path(args.metrics_token_file), "the metrics token") if args.metrics_token_file else None
        if bool(args.tls_cert) != bool(args.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
    except (OSError, ValueError, ValidationError, tomllib.TOMLDecodeError) as e:
        print(f"bingobox fleet: {e}", file=sys.stderr)
        return 2
    if not ops:
        log.warning("fleet: no operators (--operators FILE): nobody can log in to the page")
    if args.share and not args.db.startswith(("postgresql://", "postgres://")):
        print("bingobox fleet: --share (several fleet instances) needs their shared database: --db postgresql://…",
              file=sys.stderr)
        return 2
    db = FleetDB(args.db)
    keys = CommandKeys(Path(args.command_keys_dir) if args.command_keys_dir else None,
                       Path(args.command_master_key_file) if args.command_master_key_file else None)
    service = FleetService(args.mqtt, db, keys, prefix=args.prefix, username=args.mqtt_user, password=password,
                           ca_file=args.ca_file, share=args.share)
    auth = Auth({o.name: o.password_hash for o in ops}, refunders={o.name for o in ops if o.may_command})
    app = make_app(db, service, auth, args.push_interval_s,
                   allowed_hosts=sorted({args.host, "127.0.0.1", "localhost", *(args.allowed_host or [])}),
                   metrics_token=token)
    tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key} if args.tls_cert else {}
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=2, **tls))

    service.start()
    try:
        scheme = "https" if tls else "http"
        serve(server, lambda port: f"bingobox fleet: {scheme}://{args.host}:{port}/  broker {args.mqtt}  db {args.db}",
              (("event pruning", 600.0, lambda: db.prune(time.time())),), healthy=service.stuck)
    finally:
        service.stop()
        db.close()
    return 0


def add_parser(sub) -> None:
    f = sub.add_parser("fleet", help="the fleet service: every store's state and alarms from MQTT, a page, commands")
    f.add_argument("--mqtt", required=True, help="broker URL (mqtt://127.0.0.1:1883, mqtts://…)")
    f.add_argument("--port", type=int, default=8700, help="the page's port (0 = any free, printed)")
    f.add_argument("--host", default="127.0.0.1")
    f.add_argument("--db", default="run/fleet.db", help="SQLite file for the fleet's state and alarm history")
    f.add_argument("--operators", help="TOML: [[operators]] name, password_hash (bingobox hash-password), "
                   "may_command")
    f.add_argument("--command-master-key-file", help="the master key each store's command key is derived from "
                   "(`bingobox command-key` writes a store's; a store's key signs for that store only)")
    f.add_argument("--command-keys-dir", help="a folder with one key file per store id (taken before the master)")
    f.add_argument("--mqtt-user", help="the fleet service's broker user")
    f.add_argument("--mqtt-password-file", help="… and its password, in a file")
    f.add_argument("--ca-file", help="mqtts: the broker's CA")
    f.add_argument("--prefix", default="bingobox", help="topic prefix")
    f.add_argument("--push-interval-s", type=float, default=1.0)
    f.add_argument("--share", metavar="GROUP", help="a shared subscription: several fleet instances (same GROUP, "
                   "same PostgreSQL --db) each take a share of the stores' messages")
    f.add_argument("--tls-cert", help="serve the page over https: its certificate (PEM) …")
    f.add_argument("--tls-key", help="… and key (then the session cookie is Secure)")
    f.add_argument("--metrics-token-file", help="the token a Prometheus scraper sends to /metrics (Authorization: "
                   "Bearer), in a file; without it /metrics needs an operator's session")
    f.add_argument("--allowed-host", action="append", help="a host name operators reach the page by (repeatable; "
                   "loopback and --host are always allowed; others are refused: DNS rebinding)")
    f.set_defaults(fn=lambda a: run(a))

    k = sub.add_parser("command-key", help="write a store's command key, derived from the fleet's master key (install "
                       "it as the store's [mqtt] command_secret_file)")
    k.add_argument("--master-file", required=True, help="the fleet's --command-master-key-file")
    k.add_argument("--store", required=True, help="the store id")
    k.add_argument("--out", required=True, help="where to write the store's key (mode 600)")
    k.set_defaults(fn=cmd_command_key)


def cmd_command_key(args) -> int:
    from ..mqtt.messages import store_command_key
    from ..secretfiles import write_secret

    try:
        master = read_secret(Path(args.master_file), "the master command key")
        path = write_secret(Path(args.out), store_command_key(master, args.store))
    except (OSError, ValueError) as e:
        print(f"bingobox command-key: {e}", file=sys.stderr)
        return 2
    print(f"store {args.store}'s command key written to {path}")
    return 0

