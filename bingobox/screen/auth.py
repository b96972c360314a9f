"""Operator logins for the status screen: scrypt password hashes, in-memory sessions, a login throttle.

A session is an unguessable cookie (HttpOnly, SameSite=Strict) plus a CSRF token the page sends back in a header
with every action; both are forgotten at logout, at expiry and when the controller restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~50 ms per check on a small x86 box, 16 MiB


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for the config's operators.password_hash."""
    if len(password) < 8:
        raise ValueError("an operator password needs at least 8 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2, maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


@dataclass
class Session:
    operator: str
    csrf: str
    expires: float


class Auth:
    """Who is logged in. ``operators`` maps a name to its password hash."""

    def __init__(self, operators: dict[str, str], ttl_s: float = 3600, failures_per_minute: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.operators = dict(operators)
        self.ttl_s = ttl_s
        self.failures_per_minute = failures_per_minute
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._dummy = hash_password(secrets.token_hex(8))  # unknown names cost as much as known ones

    def login(self, name: str, password: str) -> tuple[str, Session] | str:
        """A new session (cookie value, session), or why not: 'throttled' or 'bad_credentials'."""
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < 60]
            self._failures[name] = recent
            if len(recent) >= self.failures_per_minute:
                return "throttled"
        ok = check_password(password, self.operators.get(name, self._dummy)) and name in self.operators
        with self._lock:
            if not ok:
                self._failures.setdefault(name, []).append(now)
                return "bad_credentials"
            self._failures.pop(name, None)
            token = secrets.token_urlsafe(32)
            session = Session(name, secrets.token_urlsafe(24), now + self.ttl_s)
            self._sessions[token] = session
            return token, session

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = self._clock()
        with self._lock:
            s = self._sessions.get(token)
            if s is None or s.expires < now:
                self._sessions.pop(token, None)
                return None
            return s

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)
