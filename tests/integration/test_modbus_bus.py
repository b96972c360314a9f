"""Several doors on one board and several boards on one RS-485 line: the bus driver against the simulator's
multi-drop line (a real pty), a dead board that faults only its own doors, and pymodbus as the third-party master
(against the simulated line) and slave (against the driver)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bingobox.config import BusConfig, DoorConfig
from bingobox.devices.door import build_doors
from bingobox_devkit.harness.process import free_port
from tests.helpers import Events, Sim, wait_until

pytestmark = pytest.mark.integration

BUS_SIM = """
[sim]
control_port = 0
[[buses]]
name = "rs485"
baudrate = 38400
[[doors]]
name = "entrance"
bus = "rs485"
unit = 1
[[doors]]
name = "exit"
bus = "rs485"
unit = 1
lock_coil = 1
contact_input = 3
rex_input = 4
fire_input = 2
[[doors]]
name = "staff"
bus = "rs485"
unit = 2
"""

WIRES = {"entrance": {"unit": 1},
         "exit": {"unit": 1, "lock_coil": 1, "contact_input": 3, "rex_input": 4, "fire_input": 2},
         "staff": {"unit": 2}}


def door_cfgs(**extra) -> list[DoorConfig]:
    return [DoorConfig(name=n, bus="rs485", energize_to_unlock=True, unlock_s=2, **{**w, **extra})
            for n, w in WIRES.items()]


@pytest.fixture
def bus(tmp_path):
    sim = Sim(tmp_path, BUS_SIM)
    events = Events()
    buses, doors = build_doors(door_cfgs(), [BusConfig(name="rs485", port=sim.pty("rs485"), baudrate=38400,
                                                       breaker_retry_s=0.5)], events)
    b = buses["rs485"]
    b.start()
    try:
        wait_until(lambda: all(d.state == "locked" for d in doors.values()), 5, "every door locked")
        yield sim, b, doors, events
    finally:
        b.stop()
        sim.stop()


def test_two_doors_on_one_board_and_a_second_board_each_open_by_their_own_coil(bus):
    sim, b, doors, events = bus
    assert [u.unit for u in b.units.values()] == [1, 2]
    doors["exit"].grant()
    wait_until(lambda: not sim.device("exit")["lock_engaged"], 2, "exit unlocked")
    assert sim.device("entrance")["lock_engaged"] and sim.device("staff")["lock_engaged"]
    assert sim.device("exit")["coils"][:2] == [0, 1]  # coil 1 of unit 1: the exit's, not the entrance's
    sim.act("door.open", door="exit")
    events.wait_for(lambda e: e.device == "exit" and e.kind == "door_opened", timeout=3)
    assert doors["entrance"].machine.door_open is False  # input 3 is the exit's contact, input 0 the entrance's
    sim.act("door.close", door="exit")
    wait_until(lambda: sim.device("exit")["lock_engaged"], 3, "relocked on close")
    sim.act("door.rex", door="staff")  # unit 2's REX unlocks unit 2's door only
    wait_until(lambda: not sim.device("staff")["lock_engaged"], 2, "staff REX")
    assert sim.device("entrance")["lock_engaged"]
    sim.act("fire", door="entrance")  # one fire contact on unit 1, wired to both of its doors
    wait_until(lambda: doors["entrance"].machine.fire and doors["exit"].machine.fire, 2, "fire on unit 1's doors")
    assert not doors["staff"].machine.fire


def test_a_dead_board_faults_only_its_own_doors_and_is_asked_only_by_its_breaker(bus):
    sim, b, doors, events = bus
    u1, u2 = b.units[1], b.units[2]
    sim.act("fault.silent", device="staff")  # unit 2 stops answering
    e = events.wait_for(lambda e: e.device == "staff" and e.data.get("fault") == "board_unreachable", timeout=5)
    assert "unit 2" in e.data["error"]
    assert doors["staff"].state == "fault" and u2.breaker() == "open"
    sent_before, polls_before, t0 = u2.stats["no_reply"], u1.stats["polls"], time.monotonic()
    time.sleep(2.0)
    elapsed = time.monotonic() - t0
    # the breaker: one probe per breaker_retry_s (0.5 s), not one per poll (20 a second)
    assert u2.stats["no_reply"] - sent_before <= elapsed / 0.5 + 2
    assert u1.stats["polls"] - polls_before >= 10  # unit 1 is still polled (about 20 a second)
    assert doors["entrance"].state == doors["exit"].state == "locked" and u1.online
    doors["entrance"].grant()  # the live board's doors work as before
    wait_until(lambda: not sim.device("entrance")["lock_engaged"], 2, "entrance unlocked beside a dead board")
    sim.act("fault.clear", device="staff")
    wait_until(lambda: doors["staff"].state == "locked" and u2.online, 3, "unit 2 back after its breaker probe")
    assert b.status()["units"][1]["breaker_opened"] == 1


def test_pymodbus_master_reads_and_writes_two_units_on_the_simulated_line(tmp_path):
    from pymodbus.client import ModbusSerialClient

    sim = Sim(tmp_path, BUS_SIM)
    client = ModbusSerialClient(port=sim.pty("rs485"), baudrate=38400, timeout=1, retries=0)
    try:
        assert client.connect()
        r1 = client.read_discrete_inputs(0, count=8, device_id=1)
        r2 = client.read_discrete_inputs(0, count=8, device_id=2)
        assert not r1.isError() and not r2.isError()
        assert r1.bits[0] and r1.bits[3] and r2.bits[0]  # both of unit 1's doors shut; unit 2's too
        assert not client.write_coil(1, True, device_id=1).isError()
        wait_until(lambda: not sim.device("exit")["lock_engaged"], 2, "pymodbus unlocked unit 1's coil 1")
        assert sim.device("entrance")["lock_engaged"] and sim.device("staff")["lock_engaged"]
        coils = client.read_coils(0, count=2, device_id=1)
        assert coils.bits[:2] == [False, True]
        bad = client.read_coils(0, count=200, device_id=2)  # past the board's 8 coils: exception 02
        assert bad.isError() and bad.exception_code == 2
        from pymodbus.exceptions import ModbusIOException

        with pytest.raises(ModbusIOException):  # nobody at unit 9: no answer at all
            client.read_coils(0, count=1, device_id=9)
    finally:
        client.close()
        sim.stop()


def test_the_bus_driver_against_a_pymodbus_slave_with_two_units(tmp_path):
    """pymodbus as the boards (RTU framing over TCP, as an RS-485-to-Ethernet gateway serves them): two units with
    their doors; the driver polls both, drives the right coil of the right unit."""
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.framer import FramerType
    from pymodbus.server import ModbusTcpServer

    def board() -> ModbusDeviceContext:  # (a block at 1: the context adds 1 to every wire address)
        di = ModbusSequentialDataBlock(1, [True, False, False, True, False, False, False, False])
        return ModbusDeviceContext(di=di, co=ModbusSequentialDataBlock(1, [False] * 8))

    units = {1: board(), 2: board()}
    context = ModbusServerContext(devices=units, single=False)
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    async def serve() -> None:
        holder["server"] = ModbusTcpServer(context, framer=FramerType.RTU, address=("127.0.0.1", port))
        ready.set()
        await holder["server"].serve_forever()

    th = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    th.start()
    assert ready.wait(5)
    events = Events()
    buses, doors = build_doors(door_cfgs(fire_input=None), [BusConfig(name="rs485", baudrate=38400,
                                                                       port=f"socket://127.0.0.1:{port}")], events)
    b = buses["rs485"]
    try:
        b.start()
        wait_until(lambda: all(d.state == "locked" for d in doors.values()), 5, "every door locked")
        doors["staff"].grant()
        wait_until(lambda: units[2].getValues(1, 0, 2) == [True, False], 2, "unit 2's coil 0 on")
        assert units[1].getValues(1, 0, 2) == [False, False]
        doors["exit"].grant()
        wait_until(lambda: units[1].getValues(1, 0, 2) == [False, True], 2, "unit 1's coil 1 on")
        assert b.units[1].online and b.units[2].online and b.units[1].stats["exceptions"] == 0
    finally:
        b.stop()
        asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop).result(5)
        th.join(5)


LAMP_SIM = BUS_SIM.replace('name = "entrance"\nbus = "rs485"\nunit = 1\n',
                           'name = "entrance"\nbus = "rs485"\nunit = 1\ngreen_lamp_coil = 5\nred_lamp_coil = 6\n')


def test_a_door_s_lamps_follow_its_panel_and_never_go_on_the_wire_ahead_of_a_grant(tmp_path):
    from bingobox.protocol import modbus as mb

    sim = Sim(tmp_path, LAMP_SIM)
    events = Events()
    cfgs = [c.model_copy(update={"green_lamp_coil": 5, "red_lamp_coil": 6}) if c.name == "entrance" else c
            for c in door_cfgs()]
    buses, doors = build_doors(cfgs, [BusConfig(name="rs485", port=sim.pty("rs485"), baudrate=38400)], events)
    b, entrance = buses["rs485"], doors["entrance"]
    wire: list[tuple[int, int]] = []  # (unit, coil) of every coil write, in the order they went out
    transact = b.transact
    lamp_free, held = threading.Event(), threading.Event()  # lamp_free cleared: a lamp write waits (held: it does)
    lamp_free.set()

    def recording(u, req, timeout=None):
        if isinstance(req, mb.WriteCoil) and req.address in (5, 6) and not lamp_free.is_set():
            held.set()
            lamp_free.wait()
        if isinstance(req, mb.WriteCoil):
            wire.append((req.unit, req.address))
        return transact(u, req, timeout)

    b.transact = recording
    b.start()
    try:
        wait_until(lambda: entrance.state == "locked", 5, "the entrance locked")
        entrance.lamps(False, True)
        wait_until(lambda: sim.device("entrance")["lamps"] == {"green": False, "red": True}, 2, "the red lamp on")
        # the board applies the write before its answer reaches us: our record follows once the answer is read
        wait_until(lambda: entrance.status()["lamps"] == {"green": False, "red": True}, 2, "the red lamp recorded")
        assert b.units[1].stats["lamp_writes"] >= 1
        # a grant asked for while the lamps are being written goes before the next lamp
        lamp_free.clear()
        wire.clear()
        entrance.lamps(True, False)  # two coils to write: green on, red off
        assert held.wait(2)  # the bus thread is in the first lamp's write
        entrance.grant()
        lamp_free.set()
        wait_until(lambda: sim.device("entrance")["lamps"] == {"green": True, "red": False}, 2, "the green lamp on")
        assert not sim.device("entrance")["lock_engaged"]
        assert wire[:3] == [(1, 5), (1, 0), (1, 6)], wire  # green, then the lock (the grant), then red
        assert sim.device("exit")["lamps"] is None and sim.device("exit")["coils"][1] == 0  # its neighbour untouched
        # a board that restarts forgets its coils: the lamps are written again once it answers
        sim.act("fault.silent", device="entrance")
        wait_until(lambda: entrance.state == "fault", 5, "the board not answering")
        sim.act("fault.clear", device="entrance")
        wait_until(lambda: entrance.state != "fault", 5, "the board back")
        wait_until(lambda: sim.device("entrance")["lamps"]["green"], 2, "the green lamp still on")
    finally:
        b.stop()
        sim.stop()
