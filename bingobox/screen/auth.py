"""Operator logins for the status screen: scrypt password hashes, in-memory sessions, a login throttle.

A session is an unguessable cookie (HttpOnly, SameSite=Strict, Secure over TLS) plus a CSRF token the page sends
back in a header with every action; both are forgotten at logout, at expiry and when the controller restarts.

The throttle counts failures per (name, source) pair, per source and — for sources other than the box itself —
across all sources, over the last minute. An attempt is counted *before* its password is hashed (forty parallel
guesses are forty failures, not one), and at most one hash runs at a time (each costs 128 MiB for ~0.4 s).
Bad tries from elsewhere never lock the operator at the box (loopback) out: only that pair and source are.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# scrypt at OWASP's recommended minimum (N=2^17, r=8, p=1): 128 MiB, ~0.45 s here. Hashes made with another cost
# (older configs: 2^14) still verify: the cost is stored in the hash.
_N, _R, _P = 2**17, 8, 1
_MAXMEM = 256 * 1024 * 1024
WINDOW_S = 60.0
MAX_TRACKED = 10_000  # keys (pairs, sources) the throttle remembers; beyond this the oldest are forgotten
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


def hash_password(password: str, n: int = _N) -> str:
    """``scrypt$N$r$p$salt$hash`` for the config's operators.password_hash."""
    if len(password) < 8:
        raise ValueError("an operator password needs at least 8 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_R, p=_P, dklen=32, maxmem=_MAXMEM)
    return f"scrypt${n}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2, maxmem=_MAXMEM)
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token (CSRF) with the session's."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def bearer_ok(request: Any, token: str | None) -> bool:
    """Does the request carry ``Authorization: Bearer <token>`` (constant time; never with no token set)?"""
    given = request.headers.get("authorization", "")
    return token is not None and given.startswith("Bearer ") and same_token(given[7:].strip(), token)


@dataclass
class Session:
    operator: str
    csrf: str
    expires: float
    may_refund: bool = False


class Failures:
    """Failure times per key over the last ``WINDOW_S``, bounded in keys (the oldest forgotten first)."""

    def __init__(self) -> None:
        self._times: dict[object, deque[float]] = {}

    def count(self, key: object, now: float) -> int:
        q = self._times.get(key)
        if q is None:
            return 0
        while q and now - q[0] >= WINDOW_S:
            q.popleft()
        if not q:
            del self._times[key]
            return 0
        return len(q)

    def add(self, key: object, now: float) -> None:
        self._times.setdefault(key, deque()).append(now)
        if len(self._times) > MAX_TRACKED + MAX_TRACKED // 10:  # (amortised: prune sorts)
            self.prune(now)

    def remove_one(self, key: object) -> None:
        q = self._times.get(key)
        if q:
            q.pop()

    def prune(self, now: float) -> None:
        for key in list(self._times):
            self.count(key, now)
        if len(self._times) > MAX_TRACKED:  # an attacker with many names or addresses: forget the quietest
            by_last = sorted(self._times, key=lambda k: self._times[k][-1])
            for key in by_last[: len(self._times) - MAX_TRACKED]:
                del self._times[key]

    def __len__(self) -> int:
        return len(self._times)


class LoginThrottle:
    """Failed log-ins over the last minute, per (name, source), per source and — unless ``per_name`` is None — per
    name across all sources but loopback (a guesser spread over many addresses locks out only the name it guesses,
    for a minute; never everyone, and never the box's own screen). An attempt is reserved as a failure before its
    password is hashed (parallel guesses cannot all slip through) and given back when it succeeds; one hash runs at
    a time."""

    def __init__(self, per_pair: int, per_source: int, per_name: int | None = None,
                 clock: Callable[[], float] = time.monotonic, hash_wait_s: float = 3.0) -> None:
        self.per_pair, self.per_source, self.per_name = per_pair, per_source, per_name
        self.hash_wait_s = hash_wait_s
        self._clock = clock
        self._pairs, self._sources, self._names = Failures(), Failures(), Failures()
        self._lock = threading.Lock()
        self._hashing = threading.BoundedSemaphore(1)
        self._last_prune = 0.0

    def _counts_by_name(self, source: str) -> bool:
        return self.per_name is not None and source not in LOOPBACK

    def reserve(self, name: str, source: str) -> bool:
        """Count an attempt now; False (and nothing counted) when it is throttled."""
        now = self._clock()
        with self._lock:
            if now - self._last_prune >= 1.0:
                self._last_prune = now
                for f in (self._pairs, self._sources, self._names):
                    f.prune(now)
            if (self._pairs.count((name, source), now) >= self.per_pair
                    or self._sources.count(source, now) >= self.per_source
                    or (self.per_name is not None and source not in LOOPBACK
                        and self._names.count(name, now) >= self.per_name)):
                return False
            self._pairs.add((name, source), now)
            self._sources.add(source, now)
            if self._counts_by_name(source):
                self._names.add(name, now)
            return True

    def succeeded(self, name: str, source: str) -> None:
        with self._lock:
            self._pairs.remove_one((name, source))
            self._sources.remove_one(source)
            if self._counts_by_name(source):
                self._names.remove_one(name)

    def hash(self, fn: Callable[..., T], *args) -> T | None:
        """``fn(*args)`` (a password hash) once no other hash runs; None when none finished in ``hash_wait_s``."""
        if not self._hashing.acquire(timeout=self.hash_wait_s):
            return None
        try:
            return fn(*args)
        finally:
            self._hashing.release()

    def tracked(self) -> int:
        """Keys the throttle holds (bounded by MAX_TRACKED each)."""
        return len(self._pairs) + len(self._sources)


class Auth:
    """Who is logged in. ``operators`` maps a name to its password hash; ``refunders`` may refund."""

    def __init__(self, operators: dict[str, str], ttl_s: float = 3600, failures_per_minute: int = 5,
                 clock: Callable[[], float] = time.monotonic, per_source_per_minute: int = 10,
                 per_name_per_minute: int = 20, refunders: frozenset[str] | set[str] = frozenset(),
                 hash_wait_s: float = 3.0) -> None:
        self.operators = dict(operators)
        self.refunders = frozenset(refunders)
        self.ttl_s = ttl_s
        self._clock = clock
        self._throttle = LoginThrottle(failures_per_minute, per_source_per_minute, per_name_per_minute, clock,
                                       hash_wait_s)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._audited: dict[str, float] = {}  # source → when its last throttled attempt was written to the audit
        self._audit_pruned = 0.0
        # unknown names cost as much as known ones (same scrypt cost; the digest never matches)
        self._dummy = f"scrypt${_N}${_R}${_P}${'00' * 16}${'00' * 32}"

    def login(self, name: str, password: str, source: str = "") -> tuple[str, Session] | str:
        """A new session (cookie value, session), or why not: 'throttled', 'busy' (another login is being
        checked) or 'bad_credentials'."""
        if not self._throttle.reserve(name, source):
            return "throttled"
        ok = self._throttle.hash(check_password, password, self.operators.get(name, self._dummy))
        if ok is None:
            return "busy"
        if not ok or name not in self.operators:
            return "bad_credentials"
        self._throttle.succeeded(name, source)
        now = self._clock()
        with self._lock:
            token = secrets.token_urlsafe(32)
            session = Session(name, secrets.token_urlsafe(24), now + self.ttl_s, name in self.refunders)
            self._sessions[token] = session
            return token, session

    def audit_worthy(self, outcome: str, source: str) -> bool:
        """Whether a refused login goes to the audit log: every bad password, but a throttled or busy source
        only once a minute (a flood must not become a flood of fsync'd rows)."""
        if outcome == "bad_credentials":
            return True
        now = self._clock()
        with self._lock:
            if now - self._audit_pruned >= 1.0:  # (once a second: a flood of sources is not a flood of copies)
                self._audit_pruned = now
                self._audited = {s: t for s, t in self._audited.items() if now - t < WINDOW_S}
            if now - self._audited.get(source, -WINDOW_S) < WINDOW_S:
                return False
            self._audited[source] = now
            return True

    def known(self, name: str) -> bool:
        return name in self.operators

    def tracked(self) -> int:
        """Keys the throttle holds (bounded by MAX_TRACKED each)."""
        return self._throttle.tracked()

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
