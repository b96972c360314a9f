"""The schema of the published snapshot (``StoreApp.view``): what the status screen, the status file, ``/metrics``
and the MQTT link read. ``status.build_view`` builds it; mypy checks every reader against these types, and
``check_view`` (pydantic, extra keys refused) checks a real one in the tests, so the schema cannot drift from what
is published."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import TypedDict  # (pydantic reads typing's only from Python 3.12)


class Percentiles(TypedDict, total=False):
    """``bingobox.metrics.percentiles``: count, and with any value p50, p90, p99, max."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float


class VisitRow(TypedDict):
    visit: str
    account: str  # pseudonymous, shortened
    state: str
    face: bool
    since_s: int
    items: int
    flags: list[str]


class Latency(TypedDict, total=False):
    entry_ms: Percentiles
    exit_ms: Percentiles
    qr_entry_ms: Percentiles
    qr_exit_ms: Percentiles
    face_match_ms: Percentiles


class Charges(TypedDict, total=False):
    """The outbox's status: intents per state, the offline exposure and whether it admits anyone, counters."""

    intents: dict[str, int]
    pending_count: int
    pending_fen: int
    oldest_pending_age_s: float
    admission: bool
    admission_reason: str | None
    gateway_ok: bool | None  # how the last exchange went (None: none yet)
    debtors: int
    attempts: int
    succeeded: int
    declined: int
    canceled: int
    unknown: int
    failed: int
    step_failures: int


class ShelfHealth(TypedDict):
    weak: list[str]
    unknown: list[str]
    lowest_read_rate: float | None


class Loop(TypedDict):
    lag_ms: float
    inbox: int
    put: int
    offered: int
    superseded: int
    dropped: int
    max_depth: int


class Reviews(TypedDict, total=False):
    since: float
    visits: int  # visits that ended since
    reviews: int  # … that entered the review queue
    review_rate: float
    by_cause: dict[str, int]
    open: int  # the queue now
    oldest_open_at: float | None


class CardsView(TypedDict):
    """Entry by card (``core.cards.Cards.status``)."""

    cards: int  # linked cards in the store's current list
    list_until: int | None  # when that list expires (unix s)
    list_current: bool
    limit_fen: int  # the most a card visit is charged without an operator
    taps: int
    unknown: int
    no_list: int
    pairings: int
    paired: int
    pair_refused: int
    lists: int


@with_config(ConfigDict(extra="forbid"))
class View(TypedDict, total=False):
    """The whole published snapshot; every key is always there once the store has published (before that the view
    is empty, ``{}``: readers use ``.get``). ``devices`` and ``buses`` are each driver's own status (its kind says
    which)."""

    # the store core (StoreCore.snapshot)
    store: str
    state: str
    what_works: str
    open_now: bool
    problems: list[str]
    inside: int
    open_visits: int
    unattributed_items: int
    strangers: int
    unwatched: bool
    blind_shelves: list[str]
    counts: dict[str, int]
    latency: Latency
    stages_ms: dict[str, dict[str, Percentiles]]
    visits: list[VisitRow]
    unrecorded_alarms: list[dict[str, Any]]
    cards: CardsView  # the list of linked NFC cards the store holds, and what taps came to
    zones: dict[str, dict[str, Any]]  # the chilled zones (``core.cold_chain.ColdChain.status``)
    stock_alerts: dict[str, Any]  # counts per SKU, what needs restocking, what is misplaced (``core.stock.Stock``)
    cabinets: dict[str, dict[str, Any]]  # the locked cabinets, opened and refused (``core.cabinets.Cabinets``)
    t: float
    # the app (status.build_view)
    charges: Charges
    devices: dict[str, dict[str, Any]]
    stock: dict[str, dict[str, int]]
    rfid_health: dict[str, ShelfHealth]
    cross_read: dict[str, list[str]]
    loop: Loop
    faces: dict[str, int] | None
    buses: dict[str, dict[str, Any]]
    shopper_sync: dict[str, Any] | None
    reviews: Reviews  # the review queue and rate (the last 24 hours)


@functools.cache
def _adapter() -> TypeAdapter[View]:
    return TypeAdapter(View)


def check_view(view: dict[str, Any]) -> View:
    """``view`` if it has the schema's shape (every key, no other, each of its type); else ValueError naming the
    missing keys, or pydantic's ValidationError naming the wrong ones."""
    missing = set(View.__annotations__) - set(view)
    if missing:
        raise ValueError(f"the published view lacks {sorted(missing)}")
    return _adapter().validate_python(view, strict=False)
