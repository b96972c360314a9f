"""Running a store: ``run``, ``check-config``, ``visits``, ``hash-password``, ``fetch-keys``, ``reset-clock``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import tomllib
from pathlib import Path

from ..config import ConfigError, load_store_config
from . import load

log = logging.getLogger("bingobox")


# check-config ----------------------------------------------------------------------------------------
def cmd_check_config(args: argparse.Namespace) -> int:
    """Each file: ``ok`` with what it holds, or every problem as file: key: reason. A store config, or a kind a
    plugin registered (``CONFIG_KINDS``: the devkit's simulator config)."""
    from . import CONFIG_KINDS

    status = 0
    for path in args.files:
        try:
            top = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            top = {"store": {}}  # let the store loader report the problem
        kind = next((k for k in CONFIG_KINDS if k in top and "store" not in top), None)
        if kind is None and "store" not in top and "sim" in top:
            print(f"{path}: a simulator config: install the devkit (bingobox-devkit) to check it")
            status = 2
            continue
        try:
            if kind is None:
                cfg = load_store_config(path)
                readers = len(cfg.reader_names())
                what = f"store config: {len(cfg.doors)} doors, {readers} readers, {len(cfg.cameras)} cameras"
            else:
                name, loader, summary = CONFIG_KINDS[kind]
                cfg = loader(path)
                what = f"{name} config: {summary(cfg)}"
        except ConfigError as e:
            for p in e.problems:
                print(p)
            status = 2
            continue
        print(f"{path}: ok ({what})")
        if kind is None:
            for d in cfg.doors:
                for w in d.hardware_warnings():
                    print(f"{path}: warning: {w}")
    return status


def cmd_run(args: argparse.Namespace) -> int:
    """Run the store: the app against whatever the config points at. SIGTERM stops it cleanly."""
    from ..simcheck import refuse_unmarked
    from ..vision.worker import face_worker_for

    cfg = load(load_store_config, args.config)
    if cfg is None:
        return 2
    for d in cfg.doors:
        for w in d.hardware_warnings():
            log.warning(w)
    unmarked = refuse_unmarked(cfg)
    if unmarked:
        print("\n".join(f"{args.config}: {p}" for p in unmarked), file=sys.stderr)
        return 2
    faces = face_worker_for(cfg.vision)
    if faces is not None:  # (their models load while the app is imported and built)
        faces.launch()
    try:
        from ..app import StoreApp

        app = StoreApp.build(cfg, status_path=Path(args.status_file) if args.status_file else None,
                             face_worker=faces)
    except BaseException as e:
        if faces is not None:
            faces.stop()
        if isinstance(e, ConfigError):
            print("\n".join(e.problems), file=sys.stderr)
            return 2
        if isinstance(e, (ValueError, OSError)):
            print(f"{args.config}: cannot run the store: {e}", file=sys.stderr)
            return 2
        raise
    return app.run(lambda line: print(line, flush=True), lambda line: print(line, file=sys.stderr, flush=True))


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Print a scrypt hash for [[screen.operators]] password_hash (the password is read from stdin or asked)."""
    import getpass

    from ..screen.auth import hash_password

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")
    try:
        print(hash_password(password))
    except ValueError as e:
        print(f"hash-password: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_visits(args: argparse.Namespace) -> int:
    """List visits from the journal, or show one visit's evidence record."""
    from ..journal import Journal

    cfg = load(load_store_config, args.config)
    if cfg is None:
        return 2
    j = Journal(cfg.journal.path)
    if args.visit:
        record = j.visit_record(args.visit)
        if record is None:
            print(f"no visit {args.visit}", file=sys.stderr)
            return 1
        events = record.pop("events")
        print(json.dumps(record, indent=2, default=str))
        for e in events:
            print(f"{time.strftime('%H:%M:%S', time.localtime(e['t']))}  {e['kind']:22} {json.dumps(e['data'])}")
        return 0
    for v in j.list_visits(args.limit):
        review = "  REVIEW" if "review" in v["flags"] else ""
        print(f"{v['id']}  {time.strftime('%m-%d %H:%M:%S', time.localtime(v['created_at']))}  {v['state']:10} "
              f"{v['account_id']:22} {v['amount_fen'] or 0:>7} fen  {','.join(v['flags']) or '-'}{review}")
    return 0


def cmd_reset_clock(args: argparse.Namespace) -> int:
    """Accept the wall clock as it is now after a wrong clock was corrected (entry refuses codes while the clock is
    behind the last code used). Run it with the controller stopped, once the clock is right."""
    from ..journal import Journal

    cfg = load(load_store_config, args.config)
    if cfg is None:
        return 2
    j = Journal(cfg.journal.path)
    now = time.time()
    old = j.reset_clock_mark(now)
    j.audit(args.operator, "reset_clock", {"high_water": old, "now": now}, "ok", source="cli")
    print(f"clock mark {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(old))} → now "
          f"({'%+.0f' % (now - old)} s); codes still valid from before the step could be replayed for their lifetime")
    return 0


def cmd_fetch_keys(args: argparse.Namespace) -> int:
    """Pin the gateway's entry-code keys (``wallet.keys.fetch``); a running controller reads them again on SIGHUP
    (``systemctl reload bingobox``)."""
    from ..wallet.keys import NotAsked, fetch

    try:
        print(fetch(args.gateway, Path(args.out), args.tls_fingerprint))
    except ValueError as e:
        print(f"fetch-keys: {e}", file=sys.stderr)
        return 2 if isinstance(e, NotAsked) else 1
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run the store controller")
    r.add_argument("--config", required=True)
    r.add_argument("--status-file", help="write a JSON status snapshot here every second")
    r.set_defaults(fn=cmd_run)

    c = sub.add_parser("check-config", help="validate config files (store or simulator); prints ok or problems")
    c.add_argument("files", nargs="+")
    c.set_defaults(fn=cmd_check_config)

    vs = sub.add_parser("visits", help="list visits, or show one visit's evidence record")
    vs.add_argument("--config", required=True)
    vs.add_argument("visit", nargs="?")
    vs.add_argument("--limit", type=int, default=50)
    vs.set_defaults(fn=cmd_visits)

    rc = sub.add_parser("reset-clock", help="accept the clock as it is now, after a wrong clock was corrected")
    rc.add_argument("--config", required=True)
    rc.add_argument("--operator", required=True, help="who decided it (audited)")
    rc.set_defaults(fn=cmd_reset_clock)

    hp = sub.add_parser("hash-password", help="hash an operator password for the status screen's config")
    hp.set_defaults(fn=cmd_hash_password)

    f = sub.add_parser("fetch-keys", help="pin the wallet gateway's entry-code public keys to a file")
    f.add_argument("--gateway", required=True, help="gateway base URL")
    f.add_argument("--out", required=True, help="where to write the keys (the config's wallet.keys_file)")
    f.add_argument("--tls-fingerprint", help="SHA-256 of the gateway's TLS certificate (pins it, whoever signed it)")
    f.set_defaults(fn=cmd_fetch_keys)

