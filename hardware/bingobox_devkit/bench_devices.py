"""Device benches: how many door boards one RS-485 line carries (and what a dead one costs the others), and how many
tag reads a second the LLRP driver takes from one reader. The simulator runs as its own process, paced at the
line's speed; this process runs only the driver. Figures are medians/percentiles of one run, with the healthy bus
as the baseline of the dead-board run."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

from bingobox.metrics import Histogram


def _sim(tmp: Path, text: str):
    from bingobox_devkit.harness.process import Proc

    (tmp / "sim.toml").write_text(text)
    sim = Proc("sim", ["sim", "--config", str(tmp / "sim.toml"), "--run-dir", f"{tmp}/run", "--control-port", "0"],
               tmp / "sim.log")
    sim.wait_line("ready", timeout=30)
    return sim


def _bus_run(tmp: Path, units: int, baud: int, poll_hz: float, seconds: float, dead: bool) -> dict:
    from bingobox.config import BusConfig, DoorConfig
    from bingobox.devices.door import build_doors
    from bingobox_devkit.sim.control import SimClient

    doors = "".join(f'[[doors]]\nname = "d{u}"\nbus = "b"\nunit = {u}\n' for u in range(1, units + 1))
    sim = _sim(tmp, f'[sim]\ncontrol_port = 0\n[[buses]]\nname = "b"\nbaudrate = {baud}\n{doors}')
    acks: dict[str, float] = {}
    done = threading.Event()

    def on_event(ev) -> None:
        if ev.kind == "unlock_written":
            acks[ev.data["tag"]] = ev.data["acked"]
            done.set()

    try:
        manifest = json.loads((tmp / "run" / "sim.json").read_text())
        ctl = SimClient(manifest["control"], manifest["token"])
        cfgs = [DoorConfig(name=f"d{u}", bus="b", unit=u, energize_to_unlock=True, unlock_s=1, relock_on="open")
                for u in range(1, units + 1)]
        buses, made = build_doors(cfgs, [BusConfig(name="b", port=f"{tmp}/run/b", baudrate=baud,
                                                   poll_hz=poll_hz)], on_event)
        bus = buses["b"]
        bus.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(d.state == "locked" for d in made.values()):
            time.sleep(0.05)
        if dead:
            ctl.act("fault.silent", device=f"d{units}")
            time.sleep(1.0)  # its breaker opens
        for u in bus.units.values():
            u.rtts_ms.clear()
        p0 = {n: u.stats["polls"] for n, u in bus.units.items()}
        t0 = time.monotonic()
        grant = Histogram()
        live_doors = [made[f"d{u}"] for u in range(1, units + 1 - dead)]
        while time.monotonic() - t0 < seconds:  # a grant every 0.1 s to a live door that is locked
            locked = [d for d in live_doors if d.state == "locked"]
            if not locked:
                time.sleep(0.05)
                continue
            d = locked[int(time.monotonic() * 1000) % len(locked)]
            tag = f"g{time.monotonic()}"
            done.clear()
            sent = time.time()
            d.grant(tag=tag)
            if done.wait(1.0) and tag in acks:
                grant.add((acks[tag] - sent) * 1000)
            time.sleep(0.1)
        wall = time.monotonic() - t0
        live = [u for n, u in bus.units.items() if not (dead and n == units)]
        out = {"units": units, "baud": baud, "poll_hz_target": poll_hz,
               "poll_hz_per_unit_median": round(median((u.stats["polls"] - p0[u.unit]) / wall for u in live), 1),
               "rtt_ms_p50": round(median(u.rtt()["p50"] or 0 for u in live), 2),
               "rtt_ms_p99": max(u.rtt()["p99"] or 0 for u in live), "grant_ms": grant.summary()}
        if dead:
            out["dead_unit_requests_per_s"] = round(bus.units[units].stats["probes"] / max(wall, 1e-9), 2)
        bus.stop()
        return out
    finally:
        sim.stop()


def bench_bus(units_list: list[int], baud: int = 38400, poll_hz: float = 20.0, seconds: float = 10.0) -> dict:
    """For each size of bus: every unit polled at ``poll_hz``; the poll rate each unit really gets, round trips, and
    how fast a grant reaches a board (granted → acknowledged); then the same bus with its last board dead."""
    out = []
    for n in units_list:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            healthy = _bus_run(Path(a), n, baud, poll_hz, seconds, dead=False)
            broken = _bus_run(Path(b), n, baud, poll_hz, seconds, dead=True) if n > 1 else None
        row: dict[str, Any] = {"healthy": healthy}
        if broken:
            row["one_dead"] = broken
            hp, bp = healthy["grant_ms"].get("p99"), broken["grant_ms"].get("p99")
            row["grant_p99_ratio_dead_vs_healthy"] = round(bp / hp, 2) if hp and bp else None
        out.append(row)
    frame_ms = (8 + 6) * 11 / baud * 1000  # a poll: 8-byte request + 6-byte reply (8 inputs)
    return {"buses": out, "poll_wire_ms_at_baud": round(frame_ms, 2),
            "note": "a unit's poll costs its two frames, two t3.5 gaps and the board's turnaround"}


def bench_llrp(tags_list: list[int], seconds: float = 5.0) -> dict:
    """Tag reads a second the driver takes from one simulated 4-antenna reader (reports every 50 ms), and the
    driver's CPU: this process's time over wall time, less its idle share."""
    from bingobox.config import LlrpReaderConfig
    from bingobox.devices.llrp import LlrpReader

    rows = []
    for n in tags_list:
        per = [[f"E28068940000502400{a:02X}{i:04X}" for i in range(n // 4)] for a in range(1, 5)]
        tags = "".join(f"{a + 1} = {json.dumps(per[a])}\n" for a in range(4))
        with tempfile.TemporaryDirectory() as tmp:
            sim = _sim(Path(tmp), f'[sim]\ncontrol_port = 0\n[[llrp_readers]]\nname = "r"\nantennas = 4\n'
                                  f'round_s = 0.05\n[llrp_readers.tags]\n{tags}')
            try:
                port = json.loads((Path(tmp) / "run" / "sim.json").read_text())["devices"]["r"]["tcp"]
                t0, c0 = time.perf_counter(), time.process_time()
                time.sleep(1.0)
                idle = (time.process_time() - c0) / (time.perf_counter() - t0)
                cfg = LlrpReaderConfig(name="r", host="127.0.0.1", port=port,
                                       zones=[{"antenna": a, "name": f"z{a}"} for a in range(1, 5)])
                r = LlrpReader(cfg, lambda e: None)
                r.start()
                time.sleep(2.0)
                n0, t0, c0 = r.stats["reads"], time.perf_counter(), time.process_time()
                time.sleep(seconds)
                n1, t1, c1 = r.stats["reads"], time.perf_counter(), time.process_time()
                present = sum(len(z.present()) for z in r.zones.values())
                r.stop()
            finally:
                sim.stop()
        wall = t1 - t0
        rows.append({"tags": n, "offered_reads_per_s": round(n / 0.05, 1),
                     "reads_per_s": round((n1 - n0) / wall, 1), "tags_present": present,
                     "driver_cpu_percent_of_one_core": round(100 * ((c1 - c0) / wall - idle), 1)})
    return {"readers": rows}
