"""The door's entry decision for a scanned code: offline token check, one-time use across restarts, and the
store's refusals (unpaid charges, offline exposure limits). Every refusal has a reason code.

``check`` only reads: the code is used up by whoever acts on it, in the same journal transaction as what it opens
(``UsedCodes.use_in``), so a crash between the two can neither lose the code's effect nor let it in twice."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import tokens


class ChargeState(Protocol):
    def admission(self) -> tuple[bool, str | None]: ...
    def debtors(self) -> set[str]: ...


class UsedCodes(Protocol):
    """The replay cache (the journal's ``entry_replay``)."""

    def jti_used(self, jti: str) -> bool: ...


@dataclass(frozen=True)
class Decision:
    ok: bool
    reason: str | None = None
    detail: str = ""
    claims: tokens.EntryClaims | None = None


def load_pinned_keys(path: str | Path) -> dict[str, Ed25519PublicKey]:
    """Read pinned keys: the JSON of the gateway's GET /v1/public-keys ({"keys": [{kid, alg, crv, x}]})."""
    try:
        doc = json.loads(Path(path).read_text())
        keys = {k["kid"]: tokens.public_key_from_b64(k["x"]) for k in doc["keys"]
                if k.get("alg") == tokens.ALG and k.get("crv") == "Ed25519"}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a pinned key file: {e}") from None
    if not keys:
        raise ValueError(f"{path}: holds no Ed25519 keys")
    return keys


class EntryGate:
    def __init__(self, keys: dict[str, Ed25519PublicKey], store_id: str, used: UsedCodes,
                 charges: ChargeState | None = None, clock=time.time) -> None:
        self.keys = keys
        self.store_id = store_id
        self.used = used
        self.charges = charges
        self._clock = clock

    def check(self, code: str, door: str) -> Decision:
        """Verify a code for ``door`` (reads only: the caller uses the code up with what it opens)."""
        now = self._clock()
        try:
            claims = tokens.verify(code, self.keys, self.store_id, door, now)
        except tokens.CodeRejected as e:
            return Decision(False, e.reason.value, e.detail)
        if self.used.jti_used(claims.jti):
            return Decision(False, tokens.Reject.REPLAYED.value, "this code was used already", claims)
        if self.charges is not None:
            if claims.account in self.charges.debtors():
                return Decision(False, "unpaid_charges", "the account has a declined charge to settle", claims)
            ok, why = self.charges.admission()
            if not ok:
                return Decision(False, "store_offline_limit", why or "", claims)
        return Decision(True, None, "", claims)
