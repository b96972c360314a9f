"""What a door's panel says: the store's decisions as messages a shopper reads. Pure: a message is a key, a sound
cue and parameters; the words for each key, in each language, are in the message catalogs (``bingobox.i18n``).

Nothing here is personal: no account ids and no other shopper's amounts — only what the shopper in front of the
door needs (their own amount when they leave). Wording never claims a door is open: the panel speaks of what the
store decided, and the door's own lamp and lock show the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Cue(StrEnum):
    """The sound a message plays, so that a shopper who cannot read the screen still knows."""

    NONE = "none"
    ACCEPTED = "accepted"  # welcome, goodbye
    REFUSED = "refused"  # the door stays shut: read the reason
    SHOW_CODE = "show_code"  # the store needs the code
    ALERT = "alert"  # emergency


@dataclass(frozen=True)
class PanelMessage:
    key: str  # a key of ``bingobox.i18n.MESSAGES``
    cue: Cue = Cue.NONE
    params: dict[str, Any] = field(default_factory=dict)
    hold_s: float | None = None  # shown this long, then the door's idle message again (None: until replaced)

    @property
    def idle(self) -> bool:
        return self.hold_s is None


# An entrance refusal's reason (the entry gate's and admission's) → what the shopper is told. Every reason the
# store can give has a line here (a test checks it against ``tokens.Reject`` and admission's own reasons).
REFUSALS: dict[str, str] = {
    "expired": "refused.expired",
    "lifetime_too_long": "refused.invalid",
    "not_yet_valid": "refused.clock",
    "clock_behind": "refused.clock",
    "replayed": "refused.used",
    "unpaid_charges": "refused.unpaid",
    "store_closed": "refused.closed",
    "exit_reader_down": "refused.one_at_a_time",
    "store_not_admitting": "refused.not_admitting",
    "disk_low": "refused.not_admitting",
    "store_offline_limit": "refused.offline",
    "already_inside": "refused.inside",
    "group_too_large": "refused.group_too_large",
    "group_complete": "refused.group_complete",
    "wrong_store": "refused.wrong_store",
    "wrong_door": "refused.wrong_door",
    "malformed": "refused.invalid",
    "too_large": "refused.invalid",
    "bad_alg": "refused.invalid",
    "unsupported_version": "refused.invalid",
    "unknown_key": "refused.invalid",
    "bad_signature": "refused.invalid",
    "card_unknown": "refused.card_unknown",
    "card_list_missing": "refused.card_unavailable",
    "card_no_visit": "refused.card_no_visit",
}
REFUSED_FALLBACK = "refused.other"
# The exit camera's face decisions that mean "not sure who this is": ask for the code.
ASK_FOR_CODE = frozenset({"unsure_distance", "unsure_margin", "unsure_open", "nobody_inside", "frames_disagree"})
ONE_AT_A_TIME = frozenset({"several_faces"})


# idle messages that mean "no entry now": the red lamp of a door without a screen says so
STOP = frozenset({"entrance.starting", "entrance.lockdown", "entrance.maintenance", "entrance.closed",
                  "entrance.closed_today", "emergency"})


def lamps(msg: PanelMessage) -> tuple[bool, bool]:
    """(green, red) for a door's lamps, mirroring its panel: green for yes (welcome, goodbye), red for no, "show your
    code" and "no entry now"; both off otherwise."""
    if msg.cue == Cue.ACCEPTED:
        return True, False
    if msg.cue in (Cue.REFUSED, Cue.SHOW_CODE, Cue.ALERT) or msg.key in STOP:
        return False, True
    return False, False


def door_roles(entry_door: str, exit_door: str, cabinets: Iterable[str] = ()) -> dict[str, str]:
    """Door → the role its panel plays (one door for both: it rests as an entrance; a cabinet's door: cabinet)."""
    return {**dict.fromkeys(cabinets, "cabinet"), exit_door: "exit", entry_door: "entrance"}


