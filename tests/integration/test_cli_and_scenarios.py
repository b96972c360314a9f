"""The CLI an integrator uses: sim-ctl, scenarios, and `bingobox devices` against a running simulator."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bingobox_devkit.sim.scenario import ScenarioError, load_scenario
from tests.helpers import ROOT, Sim

pytestmark = pytest.mark.integration


def bb(*args, **kw):
    return subprocess.run([sys.executable, "-m", "bingobox", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, **kw)


def test_sim_ctl_acts_and_reports_errors(sim):
    run = ["--run-dir", str(sim.run_dir)]
    r = bb("sim-ctl", *run, "tags.add", "reader=shelf-1", 'epcs=["E28068940000502458950099"]')
    assert r.returncode == 0 and json.loads(r.stdout)["tags"] == 4
    r = bb("sim-ctl", *run, "tags.remove", "reader=shelf-1", "epcs=E28068940000502458950099")
    assert r.returncode == 0 and json.loads(r.stdout)["tags"] == 3
    r = bb("sim-ctl", *run, "door.open", "door=entrance")
    assert r.returncode == 1 and "locked" in r.stderr
    r = bb("sim-ctl", *run, "status")
    assert json.loads(r.stdout)["devices"]["shelf-1"]["plugged"] is True
    r = bb("sim-ctl", "--run-dir", "/nonexistent", "status")
    assert r.returncode == 2 and "no running simulator" in r.stderr


def test_devices_command_prints_driver_events(sim, tmp_path):
    cfg = tmp_path / "store.toml"
    cfg.write_text(f"""
[store]
id = "t"
[[doors]]
name = "entrance"
port = "{sim.pty('entrance')}"
energize_to_unlock = true
[[readers]]
name = "shelf-1"
port = "{sim.tcp('shelf-1')}"
""")
    r = bb("devices", "--config", str(cfg), "--seconds", "1.5", "--grant", "entrance")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    events = {(x.get("device"), x.get("event")) for x in lines}
    assert ("shelf-1", "tag_seen") in events and ("entrance", "connected") in events
    assert any(x.get("event") == "state" and x.get("state") == "unlocked" for x in lines)
    status = lines[-1]["status"]
    assert status["shelf-1"]["tags_present"] == 3 and status["entrance"]["online"]


def test_scenario_file_plays_in_the_simulator(tmp_path):
    img = tmp_path / "card.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(img), np.zeros((50, 50, 3), np.uint8))
    scen = tmp_path / "s.yaml"
    scen.write_text("""
name: t
steps:
  - tags.set: {reader: shelf-1, epcs: [AAAA]}
  - camera.show: {camera: door-cam, image: card.png}
  - fire: {active: true}
  - wait: 0.1
  - fault.garbage: {device: entrance, bytes: 8}
""")
    s = Sim(tmp_path)
    try:
        r = bb("sim-ctl", "--run-dir", str(s.run_dir), "scenario", str(scen))
        assert r.returncode == 0, r.stderr
        st = s.client.status()["devices"]
        assert st["shelf-1"]["tags"] == ["AAAA"] and st["entrance"]["fire"] is True
        assert st["door-cam"]["showing"] == "image:card.png"
    finally:
        s.stop()


def test_shipped_scenario_is_valid_and_bad_ones_are_refused(tmp_path):
    name, steps = load_scenario(ROOT / "hardware/bingobox_devkit/sim/scenarios/shelf-and-doors.yaml")
    assert name == "shelf-and-doors" and len(steps) > 10
    bad = tmp_path / "bad.yaml"
    for text, msg in [("steps: [{wait: -1}]", "wait takes seconds"), ("steps: [{a: 1, b: 2}]", "one-key"),
                      ("nope: 1\nsteps: []", "unknown keys"), ("[1, 2", "cannot read")]:
        bad.write_text(text)
        with pytest.raises(ScenarioError, match=msg):
            load_scenario(bad)


def test_sim_refuses_a_bad_config_and_cleans_up_on_sigterm(tmp_path):
    bad = tmp_path / "sim.toml"
    bad.write_text("[[doors]]\nname = 'x'\nvoltage = 12\n")
    r = bb("sim", "--config", str(bad), "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 2 and "doors[0].voltage: unknown key" in r.stderr
    s = Sim(tmp_path)
    links = [Path(s.pty("entrance")), s.run_dir / "sim.json"]
    assert all(p.exists() for p in links)
    s.stop()
    assert s.proc.returncode == 0
    time.sleep(0.1)
    assert not any(p.exists() for p in links)


def test_a_config_that_drives_the_simulator_unmarked_is_refused(tmp_path):
    import tomli_w

    from bingobox_devkit.harness import storeconf
    from tests.helpers import Sim

    (tmp_path / "s").mkdir()
    sim = Sim(tmp_path / "s", tomli_w.dumps(storeconf.sim_config(1)))
    try:
        _check_unmarked(tmp_path, sim)
    finally:
        sim.stop()


def _check_unmarked(tmp_path, sim):
    from bingobox.simcheck import refuse_unmarked, simulated_devices
    from bingobox_devkit.harness import storeconf

    cfg = storeconf.store_config("s1", sim.manifest["devices"], ROOT / "config/catalog.csv", "http://127.0.0.1:9",
                                 tmp_path / "secret", tmp_path / "keys.json", tmp_path / "store.db", 0, None)
    cfg["store"].pop("sim")
    from bingobox.config import StoreConfig

    unmarked = StoreConfig.model_validate(cfg)
    found = simulated_devices(unmarked)
    assert any(f.startswith("entrance:") for f in found) and any(f.startswith("door-cam:") for f in found), found
    assert refuse_unmarked(unmarked) and all("sim = true" in p for p in refuse_unmarked(unmarked))
    (tmp_path / "secret").write_text("s" * 20)
    (tmp_path / "keys.json").write_text('{"keys": []}')
    storeconf.write(tmp_path / "store.toml", cfg)
    r = bb("run", "--config", str(tmp_path / "store.toml"))
    assert r.returncode == 2 and "must say `sim = true`" in r.stderr  # before: it drove the simulator unasked
    cfg["store"]["sim"] = True
    assert refuse_unmarked(StoreConfig.model_validate(cfg)) == []
    # a store that cannot be built after its face processes were launched (they load while the app is built; here
    # the gateway's keys file holds none): it says why, and leaves none of them running
    (tmp_path / "secret").chmod(0o600)
    storeconf.write(tmp_path / "store.toml", cfg)
    mark = f"bingobox-test-{time.monotonic_ns()}"
    r = bb("run", "--config", str(tmp_path / "store.toml"), env={**os.environ, "BINGOBOX_TEST_MARK": mark})
    assert r.returncode == 2 and "cannot run the store:" in r.stderr and "holds no Ed25519 keys" in r.stderr
    assert "Traceback" not in r.stderr
    time.sleep(0.2)
    assert not marked(mark), "a face process outlived the controller"
    # the same in this process, which goes on: the failed build stops them itself (not the interpreter's exit)
    import argparse
    import multiprocessing

    from bingobox.cli.store import cmd_run

    assert cmd_run(argparse.Namespace(config=str(tmp_path / "store.toml"), status_file=None)) == 2
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("bingobox-")]


def marked(mark: str) -> list[int]:
    """Processes whose environment carries ``mark`` (a child outliving its parent keeps it)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"BINGOBOX_TEST_MARK={mark}".encode() in env.read_bytes().split(b"\0"):
                found.append(int(env.parent.name))
        except OSError:  # (gone meanwhile, or not ours to read)
            pass
    return found
