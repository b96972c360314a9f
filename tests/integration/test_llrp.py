"""The LLRP side: the simulated multi-antenna reader (a real process, LLRP over TCP) inventoried by sllurp's own
client, and the store's LLRP driver against it: zones per antenna, placement by the strongest antenna, tags
going and moving, the exit window, and a reader that falls silent, garbles its stream or leaves the network."""

from __future__ import annotations

import time

import pytest

from bingobox.config import LlrpReaderConfig
from bingobox.devices.llrp import LlrpReader
from tests.helpers import Events, Sim, wait_until

pytestmark = pytest.mark.integration

A, B, C = "E28068940000502400010001", "E28068940000502400010002", "E28068940000502400020001"
SIM = f"""
[sim]
control_port = 0
[[llrp_readers]]
name = "fx"
antennas = 4
round_s = 0.05
bleed = 0.5
bleed_db = 15
[llrp_readers.tags]
1 = ["{A}", "{B}"]
3 = ["{C}"]
"""


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path, SIM)
    yield s
    s.stop()


def reader_cfg(sim, **kw) -> LlrpReaderConfig:
    zones = [{"antenna": 1, "name": "shelf-a"}, {"antenna": 2, "name": "shelf-b"}, {"antenna": 3, "name": "shelf-c"},
             {"antenna": 4, "name": "exit-area", "role": "exit"}]
    return LlrpReaderConfig(name="fx", host="127.0.0.1", port=sim.manifest["devices"]["fx"]["tcp"], zones=zones,
                            round_s=0.05, gone_after_s=0.6, keepalive_s=0.3, silence_timeout_s=1.0,
                            reconnect_max_s=1.0, **kw)


@pytest.fixture
def driver(sim):
    ev = Events()
    r = LlrpReader(reader_cfg(sim), ev)
    r.start()
    try:
        wait_until(lambda: {"shelf-a", "shelf-c"} <= {e.device for e in ev.items if e.kind == "tag_seen"}, 5,
                   "tags seen at their zones")
        yield sim, r, ev
    finally:
        r.stop()


def seen(ev, zone: str) -> set[str]:
    return {e.data["epc"] for e in ev.items if e.device == zone and e.kind == "tag_seen"}


def test_sllurps_client_inventories_the_simulated_reader(sim):
    from sllurp.llrp import LLRPReaderClient, LLRPReaderConfig

    reports: list[dict] = []
    conf = LLRPReaderConfig({"antennas": [1, 2, 3, 4], "report_every_n_tags": 1, "keepalive_interval": 200,
                             "tag_content_selector": {"EnableAntennaID": True, "EnablePeakRSSI": True,
                                                      "EnableTagSeenCount": True}})
    client = LLRPReaderClient("127.0.0.1", sim.manifest["devices"]["fx"]["tcp"], conf)
    client.add_tag_report_callback(lambda _r, tags: reports.extend(tags))
    client.connect()
    try:
        wait_until(lambda: len(reports) >= 30, 5, "tag reports")
        by_antenna = {(t["EPC"].decode().upper(), t["AntennaID"]) for t in reports}
        assert {(A, 1), (B, 1), (C, 3)} <= by_antenna
        assert all(-100 <= t["PeakRSSI"] <= 0 for t in reports)
        wait_until(lambda: sim.device("fx")["keepalive_acks"] >= 1, 3, "keepalives acknowledged")
    finally:
        client.disconnect(timeout=3)  # sllurp's polite stop: its ROSpec commands, then CLOSE_CONNECTION …
        if client._socket_thread is not None and client._socket_thread.is_alive():
            # … which in a loaded full suite sometimes never completes on sllurp's side (its reactor still waiting
            # for a state it wants): then it drops the socket, as a client that gives up would
            client.hard_disconnect()
    wait_until(lambda: not sim.device("fx")["connected"], 10, "the client gone, and the reader knowing it")


