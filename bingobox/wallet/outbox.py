"""The durable charge outbox: a charge intent with its idempotency key is committed before the first attempt;
one sender retries with the same key and backoff, resolves unknown results by querying, and cancels a charge
left pending past the wallet's window. A new key is issued only after the old charge is known closed
(canceled, or declined and retried as debt). Pending intents resume after a restart.

States of an intent:  pending → succeeded | paying | declined | failed,  paying → succeeded | declined | canceled.
A canceled intent is followed at once by a new intent (new key) for the same visit; a declined one is debt,
retried with a new key every ``debt_retry_s``. A charge the gateway refuses as malformed (a 4xx that is not a
decline) is tried ``max_rejections`` times and then ``failed``: final, out of the exposure totals, an alarm for the
operator, who may charge it again once the cause is mended. Per visit, at most one intent ever succeeds.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from ..config import WalletConfig, WalletLimits
from ..journal import Journal
from ..worker import Backoff, Worker, backoff_s
from .client import ChargeClient, Outcome, Result

log = logging.getLogger(__name__)
OPEN = ("pending", "paying")
Limits = WalletLimits  # offline exposure bounds: one definition, the config's


def _default(name: str) -> Any:
    return WalletConfig.model_fields[name].default


@dataclass(frozen=True)
class Policy:
    """The sender's timing: the config's ``[wallet]`` values (its defaults are the defaults here too)."""

    retry_base_s: float = _default("retry_base_s")
    retry_max_s: float = _default("retry_max_s")
    poll_interval_s: float = _default("poll_interval_s")
    paying_window_s: float = _default("paying_window_s")
    debt_retry_s: float = _default("debt_retry_s")
    max_rejections: int = _default("max_rejections")  # 4xx refusals (not declines) before the intent is failed

    @classmethod
    def of(cls, w: WalletConfig) -> Policy:
        return cls(**{f.name: getattr(w, f.name) for f in fields(cls)})


class Outbox:
    def __init__(self, journal: Journal, client: ChargeClient, limits: Limits | None = None,
                 policy: Policy | None = None, on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self.j = journal
        self.client = client
        self.limits = limits or Limits()
        self.policy = policy or Policy()
        self._on_event = on_event or (lambda kind, data: None)
        self._clock = clock
        self._failures: dict[int, int] = {}  # intent → failed exchanges in a row (the backoff)
        self._seeded = rng is not None  # a simulation's replayable keys; otherwise from os.urandom
        self._rng = rng or random.Random()
        self._wake = threading.Event()
        self._worker = Worker("outbox", self._run, join_s=10)
        self._stop = self._worker.stopping
        self._step_backoff = Backoff(0.1, 5.0)  # steps that raise in a row (a disk fault): never a tight loop
        self.stats = {"attempts": 0, "succeeded": 0, "declined": 0, "canceled": 0, "unknown": 0, "failed": 0,
                      "step_failures": 0}
        self.step_failures = 0  # steps in a row that raised
        self.gateway_ok: bool | None = None  # how the last exchange with the gateway went (None: none yet)

    # submitting ----------------------------------------------------------------------------------
    def submit(self, visit_id: str, account_id: str, amount_fen: int, items: list[dict[str, Any]],
               supersedes: int | None = None, entry_jti: str | None = None) -> int:
        """Commit a charge intent (durably) and wake the sender. Returns the intent id."""
        with self.j.tx() as c:
            intent_id = self.add_intent_in(c, visit_id, account_id, amount_fen, items, supersedes, entry_jti)
        self.wake()
        return intent_id

    def add_intent_in(self, c: Any, visit_id: str, account_id: str, amount_fen: int, items: list[dict[str, Any]],
                      supersedes: int | None = None, entry_jti: str | None = None, supplement: bool = False) -> int:
        """Write a charge intent inside the caller's transaction (the visit's checkout commits it with the basket);
        call ``wake()`` once that transaction is committed. ``entry_jti``: the code that opened the visit — the
        gateway takes a charge only for an account whose code, issued for this store, it names (None: read from
        the visit's evidence when it is sent). ``supplement``: an operator's charge for an ended visit that was
        reviewed (beside its checkout's intent, with a key of its own)."""
        if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
            raise ValueError(f"amount must be a positive integer number of fen, got {amount_fen!r}")
        now = self._clock()
        if supersedes is None and not supplement and \
                c.execute("SELECT 1 FROM charge_intents WHERE visit_id=?", (visit_id,)).fetchone():
            raise ValueError(f"visit {visit_id} already has a charge intent")
        key = str(uuid.UUID(int=self._rng.getrandbits(128), version=4) if self._seeded else uuid.uuid4())
        cur = c.execute(
            "INSERT INTO charge_intents (visit_id, account_id, amount_fen, items, idem_key, state, "
            "next_attempt_at, supersedes, entry_jti, created_at, updated_at) VALUES (?,?,?,?,?,'pending',?,?,?,?,?)",
            (visit_id, account_id, amount_fen, json.dumps(items), key, now, supersedes, entry_jti, now, now))
        return int(cur.lastrowid)

    def wake(self) -> None:
        self._wake.set()

    def retry_failed(self, visit_id: str) -> int:
        """Charge a failed intent again with a new key (the operator mended the cause). Returns the new intent."""
        it = self.visit_state(visit_id)
        if it is None or it["state"] != "failed":
            raise ValueError(f"visit {visit_id} has no failed charge")
        return self.submit(visit_id, it["account_id"], it["amount_fen"], json.loads(it["items"]), supersedes=it["id"],
                           entry_jti=it["entry_jti"])

    def intent(self, intent_id: int) -> dict[str, Any]:
        row = self.j.one("SELECT * FROM charge_intents WHERE id=?", (intent_id,))
        return dict(row) if row else {}

    def visit_state(self, visit_id: str) -> dict[str, Any] | None:
        """The newest intent of a visit (a canceled/declined intent may have a successor)."""
        row = self.j.one("SELECT * FROM charge_intents WHERE visit_id=? ORDER BY id DESC LIMIT 1", (visit_id,))
        return dict(row) if row else None

    # limits and debts ----------------------------------------------------------------------------
    def exposure(self) -> dict[str, Any]:
        row = self.j.one(f"SELECT COUNT(*) n, COALESCE(SUM(amount_fen), 0) s, MIN(created_at) oldest "
                         f"FROM charge_intents WHERE state IN {OPEN}")
        assert row is not None  # (an aggregate: always one row)
        age = self._clock() - row["oldest"] if row["oldest"] else 0.0
        return {"pending_count": row["n"], "pending_fen": row["s"], "oldest_pending_age_s": round(age, 1)}

    def admission(self, exposure: dict[str, Any] | None = None) -> tuple[bool, str | None]:
        """May another shopper come in? (Never consulted for anyone leaving.) ``exposure``: already read."""
        e, lim = exposure or self.exposure(), self.limits
        if e["pending_count"] >= lim.max_pending_count:
            return False, "too_many_pending_charges"
        if e["pending_fen"] + lim.max_visit_fen > lim.max_pending_fen:
            return False, "pending_charges_sum"
        if e["oldest_pending_age_s"] > lim.max_pending_age_s:
            return False, "pending_charge_too_old"
        return True, None

    def debtors(self) -> set[str]:
        """Accounts with a declined charge not yet settled by a later successful one."""
        rows = self.j.all("SELECT DISTINCT account_id FROM charge_intents d WHERE state='declined' AND NOT EXISTS "
                          "(SELECT 1 FROM charge_intents s WHERE s.visit_id=d.visit_id AND s.state='succeeded')")
        return {r["account_id"] for r in rows}

    def status(self) -> dict[str, Any]:
        counts = {r["state"]: r["n"] for r in self.j.all("SELECT state, COUNT(*) n FROM charge_intents GROUP BY state")}
        exposure = self.exposure()
        ok, why = self.admission(exposure)
        return {"intents": counts, **exposure, "admission": ok, "admission_reason": why,
                "gateway_ok": self.gateway_ok,
                "debtors": len(self.debtors()), **self.stats}

    # the sender ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._worker.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.step()
            except Exception:
                self._wake.wait(self.step_failed())  # (the intent is unchanged: it would be due again at once)
                self._wake.clear()
                continue
            self.step_failures = 0
            if worked:
                continue
            row = self.j.one("SELECT MIN(next_attempt_at) t FROM charge_intents WHERE state IN ('pending','paying') "
                             "OR (state='declined' AND retried=0)")
            assert row is not None
            wait = 1.0 if row["t"] is None else min(1.0, max(0.0, row["t"] - self._clock()))
            self._wake.wait(wait)
            self._wake.clear()

    def step_failed(self) -> float:
        """A step raised (a failing disk, a bug): log it (the first of a streak in full, then every 50th) and say
        how long to wait before the next step — doubling from 0.1 s to 5 s, so a lasting fault neither spins the
        sender nor floods the gateway and the log."""
        self.step_failures += 1
        n = self.step_failures
        if n == 1 or n % 50 == 0:
            log.exception("outbox step failed (%d in a row)", n)
        self.stats["step_failures"] += 1
        return self._step_backoff.delay(n)

    def step(self) -> bool:
        """Work on the oldest intent that is due (after an outage the charges land in the order of the visits);
        False if none is due."""
        now = self._clock()
        debt = "OR (state='declined' AND retried=0)" if self.policy.debt_retry_s else ""
        row = self.j.one(f"SELECT * FROM charge_intents WHERE (state IN ('pending','paying') {debt}) "
                         "AND next_attempt_at <= ? ORDER BY id LIMIT 1", (now,))
        if row is None:
            return False
        it = dict(row)
        if it["state"] == "pending":
            self._send(it, now)
        elif it["state"] == "paying":
            self._poll(it, now)
        else:
            self._retry_debt(it)
        return True

    def _update(self, it: dict[str, Any], successor: bool = False, **fields: Any) -> None:
        """Change an intent (one durable transaction). ``successor``: in the same transaction, a new intent (new
        key) for the same visit takes over — a crash between the two would leave the visit never charged."""
        fields["updated_at"] = self._clock()
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.j.tx() as c:
            c.execute(f"UPDATE charge_intents SET {sets} WHERE id=?", (*fields.values(), it["id"]))
            if successor:
                self.add_intent_in(c, it["visit_id"], it["account_id"], it["amount_fen"], json.loads(it["items"]),
                                   supersedes=it["id"], entry_jti=it["entry_jti"])
        it.update(fields)
        if successor:
            self.wake()

    def _backoff(self, it: dict[str, Any], error: str | None) -> None:
        """No answer (or one that settles nothing): try again later, the wait doubling with each failure in a row
        (queries count too: a gateway that is down is not asked ten times a second)."""
        self.gateway_ok = False
        n = self._failures[it["id"]] = self._failures.get(it["id"], 0) + 1
        delay = backoff_s(n, self.policy.retry_base_s, self.policy.retry_max_s) * self._rng.uniform(0.8, 1.2)
        self.stats["unknown"] += 1
        if n in (1, 5) or n % 20 == 0:
            log.warning("charge %s (visit %s): %s; retrying in %.1fs with the same key", it["idem_key"],
                        it["visit_id"], error, delay)
        self._update(it, next_attempt_at=self._clock() + delay, last_error=(error or "")[:300])

    def _reject(self, it: dict[str, Any], error: str | None) -> None:
        """A 4xx that is not a decline: retrying with the same request cannot succeed by itself. Bounded."""
        n = it["rejections"] + 1
        log.error("charge %s (visit %s) rejected by the gateway (%d/%d): %s", it["idem_key"], it["visit_id"], n,
                  self.policy.max_rejections, error)
        if n < self.policy.max_rejections:
            self._update(it, rejections=n)
            self._backoff(it, error)
            return
        self.gateway_ok = True  # it answered: the gateway is up, the charge is what is wrong
        self._update(it, rejections=n, state="failed", reason=(error or "rejected")[:300], last_error=error)
        self.stats["failed"] += 1
        self._finished(it, "charge_failed")

    def _send(self, it: dict[str, Any], now: float) -> None:
        if it["attempts"] > 0:
            # an earlier attempt may have reached the gateway: ask before charging again
            found = self.client.find_by_key(it["idem_key"])
            if found.outcome == Outcome.NOT_FOUND:
                pass
            elif found.outcome == Outcome.UNKNOWN:
                self._backoff(it, found.error)
                return
            elif found.outcome == Outcome.REJECTED:
                self._reject(it, found.error)
                return
            else:
                self._adopt(it, found)
                return
        # commit the attempt before it leaves: after a crash we then know to query first
        self._update(it, attempts=it["attempts"] + 1, first_attempt_at=it["first_attempt_at"] or now)
        self.stats["attempts"] += 1
        payload = {"account_id": it["account_id"], "amount_fen": it["amount_fen"], "currency": it["currency"],
                   "visit_id": it["visit_id"], "entry_jti": it["entry_jti"] or self._code_of(it["visit_id"]),
                   "items": json.loads(it["items"])}
        it["sent_at"] = self._clock()
        result = self.client.create_charge(it["idem_key"], payload)
        it["answered_at"] = self._clock()
        if result.outcome == Outcome.IN_FLIGHT:
            self._update(it, next_attempt_at=self._clock() + 0.5, last_error=result.error)
        elif result.outcome == Outcome.UNKNOWN:
            self._backoff(it, result.error)
        elif result.outcome == Outcome.REJECTED:
            self._reject(it, result.error)
        else:
            self._adopt(it, result)

    def _gateway_back(self) -> None:
        """The gateway answers again after failing: every charge waiting out its back-off is due now, so the queue
        drains at once and in the order of the visits (not as each one's back-off happens to end, up to
        ``retry_max_s`` later). Their back-off counts stay: if it fails again they wait as before."""
        with self.j.tx() as c:
            n = c.execute("UPDATE charge_intents SET next_attempt_at=? WHERE state='pending' AND attempts > 0 AND "
                          "next_attempt_at > ?", (self._clock(), self._clock())).rowcount
        if n:
            log.info("the wallet gateway answers again: %d waiting charges are due now", n)

    def _code_of(self, visit_id: str) -> str | None:
        """The code a visit's evidence names (an intent written before intents carried it)."""
        row = self.j.one("SELECT json_extract(data, '$.jti') AS jti FROM visit_events WHERE visit_id=? AND "
                         "json_extract(data, '$.jti') IS NOT NULL ORDER BY id LIMIT 1", (visit_id,))
        return row["jti"] if row else None

    def _adopt(self, it: dict[str, Any], r: Result) -> None:
        """Take the gateway's word on the charge."""
        if self.gateway_ok is False:
            self._gateway_back()
        self.gateway_ok = True
        self._failures.pop(it["id"], None)
        charge_id = (r.charge or {}).get("id") or it["charge_id"]
        if r.outcome == Outcome.SUCCEEDED:
            self._update(it, state="succeeded", charge_id=charge_id, last_error=None)
            self.stats["succeeded"] += 1
            self._finished(it, "charge_succeeded")
        elif r.outcome == Outcome.PENDING:
            self._update(it, state="paying", charge_id=charge_id,
                         next_attempt_at=self._clock() + self.policy.poll_interval_s)
        elif r.outcome == Outcome.DECLINED:
            reason = r.error or ((r.charge or {}).get("failure_reason")) or "declined"
            self._update(it, state="declined", charge_id=charge_id, reason=reason,
                         next_attempt_at=self._clock() + self.policy.debt_retry_s)
            self.stats["declined"] += 1
            self._finished(it, "charge_declined")
        elif r.outcome == Outcome.CANCELED:
            self._update(it, successor=True, state="canceled", charge_id=charge_id)
            self.stats["canceled"] += 1
            self._on_event("charge_canceled", {"visit_id": it["visit_id"], "charge_id": charge_id})
        else:
            self._backoff(it, f"unexpected answer {r.outcome}")

    def _poll(self, it: dict[str, Any], now: float) -> None:
        r = self.client.get_charge(it["charge_id"])
        if r.outcome in (Outcome.UNKNOWN, Outcome.REJECTED, Outcome.NOT_FOUND):
            self._update(it, next_attempt_at=now + self.policy.poll_interval_s, last_error=r.error)
            return
        if r.outcome != Outcome.PENDING:
            self._adopt(it, r)
            return
        if now - it["first_attempt_at"] < self.policy.paying_window_s:
            self._update(it, next_attempt_at=now + self.policy.poll_interval_s)
            return
        c = self.client.cancel(it["charge_id"])  # past the window: close it, right after the last query
        if c.outcome == Outcome.ALREADY_SUCCEEDED:
            self._adopt(it, self.client.get_charge(it["charge_id"]))
        elif c.outcome in (Outcome.CANCELED, Outcome.DECLINED, Outcome.SUCCEEDED):
            self._adopt(it, c)
        else:
            self._update(it, next_attempt_at=now + self.policy.poll_interval_s, last_error=c.error)

    def _retry_debt(self, it: dict[str, Any]) -> None:
        log.info("retrying the declined charge of visit %s with a new key", it["visit_id"])
        self._update(it, successor=True, retried=1)

    def _finished(self, it: dict[str, Any], kind: str) -> None:
        data = {"visit_id": it["visit_id"], "charge_id": it["charge_id"], "amount_fen": it["amount_fen"],
                "reason": it.get("reason")}
        if "sent_at" in it:  # this attempt's request and answer (the exit's stage timings)
            data.update(sent_at=it["sent_at"], answered_at=it["answered_at"])
        self._on_event(kind, data)
