"""One shopper's visit as a state machine (pytransitions, queued; time passed in, no timers).

door_unlocked → entered → inside → at_exit → charging → left, and the side exits: abandoned (never came in),
unsure (exit face not sure: QR fallback), declined (charge refused: debt, the shopper still leaves), timed_out
(inside too long). A visit is created when its code is accepted (the entrance is granted after that row is
committed), or at the exit (a *recovery* visit: someone identified at the exit with goods and no open visit).

The state names and the sets the store's rules ask about ("inside", "leaving", "final") are defined here once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from transitions import Machine


class S(StrEnum):
    """Visit states (a StrEnum: each compares equal to its name, as stored in the journal)."""

    door_unlocked = "door_unlocked"
    entered = "entered"
    inside = "inside"
    unsure = "unsure"
    at_exit = "at_exit"
    charging = "charging"
    declined = "declined"
    left = "left"
    abandoned = "abandoned"
    timed_out = "timed_out"


STATES = [s.value for s in S]
INITIAL = S.door_unlocked
IN_STORE = frozenset({S.entered, S.inside, S.unsure})  # shopping: their face is looked for at the exit
UNSEEN_ENTRY = frozenset({S.door_unlocked})  # let in, the door cycle not seen (yet)
LEAVING = frozenset({S.at_exit, S.charging, S.declined})  # identified at the exit
FINAL = frozenset({S.left, S.abandoned, S.timed_out})
# journals written before the visit machine had these names
LEGACY = {"code_accepted": S.door_unlocked}

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "door_opened", "source": S.door_unlocked, "dest": S.entered},
    {"trigger": "door_closed", "source": S.entered, "dest": S.inside},
    {"trigger": "abandon", "source": S.door_unlocked, "dest": S.abandoned},
    # the same account shows a new code at the entrance: the earlier grant was never used
    {"trigger": "replaced", "source": [S.door_unlocked, S.inside], "dest": S.abandoned},
    # a restart hid whether they came in: presumed inside (the exit reader decides what they carry out)
    {"trigger": "presume_inside", "source": [S.door_unlocked, S.entered], "dest": S.inside},
    {"trigger": "identified", "source": [S.inside, S.entered, S.unsure, S.door_unlocked], "dest": S.at_exit},
    {"trigger": "not_sure", "source": [S.inside, S.entered], "dest": S.unsure},
    # a restart interrupted the checkout before the charge intent: they are identified again
    {"trigger": "interrupted", "source": S.at_exit, "dest": S.inside},
    {"trigger": "charge", "source": S.at_exit, "dest": S.charging},
    {"trigger": "charge_declined", "source": S.charging, "dest": S.declined},
    {"trigger": "exit_door_cycle", "source": [S.charging, S.declined], "dest": S.left},
    {"trigger": "walked_out", "source": [S.at_exit, S.charging, S.declined], "dest": S.left},
    {"trigger": "time_out", "source": [S.inside, S.entered, S.unsure], "dest": S.timed_out},
]


class VisitMachine:
    """The state of one visit; the store's rules own the data (basket, evidence) beside it."""

    state: str

    def __init__(self, visit_id: str, initial: str = INITIAL) -> None:
        self.visit_id = visit_id
        self.machine = Machine(model=self, states=STATES, transitions=TRANSITIONS,
                               initial=LEGACY.get(initial, initial), auto_transitions=False,
                               ignore_invalid_triggers=False, queued=True)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def can(self, trigger: str) -> bool:
        return trigger in self.machine.get_triggers(self.state)

    def fire(self, trigger: str) -> bool:
        """Fire a trigger if the current state has it; False (and nothing changes) otherwise."""
        if self.can(trigger):
            getattr(self, trigger)()
            return True
        return False

    def set(self, state: str) -> None:
        """Put the machine back in ``state`` (undo a transition whose commit failed)."""
        self.machine.set_state(state)
