"""The gateway's edge under hostile requests (second audit): a body cut short, bodies before authentication, and
the log filter's walk over exception chains. Each test sends what the audit's probe sent."""

import os
import socket
import time
from pathlib import Path

import pytest

from tests.helpers import STORE_ID, Gateway

pytestmark = pytest.mark.integration


def _raw(url: str, data: bytes, read: bool = False) -> bytes:
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(data)
        if not read:
            return b""
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _h1_request(url: str, method: str = "GET", path: str = "/v1/inbox") -> bytes:
    """The audit's H1 probe, byte for byte: well-formed signing headers, ``Content-Length: 100``, 10 bytes sent."""
    host = url.split("//")[1]
    return (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Store-Id: {STORE_ID}\r\nX-Timestamp: {int(time.time())}"
            f"\r\nX-Nonce: abcdefgh12345678\r\nX-Signature: {'0' * 64}\r\nContent-Length: 100\r\n\r\n0123456789"
            ).encode()


@pytest.fixture
def gw(tmp_path):
    g = Gateway(tmp_path)
    yield g
    g.stop()


@pytest.mark.parametrize("method,path", [("GET", "/v1/inbox"), ("POST", "/v1/charges"),
                                         ("PUT", "/v1/visits/v1"), ("POST", "/app/api/login")])
def test_a_body_cut_short_costs_only_its_own_connection(gw, method, path):
    cpu0 = _cpu_s(gw.proc.p.pid)
    for _ in range(5):
        _raw(gw.url, _h1_request(gw.url, method, path))
    t0 = time.monotonic()
    for _ in range(20):  # the gateway keeps answering, quickly, for two seconds after
        r = gw.http.get(gw.url + "/healthz", timeout=2)
        assert r.status_code == 200
        time.sleep(0.1)
    busy = _cpu_s(gw.proc.p.pid) - cpu0
    assert busy < 0.5 * (time.monotonic() - t0 + 1), f"the gateway burnt {busy:.2f} s of CPU after the probes"
    assert "Traceback" not in gw.log_path.read_text()[-20_000:] or "RecursionError" not in gw.log_path.read_text()


def test_bodies_are_refused_before_they_are_read(gw):
    """A 30 MB GET (M3) and a body to an unknown store are refused from the headers: nothing is buffered."""
    host = gw.url.split("//")[1]
    head = (f"GET /v1/inbox HTTP/1.1\r\nHost: {host}\r\nX-Store-Id: {STORE_ID}\r\nX-Timestamp: {int(time.time())}"
            f"\r\nX-Nonce: abcdefgh12345678\r\nX-Signature: {'0' * 64}\r\nContent-Length: 30000000\r\n\r\n").encode()
    got = _raw(gw.url, head + b"x" * 1000, read=True)
    assert got.startswith(b"HTTP/1.1 413") and b"GET takes no body" in got
    for method in ("GET", "DELETE"):  # chunked on a method without a body
        chunked = (f"{method} /v1/inbox HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n0\r\n\r\n").encode()
        assert _raw(gw.url, chunked, read=True).startswith(b"HTTP/1.1 413")
    unknown = (f"POST /v1/charges HTTP/1.1\r\nHost: {host}\r\nX-Store-Id: nobody\r\nX-Timestamp: {int(time.time())}"
               f"\r\nX-Nonce: abcdefgh12345678\r\nX-Signature: {'0' * 64}\r\nIdempotency-Key: k1\r\n"
               "Content-Length: 60000\r\n\r\n").encode()
    got = _raw(gw.url, unknown, read=True)  # answered without waiting for the 60 000 bytes
    assert got.startswith(b"HTTP/1.1 401"), got[:200]
