"""What the store core needs of the world, as Protocols. The app hands it the real drivers, journal, outbox and entry
gate (``app.StoreApp.build``); the deterministic simulation hands it simulated devices and gateway with the same
journal and outbox (``bingobox_devkit.simcore``). The core builds none of them and imports none of their modules:
no SQLite, no HTTP client, no OpenCV behind these names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..domain.entry import Decision
from ..domain.panel import PanelMessage


class Door(Protocol):
    """A door the core may grant (unlock for the grant window). Opening, closing, REX and fire come back as
    DeviceEvents; ``tag`` comes back in the ``unlock_written`` event so stage times can be matched."""

    name: str

    def grant(self, seconds: float | None = None, tag: str | None = None,
              done: Callable[[str, str], None] | None = None) -> None:
        """Unlock for a while; ``done(outcome, detail)``: unlocked / refused / unknown (see ``DoorBoard.grant``)."""
        ...

    def lamps(self, green: bool, red: bool) -> None:
        """The door's green and red lamps, if it has any (a grant always goes first)."""
        ...

    def status(self) -> dict[str, Any]: ...


class ExitReader(Protocol):
    """The exit area's RFID reader, as a history of inventory rounds (``domain.exit_window`` reads them)."""

    def online(self) -> bool: ...

    def window(self, t0: float, t_after: float, min_rounds: int = 1) -> set[str] | None:
        """``domain.exit_window.window`` over this reader's rounds: the EPCs read in the rounds that ended after
        ``t0``, up to the first that ended after ``t_after`` (at least ``min_rounds``); None while incomplete."""
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

    def set_candidates(self, visit_ids: list[str], others: int = 0) -> None:
        """Whom the exit camera's faces may match: the enrolled shoppers inside; ``others``: how many people inside
        or leaving are not candidates (the face at the exit may be theirs: the matcher is stricter)."""
        ...


class JournalTx(Protocol):
    """One open journal transaction: what a visit's transition writes together (``VisitBook.commit``)."""

    now: float

    def save_visit(self, row: dict[str, Any], new: bool) -> None: ...

    def evidence(self, visit_id: str | None, kind: str, data: dict[str, Any]) -> None: ...

    def remember_code(self, jti: str, exp: float, keep_s: float) -> bool:
        """Record a used entry code; False if it was used before."""
        ...

    def alarm(self, kind: str, device: str | None, data: dict[str, Any]) -> None: ...

    def review(self, visit_id: str, account: str, causes: list[str]) -> None:
        """Put the visit in the operators' review queue (or add causes to its open review)."""
        ...


class Journal(Protocol):
    """The store's durable record, as the core uses it (``bingobox.journal.Journal``)."""

    def visit_tx(self, now: float) -> AbstractContextManager[JournalTx]: ...

    def evidence(self, visit_id: str | None, kind: str, data: dict[str, Any], t: float | None = None) -> None: ...

    def alarm(self, kind: str, device: str | None, data: dict[str, Any], t: float | None = None) -> None: ...

    def clear_alarm(self, alarm_id: int, operator: str, t: float | None = None) -> bool: ...

    def enqueue_review(self, visit_id: str, causes: list[str], t: float | None = None) -> bool: ...

    def review_of(self, visit_id: str) -> dict[str, Any] | None: ...

    def decide_review(self, visit_id: str, decision: str, reason: str, operator: str, amount_fen: int | None,
                      charge: Callable[[Any], int] | None = None, t: float | None = None) -> bool: ...

    def open_visits(self) -> list[dict[str, Any]]: ...

    def zone_states(self) -> dict[str, tuple[float, float | None]]: ...

    def save_zone(self, zone: str, above_s: float, off_sale_at: float | None, t: float | None = None) -> None: ...

    def ever_let_in(self) -> bool: ...

    def recent_baskets(self, since: float) -> dict[str, tuple[str, float]]: ...

    def visit_outcomes(self, ids: list[str]) -> dict[str, tuple[set[str], list[str]]]: ...


class ChargeQueue(Protocol):
    """The durable charge outbox (``bingobox.wallet.outbox.Outbox``): intents written in a visit's transaction."""

    gateway_ok: bool | None

    def add_intent_in(self, c: Any, visit_id: str, account_id: str, amount_fen: int, items: list[dict[str, Any]],
                      supersedes: int | None = None, entry_jti: str | None = None, supplement: bool = False) -> int:
        ...

    def wake(self) -> None: ...

    def visit_state(self, visit_id: str) -> dict[str, Any] | None: ...

    def retry_failed(self, visit_id: str) -> int: ...


class CodeGate(Protocol):
    """The offline check of entry codes (``domain.entry.EntryGate``)."""

    def check(self, text: str, door: str) -> Decision: ...

    def check_account(self, account: str) -> Decision:
        """The refusals of an account without a code (a card tapped)."""
        ...


Post = Callable[[object], None]
Rows = Iterator[tuple[float, set[str]]]


# Whoever shows the door panels (the screen's server): told each new message of a door, on the loop's thread. It
# must return at once (it hands the message on); the core never waits for a panel.
PanelOut = Callable[[str, str, PanelMessage, float], None]  # (door, role, message, at)
BasketOut = Callable[[str, str, dict[str, Any]], None]  # (visit, account, live basket: ``LiveBaskets.view``)
# Whoever talks to the wallet gateway for the shopper's side: a card to bind to the account that asked for the pairing
# code (the answer comes back as ``events.CardPaired``). Must return at once.
CardOut = Callable[[str, str], None]  # (pairing code, card hash)
