"""The terminal API's authentication as plain ASGI, in front of every route: a request to a terminal path is checked
from its headers alone (format, clock, a store this gateway knows) before one byte of its body is read; then the
body (its length already bounded by ``BodyLimit``) is read, the signature and the nonce are checked, and only then
does the route run — with the body replayed to it and the verified store id in ``request.state.store_id``.

A body cut short (the connection closed early) ends the request there: nothing runs and nothing is logged as an
error. The signing scheme itself is ``bingobox.wallet.signing``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from starlette.responses import JSONResponse

from bingobox.wallet.signing import MAX_SKEW_S, check_signature

TERMINAL_PREFIXES = ("/v1/charges", "/v1/refunds", "/v1/visits/", "/v1/inbox", "/v1/disputes/",
                     "/v1/data-requests/", "/v1/cards")
_STORE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[\x21-\x7e]{8,64}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def check_headers(h: dict[bytes, bytes], now: float, secret_of: Callable[[str], str | None]) -> tuple[str, str]:
    """(store id, its secret) from a request's headers, or ``Refusal``: everything that can be refused before the
    body is read."""
    def get(name: bytes) -> str:
        return h.get(name, b"").decode("latin-1")

    store, ts, nonce, sig = get(b"x-store-id"), get(b"x-timestamp"), get(b"x-nonce"), get(b"x-signature").strip()
    if not (store and ts and nonce and sig):
        raise Refusal(401, "unsigned", "X-Store-Id, X-Timestamp, X-Nonce and X-Signature are required")
    if not _STORE_ID.fullmatch(store):
        raise Refusal(401, "bad_store_id", "X-Store-Id must be 1..64 of A-Z a-z 0-9 _ . -")
    if not _TIMESTAMP.fullmatch(ts):
        raise Refusal(401, "bad_timestamp", "X-Timestamp must be unix seconds (1..12 digits)")
    if not _NONCE.fullmatch(nonce):
        raise Refusal(401, "bad_nonce", "X-Nonce must be 8..64 printable ASCII characters")
    if not _SIGNATURE.fullmatch(sig):
        raise Refusal(401, "bad_signature", "X-Signature must be 64 hex digits")
    if abs(now - int(ts)) > MAX_SKEW_S:
        raise Refusal(401, "clock_skew", f"timestamp is {now - int(ts):+.0f} s from gateway time (max {MAX_SKEW_S})")
    key = h.get(b"idempotency-key")
    if key and not _KEY.fullmatch(key.decode("latin-1")):  # (an empty one: the route says it is missing)
        raise Refusal(400, "idempotency_key_invalid", "Idempotency-Key must be 1..255 printable ASCII characters")
    secret = secret_of(store)
    if secret is None:
        raise Refusal(401, "bad_signature", "signature does not match")
    return store, secret


class TerminalAuth:
    """``secret_of(store_id)``: the store's signing secret (None: unknown); ``use_nonce(store, nonce, now)``: False
    when the nonce was seen before."""

    def __init__(self, app, secret_of: Callable[[str], str | None],
                 use_nonce: Callable[[str, str, float], bool]) -> None:
        self.app, self.secret_of, self.use_nonce = app, secret_of, use_nonce

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(TERMINAL_PREFIXES):
            await self.app(scope, receive, send)
            return
        h = dict(scope["headers"])
        now = time.time()
        try:
            store, secret = check_headers(h, now, self.secret_of)
        except Refusal as e:
            await _refuse(e, scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # cut short: nobody to answer, nothing to run
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        if not check_signature(secret, store, scope["method"], target, h[b"x-timestamp"].decode(),
                               h[b"x-nonce"].decode("latin-1"), h.get(b"idempotency-key", b"").decode("latin-1"),
                               body, h[b"x-signature"].decode("latin-1")):
            await _refuse(Refusal(401, "bad_signature", "signature does not match"), scope, receive, send)
            return
        if not self.use_nonce(store, h[b"x-nonce"].decode("latin-1"), now):
            await _refuse(Refusal(401, "nonce_reused", "this nonce was already used"), scope, receive, send)
            return
        scope.setdefault("state", {})["store_id"] = store
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(e: Refusal, scope, receive, send) -> None:
    await JSONResponse({"error": {"code": e.code, "message": str(e)}}, status_code=e.status,
                       headers={"Connection": "close"})(scope, receive, send)
