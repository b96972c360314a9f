"""The operator's money actions, through the wallet gateway (outside the control loop: they wait on the network):
a refund of a charge, and a shopper's dispute decided (accepted: refunded once, whatever the presses; rejected with
a reason). Each says True (done), False (refused: no money moved) or None (the outcome is unknown: the same request
again learns it), and why."""

from __future__ import annotations

from typing import Any

from ..actions import DecideReview, Refund, ResolveDispute
from ..journal import Journal
from . import records
from .client import WalletClient, refund_outcome

Outcome = tuple[bool | None, str]


class Money:
    """``client``: a gateway client of its own (its session is used by the screen's worker threads only)."""

    def __init__(self, client: WalletClient, journal: Journal) -> None:
        self.client, self.journal = client, journal

    def close(self) -> None:
        self.client.close()

    def refund(self, key: str, args: Refund) -> Outcome:
        """True: refunded; False: the gateway refused (no money moved); None: no clear answer (a timeout, a 5xx,
        the same refund still in flight) — the operator retries the same request, never a new one."""
        status, body, detail = self.client.refund(key, args.charge_id, args.amount_fen, args.reason)
        ok = refund_outcome(status, body)
        if ok and body is not None:
            amount = body.get("amount_fen", args.amount_fen)
            return True, f"refunded {amount} fen of {args.charge_id} ({body.get('id')})"
        if ok is None:
            return None, f"outcome unknown ({detail}): retry this same refund to learn it"
        return False, detail

    def review_refund(self, operator: str, args: DecideReview) -> Outcome:
        """A reviewed visit decided as a refund: through the gateway under the key ``review-<visit>`` (however often
        it is pressed, refunded once), then the review decided (the shopper's receipt shows it)."""
        r = self.journal.review_of(args.visit_id)
        if r is None or r["state"] != "open":
            return False, f"visit {args.visit_id} has no open review"
        row = self.journal.one("SELECT charge_id, amount_fen FROM charge_intents WHERE visit_id=? AND "
                               "state='succeeded' AND charge_id IS NOT NULL ORDER BY id LIMIT 1", (args.visit_id,))
        if row is None:
            return False, f"nothing of visit {args.visit_id} was charged: close it instead"
        amount = args.amount_fen or 0
        if amount > row["amount_fen"]:
            return False, f"the visit was charged {row['amount_fen']} fen: refund at most that"
        status, body, detail = self.client.refund(f"review-{args.visit_id}", row["charge_id"], amount,
                                                  f"review of {args.visit_id}")
        ok = refund_outcome(status, body)
        if ok is None:
            return None, f"refund outcome unknown ({detail}): decide again (it is refunded once)"
        if not ok:
            return False, f"refund refused: {detail}"
        self.journal.decide_review(args.visit_id, "refund", args.reason, operator, amount)
        return True, f"visit {args.visit_id}: refunded {amount} fen ({(body or {}).get('id')})"

    def resolve(self, operator: str, args: ResolveDispute | DecideReview) -> Outcome:
        """Decide a shopper's dispute (or a reviewed visit as a refund: ``review_refund``): accepted → the refund
        (key ``dispute-<id>``: however often the operator
        presses Accept, it is refunded once), then the decision to the wallet; rejected → the decision, its reason."""
        if isinstance(args, DecideReview):
            return self.review_refund(operator, args)
        d = records.dispute(self.journal, args.dispute_id)
        if d is None:
            return False, f"no dispute {args.dispute_id}"
        if d["state"] != "open":
            return False, f"dispute {d['id']} is {d['state']} already"
        refund_id, decision = None, "accepted" if args.decision == "accept" else "rejected"
        if decision == "accepted":
            amount = args.amount_fen or d["claimed_fen"]
            if amount > d["claimed_fen"]:
                return False, f"the shopper claimed {d['claimed_fen']} fen: refund at most that"
            # the body depends on the dispute alone (not on this press's reason): pressing Accept again is the same
            # request under the same key, so it is answered as the first was and never refunds twice
            status, body, detail = self.client.refund(f"dispute-{d['id']}", d["charge_id"], amount,
                                                      f"dispute {d['id']}")
            ok = refund_outcome(status, body)
            if ok is None:
                return None, f"refund outcome unknown ({detail}): accept again (it is refunded once)"
            if not ok or body is None:
                return False, f"refund refused: {detail}"
            refund_id = body["id"]
        status, answer, err = self.client.call("POST", f"/v1/disputes/{d['id']}/resolution",
                                               {"decision": decision, "reason": args.reason, "operator": operator,
                                                "refund_id": refund_id})
        if status == 200:
            records.decided(self.journal, d["id"], decision, args.reason, operator, refund_id)
            return True, f"dispute {d['id']} {decision}" + (f": refunded ({refund_id})" if refund_id else "")
        error: dict[str, Any] = (answer or {}).get("error") or {}
        if status is None or status >= 500 or status == 429:
            return None, f"decision not delivered ({err or status}): decide again (nothing is refunded twice)"
        return False, f"HTTP {status} {error.get('code', '')}: {error.get('message', '')}"
