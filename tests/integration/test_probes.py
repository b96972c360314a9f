"""Temperature probes on the doors' RS-485 line (a real pty): the bus driver reads the simulated probe between the
doors' rounds; a fridge that fails warms at the rate asked; a probe unplugged is a fault, never a last value; the
doors on the line are not slowed. pymodbus as a third-party master reads the simulated probe's input registers."""

from __future__ import annotations

import pytest

from bingobox.config import BusConfig, ProbeConfig
from bingobox.devices.door import build_doors
from bingobox.devices.probe import build_probes
from tests.helpers import Events, Sim, wait_until
from tests.integration.test_modbus_bus import BUS_SIM, door_cfgs

pytestmark = pytest.mark.integration

PROBE_SIM = BUS_SIM + '[[probes]]\nname = "fridge-1"\nbus = "rs485"\nunit = 10\ntemp_c = 4.0\n'


def readings(events: Events) -> list[float]:
    return [e.data["temp_c"] for e in events.items if e.kind == "reading"]


def test_the_bus_reads_a_probe_between_the_doors_rounds_and_says_when_it_stops(tmp_path):
    sim, events = Sim(tmp_path, PROBE_SIM), Events()
    buses, doors = build_doors(door_cfgs(), [BusConfig(name="rs485", port=sim.pty("rs485"), baudrate=38400,
                                                       breaker_retry_s=0.5)], events)
    probes = build_probes([ProbeConfig(name="fridge-1", bus="rs485", unit=10, zone="chilled", poll_s=1.0)],
                          buses, events)
    b = buses["rs485"]
    b.start()
    try:
        wait_until(lambda: len(readings(events)) >= 2, 5, "two readings")
        assert all(3.5 < t < 4.5 for t in readings(events))
        assert events.kinds("fridge-1")[0] == "connected"
        first = next(e for e in events.items if e.kind == "reading")
        assert first.data["zone"] == "chilled" and 55 < first.data["rh"] < 65
        # the fridge stops cooling (at 60 °C a minute, to see it within a test): the readings climb
        sim.act("fridge.fail", probe="fridge-1", rate_c_per_min=60)
        wait_until(lambda: readings(events)[-1] > 8.0, 10, "the zone above 8 °C")
        # unplugged: a fault, once; no more readings; the doors on the line keep answering
        n = len(readings(events))
        sim.act("fault.silent", device="fridge-1")
        wait_until(lambda: "fault" in events.kinds("fridge-1"), 10, "the probe's fault")
        assert probes["fridge-1"].status()["last"] is None and len(readings(events)) <= n + 1
        assert all(d.status()["online"] for d in doors.values())
        doors["entrance"].grant()
        wait_until(lambda: not sim.device("entrance")["lock_engaged"], 2, "a grant while the probe is down")
        sim.act("fault.clear", device="fridge-1")
        mark = events.mark()
        events.wait_for(lambda e: e.device == "fridge-1" and e.kind == "connected", 5, after=mark)
        events.wait_for(lambda e: e.device == "fridge-1" and e.kind == "reading", 5, after=mark)
        # a probe stuck at one value still answers: the readings stop moving (the rule's silence does not see it;
        # the fridge's own failure alarm does)
        sim.act("fault.stuck_value", probe="fridge-1")
        mark = events.mark()
        events.wait_for(lambda e: e.kind == "reading", 5, after=mark)
        events.wait_for(lambda e: e.kind == "reading", 5, after=events.mark())
        stuck = [e.data["temp_c"] for e in events.items[mark:] if e.kind == "reading"]
        assert len(set(stuck)) == 1
    finally:
        b.stop()
        sim.stop()


def test_pymodbus_master_reads_the_simulated_probe_s_input_registers(tmp_path):
    from pymodbus.client import ModbusSerialClient

    sim = Sim(tmp_path, PROBE_SIM)
    client = ModbusSerialClient(port=sim.pty("rs485"), baudrate=38400, timeout=1, retries=0)
    try:
        assert client.connect()
        r = client.read_input_registers(1, count=2, device_id=10)
        assert not r.isError()
        temp, rh = r.registers
        assert 35 <= temp <= 45 and 550 <= rh <= 650  # tenths: 4.0 °C, 60 %RH
        sim.act("probe.set", probe="fridge-1", temp_c=-18.5)  # a freezer: two's complement
        r = client.read_input_registers(1, count=1, device_id=10)
        assert r.registers[0] - 0x10000 in range(-190, -180)
        bad = client.read_input_registers(6, count=4, device_id=10)  # past its registers: exception 02
        assert bad.isError() and bad.exception_code == 2
        assert client.read_coils(0, count=1, device_id=10).isError()  # a probe has no coils: exception 01
    finally:
        client.close()
        sim.stop()


def test_a_failing_fridge_in_the_running_store_raises_the_alarm_and_shows_on_the_status(tmp_path):
    """The whole store as processes: the simulator's probe (listed in sim.json as a temperature sensor) on the RS-485
    line, the controller's cold-chain rule; the fridge fails, the zone's alarm comes, the status shows the zone and
    its plot; the probe unplugged is an alarm of its own."""
    import json

    from bingobox_devkit.harness.demo import Demo
    from bingobox_devkit.harness.storeconf import PROBE, ZONE
    from tests.helpers import ROOT
    from tests.integration.test_store import rows

    d = Demo(0, seed=5, faults=set(), run_dir=tmp_path / "store", testdata=ROOT / "tests/data", verbose=False,
             overrides={"probes": [{**PROBE, "zone": "chilled", "poll_s": 1.0}],
                        "zones": [{**ZONE, "alarm_after_s": 10, "silent_after_s": 10}]})
    d.setup()
    try:
        sim = json.loads((d.dir / "sim" / "sim.json").read_text())
        assert sim["devices"]["fridge-1"]["kind"] == "temperature"
        wait_until(lambda: (d.status()["zones"]["chilled"]["temp_c"] or 99) < 5, 10, "a cold reading")
        assert d.status()["devices"]["fridge-1"]["online"]
        d.act("fridge.fail", probe="fridge-1", rate_c_per_min=120)
        wait_until(lambda: rows(d, "SELECT 1 FROM alarms WHERE kind='cold_chain_warm'"), 30, "the warm alarm")
        wait_until(lambda: d.status()["zones"]["chilled"]["warm"], 5, "the status showing it")  # (published each s)
        z = d.status()["zones"]["chilled"]
        assert z["temp_c"] > 8 and len(z["history"]) >= 3 and not z["off_sale"]
        d.act("fault.silent", device="fridge-1")
        wait_until(lambda: rows(d, "SELECT 1 FROM alarms WHERE kind IN ('probe_unreachable', 'probe_silent')"), 20,
                   "the probe's silence is an alarm")
        wait_until(lambda: "device:fridge-1" in d.status()["problems"], 10, "the store degraded by it")
        assert rows(d, "SELECT 1 FROM alarms WHERE kind='probe_unreachable'")
    finally:
        d.close()
