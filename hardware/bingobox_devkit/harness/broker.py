"""Debian's mosquitto as a process on a free loopback port, configured the way a chain would run it: no anonymous
clients, a password per store (user name = store id), the fleet service's user, Home Assistant's user, and the ACL
in ``config/mosquitto/acl`` (a store publishes only under its own id and reads only its own commands)."""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .process import ROOT, Proc, free_port

ACL = ROOT / "config/mosquitto/acl"
POLICY = ROOT / "config/mosquitto/bingobox.conf"


def policy_lines(overridden: set[str]) -> tuple[list[str], list[str]]:
    """The shipped broker policy's settings, less those the caller sets itself: (global ones, those that go under
    every listener — after the file's ``# [listener]`` mark)."""
    glob: list[str] = []
    per: list[str] = []
    out = glob
    for raw in POLICY.read_text().splitlines():
        if raw.strip() == "# [listener]":
            out = per
        line = raw.split("#", 1)[0].strip()
        if line and line.split()[0] not in overridden:
            out.append(line)
    return glob, per


def acl_text(ha_lockdown_stores: Sequence[str] = (), same_as: dict[str, str] | None = None) -> str:
    """The shipped ACL with what an installer adds to it: the Home Assistant lockdown topic of each store that
    enables the switch (appended to HA's block, the last one), and, for each ``user → model`` of ``same_as``, a block
    giving ``user`` the rights of ``model`` (a second fleet instance; in tests, a second client of a user: client ids
    are user names, so two clients of one user would take each other's session)."""
    text = ACL.read_text().rstrip("\n") + "\n"
    text += "".join(f"topic write bingobox/{s}/ha/lockdown/set\n" for s in ha_lockdown_stores)
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("user "):
            current = blocks.setdefault(line.split()[1], [])
        elif current is not None and line.startswith("topic "):
            current.append(line)
    for user, model in (same_as or {}).items():
        text += f"\nuser {user}\n" + "".join(f"{line}\n" for line in blocks[model])
    return text


def mosquitto() -> str:
    path = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(path):
        raise RuntimeError("no mosquitto: `make setup` installs Debian's mosquitto package")
    return path


class Broker:
    def __init__(self, directory: Path, users: dict[str, str], port: int | None = None,
                 max_files: int = 65536, tls: tuple[Path, Path, Path] | None = None,
                 ha_lockdown_stores: Sequence[str] = (), same_as: dict[str, str] | None = None) -> None:
        """``users``: name → password (stores by their id, ``fleet``/``fleet-N``, ``homeassistant``). ``tls``: (CA,
        server certificate, key) adds an mqtts listener (``tls_url``) that wants a client certificate whose CN is
        the user name. The shipped policy (``config/mosquitto/bingobox.conf``) and ACL are used as they are, with
        ``acl_text``'s additions (users named ``fleet-N`` get the fleet's rights)."""
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.users = users
        self.max_files = max_files
        pw = self.dir / "passwords"
        pw.unlink(missing_ok=True)
        pw.touch(mode=0o600)
        pw.write_text("".join(f"{name}:{password}\n" for name, password in users.items()))
        subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True, capture_output=True)  # hashed in place
        self.tls_port = free_port() if tls else None
        tls_lines = [f"listener {self.tls_port} 127.0.0.1", f"cafile {tls[0]}", f"certfile {tls[1]}",
                     f"keyfile {tls[2]}", "require_certificate true", "use_identity_as_username true"] if tls else []
        acl = self.dir / "acl"
        same = {u: "fleet" for u in users if u.startswith("fleet-")} | (same_as or {})
        acl.write_text(acl_text(ha_lockdown_stores, same))
        self.conf = self.dir / "mosquitto.conf"
        glob, per_listener = policy_lines({"max_queued_messages"})
        if tls:
            tls_lines[1:1] = per_listener
        self.conf.write_text("\n".join([
            *glob,
            *(["user root"] if os.geteuid() == 0 else []),
            f"listener {self.port} 127.0.0.1",
            *per_listener,
            f"password_file {pw}",
            f"acl_file {acl}",
            "persistence false",
            "max_queued_messages 100000",  # (a load test's thousands of stores)
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            *tls_lines,
            "",
        ]))
        self.log = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def start(self) -> None:
        def limits() -> None:  # thousands of stores: a file descriptor each
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = min(self.max_files, hard) if hard != resource.RLIM_INFINITY else self.max_files
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))

        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([mosquitto(), "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=limits)
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def start_fleet(directory: Path, broker_url: str, db: str, command_key: Path, operators: Path,
                password_file: Path, *extra: str, name: str = "fleet", user: str = "fleet") -> tuple[Proc, str]:
    """``bingobox fleet`` as a process (broker user ``user``: each instance its own, client ids being user names),
    waited for; (the process, the page's URL). ``command_key``: the master command key."""
    token = directory / "metrics.token"
    if not token.exists():
        from bingobox.secretfiles import write_secret

        write_secret(token, secrets.token_urlsafe(18))
    proc = Proc(name, ["fleet", "--mqtt", broker_url, "--port", "0", "--db", db, "--operators", str(operators),
                       "--command-master-key-file", str(command_key), "--mqtt-user", user,
                       "--metrics-token-file", str(token),
                       "--mqtt-password-file", str(password_file), *extra], directory / f"{name}.log")
    lines = proc.wait_line("ready", timeout=60)
    url = next(line.split()[2] for line in lines if line.startswith("bingobox fleet:"))
    return proc, url


def fleet_metrics(url: str, directory: Path) -> str:
    """The fleet's /metrics text, with the scraper's token ``start_fleet`` wrote in ``directory``."""
    import requests

    token = (directory / "metrics.token").read_text().strip()
    r = requests.get(url + "metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return r.text

