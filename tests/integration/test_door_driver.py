"""The door driver against the simulated Modbus board over a real pty: grant, relock, alarms, fire, faults."""

import time

import pytest

from bingobox.config import DoorConfig
from bingobox.devices.door import DoorBoard
from tests.helpers import Events, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def door(fresh_sim):
    events = Events()
    cfg = DoorConfig(name="entrance", port=fresh_sim.pty("entrance"), energize_to_unlock=True, unlock_s=1.0,
                     held_open_s=3.0, poll_hz=25, rex_shunt_s=1.0)
    d = DoorBoard(cfg, events)
    d.start()
    events.wait_for(lambda e: e.kind == "state" and e.data["state"] == "locked", timeout=5)
    yield fresh_sim, d, events
    d.stop()


def locked_in_sim(sim) -> bool:
    return sim.device("entrance")["lock_engaged"]


def test_grant_unlocks_then_relocks_after_the_window(door):
    sim, d, _ev = door
    assert locked_in_sim(sim)
    d.grant()
    wait_until(lambda: not locked_in_sim(sim), 2, "unlock in the simulator")
    assert d.state == "unlocked"
    wait_until(lambda: locked_in_sim(sim), 3, "relock after the 1 s window")
    assert d.state == "locked"


def test_a_grant_says_what_the_board_did(door):
    sim, d, _ev = door
    said = []
    d.grant(2, done=lambda outcome, detail: said.append((outcome, detail)))
    wait_until(lambda: said, 2, "the grant's outcome")
    assert said == [("unlocked", "entrance unlocked")] and not locked_in_sim(sim)
    sim.act("fault.silent", device="entrance", on=True)
    wait_until(lambda: not d.status()["online"], 3, "the board found silent")
    d.grant(2, done=lambda outcome, detail: said.append((outcome, detail)))
    wait_until(lambda: len(said) == 2, 3, "the second grant's outcome")
    assert said[1][0] in ("refused", "unknown") and said[1][0] != "unlocked", said  # never a false success
    sim.act("fault.silent", device="entrance", on=False)


def test_door_cycle_relocks_on_close(door):
    sim, d, ev = door
    d.grant()
    wait_until(lambda: not locked_in_sim(sim), 2)
    sim.act("door.open", door="entrance")
    ev.wait_for(lambda e: e.kind == "door_opened")
    time.sleep(1.5)  # past the grant window: an open door stays unlocked until it closes
    assert not locked_in_sim(sim) and d.state == "open"
    sim.act("door.close", door="entrance")
    ev.wait_for(lambda e: e.kind == "door_closed")
    wait_until(lambda: locked_in_sim(sim), 2, "relock on close")


def test_forced_and_held_open_alarms(door):
    sim, d, ev = door
    sim.act("door.force", door="entrance")
    ev.wait_for(lambda e: e.kind == "alarm" and e.data["alarm"] == "door_forced")
    sim.act("door.close", door="entrance")
    ev.wait_for(lambda e: e.kind == "state" and e.data["state"] == "locked", after=ev.mark() - 1)
    d.grant()
    wait_until(lambda: not locked_in_sim(sim), 2)
    sim.act("door.open", door="entrance")
    ev.wait_for(lambda e: e.kind == "alarm" and e.data["alarm"] == "door_held_open", timeout=6)
    sim.act("door.close", door="entrance")
    wait_until(lambda: d.state == "locked", 2)


def test_rex_unlocks_and_fire_opens_everything(door):
    sim, d, ev = door
    sim.act("door.rex", door="entrance")
    ev.wait_for(lambda e: e.kind == "rex_pressed")
    wait_until(lambda: not locked_in_sim(sim), 2, "REX unlock")
    sim.act("door.open", door="entrance")
    sim.act("door.close", door="entrance")
    wait_until(lambda: locked_in_sim(sim), 3)
    assert "alarm" not in ev.kinds()
    sim.act("fire", active=True)
    ev.wait_for(lambda e: e.kind == "fire_alarm")
    wait_until(lambda: not locked_in_sim(sim), 2, "fire unlock")
    time.sleep(1.5)
    assert not locked_in_sim(sim) and d.state == "emergency"
    sim.act("fire", active=False)
    wait_until(lambda: locked_in_sim(sim), 2, "relock after the fire alarm")


