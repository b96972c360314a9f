"""`bingobox run` as systemd runs it (Type=notify, WatchdogSec): READY once the store runs, watchdog pings from the
control loop while it runs, STOPPING on SIGTERM — read from a real notify socket."""

import socket
import time

import pytest

from bingobox_devkit.harness.demo import Demo
from bingobox_devkit.harness.process import Proc
from tests.helpers import ROOT

pytestmark = pytest.mark.integration


def test_controller_reports_to_systemd(tmp_path):
    d = Demo(0, seed=3, faults=set(), run_dir=tmp_path / "store", testdata=ROOT / "tests/data", verbose=False)
    d.setup()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.5)
    try:
        d.procs["controller"].stop()
        d.procs["controller"] = Proc("controller", ["run", "--config", str(d.dir / "store.toml")],
                                     d.dir / "controller-notify.log",
                                     env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"})
        got: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum("WATCHDOG=1" in m for m in got) < 6:
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                pass
        ready = [i for i, m in enumerate(got) if m.startswith("READY=1")]
        pings = [i for i, m in enumerate(got) if "WATCHDOG=1" in m]
        assert ready and len(pings) >= 6, got
        assert any("STATUS=ready: 0 inside" in m for m in got), got
        d.procs["controller"].stop()
        tail = []
        try:
            while True:
                tail.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
        assert "STOPPING=1" in tail, tail
    finally:
        sock.close()
        d.close()
