"""Debian's PostgreSQL as a throwaway cluster on a free loopback port (initdb into a temp dir, trust auth on
loopback only), for the fleet service's PostgreSQL tests. As root it runs as the ``postgres`` user (PostgreSQL
refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from .process import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"no {name}: `make setup` installs Debian's postgresql package")
    return path


class Postgres:
    def __init__(self, directory: Path | None = None) -> None:
        """``directory``: where the cluster lives (default: a new one under /tmp, which the postgres user can
        reach — a pytest temp dir is private to root); removed by ``stop``."""
        import tempfile

        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.owned = directory is None
        directory = Path(tempfile.mkdtemp(prefix="bbx-pg-")) if directory is None else directory
        directory.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(directory, "postgres")
        self.root = directory
        self.dir = directory / "pgdata"
        self._run(_bin("initdb"), "-D", str(self.dir), "-U", "fleet", "--auth=trust", "-E", "UTF8")
        self._run(_bin("pg_ctl"), "-D", str(self.dir), "-l", str(directory / "postgres.log"), "-w", "-t", "30",
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {directory} -c fsync=on", "start")
        self.dsn = f"postgresql://fleet@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + 20
        while subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not start")
            time.sleep(0.2)

    def _run(self, *cmd: str) -> None:
        out = subprocess.run([*self.as_user, *cmd], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])}: {out.stderr.strip() or out.stdout.strip()}")

    def stop(self) -> None:
        subprocess.run([*self.as_user, _bin("pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)
