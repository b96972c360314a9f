"""What an operator may ask of a store — from its status screen, or from the fleet as a signed MQTT command: each
action's arguments (validated, unknown keys refused). How the store carries them out is ``core.operations``; the
screen and the link audit every attempt."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt


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


ACTIONS: dict[str, type[Args]] = {
    "unlock": Unlock,  # open a door for a moment (a shopper stuck at the entry, a delivery)
    "lock_down": NoArgs,  # no entry; exit and charging go on
    "release": NoArgs,  # back from lockdown or maintenance
    "restock": NoArgs,  # maintenance: shelf changes are not anybody's basket; re-baselined on release
    "clear_alarm": ClearAlarm,
    "retry_charge": RetryCharge,  # a failed charge (the gateway refused it), once its cause is mended
    "refund": Refund,  # through the wallet gateway, idempotent per refund asked for (request_id)
    "resolve_dispute": ResolveDispute,  # a shopper's dispute: accepted (refunded, once) or rejected with a reason
}
MONEY_ACTIONS = ("refund", "resolve_dispute")  # need operators.may_refund; done outside the loop (the network)
