"""The terminal's HTTP client for the wallet gateway: signed requests on a kept-alive requests.Session,
explicit connect/read timeouts, and every answer sorted into an Outcome the outbox can act on.
Transport-level retries are off: retries are the outbox's, always with the same idempotency key."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from .signing import sign_headers

log = logging.getLogger(__name__)


Body = dict[str, Any]  # a JSON object


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"  # the shopper is paying (user-paying); query again
    DECLINED = "declined"  # final: no money moved (insufficient balance, frozen, unknown account)
    CANCELED = "canceled"
    NOT_FOUND = "not_found"
    ALREADY_SUCCEEDED = "already_succeeded"  # answer to a cancel: the charge went through
    IN_FLIGHT = "in_flight"  # 409: the same key is being processed; retry with the same key
    UNKNOWN = "unknown"  # timeout, broken connection, 5xx, 429: the result is not known
    REJECTED = "rejected"  # 4xx that retrying will not fix by itself (signature, clock, bad request)


@dataclass
class Result:
    outcome: Outcome
    charge: Body | None = None
    status: int | None = None
    error: str | None = None


_STATUS = {"succeeded": Outcome.SUCCEEDED, "pending": Outcome.PENDING, "failed": Outcome.DECLINED,
           "canceled": Outcome.CANCELED}


def outcome_of_charge(charge: Body) -> Outcome:
    return _STATUS.get(charge.get("status", ""), Outcome.UNKNOWN)


def refund_outcome(status: int | None, body: Body | None) -> bool | None:
    """What a refund's answer says: True refunded; False refused (no money moved); None unknown (a timeout, a 5xx,
    429, the same key still in flight) — then the same request, with the same key, is asked again."""
    if status == 200 and body is not None:
        return True
    code = ((body or {}).get("error") or {}).get("code")
    if status is None or status >= 500 or status == 429 or code == "idempotency_key_in_use":
        return None
    return False


def session(tls_fingerprint: str | None = None) -> requests.Session:
    """The one way this product talks HTTP to the wallet gateway: a kept-alive session, no transport retries (retries
    are the caller's, with the same idempotency key), the certificate checked against the system's CAs — or, with
    ``tls_fingerprint`` (SHA-256, hex, colons allowed), pinned to that certificate whoever signed it."""
    http = requests.Session()
    fp = None
    if tls_fingerprint:
        fp = tls_fingerprint.replace(":", "").lower()
        if len(fp) != 64 or any(ch not in "0123456789abcdef" for ch in fp):
            raise ValueError("the TLS fingerprint is the certificate's SHA-256 (64 hex digits)")

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *a: Any, **kw: Any) -> None:
            if fp is not None:
                kw["assert_fingerprint"] = fp  # the certificate itself, whoever signed it
            super().init_poolmanager(*a, **kw)

    adapter = Adapter(max_retries=0, pool_connections=1, pool_maxsize=2)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    if fp is not None:
        http.verify = False  # (the fingerprint is the check)
    return http


class ChargeClient(Protocol):
    """What the outbox needs of the wallet: the charge calls, each answered with a sorted Result (the
    HTTP client below; the deterministic simulation's in-process gateway)."""

    def create_charge(self, key: str, payload: Body) -> Result: ...

    def find_by_key(self, key: str) -> Result: ...

    def get_charge(self, charge_id: str) -> Result: ...

    def cancel(self, charge_id: str) -> Result: ...


class WalletClient:
    def __init__(self, base_url: str, store_id: str, secret: str, connect_timeout: float = 1.0,
                 read_timeout: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.store_id = store_id
        self._secret = secret
        self.timeout = (connect_timeout, read_timeout)
        self.session = session()

    def close(self) -> None:
        self.session.close()

    def _call(self, method: str, path: str, body: Body | None = None,
              idempotency_key: str | None = None) -> tuple[int | None, Body | None, str | None]:
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        h = sign_headers(self.store_id, self._secret, method, path, data, idempotency_key=idempotency_key)
        if body is not None:
            h["Content-Type"] = "application/json"
        try:
            r = self.session.request(method, self.base_url + path, data=data or None, headers=h, timeout=self.timeout)
        except requests.RequestException as e:
            return None, None, f"{type(e).__name__}: {e}"
        try:
            return r.status_code, r.json(), None
        except ValueError:
            return r.status_code, None, f"HTTP {r.status_code} without a JSON body"

    def call(self, method: str, path: str, body: Body | None = None) -> tuple[int | None, Body | None, str | None]:
        """A signed request without an idempotency key (PUTs and reads): (status, JSON body, transport error)."""
        return self._call(method, path, body)

    @staticmethod
    def _classify(status: int | None, body: Body | None, err: str | None) -> Result:
        if status is None:
            return Result(Outcome.UNKNOWN, error=err)
        error = (body or {}).get("error") or {}
        msg = f"HTTP {status} {error.get('code', '')}: {error.get('message', err or '')}".strip()
        if status in (200, 202) and body is not None and "status" in body:
            return Result(outcome_of_charge(body), body, status)
        if status == 402:
            return Result(Outcome.DECLINED, error.get("charge"), status, error.get("reason") or "declined")
        if status == 404 and error.get("code") == "account_not_found":
            return Result(Outcome.DECLINED, None, status, "account_not_found")
        if status == 409 and error.get("code") == "idempotency_key_in_use":
            return Result(Outcome.IN_FLIGHT, None, status, msg)
        if status == 409 and error.get("code") == "charge_already_succeeded":
            return Result(Outcome.ALREADY_SUCCEEDED, None, status, msg)
        if status == 429 or status >= 500 or body is None:
            return Result(Outcome.UNKNOWN, None, status, msg)
        return Result(Outcome.REJECTED, None, status, msg)

    def create_charge(self, key: str, payload: Body) -> Result:
        return self._classify(*self._call("POST", "/v1/charges", payload, key))

    def find_by_key(self, key: str) -> Result:
        status, body, err = self._call("GET", f"/v1/charges?idempotency_key={quote(key, safe='')}")
        if status == 200 and body is not None:
            data = body.get("data") or []
            return Result(outcome_of_charge(data[0]), data[0], status) if data else Result(Outcome.NOT_FOUND, None, 200)
        return self._classify(status, body, err)

    def get_charge(self, charge_id: str) -> Result:
        return self._classify(*self._call("GET", f"/v1/charges/{charge_id}"))

    def cancel(self, charge_id: str) -> Result:
        return self._classify(*self._call("POST", f"/v1/charges/{charge_id}/cancel", {}))

    def refund(self, key: str, charge_id: str, amount_fen: int, reason: str) -> tuple[int | None, Body | None, str]:
        """Refund (part of) a succeeded charge; the HTTP status, the body and a one-line description."""
        status, body, err = self._call("POST", "/v1/refunds",
                                       {"charge_id": charge_id, "amount_fen": amount_fen, "reason": reason},
                                       key)
        error = (body or {}).get("error") or {}
        return status, body, err or f"HTTP {status} {error.get('code', '')} {error.get('message', '')}".strip()
