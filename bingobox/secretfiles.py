"""Secrets kept in files: written owner-only (0600) and read back stripped; never taken from a command line
(where ``ps`` shows them to every user of the box)."""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, value: str) -> Path:
    """Write ``value`` to ``path`` readable by the owner only (created 0600, never world-readable for a moment)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # (an existing file keeps its mode through O_CREAT)
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    return path


def read_secret(path: Path, what: str = "secret", min_len: int = 16) -> str:
    """The secret in ``path``; ValueError (saying which file and why) when unreadable, too short, or readable by
    others than its owner's group."""
    path = Path(path)
    try:
        value = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except OSError as e:
        raise ValueError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if mode & 0o004:
        raise ValueError(f"{path}: the {what} is readable by every user of the box: chmod 600 {path}")
    if len(value) < min_len:
        raise ValueError(f"{path}: the {what} must be at least {min_len} characters")
    return value
