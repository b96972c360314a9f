"""systemd integration: sd_notify datagrams (READY, STATUS, rate-limited WATCHDOG pings, STOPPING) on a real unix
socket, and the shipped unit files checked by systemd-analyze."""

import shutil
import socket
import subprocess

import pytest

from bingobox.sdnotify import Notifier
from tests.helpers import ROOT


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(1)
    yield path, s
    s.close()


def received(s) -> list[str]:
    out = []
    s.setblocking(False)
    try:
        while True:
            out.append(s.recv(4096).decode())
    except BlockingIOError:
        pass
    s.settimeout(1)
    return out


def test_ready_status_watchdog_and_stopping(notify_socket):
    path, s = notify_socket
    now = [0.0]
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"}, clock=lambda: now[0])
    assert n.enabled and n.watchdog_s == 2.0  # half the period systemd waits
    n.ready("store s1 running")
    n.tick("ready: 0 inside")
    n.tick("ready: 0 inside")  # no ping due, status unchanged: nothing sent
    now[0] = 2.5
    n.tick("ready: 1 inside")
    n.stopping()
    assert received(s) == ["READY=1\nSTATUS=store s1 running", "WATCHDOG=1\nSTATUS=ready: 0 inside",
                           "WATCHDOG=1\nSTATUS=ready: 1 inside", "STOPPING=1"]


def test_outside_systemd_nothing_is_sent_and_a_vanished_socket_is_harmless(notify_socket):
    path, s = notify_socket
    quiet = Notifier({})
    assert not quiet.enabled and quiet.watchdog_s is None
    quiet.ready()
    quiet.tick("x")
    other_pid = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other_pid.watchdog_s is None  # the watchdog is meant for another process
    gone = Notifier({"NOTIFY_SOCKET": path + "-missing"})
    gone.ready()  # logged, not raised
    assert received(s) == []


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("unit", ["bingobox.service", "bingobox-fleet.service", "bingobox-sim.service",
                                  "bingobox-alert@.service"])
def test_unit_files_verify(unit, tmp_path):
    text = (ROOT / "systemd" / unit).read_text()
    local = tmp_path / unit  # the same unit pointed at this checkout's venv instead of the installed one
    local.write_text(text.replace("/opt/bingobox/bin/", f"{ROOT / '.venv/bin'}/")
                     .replace("/opt/bingobox/.venv", str(ROOT / ".venv")).replace("/opt/bingobox", str(ROOT)))
    r = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_controller_unit_stays_sandboxed():
    """systemd's own exposure score (offline): no worse than the 1.9 "OK" the unit had before the fail-safety work
    (now 1.8: ProcSubset, IPAddressDeny, no raw USB device access)."""
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--root=/",
                        str(ROOT / "systemd/bingobox.service")], capture_output=True, text=True, timeout=60)
    score = float(r.stdout.split("Overall exposure level for bingobox.service:")[1].split()[0])
    assert score <= 1.9, r.stdout[-500:]
    text = (ROOT / "systemd/bingobox.service").read_text()
    assert "OnFailure=bingobox-alert@" in text and "char-usb_device" not in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_fleet_unit_is_sandboxed_and_watched():
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--root=/",
                        str(ROOT / "systemd/bingobox-fleet.service")], capture_output=True, text=True, timeout=60)
    score = float(r.stdout.split("Overall exposure level for bingobox-fleet.service:")[1].split()[0])
    assert score <= 1.7, r.stdout[-500:]
    text = (ROOT / "systemd/bingobox-fleet.service").read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text and "/opt/bingobox/bin/bingobox fleet" in text


def test_a_served_app_pings_the_watchdog_only_while_healthy(notify_socket):
    """``serving.serve`` (the fleet service's): READY once it listens, WATCHDOG pings while ``healthy()`` says
    nothing is wrong, none once it reports a stuck part, STOPPING on the way out."""
    import threading
    import time

    import uvicorn

    from bingobox.serving import serve

    path, s = notify_socket

    async def app(scope, receive, send):  # (nothing is asked of it)
        pass

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    wrong: list[str] = []
    n = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})  # a ping every 0.05 s
    t = threading.Thread(target=serve, args=(server, lambda port: f"listening on {port}"),
                         kwargs={"healthy": lambda: wrong[0] if wrong else None, "notifier": n}, daemon=True)
    t.start()
    time.sleep(1.0)
    healthy = received(s)
    wrong.append("the writer has made no progress for 12 s")
    time.sleep(0.3)  # (a ping already on its way may still land)
    received(s)
    time.sleep(1.0)
    stuck = received(s)
    server.should_exit = True
    t.join(timeout=10)
    after = received(s)
    assert healthy[0].startswith("READY=1") and sum(m == "WATCHDOG=1" for m in healthy) >= 5, healthy
    assert "WATCHDOG=1" not in stuck, stuck
    assert "STOPPING=1" in after, after
