"""RFC 2217 (telnet COM-port control, as ser2net and terminal servers speak it): the simulator serves a board and a
reader that way, and the unchanged drivers reach them through `rfc2217://` URLs — the transport seam chosen by URL.
The tags carry 0xFF bytes, which telnet must escape (IAC) on the way."""

import pytest

from bingobox.config import DoorConfig, ReaderConfig
from bingobox.devices.door import DoorBoard
from bingobox.devices.rfid import RfidReader
from tests.helpers import Events, Sim, wait_until

pytestmark = pytest.mark.integration
TAGS = ["E280689400005024FFFF0001", "E2806894000050FF24FF0002"]

CONFIG = f"""
[sim]
control_port = 0

[[doors]]
name = "entrance"
energize_to_unlock = true
tcp_protocol = "rfc2217"

[[readers]]
name = "shelf-1"
tcp_protocol = "rfc2217"
tags = {TAGS!r}
"""


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path, CONFIG.replace("'", '"'))
    yield s
    s.stop()


def test_drivers_work_through_rfc2217(sim):
    door_url, reader_url = sim.tcp("entrance"), sim.tcp("shelf-1")
    assert door_url.startswith("rfc2217://") and reader_url.startswith("rfc2217://")
    ev = Events()
    door = DoorBoard(DoorConfig(name="entrance", port=door_url, energize_to_unlock=True, unlock_s=2), ev)
    shelf = RfidReader(ReaderConfig(name="shelf-1", port=reader_url, baudrate=115200, gone_after_s=0.8), ev)
    door.start()
    shelf.start()
    try:
        ev.wait_for(lambda e: e.device == "entrance" and e.kind == "state" and e.data["state"] == "locked", timeout=10)
        door.grant()
        wait_until(lambda: not sim.device("entrance")["lock_engaged"], 3, "unlocked over RFC 2217")
        wait_until(lambda: set(shelf.present()) == set(TAGS), 5, "tags with 0xFF bytes read intact")
        sim.act("tags.remove", reader="shelf-1", epcs=[TAGS[1]])
        gone = ev.wait_for(lambda e: e.kind == "tag_gone", timeout=5)
        assert gone.data["epc"] == TAGS[1]
        assert shelf.status()["decoder"].get("bad_checksum", 0) == 0
        assert door.status()["online"] and shelf.status()["online"]
    finally:
        shelf.stop()
        door.stop()
