"""``bingobox soak``: a store for hours at a steady, realistic rate, with the fault schedule on, watched for growth.

The demo's store (simulator, gateway, controller as processes) gets a shopper every ``--every-s`` on average (a
Poisson process; a person is never inside twice at once) and a fault every ``--fault-every-s`` (the demo's faults in
turn: gateway drops, errors and outage, a shelf unplugged, junk on the lines, the controller killed). Every
``--sample-s`` it samples each process's resident memory, open file descriptors and threads (the controller's face
processes included), the journal and its WAL, and the gateway's database; the entries' and exits' latencies come from
the store's own ``stages`` evidence as it is written. The report: per hour the p50/p99/max of entry and exit, and for
every series its slope after the warm-up (a least-squares line, per hour) — what grows without a bound shows there.
The journal's retention can be shortened (``--keep-visits-days``) so that a few hours show it bounded.

Writes ``RUN_DIR/soak.jsonl`` (the samples), ``RUN_DIR/soak.json`` (the report) and ``RUN_DIR/soak.svg`` (the
curves)."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

from bingobox.metrics import percentiles

from ..paths import testdata
from . import demo as demo_mod
from .soak_plot import svg


def _proc(pid: int) -> dict | None:
    """RSS (MiB), open fds and threads of one process (None: it is gone)."""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    return {"rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 2), "fds": fds,
            "threads": int(status["Threads"])}


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def _size_mib(path: Path) -> float:
    try:
        return round(path.stat().st_size / 2**20, 3)
    except OSError:
        return 0.0


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return None if den == 0 else round(3600 * sum((t - mx) * (v - my) for t, v in points) / den, 4)


class Soak:
    def __init__(self, args) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        faults = set(demo_mod.FAULTS) - {"dead_board"} if args.faults == "all" else \
            {f for f in (args.faults or "").split(",") if f and f != "none"}
        day = 86_400
        journal = {"keep_visits_days": args.keep_visits_days, "keep_refusals_days": args.keep_visits_days}
        # (the store of the soak's published curves: no cabinets, so a rerun compares with them)
        self.demo = demo_mod.Demo(0, args.seed, faults, Path(args.run_dir).resolve(), Path(args.testdata),
                                  verbose=not args.quiet, overrides={"journal": journal}, cabinets=False)
        self.retention_s = args.keep_visits_days * day
        self.stop = threading.Event()
        self.shoppers: list[demo_mod.Shopper] = []
        self.inside_faces: set[str] = set()
        self.lock = threading.Lock()
        self.latency: list[tuple[float, str, float]] = []  # (wall time, entry|exit, ms)
        self.samples: list[dict] = []
        self.t0 = 0.0

    # shoppers and faults ---------------------------------------------------------------------------------
    def arrivals(self) -> None:
        faces = demo_mod._identities(self.demo.testdata)
        n = 0
        while not self.stop.wait(self.rng.expovariate(1 / self.args.every_s)):
            with self.lock:  # a person is inside once at most (a face free now, else no face billing)
                free = [f for f in faces if str(f[1]) not in self.inside_faces]
                face = self.rng.choice(free) if free and self.rng.random() < 0.7 else None
                if face:
                    self.inside_faces.add(str(face[1]))
            low = self.rng.random() < 0.1
            s = self.demo.new_shopper(n, 50 if low else 1_000_000, face)
            n += 1
            self.shoppers.append(s)
            threading.Thread(target=self.shop, args=(s,), daemon=True, name=f"shopper-{n}").start()

    def shop(self, s: demo_mod.Shopper) -> None:
        try:
            self.demo.shop(s)
        finally:
            if s.face:
                with self.lock:
                    self.inside_faces.discard(str(s.face[1]))

    def faults(self) -> None:
        """The demo's chaos, one fault every ``fault_every_s`` (its own loop draws the next in 3–6 s)."""
        plan = [f for f in demo_mod.FAULTS if f in self.demo.faults and f != "dead_board"]
        i = 0
        while plan and not self.stop.wait(self.args.fault_every_s):
            one = threading.Event()
            self.demo.faults = {plan[i % len(plan)]}
            i += 1
            t = threading.Thread(target=self.demo.chaos, args=(one,), daemon=True)
            t.start()
            self.stop.wait(7)  # (the chaos loop waits 3–6 s before its first fault, which lasts up to 4 s)
            one.set()
            t.join(timeout=60)
        self.demo.faults = set(plan)

    # watching ---------------------------------------------------------------------------------------------
    def sample(self, reader: sqlite3.Connection | None, last_event: int) -> int:
        d = self.demo
        now = time.time()
        procs = {}
        for name in ("controller", "sim", "gateway"):
            p = d.procs.get(name)
            got = _proc(p.p.pid) if p is not None else None
            if got is not None:
                procs[name] = got
            if name == "controller" and p is not None:
                for i, c in enumerate(sorted(_children(p.p.pid))):
                    got = _proc(c)
                    if got is not None:
                        procs[f"face-{i}"] = got
        st = d.status()
        row = {"t": round(now - self.t0, 1), "procs": procs,
               "journal_mib": _size_mib(d.dir / "store.db"), "wal_mib": _size_mib(d.dir / "store.db-wal"),
               "gateway_db_mib": _size_mib(d.dir / "gateway.db") + _size_mib(d.dir / "gateway.db-wal"),
               "shoppers": len(self.shoppers), "inside": st.get("inside"),
               "visits_in_journal": None}
        if reader is not None:
            try:
                row["visits_in_journal"] = reader.execute("SELECT count(*) FROM visits").fetchone()[0]
                for r in reader.execute("SELECT id, t, data FROM visit_events WHERE kind='stages' AND id > ? "
                                        "ORDER BY id", (last_event,)):
                    last_event = r[0]
                    data = json.loads(r[2])
                    self.latency.append((r[1], data["path"], data["latency_ms"]))
            except sqlite3.Error:
                pass
        self.samples.append(row)
        with open(d.dir / "soak.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        return last_event

    def watch(self) -> None:
        reader, last = None, 0
        while not self.stop.is_set():
            if reader is None and (self.demo.dir / "store.db").exists():
                reader = sqlite3.connect(f"file:{self.demo.dir / 'store.db'}?mode=ro", uri=True, timeout=5)
            last = self.sample(reader, last)
            self.stop.wait(self.args.sample_s)
        self.sample(reader, last)
        if reader is not None:
            reader.close()

    # the run ------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        d = self.demo
        d.setup()
        (d.dir / "soak.jsonl").unlink(missing_ok=True)
        self.t0 = time.time()
        threads = [threading.Thread(target=f, daemon=True, name=f.__name__)
                   for f in (self.arrivals, self.faults, self.watch)]
        for t in threads:
            t.start()
        self.stop.wait(self.args.hours * 3600)
        self.stop.set()
        for t in threads:
            t.join(timeout=120)
        deadline = time.monotonic() + 300  # the last shoppers finish
        while any(not s.done and s.error is None for s in self.shoppers) and time.monotonic() < deadline:
            time.sleep(1)
        d.admin_post("/admin/faults", {"drop_rate": 0, "error_rate": 0, "outage": False})
        summary = d.settle_and_summarise(self.shoppers, time.time() - self.t0)
        return self.report(summary)

    def report(self, summary: dict) -> dict:
        warm = self.args.warmup_s
        series: dict[str, list[tuple[float, float]]] = {}
        for s in self.samples:
            if s["t"] < warm:
                continue
            for name, p in s["procs"].items():
                for k, v in p.items():
                    series.setdefault(f"{name}.{k}", []).append((s["t"], v))
            for k in ("journal_mib", "wal_mib", "gateway_db_mib"):
                series.setdefault(k, []).append((s["t"], s[k]))
        slopes = {k: {"per_hour": slope_per_hour(v), "first": v[0][1], "last": v[-1][1],
                      "max": max(x for _, x in v)} for k, v in sorted(series.items())}
        hours: dict[int, dict[str, list[float]]] = {}
        for t, path, ms in self.latency:
            hours.setdefault(int((t - self.t0) // 3600), {}).setdefault(path, []).append(ms)
        per_hour = {h: {p: percentiles(v) for p, v in paths.items()} for h, paths in sorted(hours.items())}
        out = {"hours": self.args.hours, "every_s": self.args.every_s, "faults": sorted(self.demo.faults),
               "fault_every_s": self.args.fault_every_s, "keep_visits_days": self.args.keep_visits_days,
               "samples": len(self.samples), "warmup_s": warm,
               "money": {k: summary[k] for k in ("shoppers", "visits", "charged", "lost", "doubled", "wrong_person",
                                                  "wrong_amount", "declined", "recovery_visits") if k in summary},
               "latency_per_hour_ms": per_hour, "slopes_after_warmup": slopes}
        (self.demo.dir / "soak.json").write_text(json.dumps(out, indent=1))
        (self.demo.dir / "soak.svg").write_text(svg(self.samples, self.latency, self.t0, self.args))
        return out


def main(args) -> int:
    soak = Soak(args)
    try:
        out = soak.run()
        print(json.dumps(out, indent=None if args.json else 2), flush=True)
    finally:
        soak.demo.close()
    m = out["money"]
    return 1 if m.get("lost") or m.get("doubled") or m.get("wrong_person") or m.get("wrong_amount") else 0


def add_parser(sub) -> None:
    p = sub.add_parser("soak", help="a store for hours at a steady rate with faults, watched for growth (RSS, fds, "
                       "threads, journal, p99 per hour)")
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--every-s", type=float, default=60.0, help="a shopper this often on average (Poisson)")
    p.add_argument("--faults", default="all", help="the demo's faults (comma list, or all, or none)")
    p.add_argument("--fault-every-s", type=float, default=600.0)
    p.add_argument("--sample-s", type=float, default=30.0)
    p.add_argument("--warmup-s", type=float, default=1200.0, help="samples before this are left out of the slopes")
    p.add_argument("--keep-visits-days", type=float, default=90.0, help="the journal's retention (shorten it to see "
                   "it bounded within the run, e.g. 0.02 = 29 min)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--run-dir", default="run/soak")
    p.add_argument("--testdata", default=testdata())
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=main)