def refusal(reason: str, hours: str | None = None, hold_s: float = 8.0) -> PanelMessage:
    """The entrance's answer to a refused code (``hours``: today's opening hours, for "closed")."""
    key = REFUSALS.get(reason, REFUSED_FALLBACK)
    params = {"hours": hours} if key == "refused.closed" and hours else {}
    if key == "refused.closed" and not hours:
        key = "refused.closed_today"
    return PanelMessage(key, Cue.REFUSED, params, hold_s)


def welcome(name: str | None = None, group: int = 1, hold_s: float = 5.0) -> PanelMessage:
    """The entrance opened for the shopper (``name``: the first name they chose to be greeted by, if any)."""
    if group > 1:  # (the name is the payer's: the group is greeted as one)
        return PanelMessage("entrance.welcome_group", Cue.ACCEPTED, {"group": group, "more": group - 1}, hold_s)
    if name:
        return PanelMessage("entrance.welcome_name", Cue.ACCEPTED, {"name": name}, hold_s)
    return PanelMessage("entrance.welcome", Cue.ACCEPTED, {}, hold_s)


def companion(left: int, hold_s: float = 5.0) -> PanelMessage:
    """The door opened for the next of a group (``left``: how many of the group may still come in, this one
    included)."""
    return PanelMessage("entrance.companion", Cue.ACCEPTED, {"more": left - 1}, hold_s)


def door_stuck(hold_s: float = 8.0) -> PanelMessage:
    """The code was accepted but the door's board refused or did not answer: the door stays shut."""
    return PanelMessage("entrance.door_stuck", Cue.REFUSED, {}, hold_s)


def goodbye(why: str, amount_fen: int | None, hold_s: float = 8.0) -> PanelMessage:
    """The exit opened for the shopper in front of it: what came of their charge (``why``: why the exit opened —
    the gateway's answer, no answer in time, nothing to pay, a code shown again, a failure after identification)."""
    amount = amount_fen or 0
    if why == "nothing to pay":
        return PanelMessage("exit.goodbye_free", Cue.ACCEPTED, {}, hold_s)
    if why == "charge_succeeded" and amount > 0:
        return PanelMessage("exit.goodbye_charged", Cue.ACCEPTED, {"amount_fen": amount}, hold_s)
    if why == "charge_declined" and amount > 0:
        return PanelMessage("exit.goodbye_declined", Cue.ACCEPTED, {"amount_fen": amount}, hold_s)
    if why == "card_limit":  # a card visit above the card limit: an operator confirms the amount
        return PanelMessage("exit.goodbye_card_limit", Cue.ACCEPTED, {"amount_fen": amount}, hold_s)
    if why == "exit_without_answer" and amount > 0:  # queued: charged when the gateway answers
        return PanelMessage("exit.goodbye_later", Cue.ACCEPTED, {"amount_fen": amount}, hold_s)
    return PanelMessage("exit.goodbye", Cue.ACCEPTED, {}, hold_s)  # the outcome is not this moment's to tell


def face_prompt(reason: str, hold_s: float = 6.0) -> PanelMessage | None:
    """What the exit says to a face it could not be sure of (None: nothing to say)."""
    if reason in ASK_FOR_CODE:
        return PanelMessage("exit.show_code", Cue.SHOW_CODE, {}, hold_s)
    if reason in ONE_AT_A_TIME:
        return PanelMessage("exit.one_at_a_time", Cue.SHOW_CODE, {}, hold_s)
    return None


def idle(role: str, store_state: str, open_now: bool, hours: str | None) -> PanelMessage:
    """What a door says when nothing is happening at it, given the store's state (``role``: entrance/exit)."""
    if store_state == "emergency":
        return PanelMessage("emergency", Cue.ALERT)
    if role == "exit":
        return PanelMessage("exit.ready")
    if store_state == "starting":
        return PanelMessage("entrance.starting")
    if store_state in ("lockdown", "maintenance"):
        return PanelMessage(f"entrance.{store_state}")
    if not open_now:
        return PanelMessage("entrance.closed", params={"hours": hours}) if hours else PanelMessage(
            "entrance.closed_today")
    return PanelMessage("entrance.ready")
