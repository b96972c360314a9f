"""Running under systemd: sd_notify(3) without libsystemd (a datagram to $NOTIFY_SOCKET).

READY=1 once the store runs, STATUS= with the store's state, WATCHDOG=1 from the control loop's own tick (so a
loop that hangs stops the pings and systemd restarts the process), STOPPING=1 on the way out. Outside systemd
(no NOTIFY_SOCKET) every call does nothing. ``wait_for_signal`` is how the foreground commands wait for
SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None, clock=time.monotonic) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self._addr = "\0" + addr[1:] if addr.startswith("@") else addr  # "@…": the abstract namespace
        self._sock: socket.socket | None = None
        if self._addr:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        # ping at half the period systemd waits, as sd_watchdog_enabled(3) advises
        self.watchdog_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else None
        self._clock = clock
        self._last_ping = float("-inf")
        self._last_status = ""

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *fields: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self._addr)
        except OSError as e:  # systemd gone (or a test socket closed): nothing else to do about it
            log.debug("sd_notify %s failed: %s", fields, e)

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def tick(self, status: str) -> None:
        """From the control loop: a watchdog ping when one is due, and the status line when it changed."""
        fields = []
        now = self._clock()
        if self.watchdog_s is not None and now - self._last_ping >= self.watchdog_s:
            self._last_ping = now
            fields.append("WATCHDOG=1")
        if status != self._last_status:
            self._last_status = status
            fields.append(f"STATUS={status}")
        if fields:
            self.notify(*fields)

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def catch_stop_signals() -> threading.Event:
    """From now on SIGINT and SIGTERM set the returned event instead of killing the process. Call it before saying
    "ready": a supervisor that stops us right after must find the handlers in place."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def wait_for_signal(stop: threading.Event | None = None) -> None:
    """Block until SIGINT or SIGTERM (the foreground commands: run, sim, devices, demo --keep); ``stop`` from an
    earlier ``catch_stop_signals()``."""
    stop = stop or catch_stop_signals()
    while not stop.is_set():
        stop.wait(0.5)
