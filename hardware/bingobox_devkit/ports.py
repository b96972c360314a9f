"""Loopback ports for the devkit's servers, chosen outside the kernel's ephemeral range."""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path

_GIVEN: set[int] = set()
_LOW, _HIGH = 20000, 32767  # below Linux's default ephemeral range


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nobody listens on, chosen **outside** the kernel's ephemeral range, for a server that another
    process will start (the gateway, a store's status screen, a broker).

    A port the kernel picked for ``bind(0)`` lies in the range it also gives to outgoing connections, so between
    this call and the server's ``listen`` a client socket (a request to the gateway, a broker connection) could take
    it: a CI run failed on exactly that (``address already in use`` on the status screen's port). Ports below the
    range are never handed to clients; each is checked bindable and never given twice by this process. They come
    from the upper half of what lies below the range; the simulator's own listeners (``bind_listener``) from the
    lower: a simulator starting in that window once took the port a store's screen had been promised."""
    return _pick(*_below_range(promised=True))


def _below_range(promised: bool) -> tuple[int, int]:
    """Ports below the ephemeral range (above it when there is no room below): the upper half for ports promised to
    a server another process will start, the lower for listeners bound at once (all of it when too few to split)."""
    lo, hi = _ephemeral_range()
    low, high = (_LOW, min(_HIGH, lo - 1)) if lo - 1 - _LOW >= 1000 else (max(hi + 1, 1024), 65535)
    if high - low < 200:
        return low, high
    mid = (low + high) // 2
    return (mid + 1, high) if promised else (low, mid)


def _pick(low: int, high: int) -> int:
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200 if high - low >= 100 else 0):  # (no room outside the range: the kernel chooses)
        port = rng.randint(low, high)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket() as s:  # (a crowded range: let the kernel choose)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bind_listener(port: int) -> socket.socket:
    """A listening loopback socket on ``port`` (0: one outside the ephemeral range, from the lower half of what lies
    below it, bound at once), SO_REUSEADDR set.

    A simulated device keeps its port across unplug/replug; one in the ephemeral range could meanwhile be taken by a
    client's own reconnect attempts (a loopback connect to a closed ephemeral port can even connect to itself)."""
    for attempt in range(20):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind(("127.0.0.1", port or _pick(*_below_range(promised=False))))
        except OSError:
            srv.close()
            if port or attempt == 19:
                raise
            continue
        return srv
    raise OSError("no free port")
