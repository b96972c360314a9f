"""What an operator may ask of a store — from its status screen, or from the fleet as a signed MQTT command: each
action's arguments (validated, unknown keys refused). How the store carries them out is ``core.operations``; the
screen and the link audit every attempt."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(Args):
    pass


class Unlock(Args):
    door: str = Field(min_length=1, max_length=32)
    seconds: float = Field(5.0, ge=1, le=60)


class ClearAlarm(Args):
    alarm_id: StrictInt = Field(ge=1)


class RetryCharge(Args):
    visit_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")


class Refund(Args):
    request_id: str = Field(pattern=r"^[A-Za-z0-9-]{8,64}$", description="made once per refund the operator asks "
                            "for (the page: when the dialog opens) and sent again with every retry of it")
    charge_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    amount_fen: StrictInt = Field(ge=1, le=10_000_000, description="integer fen")
    reason: str = Field(min_length=1, max_length=200)


class ResolveDispute(Args):
    dispute_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    decision: Literal["accept", "reject"]
    reason: str = Field(min_length=1, max_length=200, description="shown to the shopper")
    amount_fen: StrictInt | None = Field(None, ge=1, le=10_000_000, description="accept: the refund (default: what "
                                         "the shopper claimed; never more)")


class ClearZone(Args):
    zone: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")


class ReviewItem(Args):
    sku: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    qty: StrictInt = Field(ge=1, le=100)


class DecideReview(Args):
    visit_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    decision: Literal["charge", "refund", "close"]
    reason: str = Field(min_length=1, max_length=200, description="shown to the shopper on their receipt")
    items: list[ReviewItem] = Field(default_factory=list, max_length=50, description="charge: what they carried "
                                    "out and were not charged for (priced from the catalog)")
    amount_fen: StrictInt | None = Field(None, ge=1, le=10_000_000, description="refund: how much (integer fen)")

    @model_validator(mode="after")
    def _what_each_decision_needs(self) -> DecideReview:
        if (self.decision == "charge") != bool(self.items):
            raise ValueError("a charge lists the items (and only a charge does)")
        if (self.decision == "refund") != (self.amount_fen is not None):
            raise ValueError("a refund says how much (and only a refund does)")
        return self


ACTIONS: dict[str, type[Args]] = {
    "unlock": Unlock,  # open a door for a moment (a shopper stuck at the entry, a delivery)
    "lock_down": NoArgs,  # no entry; exit and charging go on
    "release": NoArgs,  # back from lockdown or maintenance
    "restock": NoArgs,  # maintenance: shelf changes are not anybody's basket; re-baselined on release
    "clear_alarm": ClearAlarm,
    "retry_charge": RetryCharge,  # a failed charge (the gateway refused it), once its cause is mended
    "refund": Refund,  # through the wallet gateway, idempotent per refund asked for (request_id)
    "resolve_dispute": ResolveDispute,  # a shopper's dispute: accepted (refunded, once) or rejected with a reason
    "decide_review": DecideReview,  # a visit in the review queue: a supplementary charge, a refund, or closed
    "clear_zone": ClearZone,  # a chilled zone's goods replaced (its fridge mended): on sale again, budget reset
}
MONEY_ACTIONS = ("refund", "resolve_dispute")  # need operators.may_refund; done outside the loop (the network)
MONEY_DECISIONS = ("charge", "refund")  # decide_review moves money with these: operators.may_refund too
