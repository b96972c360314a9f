"""The store core: one object that owns the store machine and the open visits and consumes typed events one at a
time (``handle``), plus a periodic ``tick`` for timeouts. Its rules live beside it — ``admission`` (entry codes),
``shopping`` (door cycles at the entrance, shelves), ``checkout`` (identification at the exit, the basket, the
charge, the exit door), ``restore`` (reconciling after a restart) — and take it as their one argument.

It builds nothing: the journal, outbox, entry gate, doors, exit reader, face side and clock are handed in (by
``app.StoreApp``, or by the deterministic simulation in ``hardware/simcore``). It never blocks on a device or the
network; everything slow happens in the threads that feed it.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..config import StoreConfig
from ..devices.events import DeviceEvent
from ..domain.catalog import Catalog
from ..domain.entry import EntryGate
from ..domain.hours import Hours
from ..domain.store import WHAT_WORKS, StoreMachine
from ..journal import Journal
from ..metrics import Histogram
from ..wallet.outbox import Outbox
from . import admission, checkout, restore, shopping
from .events import (
    ChargeUpdate,
    CodeSeen,
    ConsentWithdrawn,
    Enrolled,
    Event,
    FaceDecided,
    InventoryReady,
    OperatorCommand,
    Started,
)
from .ports import Door, ExitReader, Faces
from .visits import Visit, VisitBook

log = logging.getLogger(__name__)

ENTRY_STAGES = ("captured", "decoded", "verified", "committed", "granted", "written", "acked")
EXIT_STAGES = ("captured", "picked", "decoded", "decided", "handled", "inventory", "committed", "sent", "answered",
               "granted", "written", "acked")


class StoreCore:
    def __init__(self, cfg: StoreConfig, journal: Journal, catalog: Catalog, outbox: Outbox, gate: EntryGate,
                 doors: dict[str, Door], exit_reader: ExitReader | None, faces: Faces | None,
                 post: Callable[[Event], None], clock: Callable[[], float] = time.time,
                 hours: Hours | None = None, rng: random.Random | None = None) -> None:
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
        self.book = VisitBook(journal, clock)
        self.store = StoreMachine()
        self.unattributed: dict[str, float] = {}  # EPCs that left a shelf while several shoppers were inside
        self.recently_left: dict[str, tuple[str, float]] = {}  # EPC → (visit, when) carried out and charged
        self.exit_closed_at = 0.0  # the exit door last closed: the exit window never reaches back before it
        # shelf readers that cannot see (unplugged, failing) since when, and when each last came back: what left a
        # shelf meanwhile is seen late or never, so nobody's basket is certain (see shelves_blind_since)
        self.shelf_names = {n for n in cfg.reader_names() if n != cfg.layout.exit_reader}
        self.shelf_offline: dict[str, float] = {}
        self.shelf_back_at: dict[str, float] = {}
        self.exit_cycles_unidentified: list[float] = []  # exit door openings nobody was granted for
        # people inside without a visit (a forced entrance, two faces on one code), when each was noticed: while
        # any may be inside, nobody's takes are attributed with certainty
        self.strangers: list[float] = []
        # the doors were open to anyone (a fire released them, the controller was down): any number of people may
        # be inside, and an unidentified exit does not say they all left; it ends with max_inside_s
        self.unwatched_at: float | None = None
        self.codes_seen: dict[str, float] = {}  # QR text → last frame time (debounce)
        self.metrics: dict[str, Histogram] = {"entry_ms": Histogram(), "exit_ms": Histogram()}
        self.stage_ms: dict[str, dict[str, Histogram]] = {"entry": {}, "exit": {}}
        self.counts = {"entries": 0, "refused": 0, "left": 0, "charged": 0, "declined": 0, "failed": 0,
                       "fallback_qr": 0, "abandoned": 0, "timed_out": 0, "alarms": 0, "zero_baskets": 0,
                       "recovery": 0, "fail_open": 0, "stale_dropped": 0}
        self.unrecorded_alarms: list[dict] = []  # alarms the journal could not take (shown on the screen)
        self.started_at = clock()
        self.disk_low, self.free_mb = False, None  # the journal's disk (the app looks; entry stops when low)
        self.refusals: dict[str, dict] = {}  # per refusal reason: this minute's evidence rows (admission.refuse)
        self.rng = rng or random.Random()  # visit ids (a simulation passes a seeded one to replay a run)
        self.awaiting_ack: dict[str, tuple[str, dict]] = {}  # door grant tag → (path, stage times)
        self._handlers: dict[type, Callable[[Any], None]] = {
            DeviceEvent: self._on_device, Started: self._on_started, CodeSeen: self._on_code,
            FaceDecided: lambda ev: checkout.on_face(self, ev), Enrolled: lambda ev: admission.on_enrolled(self, ev),
            InventoryReady: lambda ev: checkout.on_inventory(self, ev),
            ChargeUpdate: lambda ev: checkout.on_charge(self, ev), OperatorCommand: self._on_operator,
            ConsentWithdrawn: lambda ev: admission.on_consent_withdrawn(self, ev),
        }

    # the loop's entry points -------------------------------------------------------------------------
    def restore(self) -> None:
        """After a (re)start: open visits back from the journal, reconciled with the world."""
        restore.reconcile(self)

    def handle(self, ev: Event) -> None:
        self._handlers[type(ev)](ev)

    def tick(self) -> None:
        """Timeouts (the loop calls this about ten times a second)."""
        now = self.clock()
        for v in self.book:
            try:
                checkout.tick_visit(self, v, now)
            except Exception:
                log.exception("tick: visit %s", v.id)
                if v.leaving:
                    checkout.fail_open(self, v, "tick")
        self.store.set_problem("gateway", self.outbox.gateway_ok is False)
        cutoff = now - self.settings.recent_exit_s
        for epc in [e for e, (_, t) in self.recently_left.items() if t < cutoff]:
            del self.recently_left[epc]
        self.exit_cycles_unidentified = [t for t in self.exit_cycles_unidentified if t > now - 300]
        self.strangers = [t for t in self.strangers if t > now - self.settings.max_inside_s]
        if self.unwatched_at is not None and self.unwatched_at <= now - self.settings.max_inside_s:
            self.unwatched_at = None
        for tag in list(self.awaiting_ack)[:-200]:  # grants whose door never acknowledged (offline board)
            del self.awaiting_ack[tag]

    # events --------------------------------------------------------------------------------------------
    def _on_started(self, _ev: Started) -> None:
        self.store.started()
        log.info("store %s: %s (%s)", self.cfg.store.id, self.store.state, WHAT_WORKS[self.store.state])

    def shelves_blind_since(self, t: float) -> bool:
        """Was any shelf reader unable to see at some time since ``t`` (or shortly before it came back)?"""
        grace = shopping.SHELF_BLIND_GRACE_S
        return bool(self.shelf_offline) or any(back + grace > t for back in self.shelf_back_at.values())

    def _on_device(self, ev: DeviceEvent) -> None:
        if ev.kind in ("connected", "disconnected", "fault"):
            self.store.set_problem(f"device:{ev.device}", ev.kind != "connected")
            if ev.device in self.shelf_names:
                if ev.kind == "connected":
                    if self.shelf_offline.pop(ev.device, None) is not None:
                        self.shelf_back_at[ev.device] = ev.t
                else:
                    self.shelf_offline.setdefault(ev.device, ev.t)
                    for v in self.book.inside():  # what they take now is not seen leaving the shelf
                        v.alone = False
        if ev.kind in ("alarm", "fault"):
            self.alarm(ev.data.get("alarm") or ev.data.get("fault") or ev.kind, ev.device, ev.data, ev.t)
        if ev.kind == "fire_alarm" and self.store.may("fire"):
            self.store.fire()
            self.stranger_inside(ev.t, "fire", uncounted=True)  # every door is free: anyone may walk in
        elif ev.kind == "fire_cleared" and self.store.may("fire_cleared"):
            self.store.fire_cleared()
        if ev.kind == "unlock_written":
            checkout.unlock_written(self, ev)
        elif ev.device == self.lay.entry_door:
            shopping.entry_door(self, ev)
        elif ev.device == self.lay.exit_door:
            checkout.exit_door(self, ev)
        elif ev.kind in ("tag_gone", "tag_seen") and ev.device != self.lay.exit_reader:
            shopping.shelf(self, ev)

    def _on_code(self, ev: CodeSeen) -> None:
        last = self.codes_seen.get(ev.text)
        self.codes_seen[ev.text] = ev.frame_t  # refreshed by every frame that shows it
        if last is not None and ev.frame_t - last < self.settings.rescan_debounce_s:
            return  # the same code still in front of the camera: one scan
        if len(self.codes_seen) > 256:
            for old in [c for c, t in self.codes_seen.items() if ev.frame_t - t > 60]:
                del self.codes_seen[old]
        if ev.role == "entry":
            admission.entry_code(self, ev)
        else:
            checkout.exit_code(self, ev)

    def _on_operator(self, cmd: OperatorCommand) -> None:
        from ..operations import ActionError, apply

        if not cmd.ticket.start():
            return  # the screen stopped waiting before the loop got to it: it told the operator nothing was done

        def finish(result: dict) -> None:  # (from the loop, or a door driver's thread for an unlock)
            result = {**result, "state": self.store.state}
            try:
                self.journal.evidence(None, "operator", {"operator": cmd.operator, "action": cmd.action, **result})
            finally:
                cmd.reply.put(result)

        try:
            detail = apply(self, cmd.operator, cmd.action, cmd.args, finish)
        except ActionError as e:
            finish({"ok": False, "error": e.code, "detail": str(e)})
            return
        if detail is not None:
            finish({"ok": True, "detail": detail})

    # shared helpers --------------------------------------------------------------------------------------
    def alarm(self, kind: str, device: str | None, data: dict, t: float | None = None) -> None:
        """Raise an alarm: in the journal, or (if the journal fails) in memory and the log."""
        self.counts["alarms"] += 1
        log.warning("alarm %s on %s: %s", kind, device, data)
        try:
            self.journal.alarm(kind, device, data, t or self.clock())
        except Exception as e:
            log.error("the journal did not take the alarm %s: %s", kind, e)
            self.unrecorded_alarms = [*self.unrecorded_alarms[-49:], {"kind": kind, "device": device, "data": data,
                                                                       "t": t or self.clock()}]

    def unknown_inside(self) -> bool:
        """May someone without a visit be inside (so that nobody's takes are theirs with certainty)?"""
        return bool(self.strangers) or self.unwatched_at is not None

    def stranger_inside(self, t: float, flag: str, visit: Visit | None = None, uncounted: bool = False) -> None:
        """Someone without a visit came in (``uncounted``: any number of people may have, e.g. through doors a fire
        released): every shopper inside is flagged and stops being "alone"; what was attributed to ``visit`` (the
        one they came in with) since its entry goes back to the unattributed pool."""
        if uncounted:
            self.unwatched_at = t
        else:
            self.strangers.append(t)
        inside = [v for v in self.book.inside() if v is not visit] + ([visit] if visit is not None else [])
        if not inside:
            return
        with self.book.commit(inside, [(v, "flag", {"flag": flag}) for v in inside if flag not in v.flags]):
            for v in inside:
                v.flag(flag)
                v.alone = False
            if visit is not None:
                for epc, how in list(visit.basket.items.items()):
                    if how.startswith("shelf:"):
                        visit.basket.remove(epc)
                        self.unattributed[epc] = t

    def open_now(self) -> bool:
        return self.hours is None or self.hours.is_open(datetime.fromtimestamp(self.clock(), UTC))

    def inside(self) -> int:
        return len(self.book.inside())

    def record_stages(self, path: str, stages: dict) -> None:
        """Add one entry's or exit's stage times to the per-stage histograms (ms between consecutive stages)."""
        order = ENTRY_STAGES if path == "entry" else EXIT_STAGES
        seen = [(s, stages[s]) for s in order if stages.get(s) is not None]
        for (a, ta), (b, tb) in itertools.pairwise(seen):
            self.stage_ms[path].setdefault(f"{a}→{b}", Histogram()).add((tb - ta) * 1000)

    def snapshot(self) -> dict:
        """What the core shows (the app adds devices, charges and stock): a fresh dict, never mutated after."""
        now = self.clock()
        visits = [{"visit": v.id, "account": short_account(v.account), "state": str(v.state), "face": v.enrolled,
                   "since_s": round(now - (v.entered_at or v.created_at)), "items": len(v.basket.items),
                   "flags": list(v.flags)} for v in self.book]
        return {"store": self.cfg.store.id, "state": self.store.state, "what_works": WHAT_WORKS[self.store.state],
                "open_now": self.open_now(), "problems": sorted(self.store.problems), "inside": self.inside(),
                "open_visits": len(self.book.visits), "unattributed_items": len(self.unattributed),
                "counts": dict(self.counts), "visits": visits,
                "latency": {k: h.summary() for k, h in self.metrics.items()},
                "stages_ms": {path: {k: h.summary() for k, h in st.items()} for path, st in self.stage_ms.items()},
                "unrecorded_alarms": list(self.unrecorded_alarms), "t": now}


def short_account(account: str) -> str:
    """A pseudonymous account id shortened for the screen."""
    return account if len(account) <= 10 else f"{account[:4]}…{account[-4:]}"
