"""A simulated wallet gateway in process: the same answers as ``hardware/gateway`` (and the real wallets), given
to the outbox through the ``WalletClient`` interface, with the faults that matter for money — outages, 5xx,
answers lost after the charge was committed (the double-charge trap), charges left pending while the shopper pays,
declines, and 4xx refusals of a malformed charge. Its ledger is the simulation's oracle."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from bingobox.wallet.client import Outcome, Result


@dataclass
class Faults:
    outage: bool = False
    error_rate: float = 0.0  # 5xx / 429 before anything happens
    drop_rate: float = 0.0  # the charge is committed, the answer is lost
    pending_rate: float = 0.0  # the shopper is asked to confirm: pending for pending_s, then succeeded
    pending_s: float = 4.0
    reject: bool = False  # every new charge refused as malformed (400)


@dataclass
class Charge:
    id: str
    key: str
    account: str
    visit: str
    amount_fen: int
    status: str  # succeeded | pending | failed | canceled
    created: float
    settle_at: float | None = None
    reason: str | None = None


@dataclass
class SimGateway:
    clock: Callable[[], float]
    rng: random.Random
    balances: dict[str, int] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    charges: dict[str, Charge] = field(default_factory=dict)  # by idempotency key
    by_id: dict[str, Charge] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # entry codes issued: jti → account
    bound: dict[str, str] = field(default_factory=dict)  # jti → the visit its first charge named
    counts: dict[str, int] = field(default_factory=lambda: {"requests": 0, "outage": 0, "errors": 0, "drops": 0,
                                                            "pending": 0, "rejected": 0, "unbound": 0})

    # the WalletClient interface ---------------------------------------------------------------------------
    def create_charge(self, key: str, payload: dict) -> Result:
        if (r := self._trouble()) is not None:
            return r
        ch = self.charges.get(key)
        if ch is None:
            if self.faults.reject:
                self.counts["rejected"] += 1
                return Result(Outcome.REJECTED, None, 400, "HTTP 400 bad_request: injected refusal")
            jti = str(payload.get("entry_jti"))
            if self.codes.get(jti) != payload["account_id"] or self.bound.get(jti, payload["visit_id"]) != \
                    payload["visit_id"]:  # (protocol 2: a charge is bound to the code of its visit)
                self.counts["unbound"] += 1
                return Result(Outcome.REJECTED, None, 403, f"HTTP 403 not_your_code: {jti}")
            self.bound[jti] = payload["visit_id"]
            ch = self._new(key, payload)
        self._settle(ch)
        if self.rng.random() < self.faults.drop_rate:
            self.counts["drops"] += 1
            return Result(Outcome.UNKNOWN, None, None, "ConnectionError: dropped after commit")
        return self._answer(ch)

    def find_by_key(self, key: str) -> Result:
        if (r := self._trouble()) is not None:
            return r
        ch = self.charges.get(key)
        if ch is None:
            return Result(Outcome.NOT_FOUND, None, 200)
        self._settle(ch)
        return self._answer(ch)

    def get_charge(self, charge_id: str) -> Result:
        if (r := self._trouble()) is not None:
            return r
        ch = self.by_id.get(charge_id)
        if ch is None:
            return Result(Outcome.REJECTED, None, 404, "HTTP 404 charge_not_found")
        self._settle(ch)
        return self._answer(ch)

    def cancel(self, charge_id: str) -> Result:
        if (r := self._trouble()) is not None:
            return r
        ch = self.by_id.get(charge_id)
        if ch is None:
            return Result(Outcome.REJECTED, None, 404, "HTTP 404 charge_not_found")
        self._settle(ch)
        if ch.status == "succeeded":
            return Result(Outcome.ALREADY_SUCCEEDED, None, 409, "charge_already_succeeded")
        if ch.status == "pending":
            ch.status = "canceled"
        return self._answer(ch)

    def close(self) -> None:
        pass

    # the ledger ----------------------------------------------------------------------------------------
    def succeeded(self) -> list[Charge]:
        return [c for c in self.charges.values() if c.status == "succeeded"]

    def _trouble(self) -> Result | None:
        self.counts["requests"] += 1
        if self.faults.outage:
            self.counts["outage"] += 1
            return Result(Outcome.UNKNOWN, None, 503, "HTTP 503 outage")
        if self.rng.random() < self.faults.error_rate:
            self.counts["errors"] += 1
            return Result(Outcome.UNKNOWN, None, 500, "HTTP 500 injected")
        return None

    def _new(self, key: str, payload: dict) -> Charge:
        cid = f"ch_{len(self.charges) + 1:06d}"
        ch = Charge(cid, key, payload["account_id"], payload["visit_id"], payload["amount_fen"], "pending",
                    self.clock())
        if self.rng.random() < self.faults.pending_rate:
            self.counts["pending"] += 1
            ch.settle_at = self.clock() + self.faults.pending_s
        else:
            self._pay(ch)
        self.charges[key] = ch
        self.by_id[cid] = ch
        return ch

    def _pay(self, ch: Charge) -> None:
        bal = self.balances.get(ch.account, 0)
        if bal >= ch.amount_fen:
            self.balances[ch.account] = bal - ch.amount_fen
            ch.status = "succeeded"
        else:
            ch.status, ch.reason = "failed", "insufficient_balance"

    def _settle(self, ch: Charge) -> None:
        if ch.status == "pending" and ch.settle_at is not None and self.clock() >= ch.settle_at:
            self._pay(ch)

    @staticmethod
    def _answer(ch: Charge) -> Result:
        body = {"id": ch.id, "status": ch.status, "amount_fen": ch.amount_fen, "failure_reason": ch.reason}
        if ch.status == "failed":
            return Result(Outcome.DECLINED, body, 402, ch.reason)
        return Result({"succeeded": Outcome.SUCCEEDED, "pending": Outcome.PENDING,
                       "canceled": Outcome.CANCELED}[ch.status], body, 200)
