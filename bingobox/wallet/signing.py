"""Terminal → gateway request signing (HMAC-SHA256 over a canonical string), shared by both ends.

    X-Signature = hex(HMAC-SHA256(store_secret, CANONICAL))
    CANONICAL   = "bbx-hmac-v2" "\n" STORE_ID "\n" METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE "\n"
                  IDEMPOTENCY_KEY "\n" SHA256_HEX(BODY)

STORE_ID is the ``X-Store-Id`` header and IDEMPOTENCY_KEY the ``Idempotency-Key`` header (empty when the request has
none): both are signed, so nobody on the path can move a request to another store or rewrite its key (which would
turn each retry of one charge into a new charge). PATH is the request target as sent: path plus ``?query`` when
there is one. METHOD is upper case. The test vector in ``tests/unit/test_signing.py`` was computed with
``openssl dgst -sha256 -hmac``, not with this module.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

VERSION = "bbx-hmac-v2"
MAX_SKEW_S = 300


def canonical(store_id: str, method: str, path: str, timestamp: str, nonce: str, idempotency_key: str,
              body: bytes) -> bytes:
    return "\n".join((VERSION, store_id, method.upper(), path, timestamp, nonce, idempotency_key,
                      hashlib.sha256(body).hexdigest())).encode()


def signature(secret: str, store_id: str, method: str, path: str, timestamp: str, nonce: str,
              idempotency_key: str, body: bytes) -> str:
    msg = canonical(store_id, method, path, timestamp, nonce, idempotency_key, body)
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def sign_headers(store_id: str, secret: str, method: str, path: str, body: bytes, now: float | None = None,
                 idempotency_key: str | None = None) -> dict[str, str]:
    """The headers of a signed request (``Idempotency-Key`` among them when given)."""
    ts = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    h = {"X-Store-Id": store_id, "X-Timestamp": ts, "X-Nonce": nonce,
         "X-Signature": signature(secret, store_id, method, path, ts, nonce, idempotency_key or "", body)}
    if idempotency_key is not None:
        h["Idempotency-Key"] = idempotency_key
    return h


def check_signature(secret: str, store_id: str, method: str, path: str, timestamp: str, nonce: str,
                    idempotency_key: str, body: bytes, sig: str) -> bool:
    """Constant-time comparison of the presented signature with the expected one."""
    expected = signature(secret, store_id, method, path, timestamp, nonce, idempotency_key, body)
    return hmac.compare_digest(expected.encode(), sig.strip().lower().encode())
