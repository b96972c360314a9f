"""The door's entry decision for a scanned code: offline token check, one-time use across restarts, and the
store's refusals (unpaid charges, offline exposure limits). Every refusal has a reason code.

``check`` only reads: the code is used up by whoever acts on it, in the same journal transaction as what it opens
(``core.visits.Tx.use_code``), so a crash between the two can neither lose the code's effect nor let it in twice."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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
    def clock_high_water(self) -> float: ...


@dataclass(frozen=True)
class Decision:
    ok: bool
    reason: str | None = None
    detail: str = ""
    claims: tokens.EntryClaims | None = None


def load_pinned_keys(path: str | Path) -> dict[str, Ed25519PublicKey]:
    """Read pinned keys: the JSON of the gateway's GET /v1/public-keys ({"keys": [{kid, alg, crv, x, not_after}]})."""
    return load_pinned(path)[0]


def load_pinned(path: str | Path) -> tuple[dict[str, Ed25519PublicKey], dict[str, float]]:
    """Pinned keys and, for retired ones, ``not_after`` (unix seconds: the end of their grace period)."""
    try:
        doc = json.loads(Path(path).read_text())
        usable = [k for k in doc["keys"] if k.get("alg") == tokens.ALG and k.get("crv") == "Ed25519"]
        keys = {k["kid"]: tokens.public_key_from_b64(k["x"]) for k in usable}
        not_after = {k["kid"]: float(k["not_after"]) for k in usable if k.get("not_after") is not None}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a pinned key file: {e}") from None
    if not keys:
        raise ValueError(f"{path}: holds no Ed25519 keys")
    return keys, not_after


CLOCK_SLACK_S = 5.0  # a clock this far behind the high-water mark is taken as set back (NTP steps are smaller)


class EntryGate:
    def __init__(self, keys: dict[str, Ed25519PublicKey], store_id: str, used: UsedCodes,
                 charges: ChargeState | None = None, clock: Callable[[], float] = time.time,
                 not_after: dict[str, float] | None = None) -> None:
        """``not_after``: per retired key, when it stops being trusted (a revoked key is never trusted forever)."""
        self.keys = keys
        self.not_after = not_after or {}
        self.store_id = store_id
        self.used = used
        self.charges = charges
        self._clock = clock

    def check(self, code: str, door: str) -> Decision:
        """Verify a code for ``door`` (reads only: the caller uses the code up with what it opens)."""
        now = self._clock()
        behind = self.used.clock_high_water() - now
        if behind > CLOCK_SLACK_S:  # set back: a code used before the step could be "new" again
            return Decision(False, "clock_behind", f"the clock is {behind:.0f} s behind the last code used: fix the "
                            "clock (or, once it is right, `bingobox reset-clock`)")
        keys = self.keys if not self.not_after else \
            {kid: k for kid, k in self.keys.items() if now <= self.not_after.get(kid, now)}
        try:
            claims = tokens.verify(code, keys, self.store_id, door, now)
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

    def check_account(self, account: str) -> Decision:
        """The store's refusals of an account itself (a card tapped: no code to verify): a clock set back, unpaid
        charges, the offline exposure limit."""
        behind = self.used.clock_high_water() - self._clock()
        if behind > CLOCK_SLACK_S:
            return Decision(False, "clock_behind", f"the clock is {behind:.0f} s behind the last code used")
        if self.charges is not None:
            if account in self.charges.debtors():
                return Decision(False, "unpaid_charges", "the account has a declined charge to settle")
            ok, why = self.charges.admission()
            if not ok:
                return Decision(False, "store_offline_limit", why or "")
        return Decision(True)

    def replace_keys(self, keys: dict[str, Ed25519PublicKey], not_after: dict[str, float]) -> None:
        """New pinned keys (a reload after ``bingobox fetch-keys``), swapped in one assignment each."""
        self.keys, self.not_after = keys, not_after
