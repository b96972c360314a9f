"""What an operator may do from the status screen: each action's arguments (validated, unknown keys refused) and
``apply``, which the control loop calls on the store core (``StoreApp.act`` queues the action as an
``OperatorCommand``); the screen audits every attempt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

log = logging.getLogger(__name__)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


class Unlock(_Args):
    door: str = Field(min_length=1, max_length=32)
    seconds: float = Field(5.0, ge=1, le=60)


class ClearAlarm(_Args):
    alarm_id: StrictInt = Field(ge=1)


class RetryCharge(_Args):
    visit_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")


class Refund(_Args):
    request_id: str = Field(pattern=r"^[A-Za-z0-9-]{8,64}$", description="made once per refund the operator asks "
                            "for (the page: when the dialog opens) and sent again with every retry of it")
    charge_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    amount_fen: StrictInt = Field(ge=1, le=10_000_000, description="integer fen")
    reason: str = Field(min_length=1, max_length=200)


class ResolveDispute(_Args):
    dispute_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    decision: Literal["accept", "reject"]
    reason: str = Field(min_length=1, max_length=200, description="shown to the shopper")
    amount_fen: StrictInt | None = Field(None, ge=1, le=10_000_000, description="accept: the refund (default: what "
                                         "the shopper claimed; never more)")


ACTIONS: dict[str, type[_Args]] = {
    "unlock": Unlock,  # open a door for a moment (a shopper stuck at the entry, a delivery)
    "lock_down": NoArgs,  # no entry; exit and charging go on
    "release": NoArgs,  # back from lockdown or maintenance
    "restock": NoArgs,  # maintenance: shelf changes are not anybody's basket; re-baselined on release
    "clear_alarm": ClearAlarm,
    "retry_charge": RetryCharge,  # a failed charge (the gateway refused it), once its cause is mended
    "refund": Refund,  # through the wallet gateway, idempotent per refund asked for (request_id)
    "resolve_dispute": ResolveDispute,  # a shopper's dispute: accepted (refunded, once) or rejected with a reason
}
MONEY_ACTIONS = ("refund", "resolve_dispute")  # need operators.may_refund; done by the screen, outside the loop


class ActionError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


if TYPE_CHECKING:
    from .core.store import StoreCore


def apply(core: StoreCore, operator: str, action: str, args: _Args,
          finish: Callable[[dict], None]) -> str | None:
    """Carry out ``action`` for ``operator`` on the store core — called in its control loop only. Returns what was
    done; None when the outcome comes later, through ``finish`` (an unlock: when the door's board answered)."""
    st = core.store
    if action == "unlock":
        if args.door not in core.doors:
            raise ActionError("no_such_door", f"no door {args.door!r} (doors: {', '.join(core.doors)})")

        def done(outcome: str, detail: str) -> None:
            ok = {"unlocked": True, "refused": False}.get(outcome)
            finish({"ok": ok,
                    "detail": f"{detail} for {args.seconds:g} s" if ok else detail,
                    **({} if ok else {"error": "door_refused" if ok is False else "outcome_unknown"})})

        core.doors[args.door].grant(args.seconds, done=done)
        return None
    if action in ("lock_down", "release", "restock"):
        if not st.may(action):
            raise ActionError("not_now", f"cannot {action.replace('_', ' ')} while the store is {st.state}")
        inside = core.inside()
        if action == "restock" and inside:  # shelf changes during restocking are nobody's: wait for them
            raise ActionError("shoppers_inside", f"{inside} shopper(s) inside: restock when the store is empty")
        before = st.state
        getattr(st, action)()
        if before == "maintenance" and action in ("release", "lock_down"):
            core.unattributed.clear()  # the shelves as they are now are the new baseline
        log.warning("operator %s: %s (%s → %s)", operator, action, before, st.state)
        return f"store {before} → {st.state}"
    if action == "clear_alarm":
        if not core.journal.clear_alarm(args.alarm_id, operator):
            raise ActionError("no_such_alarm", f"alarm {args.alarm_id} is not open")
        return f"alarm {args.alarm_id} cleared"
    if action == "retry_charge":
        try:
            intent = core.outbox.retry_failed(args.visit_id)
        except ValueError as e:
            raise ActionError("no_failed_charge", str(e)) from None
        return f"visit {args.visit_id}: charged again (intent {intent})"
    raise ActionError("unknown_action", action)
