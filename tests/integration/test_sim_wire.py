"""The simulator speaks the real wire protocols on real ptys and TCP: any serial tool can talk to it."""

import json
import time
from pathlib import Path

import pytest
import serial

from bingobox.protocol import m100
from bingobox.protocol import modbus as mb
from bingobox_devkit.sim.control import SimError

pytestmark = pytest.mark.integration
H = bytes.fromhex


def read_for(port, seconds: float) -> bytes:
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out += port.read(4096)
    return out


def test_banner_names_every_endpoint(sim):
    for name in ("entrance", "exit", "shelf-1", "exit-area", "r200"):
        assert str(sim.run_dir / name) in sim.banner
    assert "/stream.mjpg" in sim.banner


@pytest.mark.parametrize("via", ["pty", "tcp"])
def test_single_inventory_returns_the_shelf_tags(sim, via):
    url = sim.pty("shelf-1") if via == "pty" else sim.tcp("shelf-1")
    with serial.serial_for_url(url, 115200, timeout=0.1) as port:
        port.write(H("BB 00 22 00 00 22 7E"))
        frames = m100.Decoder().feed(read_for(port, 0.5))
    assert sorted(f.epc_hex for f in frames) == [
        "E28068940000502458950001", "E28068940000502458950002", "E28068940000502458950003"]
    assert all(f.crc_ok and -70 < f.rssi < -40 for f in frames)


def test_empty_field_answers_no_tag(sim):
    with serial.serial_for_url(sim.pty("exit-area"), 115200, timeout=0.2) as port:
        port.write(H("BB 00 22 00 00 22 7E"))
        assert read_for(port, 0.3) == H("BB 01 FF 00 01 15 16 7E")


def test_multi_poll_streams_until_stop_ack(sim):
    sim.act("tags.set", reader="exit-area", epcs=["300833B2DDD9014000000001"])
    try:
        with serial.serial_for_url(sim.pty("exit-area"), 115200, timeout=0.05) as port:
            port.write(m100.multi_poll(65535))
            first = m100.Decoder().feed(read_for(port, 0.5))
            assert len(first) >= 5 and all(isinstance(f, m100.TagNotice) and f.cmd == 0x27 for f in first)
            port.write(H("BB 00 28 00 00 28 7E"))
            tail = read_for(port, 0.4)
            assert tail.endswith(H("BB 01 28 00 01 00 2A 7E"))
            assert read_for(port, 0.3) == b""  # the stream really stopped
    finally:
        sim.act("tags.set", reader="exit-area", epcs=[])


def test_reader_rejects_bad_checksum_and_speaks_aa_framing(sim):
    with serial.serial_for_url(sim.pty("shelf-1"), 115200, timeout=0.1) as port:
        port.write(H("BB 00 22 00 00 23 7E"))
        assert m100.Decoder().feed(read_for(port, 0.3)) == [m100.ErrorFrame(0x17)]
        port.write(m100.hw_version())
        (resp,) = m100.Decoder().feed(read_for(port, 0.3))
        assert resp.params[1:].startswith(b"M100")
    with serial.serial_for_url(sim.pty("r200"), 115200, timeout=0.1) as port:
        port.write(H("BB 00 22 00 00 22 7E"))  # the other dialect is not understood: no answer
        assert read_for(port, 0.3) == b""
        port.write(H("AA 00 22 00 00 22 DD"))
        (n,) = m100.Decoder(m100.AA).feed(read_for(port, 0.3))
        assert n.epc_hex == "E280689000005 00E88C6A4A7".replace(" ", "") and n.crc_ok


def test_modbus_board_answers_reads_and_writes(sim):
    with serial.serial_for_url(sim.pty("entrance"), 9600, timeout=0.1) as port:
        port.write(H("01 02 00 00 00 08 79 CC"))
        (r,) = mb.ResponseDecoder().feed(read_for(port, 0.3))
        assert r.bits[0] is True  # door contact: closed
        port.write(H("01 05 00 00 FF 00 8C 3A"))
        assert read_for(port, 0.3) == H("01 05 00 00 FF 00 8C 3A")
        assert sim.device("entrance")["lock_engaged"] is False
        port.write(H("01 05 00 00 00 00 CD CA"))
        assert read_for(port, 0.3) == H("01 05 00 00 00 00 CD CA")
        assert sim.device("entrance")["lock_engaged"] is True


def test_modbus_board_drops_bad_crc_and_other_units_and_answers_exceptions(sim):
    with serial.serial_for_url(sim.pty("entrance"), 9600, timeout=0.1) as port:
        port.write(H("01 02 00 00 00 08 79 CD"))  # bad CRC: real slaves stay silent
        assert read_for(port, 0.3) == b""
        port.write(mb.encode_request(mb.ReadBits(9, 2, 0, 8)))  # another unit on the bus
        assert read_for(port, 0.3) == b""
        port.write(mb.encode_request(mb.WriteCoil(1, 40, 0xFF00)))
        assert read_for(port, 0.3) == mb.encode_response(mb.ExceptionResponse(1, 5, mb.ILLEGAL_DATA_ADDRESS))
        port.write(mb.encode_request(mb.WriteCoil(1, 0, 0x1234)))
        assert read_for(port, 0.3) == mb.encode_response(mb.ExceptionResponse(1, 5, mb.ILLEGAL_DATA_VALUE))
        port.write(mb.with_crc(H("01 03 00 00 00 01")))
        assert read_for(port, 0.3) == mb.encode_response(mb.ExceptionResponse(1, 3, mb.ILLEGAL_FUNCTION))


