"""One shopper's visit as a state machine (pytransitions, queued; time passed in, no timers).

code_accepted → door_unlocked → entered → inside → at_exit → charging → left
and the side exits: abandoned (never came in), unsure (exit face not sure: QR fallback), declined (charge refused:
debt, the shopper still leaves), timed_out (inside too long).
"""

from __future__ import annotations

from transitions import Machine

STATES = ["code_accepted", "door_unlocked", "entered", "inside", "at_exit", "unsure", "charging", "declined",
          "left", "abandoned", "timed_out"]
FINAL = {"left", "abandoned", "timed_out"}

TRANSITIONS: list[dict] = [
    {"trigger": "unlocked", "source": "code_accepted", "dest": "door_unlocked"},
    {"trigger": "door_opened", "source": "door_unlocked", "dest": "entered"},
    {"trigger": "door_closed", "source": "entered", "dest": "inside"},
    {"trigger": "abandon", "source": ["code_accepted", "door_unlocked"], "dest": "abandoned"},
    {"trigger": "identified", "source": ["inside", "entered", "unsure"], "dest": "at_exit"},
    {"trigger": "not_sure", "source": ["inside", "entered"], "dest": "unsure"},
    {"trigger": "charge", "source": "at_exit", "dest": "charging"},
    {"trigger": "charge_declined", "source": "charging", "dest": "declined"},
    {"trigger": "exit_door_cycle", "source": ["charging", "declined"], "dest": "left"},
    {"trigger": "walked_out", "source": ["at_exit", "charging", "declined"], "dest": "left"},
    {"trigger": "time_out", "source": ["inside", "entered", "unsure"], "dest": "timed_out"},
]


class VisitMachine:
    """The state of one visit; the controller owns the data (basket, evidence) beside it."""

    state: str

    def __init__(self, visit_id: str, initial: str = "code_accepted") -> None:
        self.visit_id = visit_id
        self.machine = Machine(model=self, states=STATES, transitions=TRANSITIONS, initial=initial,
                               auto_transitions=False, ignore_invalid_triggers=False, queued=True)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def fire(self, trigger: str) -> bool:
        """Fire a trigger if the current state has it; False (and nothing changes) otherwise."""
        if trigger in self.machine.get_triggers(self.state):
            getattr(self, trigger)()
            return True
        return False
