"""What puts a visit in front of an operator: the flags that mean "the store was not sure" (its review causes), and
what an operator may decide. Pure: the queue itself is the journal's ``reviews`` table, kept by the store core."""

from __future__ import annotations

from collections.abc import Iterable

# a visit's flag → the review cause it is counted under (flags not here are evidence only)
CAUSES: dict[str, str] = {
    "review": "unverified",  # the exit could not tell all they carried (reader down, blind shelf…): see the rest
    "recovery": "recovery",  # an exit code with no open visit: charged for what the exit reader saw
    "checkout_failed": "checkout_failed",  # something failed after identification: the exit opened anyway
    "charge_failed": "charge_failed",  # the gateway refused the charge for good
    "attributed_not_seen": "items_not_seen",  # taken off a shelf, not seen leaving: not charged
    "tailgating": "tailgating",  # more people on a code than it let in
    "possible_tailgater": "tailgating",  # the entrance forced open while they were inside (journals before 3a55433)
    "stranger_at_exit": "tailgating",  # someone who came in without a code was still inside when they left
    "exit_not_seen": "exit_unidentified",  # the exit opened for them and nobody saw them go
    "left_before_decision": "exit_unidentified",  # they walked out through an opening for nobody
    "group_exit_unidentified": "exit_unidentified",  # an opening for nobody while their companions were inside
    "group_goods_unsure": "group",  # a companion's goods nobody could account for
    "timed_out": "timed_out",  # never seen leaving: closed by the store's clock
    "card_limit": "card_limit",  # a card visit above the card limit: not charged until an operator looks
    "off_sale_taken": "off_sale",  # goods of a zone whose cold chain broke were taken: not charged, to be looked at
    "restricted_unchecked": "age_check",  # age-restricted goods charged to a shopper no cabinet admitted
}
DECISIONS = ("charge", "refund", "close")


def causes(flags: Iterable[str]) -> list[str]:
    """The review causes of a visit with these flags (sorted, each once; empty: no review needed)."""
    return sorted({CAUSES[f] for f in flags if f in CAUSES})
