"""Whether a cabinet opens for a request, and what its panel says. Pure: the store core gathers the facts (who
asks, how, the zone, the date, the sale hours) and this decides.

A cabinet of a cold zone opens to its button while its goods are on sale; an age-restricted cabinet opens only to
a code shown to its camera by an adult (the wallet's check of their ID, carried in the code) who is inside, within
its sale hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from .panel import Cue, PanelMessage

# a refusal → the cabinet panel's message
REFUSALS = {
    "off_sale": "cabinet.refused.off_sale",
    "code_needed": "cabinet.refused.code_needed",
    "not_inside": "cabinet.refused.not_inside",
    "age_unknown": "cabinet.refused.age_unknown",
    "not_adult": "cabinet.refused.not_adult",
    "sale_hours": "cabinet.refused.sale_hours",
    "door": "cabinet.refused.door",
}


@dataclass(frozen=True)
class Ask:
    by: Literal["button", "code"]
    restricted: bool
    off_sale: bool  # its zone's goods are off sale
    inside: bool  # (a code) its account has a visit inside
    adult_from: date | None  # (a code) the day its holder is 18; None: not known
    today: date  # the store's date
    in_hours: bool  # within the cabinet's sale hours


def refusal(a: Ask) -> str | None:
    """Why the cabinet stays shut (a key of ``REFUSALS``), or None: it opens."""
    if a.off_sale:
        return "off_sale"
    if a.restricted:
        if a.by == "button":
            return "code_needed"
        if not a.inside:
            return "not_inside"
        if a.adult_from is None:
            return "age_unknown"
        if a.adult_from > a.today:
            return "not_adult"
        if not a.in_hours:
            return "sale_hours"
    elif a.by == "code" and not a.inside:
        return "not_inside"
    return None


def idle(restricted: bool, off_sale: bool, hours: str | None) -> PanelMessage:
    """What a cabinet's panel says at rest."""
    if off_sale:
        return PanelMessage("cabinet.off_sale", Cue.REFUSED)
    if restricted:
        return PanelMessage("cabinet.restricted", params={"hours": hours}) if hours else PanelMessage(
            "cabinet.restricted_anytime")
    return PanelMessage("cabinet.ready")


def refused(reason: str, hours: str | None, hold_s: float = 6.0) -> PanelMessage:
    key = REFUSALS.get(reason, "cabinet.refused.door")
    return PanelMessage(key, Cue.REFUSED, {"hours": hours or "—"} if reason == "sale_hours" else {}, hold_s)


def opened(hold_s: float = 6.0) -> PanelMessage:
    return PanelMessage("cabinet.open", Cue.ACCEPTED, {}, hold_s)