def test_unplug_is_a_fault_and_replug_recovers(door):
    sim, d, ev = door
    sim.act("fault.unplug", device="entrance")
    ev.wait_for(lambda e: e.kind == "fault" or e.kind == "disconnected", timeout=3)
    wait_until(lambda: d.state == "fault", 3, "fault state")
    assert d.status()["online"] is False
    sim.act("fault.replug", device="entrance")
    ev.wait_for(lambda e: e.kind == "connected", after=2, timeout=10)
    wait_until(lambda: d.state == "locked" and d.status()["online"], 10, "recovery after replug")
    d.grant()
    wait_until(lambda: not locked_in_sim(sim), 2, "works again")


def test_silent_board_and_junk_on_the_line(door):
    sim, d, ev = door
    sim.act("fault.silent", device="entrance", on=True)
    ev.wait_for(lambda e: e.kind == "fault" and e.data["fault"] == "board_unreachable", timeout=3)
    sim.act("fault.silent", device="entrance", on=False)
    wait_until(lambda: d.state == "locked", 3, "back online")
    sim.act("fault.garbage", device="entrance", bytes=40)
    sim.act("fault.corrupt", device="entrance", count=2)
    time.sleep(0.5)
    assert d.state == "locked" and d.status()["online"]  # two bad replies are below failures_before_fault
    d.grant()
    wait_until(lambda: not locked_in_sim(sim), 2, "commands still work after junk")
    st = d.status()
    assert st["decoder"]["junk_bytes"] > 0 or st["decoder"]["bad_crc"] > 0


def test_stuck_relay_is_detected_by_read_back(door):
    sim, d, ev = door
    sim.act("fault.stuck_relay", door="entrance", stuck=True)
    d.grant()
    ev.wait_for(lambda e: e.kind == "fault" and e.data["fault"] == "relay_mismatch", timeout=3)
    sim.act("fault.stuck_relay", door="entrance", stuck=False)


def test_maglock_polarity(fresh_sim):
    """exit is wired as a maglock (energize_to_unlock=false): relay on = locked."""
    ev = Events()
    d = DoorBoard(DoorConfig(name="exit", port=fresh_sim.pty("exit"), energize_to_unlock=False, unlock_s=1,
                             rex_cuts_power=True, fire_cuts_power=True), ev)
    d.start()
    try:
        wait_until(lambda: fresh_sim.device("exit")["relay"][0] == 1, 3, "maglock energised = locked")
        assert fresh_sim.device("exit")["lock_engaged"]
        d.grant()
        wait_until(lambda: fresh_sim.device("exit")["relay"][0] == 0, 2, "maglock released")
    finally:
        d.stop()


def test_socket_url_reaches_the_same_board(fresh_sim):
    ev = Events()
    d = DoorBoard(DoorConfig(name="entrance", port=fresh_sim.tcp("entrance"), energize_to_unlock=True), ev)
    d.start()
    try:
        ev.wait_for(lambda e: e.kind == "state" and e.data["state"] == "locked")
        d.grant()
        wait_until(lambda: not fresh_sim.device("entrance")["lock_engaged"], 2)
    finally:
        d.stop()


def test_replies_later_than_the_timeout_count_as_missing(door):
    sim, d, ev = door
    sim.act("fault.delay", device="entrance", ms=300)  # the driver waits 200 ms for a reply
    ev.wait_for(lambda e: e.kind == "fault" and e.data["fault"] == "board_unreachable", timeout=5)
    sim.act("fault.clear", device="entrance")
    wait_until(lambda: d.state == "locked" and d.status()["online"], 5, "recovered once replies are prompt")
    assert d.status()["no_reply"] >= 3


