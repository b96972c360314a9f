"""Base of the virtual serial devices: endpoints (pty + TCP), faults, and paced output.

Faults (all switchable at run time): unplug/replug, garbage bytes before the next reply, corrupted
checksums on the next N frames, added reply delay, and a silent (hung) device.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .serial_endpoints import Endpoint, PtyEndpoint, TcpEndpoint, VirtualLine

log = logging.getLogger(__name__)


@dataclass
class SerialFaults:
    garbage_bytes: int = 0  # sent before the next frame, then reset
    corrupt_frames: int = 0  # the next N frames get a flipped checksum byte
    delay_s: float = 0.0  # before every reply
    silent: bool = False  # ignore all requests
    drop_reads: float = 0.0  # RFID: probability that a tag is missed in a round


class SerialDevice:
    """A device reachable over a pty symlink ``run_dir/name`` and a TCP port."""

    kind = "serial"

    def __init__(self, name: str, run_dir: Path, tcp_port: int, baudrate: int, seed: int = 0,
                 tcp_protocol: str = "raw") -> None:
        self.name = name
        self.baudrate = baudrate
        self.faults = SerialFaults()
        self.rng = random.Random(seed)
        self.plugged = False
        self._out_lock = threading.Lock()
        self.pty = PtyEndpoint(run_dir / name, self._receive)
        self.tcp = TcpEndpoint("127.0.0.1", tcp_port, self._receive, rfc2217=tcp_protocol == "rfc2217",
                               line=VirtualLine(name, baudrate))
        self.stats = {"rx_bytes": 0, "tx_frames": 0, "requests": 0, "dropped_requests": 0}

    # lifecycle / faults ----------------------------------------------------------------------------
    def plug(self) -> None:
        if not self.plugged:
            self.pty.start()
            self.tcp.start()
            self.plugged = True

    def unplug(self) -> None:
        if self.plugged:
            self.plugged = False
            self.on_unplug()
            self.pty.stop()
            self.tcp.stop()

    def on_unplug(self) -> None:
        """Subclass hook: stop streaming etc."""

    def endpoints(self) -> dict:
        scheme = "rfc2217" if self.tcp.rfc2217 else "socket"
        return {"pty": str(self.pty.link), "tty": self.pty.tty_path, "tcp": self.tcp.port,
                "url_tcp": f"{scheme}://127.0.0.1:{self.tcp.port}"}

    def status(self) -> dict:
        return {"kind": self.kind, "name": self.name, "plugged": self.plugged, "faults": vars(self.faults).copy(),
                **self.endpoints(), **self.stats}

    # I/O -------------------------------------------------------------------------------------------
    def _receive(self, data: bytes, endpoint: Endpoint) -> None:
        self.stats["rx_bytes"] += len(data)
        if self.faults.silent:
            return
        self.on_bytes(data, endpoint)

    def on_bytes(self, data: bytes, endpoint: Endpoint) -> None:
        raise NotImplementedError

    def send(self, frame: bytes, endpoint: Endpoint, board: SerialFaults | None = None,
             checksum_index: int = -2) -> None:
        """Send one frame with faults applied (the line's, and those of the ``board`` that answers on a shared
        line) and paced at the configured line speed."""
        with self._out_lock:
            out = frame
            for f in (self.faults, board) if board is not None else (self.faults,):
                if f.delay_s:
                    time.sleep(f.delay_s)
                if f.corrupt_frames > 0:
                    f.corrupt_frames -= 1
                    b = bytearray(out)
                    b[checksum_index] ^= 0x5A
                    out = bytes(b)
                if f.garbage_bytes > 0:
                    out = self.rng.randbytes(f.garbage_bytes) + out
                    f.garbage_bytes = 0
            if self.baudrate:  # the frame is on the wire this long before its last byte arrives
                time.sleep(len(out) * 10 / self.baudrate)
            endpoint.write(out)
            self.stats["tx_frames"] += 1
