"""The serial seam: loop:// round trip, ring buffer dump, reconnect with backoff when a pty comes and goes."""

import os
import threading
import time
import tty

import pytest

from bingobox.transport import LinkDown, SerialLink
from tests.helpers import wait_until


def test_loop_url_roundtrip_and_ring_dump(caplog):
    got = bytearray()
    link = SerialLink("loop://", baudrate=115200, name="t", on_data=got.extend)
    link.start()
    try:
        wait_until(lambda: link.connected, 2)
        link.write(b"\xbb\x00\x22\x00\x00\x22\x7e")
        wait_until(lambda: len(got) == 7, 2)
        text = link.dump("test")
        assert "tx bb 00 22 00 00 22 7e" in text and "rx bb" in text  # rx arrives in any chunking
        assert link.status()["tx_bytes"] == 7
    finally:
        link.stop()
    with pytest.raises(LinkDown):
        link.write(b"x")


def test_reconnects_when_the_port_disappears_and_returns(tmp_path):
    path = tmp_path / "dev"
    states: list[bool] = []
    got = bytearray()
    link = SerialLink(str(path), baudrate=9600, name="t", on_data=got.extend, on_state=states.append,
                      backoff=(0.05, 0.2))
    link.start()
    try:
        time.sleep(0.3)
        assert not link.connected and link.stats["open_failures"] >= 2
        fds = []

        def plug():
            m, s = os.openpty()
            tty.setraw(s)
            fds.append((m, s))
            if path.is_symlink():
                path.unlink()
            path.symlink_to(os.ttyname(s))
            return m

        master = plug()
        wait_until(lambda: link.connected, 3, "open after the port appeared")
        os.write(master, b"hello")
        wait_until(lambda: bytes(got) == b"hello", 2)
        m, s = fds.pop()
        path.unlink()
        os.close(m)
        os.close(s)  # unplug: the reader sees the hang-up
        wait_until(lambda: not link.connected, 3, "noticed the unplug")
        master = plug()
        wait_until(lambda: link.connected, 3, "reopened after replug")
        os.write(master, b"again")
        wait_until(lambda: bytes(got).endswith(b"again"), 2)
        assert states == [True, False, True]
        for m, s in fds:
            os.close(m)
            os.close(s)
    finally:
        link.stop()


def test_exclusive_lock_on_device_paths(tmp_path):
    m, s = os.openpty()
    tty.setraw(s)
    path = tmp_path / "dev"
    path.symlink_to(os.ttyname(s))
    a = SerialLink(str(path), baudrate=9600, name="a", on_data=lambda b: None)
    b = SerialLink(str(path), baudrate=9600, name="b", on_data=lambda b: None, backoff=(0.05, 0.1))
    a.start()
    try:
        wait_until(lambda: a.connected, 2)
        b.start()
        wait_until(lambda: b.stats["open_failures"] >= 1, 2)
        assert not b.connected and "lock" in (b.last_error or "").lower()
    finally:
        a.stop()
        b.stop()
        os.close(m)
        os.close(s)
    assert threading.active_count() < 50


def test_a_streaming_device_behind_a_serial_server_is_read_in_batches_not_a_byte_per_batch():
    """pyserial's socket:// handler says only whether something waits (0 or 1): each batch must still take all that
    arrived (a shelf reader on a TCP serial server, read a byte per 50 ms batch, starved: a CI run found it)."""
    import socket

    srv = socket.create_server(("127.0.0.1", 0))
    calls: list[int] = []
    got = bytearray()

    def on_data(data: bytes) -> None:
        calls.append(len(data))
        got.extend(data)

    link = SerialLink(f"socket://127.0.0.1:{srv.getsockname()[1]}", baudrate=115200, name="t", on_data=on_data,
                      coalesce_s=0.05, read_timeout=0.25)
    link.start()
    conn, _ = srv.accept()
    try:
        wait_until(lambda: link.connected, 2)  # (pyserial empties the socket's input as it opens)
        for _ in range(20):  # 4 KB in 20 bursts over about 0.2 s
            conn.sendall(bytes(200))
            time.sleep(0.01)
        wait_until(lambda: len(got) == 4000, 3, "all the bytes")
        assert len(calls) <= 10  # batches, not 4000 one-byte reads (a byte per 50 ms would take 200 s)
    finally:
        link.stop()
        conn.close()
        srv.close()
