"""The door as a state machine (pytransitions): grant window, relock, forced and held-open alarms, fire.

Pure logic: inputs are method calls with the current monotonic time; outputs are ``lock_wanted`` and a list
of events the driver drains. No timers: the owner calls ``tick(now)`` (loop timers, not threading.Timer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transitions import Machine

STATES = ["locked", "unlocked", "open", "held_open", "forced", "emergency", "fault"]
ALARM_STATES = {"held_open": "door_held_open", "forced": "door_forced"}

# trigger, source(s), dest, conditions — the machine is this table (printable as a diagram)
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "grant", "source": ["locked", "unlocked"], "dest": "unlocked"},
    {"trigger": "rex", "source": "locked", "dest": "unlocked", "conditions": "rex_unlocks"},
    {"trigger": "opened", "source": "locked", "dest": "open", "conditions": "rex_shunted"},
    {"trigger": "opened", "source": "locked", "dest": "forced"},
    {"trigger": "opened", "source": "unlocked", "dest": "open"},
    {"trigger": "closed", "source": ["open", "held_open", "forced"], "dest": "locked"},
    {"trigger": "tick", "source": "unlocked", "dest": "locked", "conditions": "grant_expired"},
    {"trigger": "tick", "source": "open", "dest": "held_open", "conditions": "held_too_long"},
    {"trigger": "fire_on", "source": [s for s in STATES if s != "emergency"], "dest": "emergency"},
    {"trigger": "fire_off", "source": "emergency", "dest": "open", "conditions": "door_is_open"},
    {"trigger": "fire_off", "source": "emergency", "dest": "locked"},
    {"trigger": "link_lost", "source": [s for s in STATES if s != "fault"], "dest": "fault"},
    {"trigger": "link_restored", "source": "fault", "dest": "emergency", "conditions": "fire_active"},
    {"trigger": "link_restored", "source": "fault", "dest": "open", "conditions": "door_is_open"},
    {"trigger": "link_restored", "source": "fault", "dest": "locked"},
]



def _triggers_by_state() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {s: set() for s in STATES}
    for t in TRANSITIONS:
        for src in t["source"] if isinstance(t["source"], list) else [t["source"]]:
            out[src].add(t["trigger"])
    return out


TRIGGERS_BY_STATE = _triggers_by_state()


@dataclass(frozen=True)
class DoorTiming:
    unlock_s: float = 5.0
    held_open_s: float = 20.0
    relock_on: str = "close"  # "open": re-energise as soon as the door opens (strikes); "close": when shut
    rex_unlocks: bool = True
    rex_shunt_s: float = 3.0


class DoorMachine:
    """One door's logic. Call the input methods; read ``state``, ``lock_wanted`` and drain ``events``."""

    state: str

    def __init__(self, name: str, timing: DoorTiming | None = None, initial: str = "locked") -> None:
        self.name = name
        self.timing = timing or DoorTiming()
        self.now = 0.0
        self.grant_until = 0.0
        self.opened_at: float | None = None
        self.rex_at: float | None = None
        self.door_open = False
        self.fire = False
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.machine = Machine(model=self, states=STATES, transitions=TRANSITIONS, initial=initial,
                               auto_transitions=False, ignore_invalid_triggers=True, queued=True,
                               after_state_change="_state_changed")

    # outputs ---------------------------------------------------------------------------------------
    @property
    def lock_wanted(self) -> bool:
        """True when the lock should be engaged."""
        if self.state in ("unlocked", "emergency"):
            return False
        if self.state in ("open", "held_open"):
            return self.timing.relock_on == "open"
        return True

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        out, self.events = self.events, []
        return out

    # inputs ----------------------------------------------------------------------------------------
    def on_grant(self, now: float, seconds: float | None = None) -> bool:
        """Access granted: unlock for the grant window. False if the door is not in a grantable state."""
        self.now = now
        if self.state not in ("locked", "unlocked"):
            return self.state == "emergency"
        self.grant_until = now + (seconds or self.timing.unlock_s)
        self._fire("grant")
        return True

    def on_rex(self, now: float) -> None:
        self.now = now
        self.rex_at = now
        self.events.append(("rex_pressed", {}))
        if self.state == "locked":
            self.grant_until = now + self.timing.unlock_s
        self._fire("rex")

    def on_passage(self, count: int) -> None:
        """The doorway's people counter saw someone through (said after the door's own opening in the same poll)."""
        self.events.append(("passage", {"count": count}))

    def on_contact(self, now: float, is_open: bool) -> None:
        self.now = now
        if is_open == self.door_open:
            return
        self.door_open = is_open
        if is_open:
            self.opened_at = now
            self.events.append(("door_opened", {}))
            self._fire("opened")
        else:
            self.opened_at = None
            self.events.append(("door_closed", {}))
            self._fire("closed")

    def on_fire(self, now: float, active: bool) -> None:
        self.now = now
        if active == self.fire:
            return
        self.fire = active
        self.events.append(("fire_alarm" if active else "fire_cleared", {}))
        if active:
            self._fire("fire_on")
        else:
            self._fire("fire_off")
        if not active and self.state == "open":
            self.opened_at = now

    def on_tick(self, now: float) -> None:
        self.now = now
        self._fire("tick")

    def on_link(self, now: float, up: bool) -> None:
        self.now = now
        if up:
            self._fire("link_restored")
        else:
            self._fire("link_lost")

    def _fire(self, trigger: str) -> None:
        """Fire a trigger only where the table defines it (inputs in other states are no-ops by design)."""
        if trigger in TRIGGERS_BY_STATE[self.state]:
            getattr(self, trigger)()

    # conditions ------------------------------------------------------------------------------------
    def rex_unlocks(self) -> bool:
        return self.timing.rex_unlocks

    def rex_shunted(self) -> bool:
        return self.rex_at is not None and self.now - self.rex_at <= self.timing.rex_shunt_s

    def grant_expired(self) -> bool:
        return self.now >= self.grant_until

    def held_too_long(self) -> bool:
        return self.opened_at is not None and self.now - self.opened_at >= self.timing.held_open_s

    def door_is_open(self) -> bool:
        return self.door_open

    def fire_active(self) -> bool:
        return self.fire

    # callbacks -------------------------------------------------------------------------------------
    def _state_changed(self) -> None:
        self.events.append(("state", {"state": self.state, "lock_wanted": self.lock_wanted}))
        if self.state in ALARM_STATES:
            self.events.append(("alarm", {"alarm": ALARM_STATES[self.state]}))
        if self.state == "open" and self.opened_at is None:
            self.opened_at = self.now
