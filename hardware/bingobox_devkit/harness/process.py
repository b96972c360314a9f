"""A ``bingobox`` subcommand as a child process, waiting for its ready line; free ports on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..paths import repo
from ..ports import free_port  # noqa: F401  (the harness's callers import it from here)

try:
    ROOT = repo()  # (the checkout: the processes run there)
except RuntimeError:
    ROOT = Path.cwd()


class Proc:
    """A ``bingobox`` subcommand as a child process (stderr to ``log``; ``env`` added to the environment).
    ``command``: how to run ``bingobox`` (default: this interpreter's ``-m bingobox``; another venv's console
    script runs the product installed there)."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        self.name, self.args, self.log_path, self.env = name, args, log, env or {}
        self.command = command or [sys.executable, "-m", "bingobox"]
        self.start()

    def start(self) -> None:
        self.log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen([*self.command, *self.args], stdout=subprocess.PIPE,
                                  stderr=self.log, text=True, cwd=ROOT, env={**os.environ, **self.env})

    def wait_line(self, needle: str, timeout: float = 60) -> list[str]:
        """Read stdout until a line contains ``needle`` (then keep the pipe drained); the lines read so far."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        out = self.p.stdout
        assert out is not None  # (started with stdout=PIPE)
        while time.monotonic() < deadline:
            line = out.readline()
            if not line:
                self.stop()
                raise RuntimeError(f"{self.name} exited: {''.join(lines)}\n{self.log_path.read_text()[-3000:]}")
            lines.append(line)
            if needle in line:
                threading.Thread(target=out.read, daemon=True).start()
                return lines
        self.stop()
        raise RuntimeError(f"{self.name} did not print {needle!r} within {timeout}s")

    @property
    def returncode(self) -> int | None:
        return self.p.poll()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.send_stop(sig)
        self.reap()

    def send_stop(self, sig: int = signal.SIGTERM) -> None:
        """Ask it to stop (``reap`` waits for it): several processes stop together this way."""
        if not self.log.closed and self.p.poll() is None:
            self.p.send_signal(sig)

    def reap(self) -> None:
        """Wait for it to end (killed after 20 s) and close its log."""
        if self.log.closed:
            return
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
        self.log.close()


def stop_together(procs: list[Proc]) -> None:
    """Stop processes that do not need one another to stop: each signalled, then each waited for."""
    for p in procs:
        p.send_stop()
    for p in procs:
        p.reap()


