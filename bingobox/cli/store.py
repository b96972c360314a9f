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
from ..sdnotify import catch_stop_signals, wait_for_signal
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
    from ..app import StoreApp
    from ..vision.faces import Rule
    from ..vision.worker import FaceWorker

    cfg = load(load_store_config, args.config)
    if cfg is None:
        return 2
    for d in cfg.doors:
        for w in d.hardware_warnings():
            log.warning(w)
    from ..simcheck import refuse_unmarked

    unmarked = refuse_unmarked(cfg)
    if unmarked:
        print("\n".join(f"{args.config}: {p}" for p in unmarked), file=sys.stderr)
        return 2
    try:
        vc = cfg.vision
        worker = FaceWorker(Rule(vc.face_threshold, vc.face_margin, vc.agree_frames),
                            detect_width=vc.detect_width) if vc.faces else None
        app = StoreApp(cfg, face_worker=worker, status_path=Path(args.status_file) if args.status_file else None)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:
        print(f"cannot run the store: {e}", file=sys.stderr)
        return 2
    screen = None
    if cfg.screen is not None:
        from ..screen.server import ScreenServer

        try:
            screen = ScreenServer(app, cfg)
        except (ValueError, OSError) as e:  # an unreadable or invalid operators_file
            print(f"{args.config}: screen: {e}", file=sys.stderr)
            return 2
    link = None
    if cfg.mqtt is not None:
        from ..mqtt.link import MqttLink

        try:
            link = MqttLink(cfg.mqtt, cfg.store.id, app)
        except (ValueError, OSError) as e:  # an unreadable password, secret or certificate
            print(f"{args.config}: mqtt: {e}", file=sys.stderr)
            return 2
    import signal

    signal.signal(signal.SIGHUP, lambda *_: app.reload_keys())  # `systemctl reload`: the pinned keys again
    stop = catch_stop_signals()  # (before "running": a stop right after it must find the handlers in place)
    app.start()
    try:
        if screen is not None:
            try:
                print(f"bingobox run: status screen at {screen.start()}", flush=True)
            except OSError as e:  # the port is taken: say so and stop cleanly (systemd restarts us)
                print(f"bingobox run: {e}", file=sys.stderr)
                return 2
        if link is not None:
            link.start()
            print(f"bingobox run: mqtt {link.status()['broker']} (connecting; retried while down)", flush=True)
        print(f"bingobox run: store {cfg.store.id} running (journal {cfg.journal.path})", flush=True)
        app.notifier.ready(f"store {cfg.store.id} running")
        wait_for_signal(stop)
    finally:
        app.notifier.stopping()
        if link is not None:
            link.stop()
        if screen is not None:
            screen.stop()
        app.stop()
        app.notifier.close()
    if app.fatal:
        print(f"bingobox run: {app.fatal}", file=sys.stderr)
        return 1  # (systemd: Restart=always, and OnFailure= tells someone)
    return 0


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
    """Pin the gateway's entry-code keys: fetch GET /v1/public-keys over https (its certificate checked against the
    system's CAs, or pinned by ``--tls-fingerprint``; plain http only to loopback) and write the keys still in
    force. A running controller reads them again on SIGHUP (``systemctl reload bingobox``)."""
    import requests
    from requests.adapters import HTTPAdapter

    from ..config import https_unless_loopback
    from ..domain.entry import load_pinned

    url = args.gateway.rstrip("/")
    try:
        https_unless_loopback(url)
    except ValueError as e:
        print(f"fetch-keys: {url}: {e}", file=sys.stderr)
        return 2
    http = requests.Session()
    verify: bool = True
    if args.tls_fingerprint:
        fp = args.tls_fingerprint.replace(":", "").lower()
        if len(fp) != 64 or any(ch not in "0123456789abcdef" for ch in fp):
            print("fetch-keys: --tls-fingerprint is the certificate's SHA-256 (64 hex digits)", file=sys.stderr)
            return 2

        class Pinned(HTTPAdapter):
            def init_poolmanager(self, *a, **kw):
                kw["assert_fingerprint"] = fp  # the certificate itself, whoever signed it
                super().init_poolmanager(*a, **kw)

        http.mount("https://", Pinned())
        verify = False
    try:
        r = http.get(url + "/v1/public-keys", timeout=10, verify=verify)
        r.raise_for_status()
        doc = r.json()
        now = time.time()
        kept = [k for k in doc["keys"] if k.get("not_after") is None or float(k["not_after"]) >= now]
    except (requests.RequestException, ValueError, KeyError, TypeError) as e:
        print(f"cannot fetch keys from {url}: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": kept, "fetched_from": url, "fetched_at": int(now)}, indent=2))
    try:
        keys, not_after = load_pinned(tmp)
    except ValueError as e:
        tmp.unlink()
        print(e, file=sys.stderr)
        return 1
    tmp.replace(out)
    dropped = len(doc["keys"]) - len(kept)
    print(f"{out}: pinned {len(keys)} key(s): {', '.join(keys)}"
          + (f" ({len(not_after)} retiring)" if not_after else "")
          + (f"; {dropped} expired left out" if dropped else "")
          + "; a running controller takes them on SIGHUP (systemctl reload bingobox)")
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