def test_the_board_watchdog_is_armed_and_frees_the_relay_when_the_controller_dies(tmp_path):
    """A board with a communication watchdog is told (FC06, at every connection) how long to wait for the
    controller; when it stops talking the board drops its relays by itself (a strike locks)."""
    from tests.helpers import Sim

    sim = Sim(tmp_path, '[sim]\ncontrol_port = 0\n[[doors]]\nname = "exit"\nenergize_to_unlock = true\n'
                        'baudrate = 0\ncomm_watchdog_register = 250\n')
    events = Events()
    d = DoorBoard(DoorConfig(name="exit", port=sim.pty("exit"), energize_to_unlock=True, unlock_s=30,
                             comm_watchdog_register=250, comm_watchdog_s=0.8), events)
    try:
        d.start()
        wait_until(lambda: d.status()["board_watchdog"] is True, 5, "watchdog armed")
        assert sim.device("exit")["comm_watchdog_s"] == pytest.approx(0.8)
        d.grant()
        wait_until(lambda: not sim.device("exit")["lock_engaged"], 2, "unlocked")
        time.sleep(1.2)
        assert not sim.device("exit")["lock_engaged"]  # the controller polls: the grant holds
        d.bus._worker.stop()  # the controller dies: nobody polls (the relay is not touched on the way out)
        wait_until(lambda: sim.device("exit")["lock_engaged"], 3, "the board's own watchdog relocks")
    finally:
        d.link.stop()
        sim.stop()


def test_a_board_without_that_register_is_an_alarm_not_a_crash(door):
    sim, _d, ev = door  # the fresh simulator's boards have no watchdog register
    d2 = DoorBoard(DoorConfig(name="exit", port=sim.pty("exit"), energize_to_unlock=True,
                              comm_watchdog_register=250, comm_watchdog_s=1.0), ev)
    d2.start()
    try:
        e = ev.wait_for(lambda e: e.kind == "fault" and e.device == "exit", timeout=5)
        assert e.data["fault"] == "comm_watchdog_not_set" and d2.status()["board_watchdog"] is False
        assert d2.healthy()
    finally:
        d2.stop()


def test_a_driver_that_dies_says_so_and_ends_the_process(door):
    _sim, d, ev = door
    failures = []
    d.on_failure = failures.append

    def boom(now):
        raise RuntimeError("a bug in the door machine")
    d.machine.on_tick = boom
    e = ev.wait_for(lambda e: e.kind == "fault" and e.data.get("fault") == "driver_failed", timeout=3)
    assert "a bug in the door machine" in e.data["error"] and failures and "door entrance" in failures[0]
    wait_until(lambda: not d.healthy(), 2, "no longer healthy (the watchdog ping stops)")
    assert d.state == "fault"


def test_a_people_counter_s_pulses_are_one_passage_each(tmp_path):
    from tests.helpers import SIM_TOML, Sim

    sim = Sim(tmp_path, SIM_TOML.replace('name = "entrance"\n', 'name = "entrance"\npassage_input = 3\n', 1))
    events = Events()
    d = DoorBoard(DoorConfig(name="entrance", port=sim.pty("entrance"), energize_to_unlock=True, poll_hz=25,
                             passage_input=3), events)
    d.start()
    try:
        events.wait_for(lambda e: e.kind == "state" and e.data["state"] == "locked", timeout=5)
        sim.act("door.pass", door="entrance", people=3, gap_s=0.4)
        wait_until(lambda: d.status()["passages"] == 3, 5, "three people counted")
        assert [e.data["count"] for e in events.items if e.kind == "passage"] == [1, 2, 3]
        time.sleep(0.5)
        assert d.status()["passages"] == 3  # each pulse once, however many polls it spans
    finally:
        d.stop()
        sim.stop()
