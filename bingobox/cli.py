"""The ``bingobox`` command. Running a store: run, check-config, visits, hash-password, fetch-keys. Looking at it:
devices, vision, diagram. Integrators and developers: sim, sim-ctl, gateway, demo, simulate, bench (the last three
are thin verbs over ``hardware/``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
import tomllib
from pathlib import Path

from .config import ConfigError, load_store_config
from .sdnotify import catch_stop_signals, wait_for_signal

_TESTDATA = Path(__file__).resolve().parents[1] / "tests/data"  # photographs (see tests/data/SOURCES.md)

log = logging.getLogger("bingobox")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)  # it logs every callback at INFO


def _load(loader, path: str):
    """Load a config with ``loader``; on problems print them (file: key: reason) and return None."""
    try:
        return loader(path)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return None


# check-config ----------------------------------------------------------------------------------------
def cmd_check_config(args: argparse.Namespace) -> int:
    from hardware.sim.config import load_sim_config

    status = 0
    for path in args.files:
        try:
            try:
                is_store = "store" in tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                is_store = True  # let the loader report the problem
            cfg = load_store_config(path) if is_store else load_sim_config(path)
        except ConfigError as e:
            for p in e.problems:
                print(p)
            status = 2
            continue
        readers = len(cfg.reader_names()) if is_store else len(cfg.readers) + len(cfg.llrp_readers)
        kinds = f"{len(cfg.doors)} doors, {readers} readers, {len(cfg.cameras)} cameras"
        print(f"{path}: ok ({'store' if is_store else 'simulator'} config: {kinds})")
        if is_store:
            for d in cfg.doors:
                for w in d.hardware_warnings():
                    print(f"{path}: warning: {w}")
    return status


# devices ---------------------------------------------------------------------------------------------
def cmd_devices(args: argparse.Namespace) -> int:
    """Start the drivers for every device in the config, print their events (JSON lines) and status."""
    from .devices.camera import Camera
    from .devices.door import build_doors
    from .devices.llrp import LlrpReader
    from .devices.rfid import RfidReader

    cfg = _load(load_store_config, args.config)
    if cfg is None:
        return 2

    out_lock = threading.Lock()

    def emit(ev) -> None:  # called from every driver's thread: one whole line at a time
        line = json.dumps({"t": round(ev.t, 3), "device": ev.device, "event": ev.kind, **ev.data}) + "\n"
        with out_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    buses, doors = build_doors(cfg.doors, cfg.buses, emit)
    llrp = [LlrpReader(r, emit) for r in cfg.llrp_readers]
    zones = [z for r in llrp for z in r.zones.values()]
    others = [*[RfidReader(r, emit) for r in cfg.readers], *zones, *[Camera(c, emit) for c in cfg.cameras]]
    running = [*buses.values(), *llrp, *others]
    for d in running:
        d.start()
    try:
        for door in args.grant or []:
            if door not in doors:
                print(f"no door named {door!r}", file=sys.stderr)
                return 2
            time.sleep(0.5)
            doors[door].grant()
        if args.seconds:
            time.sleep(args.seconds)
        else:
            wait_for_signal()
        status = {d.name: d.status() for d in [*doors.values(), *others]}
        print(json.dumps({"status": status, "buses": {b.name: b.status() for b in buses.values()}}, default=str),
              flush=True)
    finally:
        for d in running:
            d.stop()
    return 0


# simulator -------------------------------------------------------------------------------------------
def cmd_sim(args: argparse.Namespace) -> int:
    from hardware.sim.config import load_sim_config
    from hardware.sim.control import serve_control
    from hardware.sim.scenario import ScenarioError, load_scenario, run_steps
    from hardware.sim.store import ActionError, VirtualStore

    cfg = _load(load_sim_config, args.config)
    if cfg is None:
        return 2
    steps = None
    if args.scenario:
        try:
            name, steps = load_scenario(args.scenario)
        except ScenarioError as e:
            print(e, file=sys.stderr)
            return 2
    port = cfg.sim.control_port if args.control_port is None else args.control_port
    store = VirtualStore(cfg, Path(args.run_dir))
    try:
        store.start()
        ctl = serve_control(store, port)
    except OSError as e:
        store.stop()
        print(f"cannot start the simulator: {e}", file=sys.stderr)
        return 1
    store.control_url = f"http://127.0.0.1:{ctl.server_address[1]}"
    stop = catch_stop_signals()  # (before "ready": whoever waits for it may stop us at once)
    manifest = store.write_manifest()
    print(f"bingobox sim: control {store.control_url}  (manifest {manifest})")
    for n, d in store.devices().items():
        ep = d.endpoints()
        if d.kind == "camera":
            print(f"  {d.kind:7} {n:16} {ep['stream']}  {ep['snapshot']}")
        elif d.kind == "llrp":
            print(f"  {d.kind:7} {n:16} {ep['url']}  ({ep['antennas']} antennas)")
        else:
            print(f"  {d.kind:7} {n:16} {ep['pty']} -> {ep['tty']}  {ep['url_tcp']}")
    print("ready", flush=True)
    if steps is not None:
        def play() -> None:
            try:
                run_steps(steps, store.act, log=lambda s: print(f"scenario {name}: {s}", flush=True))
                print(f"scenario {name}: done", flush=True)
            except ActionError as e:
                print(f"scenario {name}: failed: {e}", flush=True)
        threading.Thread(target=play, name="scenario", daemon=True).start()
    try:
        wait_for_signal(stop)
    finally:
        ctl.shutdown()
        store.stop()
    return 0


def _parse_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def cmd_sim_ctl(args: argparse.Namespace) -> int:
    from hardware.sim.control import SimClient, SimError
    from hardware.sim.scenario import ScenarioError, load_scenario, run_steps

    manifest = Path(args.run_dir) / "sim.json"
    try:
        doc = json.loads(manifest.read_text())
        client = SimClient(args.url or doc["control"], doc["token"])
    except (OSError, ValueError, KeyError):
        print(f"no running simulator found ({manifest} missing or unreadable: it holds the control token)",
              file=sys.stderr)
        return 2
    try:
        if args.action == "status":
            print(json.dumps(client.status(), indent=2))
        elif args.action == "scenario":
            if len(args.params) != 1:
                print("usage: bingobox sim-ctl scenario FILE", file=sys.stderr)
                return 2
            _, steps = load_scenario(args.params[0])
            run_steps(steps, client.act)
        else:
            kv = {}
            for p in args.params:
                if "=" not in p:
                    print(f"argument {p!r} is not key=value", file=sys.stderr)
                    return 2
                k, v = p.split("=", 1)
                kv[k] = _parse_value(v)
            print(json.dumps(client.act(args.action, **kv)))
    except (SimError, ScenarioError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"cannot reach the simulator at {client.url}: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_fetch_keys(args: argparse.Namespace) -> int:
    """Pin the gateway's entry-code keys: fetch GET /v1/public-keys over https (its certificate checked against the
    system's CAs, or pinned by ``--tls-fingerprint``; plain http only to loopback) and write the keys still in
    force. A running controller reads them again on SIGHUP (``systemctl reload bingobox``)."""
    import requests
    from requests.adapters import HTTPAdapter

    from .config import https_unless_loopback
    from .domain.entry import load_pinned

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


def cmd_vision_qr(args: argparse.Namespace) -> int:
    """One JSON line per image: the texts found and the time the decoder took."""
    import cv2

    from .vision.qr import QrReader

    reader = QrReader(budget_ms=None)  # photographs: no per-frame budget
    status = 0
    for path in args.images:
        img = cv2.imread(path)
        if img is None:
            print(json.dumps({"file": path, "error": "not a readable image (missing, corrupt or truncated)"}))
            status = 1
            continue
        t0 = time.perf_counter()
        texts = reader.decode(img)
        print(json.dumps({"file": path, "texts": texts, "ms": round((time.perf_counter() - t0) * 1000, 2)},
                         ensure_ascii=False), flush=True)
    return status


def cmd_vision_faces(args: argparse.Namespace) -> int:
    """Enrol everyone in --gallery (one folder per person), then decide each image with the exit's rule."""
    from .vision.faces import FaceEngine, ImageReadError, Rule, decide, read_rgb

    engine = FaceEngine()
    rule = Rule(**{k: v for k, v in (("threshold", args.threshold), ("margin", args.margin)) if v is not None})
    gallery: dict[str, list] = {}
    root = Path(args.gallery)
    if not root.is_dir():
        print(f"--gallery {root}: not a folder", file=sys.stderr)
        return 2
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            try:
                e = engine.enrol(read_rgb(str(photo)))
            except ImageReadError as err:
                print(f"gallery: {err}", file=sys.stderr)
                continue
            if e.ok:
                gallery.setdefault(person.name, []).append(e.encoding)
            else:
                print(f"gallery: {photo}: not enrolled ({e.reason})", file=sys.stderr)
    status = 0
    for path in args.images:
        try:
            rgb = read_rgb(path)
        except ImageReadError as err:
            print(json.dumps({"file": path, "match": None, "distance": None, "margin": None, "reason": "error",
                              "error": str(err)}))
            status = 1
            continue
        enc, why, faces = engine.probe(rgb)
        d = decide(enc, gallery, rule) if enc is not None else None
        out = {"file": path, "match": d.match if d else None, "distance": d.distance if d else None,
               "margin": d.margin if d else None, "reason": d.reason if d else why, "faces": faces}
        print(json.dumps(out), flush=True)
    return status


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(args)


