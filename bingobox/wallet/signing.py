"""Terminal → gateway request signing (HMAC-SHA256 over a canonical string), shared by both ends.

    X-Signature = hex(HMAC-SHA256(store_secret, METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE "\n" SHA256_HEX(BODY)))

PATH is the request target as sent: path plus ``?query`` when there is one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

MAX_SKEW_S = 300


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join((method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest())).encode()


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), canonical(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def sign_headers(store_id: str, secret: str, method: str, path: str, body: bytes,
                 now: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    return {"X-Store-Id": store_id, "X-Timestamp": ts, "X-Nonce": nonce,
            "X-Signature": signature(secret, method, path, ts, nonce, body)}


def check_signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes,
                    sig: str) -> bool:
    """Constant-time comparison of the presented signature with the expected one."""
    expected = signature(secret, method, path, timestamp, nonce, body)
    return hmac.compare_digest(expected.encode(), sig.strip().lower().encode())
