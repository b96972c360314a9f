"""What an operator may do from the status screen: each action's arguments (validated, unknown keys refused).
The control loop applies them (``Controller.act``); the screen writes every attempt to the audit log."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


class Unlock(_Args):
    door: str = Field(min_length=1, max_length=32)
    seconds: float = Field(5.0, ge=1, le=60)


class ClearAlarm(_Args):
    alarm_id: StrictInt = Field(ge=1)


class Refund(_Args):
    charge_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    amount_fen: StrictInt = Field(ge=1, le=10_000_000, description="integer fen")
    reason: str = Field(min_length=1, max_length=200)


ACTIONS: dict[str, type[_Args]] = {
    "unlock": Unlock,  # open a door for a moment (a shopper stuck at the entry, a delivery)
    "lock_down": NoArgs,  # no entry; exit and charging go on
    "release": NoArgs,  # back from lockdown or maintenance
    "restock": NoArgs,  # maintenance: shelf changes are not anybody's basket; re-baselined on release
    "clear_alarm": ClearAlarm,
    "refund": Refund,  # through the wallet gateway, idempotent per audit entry
}


class ActionError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
