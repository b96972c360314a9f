"""The devkit's ``bingobox`` commands, registered through the entry-point group ``bingobox.commands`` (the product
never imports the devkit): ``sim``, ``sim-ctl``, ``gateway``, ``demo``, ``simulate``, ``simulate-outage``, ``soak``,
``bench``, ``fleet-load``; and the simulator's config for ``check-config``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from bingobox.cli import CONFIG_KINDS, load
from bingobox.sdnotify import catch_stop_signals, wait_for_signal

from .paths import testdata


# simulator -------------------------------------------------------------------------------------------
def cmd_sim(args: argparse.Namespace) -> int:
    from .sim.config import load_sim_config
    from .sim.control import serve_control
    from .sim.scenario import ScenarioError, load_scenario, run_steps
    from .sim.store import ActionError, VirtualStore

    cfg = load(load_sim_config, args.config)
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
    from .sim.control import SimClient, SimError
    from .sim.scenario import ScenarioError, load_scenario, run_steps

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



def cmd_demo(args: argparse.Namespace) -> int:
    from .harness.demo import main as demo_main

    return demo_main(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simcore.campaign import main as simulate_main

    return simulate_main(args)


def cmd_gateway(args: argparse.Namespace) -> int:
    from .gateway.main import run

    return run(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(args)


def _sim_config(path: str):
    from .sim.config import load_sim_config

    return load_sim_config(path)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the devkit's commands to ``bingobox`` (the entry point ``bingobox.commands: devkit``)."""
    from .harness.fleet_load import add_parser as add_fleet_load
    from .harness.soak import add_parser as add_soak
    from .simcore.outage import add_parser as add_outage

    CONFIG_KINDS["sim"] = ("simulator", _sim_config, lambda c: f"{len(c.doors)} doors, "
                           f"{len(c.readers) + len(c.llrp_readers)} readers, {len(c.cameras)} cameras")
    s = sub.add_parser("sim", help="run the hardware simulator (virtual doors, readers, cameras)")
    s.add_argument("--config", default="config/sim.toml")
    s.add_argument("--run-dir", default="run/sim", help="where the pty symlinks and sim.json go")
    s.add_argument("--control-port", type=int, default=None, help="override [sim].control_port (0 = any free)")
    s.add_argument("--scenario", help="YAML scenario to play once started")
    s.set_defaults(fn=cmd_sim)

    k = sub.add_parser("sim-ctl", help="act in a running simulator: ACTION key=value ..., status, scenario FILE")
    k.add_argument("--url", help="control URL (default: from RUN_DIR/sim.json)")
    k.add_argument("--run-dir", default="run/sim")
    k.add_argument("action")
    k.add_argument("params", nargs="*")
    k.set_defaults(fn=cmd_sim_ctl)
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
    g.add_argument("--card-visit-limit-fen", type=int, default=20_000,
                   help="the most a visit opened by an NFC card is charged in all (a card can be cloned)")
    g.add_argument("--in-flight-stale-s", type=float, default=60.0,
                   help="a request with a key still in flight this long is taken to have died (a retry then runs)")
    g.add_argument("--keep-visits-days", type=float, default=90, help="the stores' visit records (receipts' evidence)")
    g.add_argument("--keep-codes-days", type=float, default=7, help="issued entry codes")
    g.add_argument("--keep-requests-days", type=float, default=30, help="answered data requests (exports)")
    g.add_argument("--keep-history-days", type=float, default=365,
                   help="accounts' own history (log-ins, consents) and resolved disputes")
    g.set_defaults(fn=cmd_gateway)

    de = sub.add_parser("demo", help="a whole store on this box with scripted shoppers; prints a summary checked "
                        "against the ledger (--json: all of it as JSON)")
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
    de.add_argument("--take-expired", type=float, default=0.15, metavar="P",
                    help="how likely a shopper reaching for an item of an expired lot keeps it (it is not charged; "
                    "the store lists and alarms it)")
    de.add_argument("--groups", action="store_true", help="about half the shoppers bring one or two companions on "
                    "their code (a door passage each; some leave first by the exit button)")
    de.add_argument("--approach", action="store_true", help="the exit camera sees shoppers as they step into the "
                    "exit area, with their goods, not at the door (the store sets exit_settle_s)")
    de.add_argument("--repeat-faces", action="store_true", help="let a face be inside twice at once (the demo's "
                    "photographed people are fewer than a crowd; by default a shopper whose face is inside waits)")
    de.add_argument("--more-faces", action="store_true", help="shoppers' faces also from the 40 people of "
                    "tests/data/faces/more.csv (a crowd with a face each; tests/data/SOURCES.md)")
    de.add_argument("--json", action="store_true", help="one-line JSON summary")
    de.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    de.add_argument("--run-dir", help="where the processes keep their files (default run/demo-PID)")
    de.add_argument("--screen-port", type=int, default=0, help="status screen port (default: a free one)")
    de.add_argument("--mqtt", help="connect the store to this MQTT broker (its [mqtt] url), e.g. for `bingobox fleet`")
    de.add_argument("--mqtt-user", help="the store's broker user (its store id is demo-store)")
    de.add_argument("--mqtt-password-file", help="… and its password, in a file")
    de.add_argument("--mqtt-command-key-file", help="the key the fleet service signs commands with")
    de.add_argument("--keep", action="store_true", help="keep the store running after the shoppers (Ctrl-C stops)")
    de.add_argument("--testdata", default=testdata(),
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
    sm.add_argument("--plain-goods", action="store_true", help="plain tags only, no batches (the goods of the "
                    "campaigns before expiry dates and markdowns: their seeds replay as they were)")
    sm.add_argument("--groups", action="store_true", help="some shoppers bring one or two companions on their code "
                    "(their passages, their takes billed to the shopper, some leave first by the exit button)")
    sm.add_argument("--exit-settle-s", type=float, default=0.0, help="the exit camera sees shoppers as they step "
                    "into the exit area, and the store waits this long past the frame for their goods (its "
                    "exit_settle_s; 0: seen at the door). The schedules are the same either way")
    sm.add_argument("--json", action="store_true", help="one JSON object (runs, crash_points, violations, …)")
    sm.set_defaults(fn=cmd_simulate)

    b = sub.add_parser("bench", help="measure speed (medians, p99, ratios against baselines in the same run)")
    b.add_argument("what", choices=["vision", "faces", "rfid", "store", "bus", "llrp", "all"],
                   help="faces: the exit rule with 10, 20 and 40 inside (--seed), on the store's photographs and "
                   "tests/data/faces/more.csv")
    b.add_argument("--units", default="1,2,4,8", help="bus bench: boards on the line (comma list)")
    b.add_argument("--baud", type=int, default=38400, help="bus bench: the line's speed")
    b.add_argument("--tags", default="100,400,1600", help="llrp bench: tags in the reader's field (comma list)")
    b.add_argument("--runs", type=int, default=30)
    b.add_argument("--shoppers", type=int, default=None, help="store bench: scripted shoppers (at least --exits)")
    b.add_argument("--exits", type=int, default=100, help="store bench: drive at least this many exits")
    b.add_argument("--concurrency", type=int, default=3, help="store bench: shoppers in the store at once")
    b.add_argument("--seed", type=int, default=1, help="store bench: the scripted shoppers' seed; faces: the draws'")
    b.add_argument("--approach", action="store_true", help="store bench: the exit camera sees shoppers as they "
                   "step into the exit area (frame → acknowledged then includes the store's exit_settle_s)")
    b.add_argument("--testdata", default=testdata())
    b.set_defaults(fn=cmd_bench)

    add_fleet_load(sub)
    add_soak(sub)
    add_outage(sub)
