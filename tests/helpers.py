"""Test helpers: start the simulator as a real process on free ports in a temp dir; collect driver events."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bingobox.devices.events import DeviceEvent
from bingobox_devkit.harness.process import Proc
from bingobox_devkit.sim.control import SimClient

ROOT = Path(__file__).resolve().parent.parent

SIM_TOML = """
[sim]
control_port = 0
seed = 7

[[doors]]
name = "entrance"
energize_to_unlock = true

[[doors]]
name = "exit"
energize_to_unlock = false

[[readers]]
name = "shelf-1"
tags = ["E28068940000502458950001", "E28068940000502458950002", "E28068940000502458950003"]

[[readers]]
name = "exit-area"
round_s = 0.01

[[readers]]
name = "r200"
framing = "AA"
tags = ["E2806890000050 0E88C6A4A7"]

[[cameras]]
name = "door-cam"
fps = 15
"""


class Sim:
    """A running `bingobox sim` process."""

    def __init__(self, tmp: Path, config_text: str = SIM_TOML) -> None:
        self.dir = tmp
        self.run_dir = tmp / "run"
        cfg = tmp / "sim.toml"
        # (pictures the tests show come from their temp folder: the only other one the simulator may read)
        dirs = f"image_dirs = ['{tmp}', '{ROOT / 'tests/data'}']\n"
        cfg.write_text(config_text.replace("0050 0E88", "00500E88").replace("[sim]\n", f"[sim]\n{dirs}", 1))
        self.proc = Proc("sim", ["sim", "--config", str(cfg), "--run-dir", str(self.run_dir), "--control-port", "0"],
                         tmp / "sim.log")
        self.banner = "".join(self.proc.wait_line("ready", timeout=30))
        self.manifest = json.loads((self.run_dir / "sim.json").read_text())
        self.client = SimClient(self.manifest["control"], self.manifest["token"])

    def stderr(self) -> str:
        return (self.dir / "sim.log").read_text()

    def pty(self, name: str) -> str:
        return str(self.run_dir / name)

    def tcp(self, name: str) -> str:
        return self.manifest["devices"][name]["url_tcp"]

    def stream(self, name: str) -> str:
        return self.manifest["devices"][name]["stream"]

    def act(self, action: str, **args):
        return self.client.act(action, **args)

    def device(self, name: str) -> dict:
        return self.client.status()["devices"][name]

    def stop(self) -> None:
        self.proc.stop()


class Events:
    """Collects DeviceEvents from drivers; wait for one that matches."""

    def __init__(self) -> None:
        self.items: list[DeviceEvent] = []
        self._cond = threading.Condition()

    def __call__(self, ev: DeviceEvent) -> None:
        with self._cond:
            self.items.append(ev)
            self._cond.notify_all()

    def kinds(self, device: str | None = None) -> list[str]:
        return [e.kind for e in self.items if device is None or e.device == device]

    def wait_for(self, pred: Callable[[DeviceEvent], bool], timeout: float = 5.0, after: int = 0) -> DeviceEvent:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.items[after:]:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(e.device, e.kind, e.data) for e in self.items[after:]]
                    raise AssertionError(f"no matching event within {timeout}s; got {got}")
                self._cond.wait(left)

    def mark(self) -> int:
        return len(self.items)


def wait_until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


STORE_ID = "store-t1"
STORE_SECRET = "test-secret-0123456789abcdef"
ADMIN = "admin-token-for-tests"


class Gateway:
    """A running `bingobox gateway` process on a free port with its SQLite file in a temp dir."""

    def __init__(self, tmp: Path, *extra: str, db: Path | None = None) -> None:
        import requests

        self.dir = tmp
        self.db = db or tmp / "gateway.db"
        self.extra = extra
        self.log_path = tmp / f"gateway-{int(time.time() * 1000)}.log"
        from bingobox.secretfiles import write_secret

        secret = write_secret(tmp / "store-secret", STORE_SECRET)
        self.proc = Proc("gateway", ["gateway", "--db", str(self.db), "--port", "0",
                                     "--store", f"{STORE_ID}=@{secret}", *extra], self.log_path,
                         env={"BINGOBOX_GATEWAY_ADMIN_TOKEN": ADMIN})
        self.url = self.proc.wait_line("ready", timeout=30)[0].split()[2]
        self.http = requests.Session()

    def admin(self, method: str, path: str, body: dict | None = None):
        r = self.http.request(method, self.url + path, json=body, headers={"X-Admin-Token": ADMIN}, timeout=10)
        return r

    def account(self, balance_fen: int = 100_000, face_consent: bool = False, name: str = "Test Shopper") -> dict:
        import secrets

        r = self.admin("POST", "/admin/accounts", {"real_name": name, "id_number": secrets.token_hex(9),
                                                   "balance_fen": balance_fen, "face_consent": face_consent})
        assert r.status_code == 200, r.text
        acc = r.json()
        return {**acc, "jti": self.code(acc["id"]), "visit": f"v-{acc['id']}"}

    def code(self, account_id: str, store_id: str = STORE_ID) -> str:
        """An entry code issued to the account for the store (what the wallet app shows): its id, which the store's
        charges and records for the visit it opens must name."""
        r = self.admin("POST", "/v1/entry-codes", {"account_id": account_id, "store_id": store_id})
        assert r.status_code == 200, r.text
        return r.json()["jti"]

    def faults(self, **kw) -> dict:
        return self.admin("POST", "/admin/faults", kw).json()

    def ledger(self) -> list[dict]:
        return self.admin("GET", "/admin/charges").json()["data"]

    def signed(self, method: str, path: str, body: bytes | dict | None = None, headers: dict | None = None,
               secret: str = STORE_SECRET, **sign_kw):
        import json as _json

        from bingobox.wallet.signing import sign_headers

        data = body if isinstance(body, bytes) else (_json.dumps(body).encode() if body is not None else b"")
        key = (headers or {}).get("Idempotency-Key")
        h = sign_headers(STORE_ID, secret, method, path, data, idempotency_key=key, **sign_kw)
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        return self.http.request(method, self.url + path, data=data or None, headers=h, timeout=10)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.proc.stop(sig)
