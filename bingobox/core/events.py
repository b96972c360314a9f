"""What the store's control loop consumes: small typed events, one dispatch table (``core.StoreCore.handle``).

Producers (device drivers, the camera feeds, the face worker's threads, the outbox, the screen) only build these
and put them in the loop's inbox; the loop decides. Device events are ``devices.events.DeviceEvent``.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from ..devices.events import DeviceEvent
from ..domain.cards import CardList
from ..domain.faces import FaceDecision

__all__ = [
    "CardListIn",
    "CardPaired",
    "ChargeQueueChanged",
    "ChargeUpdate",
    "CodeSeen",
    "CompanionCarried",
    "ConsentWithdrawn",
    "DeviceEvent",
    "DiskChecked",
    "Enrolled",
    "Event",
    "FaceDecided",
    "InventoryReady",
    "OperatorCommand",
    "Started",
]


@dataclass(frozen=True, slots=True)
class Started:
    """Every device and feed is started: the store may open."""


@dataclass(frozen=True, slots=True)
class CodeSeen:
    """A QR text in a camera frame. ``role``: "entry" or "exit"; ``stages``: when the frame was captured and
    decoded (wall-clock seconds)."""

    role: str
    text: str
    frame_t: float
    stages: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CardListIn:
    """A new signed list of bound cards, verified (the shopper sync fetched it, or it was read back at start)."""

    cards: CardList


@dataclass(frozen=True, slots=True)
class CardPaired:
    """The gateway's answer to a pairing (a code shown, then a card tapped): ``reason`` when it was refused."""

    ok: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FaceDecided:
    """The exit camera's face decision (matched / unsure / no_face …) for the frame taken at ``frame_t``;
    ``undecided``: the reasons of the looks at this shopper that decided nothing before it (``unsure_open`` …: why a
    door opened late), ``first_look``: when the first of them was made."""

    decision: FaceDecision
    frame_t: float
    stages: dict[str, float] = field(default_factory=dict)
    undecided: dict[str, int] = field(default_factory=dict)
    first_look: float | None = None


@dataclass(frozen=True, slots=True)
class Enrolled:
    """The outcome of enrolling a consenting shopper's face at the entrance."""

    visit_id: str
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConsentWithdrawn:
    """A shopper withdrew face-billing consent in the wallet app: a visit in progress drops their templates now."""

    account: str


@dataclass(frozen=True, slots=True)
class InventoryReady:
    """The exit reader has looked at the exit area since a shopper was identified there (or gave up waiting)."""

    visit_id: str


@dataclass(frozen=True, slots=True)
class CompanionCarried:
    """The exit reader has looked at what a group's companion carried out (through the exit opened for nobody at
    ``t``; the window from ``t0``)."""

    visit_id: str
    t0: float
    t: float


@dataclass(frozen=True, slots=True)
class ChargeUpdate:
    """The outbox's word on a charge: charge_succeeded / charge_declined / charge_canceled / charge_failed."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DiskChecked:
    """The journal's disk looked at (the app, every half minute): below ``min_free_mb`` entry stops."""

    free_mb: int
    min_free_mb: int


@dataclass(frozen=True, slots=True)
class ChargeQueueChanged:
    """The charge queue's offline limits (the app, every second): ``admitting`` False while another shopper's
    charge could exceed them (``reason``)."""

    admitting: bool
    reason: str | None = None


class Ticket:
    """Who decides an operator command's fate first: the loop (it starts the action) or the screen (it gave up
    waiting, so the action must not run later behind the operator's back)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state = "queued"

    def _move(self, to: str) -> bool:
        with self._lock:
            if self.state != "queued":
                return False
            self.state = to
            return True

    def start(self) -> bool:
        return self._move("started")

    def cancel(self) -> bool:
        return self._move("canceled")


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """An operator action from the status screen; the result goes back on ``reply`` (once): ``ok`` True (done),
    False (refused or failed: nothing happened) or None (the outcome is unknown)."""

    operator: str
    action: str
    args: Any
    reply: queue.Queue[dict[str, Any]]
    ticket: Ticket = field(default_factory=Ticket)


Event = (DeviceEvent | Started | CodeSeen | FaceDecided | Enrolled | InventoryReady | CompanionCarried | ChargeUpdate
         | OperatorCommand | ConsentWithdrawn | DiskChecked | ChargeQueueChanged)
