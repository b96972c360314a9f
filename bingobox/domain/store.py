"""The store as a state machine: starting → ready; degraded (a device or the gateway down), lockdown (operator),
emergency (fire alarm: every door unlocked), maintenance (restock: shelves re-baselined)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transitions import Machine

STATES = ["starting", "ready", "degraded", "lockdown", "emergency", "maintenance"]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "started", "source": "starting", "dest": "ready", "conditions": "healthy"},
    {"trigger": "started", "source": "starting", "dest": "degraded"},
    {"trigger": "health_changed", "source": ["ready", "degraded"], "dest": "ready", "conditions": "healthy"},
    {"trigger": "health_changed", "source": ["ready", "degraded"], "dest": "degraded"},
    {"trigger": "lock_down", "source": ["ready", "degraded", "maintenance"], "dest": "lockdown"},
    {"trigger": "release", "source": ["lockdown", "maintenance"], "dest": "ready", "conditions": "healthy"},
    {"trigger": "release", "source": ["lockdown", "maintenance"], "dest": "degraded"},
    {"trigger": "fire", "source": ["starting", "ready", "degraded", "lockdown", "maintenance"], "dest": "emergency"},
    {"trigger": "fire_cleared", "source": "emergency", "dest": "ready", "conditions": "healthy"},
    {"trigger": "fire_cleared", "source": "emergency", "dest": "degraded"},
    {"trigger": "restock", "source": ["ready", "degraded"], "dest": "maintenance"},
]

# What still works in each state (shown on the screen and in the log)
ADMITS = {"ready": True, "degraded": True}
WHAT_WORKS = {
    "starting": "nothing yet: devices are being opened",
    "ready": "entry, shopping, exit and charging",
    "degraded": "exit always; entry while the entry door, its camera and the offline limits allow; "
                "charges queue while the gateway is down",
    "lockdown": "exit only (request-to-exit and charging); no entry",
    "emergency": "every door unlocked; charges for those leaving are still recorded",
    "maintenance": "restocking: no entry; exit works",
}


class StoreMachine:
    state: str
    # the triggers (made by transitions' Machine at run time: declared for the type checker)
    started: Callable[[], bool]
    health_changed: Callable[[], bool]
    lock_down: Callable[[], bool]
    release: Callable[[], bool]
    fire: Callable[[], bool]
    fire_cleared: Callable[[], bool]
    restock: Callable[[], bool]

    def __init__(self) -> None:
        self.problems: set[str] = set()
        self.machine = Machine(model=self, states=STATES, transitions=TRANSITIONS, initial="starting",
                               auto_transitions=False, ignore_invalid_triggers=True, queued=True)

    def healthy(self) -> bool:
        return not self.problems

    def may(self, trigger: str) -> bool:
        """Whether ``trigger`` leads anywhere from the current state."""
        for t in TRANSITIONS:
            src = t["source"] if isinstance(t["source"], list) else [t["source"]]
            if t["trigger"] == trigger and self.state in src:
                return True
        return False

    @property
    def admits(self) -> bool:
        return ADMITS.get(self.state, False)

    def set_problem(self, name: str, present: bool) -> None:
        before = set(self.problems)
        (self.problems.add if present else self.problems.discard)(name)
        if before != self.problems:
            self.health_changed()
