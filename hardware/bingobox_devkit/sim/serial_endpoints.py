"""Where a virtual serial device is reachable: a raw pty published as a symlink, and a TCP port (raw bytes for
``socket://``, or RFC 2217 — telnet with COM-port control, as ser2net and terminal servers speak it — for
``rfc2217://``).

The pty's slave side is put in raw mode at once (a fresh pty echoes and mangles bytes) and the simulator
keeps its own slave fd open, so clients can close and reopen freely. Writes never block the device: if no
one reads, output is dropped like a real UART with nobody listening.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
import tty
from collections.abc import Callable
from pathlib import Path

from ..ports import bind_listener

log = logging.getLogger(__name__)

Receiver = Callable[[bytes, "Endpoint"], None]


class Endpoint:
    """One way into a device. ``write`` sends device output to whoever is connected there."""

    name = "endpoint"

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class PtyEndpoint(Endpoint):
    """A raw pty whose slave path is published as ``link``."""

    def __init__(self, link: Path, on_receive: Receiver) -> None:
        self.link = link
        self.name = f"pty:{link}"
        self._on_receive = on_receive
        self._master = self._slave = -1
        self.tty_path: str | None = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = -1, -1

    def start(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.tty_path = os.ttyname(self._slave)
        tmp = self.link.with_name(self.link.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self.tty_path)
        tmp.replace(self.link)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._master < 0:
            return
        with contextlib.suppress(FileNotFoundError):
            if self.link.is_symlink() and os.readlink(self.link) == self.tty_path:
                self.link.unlink()
        os.write(self._stop_w, b"x")
        if self._thread:
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    def write(self, data: bytes) -> None:
        fd = self._master
        if fd < 0:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                return  # nobody is draining the line: drop, like a UART with no listener
            except OSError as e:
                if e.errno in (errno.EIO, errno.EBADF):
                    return
                raise
            view = view[n:]

    def _run(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self._master, self._stop_r], [], [])
            except (OSError, ValueError):
                return
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError as e:
                if e.errno == errno.EIO:  # no slave open: the client went away
                    continue
                return
            if data:
                self._on_receive(data, self)


class VirtualLine:
    """The serial line settings an RFC 2217 client negotiates (what pyserial's PortManager reads and sets).
    The device keeps its own speed: a client asking for another one is logged, as a miswired bench would be."""

    def __init__(self, name: str, baudrate: int) -> None:
        self.name, self.device_baudrate = name, baudrate
        self.baudrate = baudrate or 9600
        self.bytesize, self.parity, self.stopbits = 8, "N", 1
        self.xonxoff = self.rtscts = self.break_condition = self.ri = False
        self.rts = self.dtr = self.cts = self.dsr = self.cd = True

    def __setattr__(self, key: str, value) -> None:
        if key == "baudrate" and getattr(self, "device_baudrate", None) and value != self.device_baudrate:
            log.warning("%s: an RFC 2217 client set %s baud; the device runs at %s", self.name, value,
                        self.device_baudrate)
        super().__setattr__(key, value)

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class _Rfc2217Session:
    """One client's telnet/RFC 2217 state; ``write`` is what PortManager calls to answer negotiations."""

    def __init__(self, conn: socket.socket, line: VirtualLine) -> None:
        from serial.rfc2217 import PortManager

        self.conn = conn
        self._send = threading.Lock()
        self.manager = PortManager(line, self, logger=logging.getLogger(f"{__name__}.rfc2217"))

    def write(self, data: bytes) -> None:
        with self._send:
            self.conn.sendall(data)


class TcpEndpoint(Endpoint):
    """A TCP port on loopback for ``socket://127.0.0.1:PORT`` (or ``rfc2217://`` when ``rfc2217``); a new client
    replaces the previous one."""

    def __init__(self, host: str, port: int, on_receive: Receiver, rfc2217: bool = False,
                 line: VirtualLine | None = None) -> None:
        self.host, self.port = host, port
        self.name = f"tcp:{port}"
        self._on_receive = on_receive
        self._server: socket.socket | None = None
        self._client: socket.socket | None = None
        self._session: _Rfc2217Session | None = None
        self.rfc2217 = rfc2217
        self.line = line or VirtualLine(self.name, 0)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.host == "127.0.0.1":
            srv = bind_listener(self.port)
        else:
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind((self.host, self.port))
        srv.listen(2)
        self.port = srv.getsockname()[1]  # keep the same port across unplug/replug
        self.name = f"tcp:{self.port}"
        self._server = srv
        self._thread = threading.Thread(target=self._accept, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv:
            with contextlib.suppress(OSError):
                srv.shutdown(socket.SHUT_RDWR)
            srv.close()
        self._drop_client()
        if self._thread:
            self._thread.join(timeout=2)

    def write(self, data: bytes) -> None:
        c, session = self._client, self._session
        if c is None:
            return
        try:
            if session is not None:
                session.write(b"".join(session.manager.escape(data)))  # IAC bytes doubled
            else:
                c.sendall(data)
        except OSError:
            self._drop_client(c)

    def _drop_client(self, which: socket.socket | None = None) -> None:
        with self._lock:
            c = self._client
            if c is None or (which is not None and c is not which):
                return
            self._client = self._session = None
        with contextlib.suppress(OSError):
            c.shutdown(socket.SHUT_RDWR)
        c.close()

    def _accept(self) -> None:
        while self._server is not None:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._drop_client()
            try:
                session = _Rfc2217Session(conn, self.line) if self.rfc2217 else None  # sends its first offers
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._client, self._session = conn, session
            threading.Thread(target=self._read, args=(conn, session), name=f"{self.name}-client",
                             daemon=True).start()

    def _read(self, conn: socket.socket, session: _Rfc2217Session | None) -> None:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if not data:
                self._drop_client(conn)
                return
            if session is not None:
                try:
                    data = b"".join(session.manager.filter(data))  # telnet commands handled, payload kept
                except OSError:
                    self._drop_client(conn)
                    return
                if not data:
                    continue
            self._on_receive(data, self)