def test_door_opens_only_when_unlocked_unless_forced(sim):
    from bingobox_devkit.sim.control import SimError

    with pytest.raises(SimError, match="locked"):
        sim.act("door.open", door="entrance")
    sim.act("door.force", door="entrance")
    assert sim.device("entrance")["door_open"] is True
    sim.act("door.close", door="entrance")
    assert sim.device("entrance")["door_open"] is False


def test_control_api_rejects_bad_requests(sim):
    import requests

    url = sim.manifest["control"]
    http = sim.client.session  # (it carries the token)
    r = http.post(f"{url}/action", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
    r = http.post(f"{url}/action", json={"action": "door.open", "door": "nope"}, timeout=5)
    assert r.status_code == 404 and "entrance" in r.json()["error"]["message"]
    r = http.post(f"{url}/action", json={"action": "door.open", "wrong": 1}, timeout=5)
    assert r.status_code == 400
    r = http.post(f"{url}/action", json={"action": "tags.add", "reader": "shelf-1", "epcs": ["xyz"]}, timeout=5)
    assert r.status_code == 400 and "hex" in r.json()["error"]["message"]
    r = http.post(f"{url}/action", json={"action": "camera.show", "camera": "door-cam", "image": "/etc/passwd"},
                  timeout=5)
    assert r.status_code == 403 and "image folder" in r.json()["error"]["message"]  # no file outside image_dirs
    r = http.post(f"{url}/action", json={"action": "camera.show", "camera": "door-cam",
                                         "image": str(sim.dir / "nope.jpg")}, timeout=5)
    assert r.status_code == 400 and "no such image" in r.json()["error"]["message"]
    from bingobox_devkit.paths import testdata

    photo = str(Path(testdata()) / "faces/obama/1.jpg")
    for walk, what in (({"walk_from": 0.0, "walk_s": 0.4}, "scale"), ({"walk_from": 0.5, "walk_s": -1}, "walk_s")):
        r = http.post(f"{url}/action", json={"action": "camera.show", "camera": "door-cam", "image": photo, **walk},
                      timeout=5)
        assert r.status_code == 400 and what in r.json()["error"]["message"]  # a walk out of range: refused
    # what a page in a browser on the box could send: no token, a rebound Host, a form's content type
    door = {"action": "door.open", "door": "entrance"}
    assert requests.post(f"{url}/action", json=door, timeout=5).status_code == 401
    assert requests.get(f"{url}/status", timeout=5).status_code == 401
    assert http.post(f"{url}/action", json=door, headers={"Host": "evil.example:80"}, timeout=5).status_code == 403
    form = http.post(f"{url}/action", data=json.dumps(door), headers={"Content-Type": "text/plain"}, timeout=5)
    assert form.status_code == 415
    assert sim.device("entrance")["door_open"] is False  # none of them opened it
    assert (sim.run_dir / "sim.json").stat().st_mode & 0o077 == 0  # the token's file is the owner's
    assert sim.proc.returncode is None


def test_a_board_with_a_communication_watchdog_drops_its_coils_when_the_controller_goes_quiet(tmp_path):
    from tests.helpers import Sim

    s = Sim(tmp_path, '[sim]\ncontrol_port = 0\n[[doors]]\nname = "exit"\nenergize_to_unlock = true\n'
                      'baudrate = 0\ncomm_watchdog_s = 0.5\n')
    try:
        with serial.serial_for_url(s.pty("exit"), 9600, timeout=0.3) as port:
            port.write(mb.encode_request(mb.WriteCoil(1, 0, mb.COIL_ON)))  # unlock the strike
            assert port.read(8) == mb.encode_request(mb.WriteCoil(1, 0, mb.COIL_ON))
            assert not s.device("exit")["lock_engaged"]
            for _ in range(5):  # a controller polling keeps it where it is
                time.sleep(0.2)
                port.write(mb.encode_request(mb.ReadBits(1, mb.READ_DISCRETE_INPUTS, 0, 8)))
                port.read(6)
            assert not s.device("exit")["lock_engaged"]
            time.sleep(0.8)  # the controller died: the board falls back to its safe state (a strike locks)
            assert s.device("exit")["lock_engaged"]
            port.write(mb.encode_request(mb.ReadBits(1, mb.READ_COILS, 0, 1)))
            assert mb.ResponseDecoder().feed(port.read(6))[0].bits[0] is False
            # unlocked again, the controller dies, and the first thing that happens is a shopper pushing the door:
            # the watchdog drops the coil inside open_door (it held a plain Lock and hung the simulator for good)
            port.write(mb.encode_request(mb.WriteCoil(1, 0, mb.COIL_ON)))
            port.read(8)
            time.sleep(0.8)
            with pytest.raises(SimError, match="locked"):
                s.client.act("door.open", door="exit")
            assert s.device("exit")["lock_engaged"] and s.device("exit")["door_open"] is False
    finally:
        s.stop()
