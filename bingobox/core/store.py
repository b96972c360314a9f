"""The store core: the objects that own the store's state, and the rules that change it, in one control loop that
consumes typed events one at a time (``handle``) and ticks for timeouts (``tick``).

Who owns what: ``book`` the open visits (``VisitBook``: every change one journal commit), ``store`` the store's
state machine and its problems, ``attribution`` who carries what, ``telemetry`` what is counted and timed,
``panels`` what each door's panel says (handed out through ``panel_out``, never waited for), ``cards`` the list of
bound NFC cards (a tap works like a code; pairings go out through ``card_out``), ``cold_chain`` the chilled zones.
The rules
are objects of their own — ``Health``, ``FaceBilling``, ``Admission``, ``Shopping``, ``Checkout``, ``ExitDoor``,
``Timeouts``, ``Operations`` — each registering the events it handles and its tick with the core (Klipper's
``register_event_handler``); none imports another, they meet through the core's attributes. ``restore`` reconciles
after a restart.

It builds nothing: the journal, charge queue, entry gate, doors, exit reader, face side and clock are handed in (by
``app.StoreApp.build``, or by the deterministic simulation). It never blocks on a device or the network.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..config import StoreConfig
from ..devices.events import DeviceEvent
from ..domain.catalog import Catalog
from ..domain.hours import Hours
from ..domain.store import WHAT_WORKS, StoreMachine
from . import restore
from .admission import Admission
from .attribution import Attribution
from .cabinets import Cabinets
from .cards import Cards
from .checkout import Checkout
from .cold_chain import ColdChain
from .events import CodeSeen, Started
from .exit_door import ExitDoor
from .face_billing import FaceBilling
from .health import Health
from .live_baskets import LiveBaskets
from .operations import Operations
from .panels import Panels
from .ports import BasketOut, CardOut, ChargeQueue, CodeGate, Door, ExitReader, Faces, Journal, PanelOut
from .shopping import Shopping
from .stock import Stock
from .telemetry import ENTRY_STAGES, EXIT_STAGES, Telemetry
from .timeouts import Timeouts
from .timing import Timing
from .visits import VisitBook

log = logging.getLogger(__name__)
E = TypeVar("E")
__all__ = ["ENTRY_STAGES", "EXIT_STAGES", "StoreCore"]


class StoreCore:
    def __init__(self, cfg: StoreConfig, journal: Journal, catalog: Catalog, outbox: ChargeQueue, gate: CodeGate,
                 doors: Mapping[str, Door], exit_reader: ExitReader | None, faces: Faces | None,
                 post: Callable[[Any], None], clock: Callable[[], float] = time.time,
                 hours: Hours | None = None, rng: random.Random | None = None,
                 panel_out: PanelOut | None = None, basket_out: BasketOut | None = None,
                 card_out: CardOut | None = None) -> None:
        if cfg.layout is None:
            raise ValueError("the store core needs [layout] in the config")
        self.cfg = cfg
        self.lay = cfg.layout
        self.settings = cfg.visits
        self.journal = journal
        self.catalog = catalog
        self.outbox = outbox
        self.gate = gate
        self.doors = doors
        self.exit_reader = exit_reader
        self.faces = faces
        self.post = post  # an event back onto the loop (from any thread)
        self.clock = clock
        self.hours = hours
        self.rng = rng or random.Random()  # visit ids (a simulation passes a seeded one to replay a run)
        self.started_at = clock()
        # the owners of the state
        self.book = VisitBook(journal, clock)
        self.store = StoreMachine()
        self.attribution = Attribution(self.book, {n for n in cfg.reader_names() if n != self.lay.exit_reader},
                                       self.settings.max_inside_s, self.settings.recent_exit_s)
        self.telemetry = Telemetry()
        self.unrecorded_alarms: list[dict[str, Any]] = []  # alarms the journal could not take (shown on the screen)
        self._codes_seen: dict[str, float] = {}  # QR text → last frame time (debounce)
        # the rules: each registers what it handles
        self._handlers: dict[type, list[Callable[[Any], None]]] = {}
        self._device: list[Callable[[DeviceEvent], None]] = []
        self._codes: dict[str, Callable[[CodeSeen], None]] = {}
        self._ticks: list[Callable[[float], None]] = []
        self.on(DeviceEvent, self._on_device)
        self.on(Started, self._on_started)
        self.on(CodeSeen, self._on_code)
        self.health = Health(self)
        self.timing = Timing(self)
        self.face_billing = FaceBilling(self)
        self.admission = Admission(self)
        self.shopping = Shopping(self)
        self.timeouts = Timeouts(self)
        self.checkout = Checkout(self)
        self.exit_door = ExitDoor(self)
        self.operations = Operations(self)
        self.panels = Panels(self, panel_out)  # what each door's panel says (the rules speak through it)
        self.live_baskets = LiveBaskets(self, basket_out)  # what each shopper inside is told they carry
        self.cards = Cards(self, card_out)  # the bound cards' list, taps and pairings
        self.cold_chain = ColdChain(self)  # the chilled zones: readings, alarms, goods off sale
        self.stock = Stock(self)  # what the shelves hold: restock alarms, misplaced items
        self.cabinets = Cabinets(self)  # the locked cabinets: who may open them, their panels
        # a visit's timeouts, one action per visit and tick, in the order of its life
        self._visit_ticks = [self.timeouts.tick_visit, self.checkout.tick_visit, self.exit_door.tick_visit]

    # registration ------------------------------------------------------------------------------------
    def on(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """``handler`` gets every event of ``kind`` (in the order the rules registered)."""
        self._handlers.setdefault(kind, []).append(handler)

    def on_device(self, handler: Callable[[DeviceEvent], None]) -> None:
        """``handler`` gets every device event (it picks the doors, readers and kinds that concern it)."""
        self._device.append(handler)

    def on_code(self, role: str, handler: Callable[[CodeSeen], None]) -> None:
        """``handler`` gets the codes seen by the ``role`` camera ("entry"/"exit"), debounced."""
        self._codes[role] = handler

    def every_tick(self, fn: Callable[[float], None]) -> None:
        self._ticks.append(fn)

    # the loop's entry points -------------------------------------------------------------------------
    def restore(self) -> None:
        """After a (re)start: open visits back from the journal, reconciled with the world."""
        restore.reconcile(self)

    def handle(self, ev: object) -> None:
        for handler in self._handlers[type(ev)]:
            handler(ev)

    def tick(self) -> None:
        """Timeouts (the loop calls this about ten times a second)."""
        now = self.clock()
        for v in self.book:
            try:
                for fn in self._visit_ticks:
                    if fn(v, now):
                        break
            except Exception:
                log.exception("tick: visit %s", v.id)
                if v.leaving:
                    self.exit_door.fail_open(v, "tick")
        for tick in self._ticks:
            tick(now)
        self.attribution.prune(now)

    def _on_started(self, _ev: Started) -> None:
        self.store.started()
        log.info("store %s: %s (%s)", self.cfg.store.id, self.store.state, WHAT_WORKS[self.store.state])

    def _on_device(self, ev: DeviceEvent) -> None:
        for handler in self._device:
            handler(ev)

    def _on_code(self, ev: CodeSeen) -> None:
        last = self._codes_seen.get(ev.text)
        self._codes_seen[ev.text] = ev.frame_t  # refreshed by every frame that shows it
        if last is not None and ev.frame_t - last < self.settings.rescan_debounce_s:
            return  # the same code still in front of the camera: one scan
        if len(self._codes_seen) > 256:
            for old in [c for c, t in self._codes_seen.items() if ev.frame_t - t > 60]:
                del self._codes_seen[old]
        handler = self._codes.get(ev.role)
        if handler is not None:
            handler(ev)

    # what every rule may use ----------------------------------------------------------------------------
    def alarm(self, kind: str, device: str | None, data: dict[str, Any], t: float | None = None) -> None:
        """Raise an alarm: in the journal, or (if the journal fails) in memory and the log."""
        self.telemetry.count("alarms")
        log.warning("alarm %s on %s: %s", kind, device, data)
        try:
            self.journal.alarm(kind, device, data, t or self.clock())
        except Exception as e:
            log.error("the journal did not take the alarm %s: %s", kind, e)
            self.unrecorded_alarms = [*self.unrecorded_alarms[-49:], {"kind": kind, "device": device, "data": data,
                                                                       "t": t or self.clock()}]

    def open_now(self) -> bool:
        return self.hours is None or self.hours.is_open(datetime.fromtimestamp(self.clock(), UTC))

    def inside(self) -> int:
        return len(self.book.inside())

    def snapshot(self) -> dict[str, Any]:
        """What the core shows (the app adds devices, charges and stock): a fresh dict, never mutated after."""
        now = self.clock()
        visits = [{"visit": v.id, "account": short_account(v.account), "state": str(v.state), "face": v.enrolled,
                   "since_s": round(now - (v.entered_at or v.created_at)), "items": len(v.basket.items),
                   "flags": list(v.flags)} for v in self.book]
        return {"store": self.cfg.store.id, "state": self.store.state, "what_works": WHAT_WORKS[self.store.state],
                "open_now": self.open_now(), "problems": sorted(self.store.problems), "inside": self.inside(),
                "open_visits": len(self.book.visits), **self.attribution.status(), **self.telemetry.snapshot(),
                "visits": visits, "unrecorded_alarms": list(self.unrecorded_alarms), "cards": self.cards.status(),
                "zones": self.cold_chain.status(), "stock_alerts": self.stock.status(),
                "cabinets": self.cabinets.status(),
                "t": now}


def short_account(account: str) -> str:
    """A pseudonymous account id shortened for the screen."""
    return account if len(account) <= 10 else f"{account[:4]}…{account[-4:]}"