def test_zones_get_their_tags_never_a_neighbours_bleed(driver):
    _sim, r, ev = driver
    time.sleep(1.0)  # antenna 2 reads A and B (and C) now and then, 15 dB weaker: never placed there
    assert seen(ev, "shelf-a") == {A, B} and seen(ev, "shelf-c") == {C}
    assert seen(ev, "shelf-b") == set() and r.stats["reads_elsewhere"] > 0
    assert set(r.zones[1].present()) == {A, B} and r.zones[1].online()
    st = r.zones[1].status()
    assert st["kind"] == "rfid" and st["antenna"] == 1 and st["link"]["inventorying"]


def test_a_tag_taken_is_gone_and_one_carried_to_another_antenna_moves_there(driver):
    sim, r, ev = driver
    sim.act("tags.remove", reader="fx", antenna=1, epcs=[B])
    e = ev.wait_for(lambda e: e.kind == "tag_gone" and e.data["epc"] == B, timeout=3)
    assert e.device == "shelf-a"
    mark = ev.mark()
    sim.act("tags.remove", reader="fx", antenna=1, epcs=[A])
    sim.act("tags.add", reader="fx", antenna=4, epcs=[A])  # carried into the exit area
    ev.wait_for(lambda e: e.device == "exit-area" and e.kind == "tag_seen" and e.data["epc"] == A, 3, mark)
    ev.wait_for(lambda e: e.device == "shelf-a" and e.kind == "tag_gone" and e.data["epc"] == A, 3, mark)
    t = time.time()
    exit_zone = r.zones[4]
    assert exit_zone.wait_rounds_since(t, 3, 3)
    assert A in exit_zone.window(t - 1.0, t, 3)


def test_a_silent_garbled_or_unplugged_reader_is_reconnected_and_nothing_goes_meanwhile(driver):
    sim, r, ev = driver
    sim.act("fault.silent", device="fx")  # connected, says nothing: no keepalive either
    ev.wait_for(lambda e: e.device == "shelf-a" and e.kind == "disconnected", timeout=8)
    assert not r.zones[1].online()
    time.sleep(1.0)
    assert not [e for e in ev.items if e.kind == "tag_gone"]  # an absent reader empties no shelf
    sim.act("fault.clear", device="fx")
    ev.wait_for(lambda e: e.device == "shelf-a" and e.kind == "connected", timeout=12)
    assert r.stats["silences"] >= 1
    mark = ev.mark()
    sim.act("fault.corrupt", device="fx", count=1)  # a header that is not LLRP: the stream is given up
    ev.wait_for(lambda e: e.device == "shelf-a" and e.kind == "connected", timeout=12, after=mark)
    mark = ev.mark()
    sim.act("fault.unplug", device="fx")
    ev.wait_for(lambda e: e.device == "shelf-c" and e.kind == "disconnected", timeout=8, after=mark)
    time.sleep(0.5)
    sim.act("fault.replug", device="fx")
    ev.wait_for(lambda e: e.device == "shelf-c" and e.kind == "connected", timeout=12, after=mark)
    assert r.stats["connects"] >= 3 and set(r.zones[1].present()) == {A, B}
    assert not [e for e in ev.items if e.kind == "tag_gone"]


def test_the_sim_refuses_a_second_client_and_unknown_antennas(sim):
    """One client at a time, as real readers do; the tags action wants an antenna for an LLRP reader."""
    from bingobox_devkit.sim.control import SimError

    ev = Events()
    first = LlrpReader(reader_cfg(sim), ev)
    second = LlrpReader(reader_cfg(sim), Events())
    first.start()
    try:
        ev.wait_for(lambda e: e.kind == "connected", timeout=5)
        second.start()
        wait_until(lambda: sim.device("fx")["refused"] >= 1, 5, "second client refused")
        assert first.inventorying() and not second.inventorying()
    finally:
        second.stop()
        first.stop()
    with pytest.raises(SimError, match="antenna"):
        sim.act("tags.add", reader="fx", epcs=[A])
    with pytest.raises(SimError, match=r"antennas 1\.\.4"):
        sim.act("tags.add", reader="fx", antenna=7, epcs=[A])
