"""What the store core needs of the world, as Protocols. The app hands it the real drivers (``app.py``); the
deterministic simulation hands it simulated ones (``hardware/simcore``). The core never builds its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Door(Protocol):
    """A door the core may grant (unlock for the grant window). Opening, closing, REX and fire come back as
    DeviceEvents; ``tag`` comes back in the ``unlock_written`` event so stage times can be matched."""

    name: str

    def grant(self, seconds: float | None = None, tag: str | None = None,
              done: Callable[[str, str], None] | None = None) -> None:
        """Unlock for a while; ``done(outcome, detail)``: unlocked / refused / unknown (see ``DoorBoard.grant``)."""
        ...

    def status(self) -> dict: ...


class ExitReader(Protocol):
    """The exit area's RFID reader, as a history of inventory rounds."""

    def online(self) -> bool: ...

    def window(self, t0: float, t_after: float, min_rounds: int = 1) -> set[str] | None:
        """EPCs read in rounds that ended after ``t0``, up to the first round that ended after ``t_after`` — or
        later, until the window holds ``min_rounds`` rounds; None while it is not complete."""
        ...

    def when_ready(self, t0: float, t_after: float, min_rounds: int, callback: Callable[[], None],
                   timeout: float) -> None:
        """Call ``callback`` (from any thread) once ``window(t0, t_after, min_rounds)`` is complete, or after
        ``timeout``."""
        ...


class Faces(Protocol):
    """Face billing: enrolment at the entrance and the exit matcher's candidates. Templates stay on its side."""

    def enrol(self, visit_id: str) -> None:
        """Enrol the shopper now in front of the entry camera; an ``Enrolled`` event follows."""
        ...

    def forget(self, visit_id: str) -> None: ...

    def set_candidates(self, visit_ids: list[str]) -> None:
        """Whom the exit camera's faces may match: the enrolled shoppers inside."""
        ...