def cmd_diagram(args: argparse.Namespace) -> int:
    """Print the state machines (from their live definitions) as Mermaid diagrams."""
    from .domain import diagram

    unknown = set(args.machines) - set(diagram.MACHINES)
    if unknown:
        print(f"no machine named {', '.join(sorted(unknown))}; known: {', '.join(diagram.MACHINES)}", file=sys.stderr)
        return 2
    for name in args.machines or sorted(diagram.MACHINES):
        print(f"%% {name}\n{diagram.mermaid(name)}\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the store: the app against whatever the config points at. SIGTERM stops it cleanly."""
    from .app import StoreApp
    from .vision.faces import Rule
    from .vision.worker import FaceWorker

    cfg = _load(load_store_config, args.config)
    if cfg is None:
        return 2
    for d in cfg.doors:
        for w in d.hardware_warnings():
            log.warning(w)
    from .simcheck import refuse_unmarked

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
        from .screen.server import ScreenServer

        try:
            screen = ScreenServer(app, cfg)
        except (ValueError, OSError) as e:  # an unreadable or invalid operators_file
            print(f"{args.config}: screen: {e}", file=sys.stderr)
            return 2
    link = None
    if cfg.mqtt is not None:
        from .mqtt.link import MqttLink

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

    from .screen.auth import hash_password

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")
    try:
        print(hash_password(password))
    except ValueError as e:
        print(f"hash-password: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_visits(args: argparse.Namespace) -> int:
    """List visits from the journal, or show one visit's evidence record."""
    from .journal import Journal

    cfg = _load(load_store_config, args.config)
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
    from .journal import Journal

    cfg = _load(load_store_config, args.config)
    if cfg is None:
        return 2
    j = Journal(cfg.journal.path)
    now = time.time()
    old = j.reset_clock_mark(now)
    j.audit(args.operator, "reset_clock", {"high_water": old, "now": now}, "ok", source="cli")
    print(f"clock mark {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(old))} → now "
          f"({'%+.0f' % (now - old)} s); codes still valid from before the step could be replayed for their lifetime")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hardware.harness.demo import main as demo_main

    return demo_main(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from hardware.simcore.campaign import main as simulate_main

    return simulate_main(args)


def cmd_gateway(args: argparse.Namespace) -> int:
    from hardware.gateway.main import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bingobox", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check-config", help="validate config files (store or simulator); prints ok or problems")
    c.add_argument("files", nargs="+")
    c.set_defaults(fn=cmd_check_config)

    d = sub.add_parser("devices", help="run the device drivers of a store config and print their events")
    d.add_argument("--config", required=True)
    d.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    d.add_argument("--grant", action="append", metavar="DOOR", help="grant access at DOOR once started")
    d.set_defaults(fn=cmd_devices)

    s = sub.add_parser("sim", help="run the hardware simulator (virtual doors, readers, cameras)")
    s.add_argument("--config", default="config/sim.toml")
    s.add_argument("--run-dir", default="run/sim", help="where the pty symlinks and sim.json go")
    s.add_argument("--control-port", type=int, default=None, help="override [sim].control_port (0 = any free)")
    s.add_argument("--scenario", help="YAML scenario to play once started")
    s.set_defaults(fn=cmd_sim)

    g = sub.add_parser("gateway", help="run the mock wallet gateway (HTTP, persistent SQLite)")
    g.add_argument("--db", required=True, help="SQLite file (created if missing; state survives restarts)")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=8600, help="0 = any free port (printed)")
    g.add_argument("--admin-token-file", help="file holding the admin API token (or $BINGOBOX_GATEWAY_ADMIN_TOKEN; "
                   "else one is generated into DB.admin-token, mode 600)")
    g.add_argument("--store", action="append", metavar="ID=@FILE",
                   help="register a store's signing secret, read from FILE (mode 600; never the secret itself)")
    g.add_argument("--latency-ms", type=float, default=0.0)
    g.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500/503/429")
    g.add_argument("--drop-rate", type=float, default=0.0, help="share of responses dropped after committing")
    g.add_argument("--outage", action="store_true", help="answer 503 to every terminal request")
    g.add_argument("--pending-s", type=float, default=0.0, help="new charges stay pending this long")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--tls-cert", help="serve https with this certificate (PEM)")
    g.add_argument("--tls-key", help="… and this private key (PEM)")
    g.add_argument("--in-flight-stale-s", type=float, default=60.0,
                   help="a request with a key still in flight this long is taken to have died (a retry then runs)")
    g.add_argument("--keep-visits-days", type=float, default=90, help="the stores' visit records (receipts' evidence)")
    g.add_argument("--keep-codes-days", type=float, default=7, help="issued entry codes")
    g.add_argument("--keep-requests-days", type=float, default=30, help="answered data requests (exports)")
    g.add_argument("--keep-history-days", type=float, default=365,
                   help="accounts' own history (log-ins, consents) and resolved disputes")
    g.set_defaults(fn=cmd_gateway)

    from hardware.harness.fleet_load import add_parser as add_fleet_load
    from hardware.harness.soak import add_parser as add_soak
    from hardware.simcore.outage import add_parser as add_outage

    from .fleet.main import add_parser as add_fleet

    add_fleet(sub)
    add_fleet_load(sub)
    add_soak(sub)
    add_outage(sub)

    f = sub.add_parser("fetch-keys", help="pin the wallet gateway's entry-code public keys to a file")
    f.add_argument("--gateway", required=True, help="gateway base URL")
    f.add_argument("--out", required=True, help="where to write the keys (the config's wallet.keys_file)")
    f.add_argument("--tls-fingerprint", help="SHA-256 of the gateway's TLS certificate (pins it, whoever signed it)")
    f.set_defaults(fn=cmd_fetch_keys)

    v = sub.add_parser("vision", help="run the vision pipeline on image files")
    vsub = v.add_subparsers(dest="vision_command", required=True)
    vq = vsub.add_parser("qr", help="decode QR codes: one JSON line per image")
    vq.add_argument("images", nargs="+")
    vq.set_defaults(fn=cmd_vision_qr)
    vf = vsub.add_parser("faces", help="match faces against a gallery with the exit's decision rule")
    vf.add_argument("--gallery", required=True, help="one subfolder per person with enrolment photos")
    vf.add_argument("--threshold", type=float, default=None)
    vf.add_argument("--margin", type=float, default=None)
    vf.add_argument("images", nargs="+")
    vf.set_defaults(fn=cmd_vision_faces)

    r = sub.add_parser("run", help="run the store controller")
    r.add_argument("--config", required=True)
    r.add_argument("--status-file", help="write a JSON status snapshot here every second")
    r.set_defaults(fn=cmd_run)

    vs = sub.add_parser("visits", help="list visits, or show one visit's evidence record")
    vs.add_argument("--config", required=True)
    vs.add_argument("visit", nargs="?")
    vs.add_argument("--limit", type=int, default=50)
    vs.set_defaults(fn=cmd_visits)

    rc = sub.add_parser("reset-clock", help="accept the clock as it is now, after a wrong clock was corrected")
    rc.add_argument("--config", required=True)
    rc.add_argument("--operator", required=True, help="who decided it (audited)")
    rc.set_defaults(fn=cmd_reset_clock)

    de = sub.add_parser("demo", help="a whole store on this box with scripted shoppers; prints a JSON summary")
    de.add_argument("--shoppers", type=int, default=10)
    de.add_argument("--seed", type=int, default=1)
    de.add_argument("--faults", default="", help="comma list of gateway_drop, gateway_errors, gateway_outage, "
                    "unplug, junk, kill; or all")
    de.add_argument("--concurrency", type=int, default=3, help="shoppers in the store at once")
    de.add_argument("--camera-fps", type=float, default=15, help="frames per second of the simulated cameras")
    de.add_argument("--browse-s", type=float, default=0.0, help="mean time shoppers look around inside (more of "
                    "them inside at once)")
    de.add_argument("--wiring", choices=("own", "board", "bus"), default="own",
                    help="the doors each on a board and port of their own; both on one board; or two boards on one "
                         "RS-485 bus with a third (a staff door)")
    de.add_argument("--shelves", choices=("m100", "llrp"), default="m100",
                    help="shelf readers: an M100 reader per shelf, or the antennas of one LLRP reader")
    de.add_argument("--json", action="store_true", help="one-line JSON summary")
    de.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    de.add_argument("--run-dir", help="where the processes keep their files (default run/demo-PID)")
    de.add_argument("--screen-port", type=int, default=0, help="status screen port (default: a free one)")
    de.add_argument("--mqtt", help="connect the store to this MQTT broker (its [mqtt] url), e.g. for `bingobox fleet`")
    de.add_argument("--mqtt-user", help="the store's broker user (its store id is demo-store)")
    de.add_argument("--mqtt-password-file", help="… and its password, in a file")
    de.add_argument("--mqtt-command-key-file", help="the key the fleet service signs commands with")
    de.add_argument("--keep", action="store_true", help="keep the store running after the shoppers (Ctrl-C stops)")
    de.add_argument("--testdata", default=str(_TESTDATA),
                    help="face photos for shoppers who consent to face billing")
    de.set_defaults(fn=cmd_demo)

    sm = sub.add_parser("simulate", help="deterministic simulation of the store core with a crash at every journal "
                        "commit of a visit's life; exits non-zero on any violation")
    sm.add_argument("--runs", type=int, default=20, help="schedules (one seed each)")
    sm.add_argument("--seed", type=int, default=1, help="the first run's seed (run i uses seed + i)")
    sm.add_argument("--shoppers", type=int, default=6, help="at most this many shoppers per schedule")
    sm.add_argument("--no-crashes", action="store_true", help="play each schedule once, without crashes")
    sm.add_argument("--jobs", type=int, default=1, help="processes to run schedules in")
    sm.add_argument("--crash-at", type=int, default=None, help="replay: play each schedule once, crashing after "
                    "this journal commit")
    sm.add_argument("--json", action="store_true", help="one JSON object (runs, crash_points, violations, …)")
    sm.set_defaults(fn=cmd_simulate)

    hp = sub.add_parser("hash-password", help="hash an operator password for the status screen's config")
    hp.set_defaults(fn=cmd_hash_password)

    dg = sub.add_parser("diagram", help="print the store, visit and door state machines as Mermaid")
    dg.add_argument("machines", nargs="*", help="store, visit and/or door (default: all)")
    dg.set_defaults(fn=cmd_diagram)

    b = sub.add_parser("bench", help="measure speed (medians, p99, ratios against baselines in the same run)")
    b.add_argument("what", choices=["vision", "rfid", "store", "bus", "llrp", "all"])
    b.add_argument("--units", default="1,2,4,8", help="bus bench: boards on the line (comma list)")
    b.add_argument("--baud", type=int, default=38400, help="bus bench: the line's speed")
    b.add_argument("--tags", default="100,400,1600", help="llrp bench: tags in the reader's field (comma list)")
    b.add_argument("--runs", type=int, default=30)
    b.add_argument("--shoppers", type=int, default=None, help="store bench: scripted shoppers (at least --exits)")
    b.add_argument("--exits", type=int, default=100, help="store bench: drive at least this many exits")
    b.add_argument("--concurrency", type=int, default=3, help="store bench: shoppers in the store at once")
    b.add_argument("--seed", type=int, default=1, help="store bench: the scripted shoppers' seed")
    b.add_argument("--testdata", default=str(_TESTDATA))
    b.set_defaults(fn=cmd_bench)

    k = sub.add_parser("sim-ctl", help="act in a running simulator: ACTION key=value ..., status, scenario FILE")
    k.add_argument("--url", help="control URL (default: from RUN_DIR/sim.json)")
    k.add_argument("--run-dir", default="run/sim")
    k.add_argument("action")
    k.add_argument("params", nargs="*")
    k.set_defaults(fn=cmd_sim_ctl)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    return args.fn(args)
