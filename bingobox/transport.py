"""The one serial seam: every device link is opened with ``serial.serial_for_url`` (device paths, ptys,
``socket://``, ``rfc2217://``, ``loop://``). A background reader hands bytes to the driver, reconnects with
backoff when the port disappears, and keeps a ring buffer of recent traffic that is logged on a fault."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import serial
from serial.urlhandler.protocol_socket import Serial as SocketSerial

from .worker import Backoff, Worker

log = logging.getLogger(__name__)


class LinkDown(ConnectionError):
    """The port is not open (unplugged, not yet opened, or failed)."""


def open_port(url: str, baudrate: int, timeout: float) -> serial.SerialBase:
    """Open a port by path or URL. Device paths are locked exclusively (a second driver instance fails)."""
    port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, do_not_open=True)
    if "://" not in url:
        port.exclusive = True
    port.open()
    return port


class SerialLink:
    """A serial link that stays up: reader thread, write lock, reconnect with exponential backoff."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int,
        name: str,
        on_data: Callable[[bytes], None],
        on_state: Callable[[bool], None] | None = None,
        read_timeout: float = 0.25,
        coalesce_s: float = 0.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        ring_size: int = 64,
        opener: Callable[[str, int, float], Any] = open_port,
    ) -> None:
        self.url, self.baudrate, self.name = url, baudrate, name
        self._on_data, self._on_state = on_data, on_state
        self._read_timeout = read_timeout
        # a streaming device (an RFID reader at its link limit) is read in batches at most this often: one call per
        # few notices instead of one per notice (a request/reply device keeps 0: its replies are awaited)
        self._coalesce = coalesce_s
        self._opener = opener
        self._port: Any = None
        self._write_lock = threading.Lock()
        self._worker = Worker(f"link-{name}", self._run, join_s=2)
        self._stop = self._worker.stopping
        self._backoff_s = Backoff(*backoff)
        self.ring: deque[tuple[float, str, bytes]] = deque(maxlen=ring_size)
        self.stats = {"opens": 0, "open_failures": 0, "disconnects": 0, "rx_bytes": 0, "tx_bytes": 0}
        self.last_error: str | None = None
        self.connected_since: float | None = None

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        port = self._port
        if port is not None and hasattr(port, "cancel_read"):  # a blocked read returns now, not at its timeout
            try:
                port.cancel_read()
            except Exception as e:  # (a port closed meanwhile: the reader is leaving anyway)
                log.debug("%s: cancel read: %s", self.name, e)
        self._worker.stop()
        self._close()

    @property
    def connected(self) -> bool:
        return self._port is not None

    # I/O -------------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Write all bytes or raise LinkDown."""
        with self._write_lock:
            port = self._port
            if port is None:
                raise LinkDown(f"{self.name}: port {self.url} is not open")
            try:
                port.write(data)
            except (serial.SerialException, OSError) as e:
                self._fail(f"write failed: {e}")
                raise LinkDown(f"{self.name}: write failed: {e}") from e
        self.stats["tx_bytes"] += len(data)
        self.ring.append((time.time(), "tx", bytes(data)))

    def dump(self, reason: str) -> str:
        """Log (and return) the recent traffic, oldest first, as hex."""
        lines = [f"{self.name}: {reason}; last {len(self.ring)} chunks on {self.url}:"]
        for t, direction, data in list(self.ring):
            lines.append(f"  {time.strftime('%H:%M:%S', time.localtime(t))}.{int(t % 1 * 1000):03d} "
                         f"{direction} {data.hex(' ')}")
        text = "\n".join(lines)
        log.warning(text)
        return text

    def status(self) -> dict:
        return {"url": self.url, "connected": self.connected, "connected_since": self.connected_since,
                "last_error": self.last_error, **self.stats}

    # internals -------------------------------------------------------------------------------------
    def _read(self, port: Any) -> bytes:
        """What has arrived: waits up to the read timeout for the first bytes, then takes all that are there.
        (pyserial's socket handler says only whether something waits, 0 or 1: a read of one byte each time would
        take a streaming reader's notices a byte per batch; its rest is taken by a read that does not wait.)"""
        data = port.read(max(1, port.in_waiting))
        if data and isinstance(port, SocketSerial):
            port.timeout = 0
            try:
                data += port.read(1 << 16)
            finally:
                port.timeout = self._read_timeout
        return data

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as e:  # closing a port that already failed: the failure was reported
                log.debug("%s: close after failure: %s", self.name, e)

    def _fail(self, why: str) -> None:
        if self._port is None:
            return
        self.last_error = why
        self.stats["disconnects"] += 1
        self._close()
        self.connected_since = None
        self.dump(f"link lost ({why})")
        if self._on_state:
            self._on_state(False)

    def _run(self) -> None:
        self._backoff_s.succeeded()
        while not self._stop.is_set():
            if self._port is None:
                try:
                    port = self._opener(self.url, self.baudrate, self._read_timeout)
                except (serial.SerialException, OSError, ValueError) as e:
                    self.stats["open_failures"] += 1
                    if self.last_error != f"open failed: {e}":
                        log.warning("%s: cannot open %s: %s (retrying with backoff)", self.name, self.url, e)
                    self.last_error = f"open failed: {e}"
                    self._stop.wait(self._backoff_s.failed())
                    continue
                with self._write_lock:
                    self._port = port
                self._backoff_s.succeeded()
                self.stats["opens"] += 1
                self.connected_since = time.time()
                log.info("%s: opened %s", self.name, self.url)
                if self._on_state:
                    self._on_state(True)
            port = self._port
            try:
                data = self._read(port) if port is not None else b""
            except (serial.SerialException, OSError, TypeError, AttributeError) as e:
                # TypeError/AttributeError: pyserial's socket handler after a concurrent close
                self._fail(f"read failed: {e}")
                continue
            if data:
                self.stats["rx_bytes"] += len(data)
                self.ring.append((time.time(), "rx", data))
                try:
                    self._on_data(data)
                except Exception:
                    log.exception("%s: driver failed on received data", self.name)
                if self._coalesce:
                    self._stop.wait(self._coalesce)
