"""The composition root: ``StoreApp.build`` builds everything a running store needs — journal, catalog, wallet
clients, outbox, shopper sync, entry gate, device drivers, face worker and side, camera feeds, the store core and its
control loop, the status screen with the money actions, the MQTT link — and ``run`` starts it in a stated order and
stops it in the reverse one. Nothing else builds its own dependencies.

    start:  journal (opened) → open visits restored → outbox → devices → face worker → camera feeds → loop
            → screen → MQTT link
    stop:   MQTT link → screen → loop → feeds → face worker → devices → outbox → journal

The status screen and the status file read ``view`` (a snapshot the loop publishes once a second) and act through
``act`` (an ``OperatorCommand`` the loop applies): they never reach into the core.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from . import feeds
from .config import StoreConfig
from .core.events import (
    CardListIn,
    CardPaired,
    ChargeQueueChanged,
    ChargeUpdate,
    ConsentWithdrawn,
    DiskChecked,
    OperatorCommand,
    Started,
)
from .core.store import StoreCore
from .devices.camera import Camera
from .devices.door import build_doors
from .devices.llrp import LlrpReader
from .devices.nfc import CardReader
from .devices.probe import build_probes
from .devices.rfid import RfidReader
from .domain.catalog import Catalog
from .domain.entry import EntryGate, load_pinned
from .domain.panel import door_roles
from .journal import Journal
from .loop import EventLoop, Inbox
from .metrics import Histogram
from .panel_hub import PanelHub
from .sdnotify import Notifier, catch_stop_signals, wait_for_signal
from .status import build_view
from .view import View
from .wallet.client import WalletClient
from .wallet.money import Money
from .wallet.outbox import Outbox, Policy
from .wallet.sync import ShopperSync
from .worker import Worker

log = logging.getLogger(__name__)
VIEW_EVERY_S = 1.0  # the published snapshot (its SQL runs on the loop thread: keep it rare)
DISK_EVERY_S = 30.0  # free disk looked at
PRUNE_EVERY_S = 600.0  # retention applied (a bounded batch each time)
REVIEW_STATS_EVERY_S = 10.0  # the review rate counted again


class StoreApp:
    @classmethod
    def build(cls, cfg: StoreConfig, status_path: Path | None = None, face_worker: Any = None) -> StoreApp:
        """The store of ``cfg`` with its face worker (if face billing is on: ``face_worker`` if given, launched
        already by ``bingobox run``), its screen (with the money actions) and its MQTT link. Raises
        ValueError/OSError/ConfigError saying what in the config is wrong."""
        from .vision.worker import face_worker_for

        worker = face_worker if face_worker is not None else face_worker_for(cfg.vision)
        app = cls(cfg, face_worker=worker, status_path=status_path)
        w = cfg.wallet
        assert w is not None  # (checked in __init__)
        app.money = Money(WalletClient(w.gateway_url, cfg.store.id, w.secret(), w.connect_timeout_s,
                                       w.read_timeout_s), app.journal)
        if cfg.screen is not None:
            from .screen.server import ScreenServer

            try:
                app.screen = ScreenServer(app, cfg, app.money.refund, app.money.resolve)
            except (ValueError, OSError) as e:  # an unreadable or invalid operators_file
                raise ValueError(f"screen: {e}") from None
        if cfg.mqtt is not None:
            from .mqtt.link import MqttLink

            try:
                app.link = MqttLink(cfg.mqtt, cfg.store.id, app)
            except (ValueError, OSError) as e:  # an unreadable password, secret or certificate
                raise ValueError(f"mqtt: {e}") from None
        return app

    def __init__(self, cfg: StoreConfig, face_worker: Any = None, notifier: Notifier | None = None,
                 status_path: Path | None = None) -> None:
        if cfg.wallet is None or cfg.layout is None or cfg.catalog is None:
            raise ValueError("running a store needs [wallet], [layout] and catalog in the config")
        self.cfg = cfg
        lay, w = cfg.layout, cfg.wallet
        self.lay, self.wallet = lay, w  # (checked above: not None)
        self.inbox = Inbox()
        self.journal = Journal(cfg.journal.path)
        self.catalog = Catalog.load(cfg.catalog, cfg.batches, cfg.store.tz())
        known = {p.sku for p in self.catalog.products()}
        named = [(f"zones.{z.name}.skus", set(z.skus)) for z in cfg.zones] + [
            (f"cabinets.{c.name}.skus", set(c.skus)) for c in cfg.cabinets] + [
            ("stock.minimum", set(cfg.stock.minimum))] + [(f"stock.carries.{n}", set(v))
                                                          for n, v in cfg.stock.carries.items()]
        for where, skus in named:
            if skus - known:
                raise ValueError(f"{where}: not in the catalog: {', '.join(sorted(skus - known))}")
        self.client = WalletClient(w.gateway_url, cfg.store.id, w.secret(), w.connect_timeout_s, w.read_timeout_s)
        self.outbox = Outbox(self.journal, self.client, w.limits, Policy.of(w),
                             on_event=lambda kind, data: self.inbox.put(ChargeUpdate(kind, data)))
        self.sync = None
        if w.shopper_sync:  # its own client: the outbox's session is the outbox thread's
            self.sync = ShopperSync(self.journal, WalletClient(w.gateway_url, cfg.store.id, w.secret(),
                                                               w.connect_timeout_s, w.read_timeout_s),
                                    self.catalog, lambda account: self.inbox.put(ConsentWithdrawn(account)),
                                    inbox_every_s=w.inbox_every_s, keys=lambda: self.gate.keys,
                                    on_card_list=(lambda cl: self.inbox.put(CardListIn(cl))) if cfg.card_readers
                                    else None, on_paired=lambda ok, why: self.inbox.put(CardPaired(ok, why)),
                                    cards_file=Path(cfg.journal.path).parent / "cards.jws",
                                    cards_every_s=cfg.visits.card_list_every_s)
        keys, not_after = load_pinned(w.keys_file)
        self.gate = EntryGate(keys, cfg.store.id, self.journal, self.outbox, not_after=not_after)
        self._reload_keys = threading.Event()  # set by SIGHUP (``reload_keys``); done by the loop
        emit = self.inbox.put
        self.buses, self.doors = build_doors(cfg.doors, cfg.buses, emit)
        self.probes = build_probes(cfg.probes, self.buses, emit)
        for bus in self.buses.values():
            bus.on_failure = self._fatal
        self.fatal: str | None = None  # why the process must end (a dead door driver): systemd restarts it
        self.readers: dict = {r.name: RfidReader(r, emit) for r in cfg.readers}
        self.llrp = {r.name: LlrpReader(r, emit) for r in cfg.llrp_readers}
        for reader in self.llrp.values():  # each antenna's zone is a reader to the store
            self.readers.update({z.name: z for z in reader.zones.values()})
        self.cameras = {c.name: Camera(c, emit) for c in cfg.cameras}
        self.card_readers = {c.name: CardReader(c, emit) for c in cfg.card_readers}
        self.faces = None
        if face_worker is not None and cfg.vision.faces:
            self.faces = feeds.FaceSide(face_worker, self.cameras[lay.entry_camera], self.cameras[lay.exit_camera],
                                        self.inbox, cfg.vision, enrol_frames=cfg.visits.enrol_frames)
        self.panels = PanelHub(cfg.panels, door_roles(lay.entry_door, lay.exit_door, [c.door for c in cfg.cabinets]))
        self.core = StoreCore(cfg, self.journal, self.catalog, self.outbox, self.gate, self.doors,
                              self.readers.get(lay.exit_reader) if lay.exit_reader else None, self.faces,
                              post=self.inbox.put, hours=cfg.store.hours.build() if cfg.store.hours else None,
                              panel_out=self.panels.publish,
                              basket_out=self.sync.live if self.sync is not None else None,
                              card_out=self.sync.pair if self.sync is not None and cfg.card_readers else None)
        self.loop = EventLoop(self.inbox, self.core.handle, self.core.tick, on_tick=self._after_tick)
        self.notifier = notifier or Notifier()  # systemd: watchdog pings come from the loop's own tick
        self.status_path = status_path
        self.qr_ms = {"entry": Histogram(), "exit": Histogram(),
                      **{f"cabinet:{c.name}": Histogram() for c in cfg.cabinets if c.camera is not None}}
        self.view: View = {}  # the latest published snapshot (replaced, never mutated; empty until the first)
        self._last_view = 0.0
        self._reviews: tuple[float, dict] = (0.0, {"open": 0, "review_rate": 0.0, "visits": 0, "reviews": 0,
                                                   "by_cause": {}, "since": 0.0, "oldest_open_at": None})
        self._last_disk = 0.0
        self._last_prune = time.time() - PRUNE_EVERY_S + 60  # the first a minute after start
        self._sick_logged = False
        self._stop = threading.Event()
        self._feeds: list[Worker] = []
        self.money: Money | None = None
        self.screen: Any = None  # screen.server.ScreenServer
        self.link: Any = None  # mqtt.link.MqttLink

    # lifecycle -------------------------------------------------------------------------------------------
    def run(self, say: Callable[[str], None], warn: Callable[[str], None]) -> int:
        """Run until SIGTERM/SIGINT (SIGHUP: the pinned keys again): the store, then its screen and its link; what
        listens where is ``say``-d. Returns the process's exit status."""
        signal.signal(signal.SIGHUP, lambda *_: self.reload_keys())  # `systemctl reload`: the pinned keys again
        # OpenCV's own thread pool: its workers wake for every small resize or blur of the motion gates and spin
        # before they sleep (0.013 of a core in an idle store on 2 cores); the store's threads are its parallelism
        cv2.setNumThreads(1)
        stop = catch_stop_signals()  # (before "running": a stop right after it must find the handlers in place)
        self.start()
        try:
            if self.screen is not None:
                try:
                    say(f"bingobox run: status screen at {self.screen.start()}")
                except OSError as e:  # the port is taken: say so and stop cleanly (systemd restarts us)
                    warn(f"bingobox run: {e}")
                    return 2
            if self.link is not None:
                self.link.start()
                say(f"bingobox run: mqtt {self.link.status()['broker']} (connecting; retried while down)")
            say(f"bingobox run: store {self.cfg.store.id} running (journal {self.cfg.journal.path})")
            self.notifier.ready(f"store {self.cfg.store.id} running")
            wait_for_signal(stop)
        finally:
            self.notifier.stopping()
            if self.link is not None:
                self.link.stop()
            if self.screen is not None:
                self.screen.stop()
            self.stop()
            self.notifier.close()
        if self.fatal:
            warn(f"bingobox run: {self.fatal}")
            return 1  # (systemd: Restart=always, and OnFailure= tells someone)
        return 0

    def start(self) -> None:
        self.core.restore()
        self.outbox.start()
        if self.sync is not None:
            kept = self.sync.load_cards() if self.cfg.card_readers else None
            if kept is not None:  # (until the gateway answers: cards work across a restart with it down)
                self.inbox.put(CardListIn(kept))
            self.sync.start()
        for dev in [*self.buses.values(), *self.readers.values(), *self.llrp.values(), *self.cameras.values(),
                    *self.card_readers.values()]:
            dev.start()
        if self.faces is not None:
            try:
                self.faces.start()
            except Exception as e:  # no faces: every exit falls back to the QR code
                log.error("face worker did not start (%s): exits will ask for the QR code", e)
                self.faces = self.core.faces = None
        lay, age = self.lay, self.cfg.vision.max_frame_age_s
        cams = [("entry", lay.entry_camera), ("exit", lay.exit_camera),
                *[(f"cabinet:{c.name}", c.camera) for c in self.cfg.cabinets if c.camera is not None]]
        for role, cam in cams:
            self._spawn(feeds.qr_scanner, self.cameras[cam], role, self.inbox, self._stop, age, self.qr_ms[role],
                        self.cfg.vision.qr_budget_ms)
        self.loop.start()
        self.inbox.put(Started())

    def stop(self) -> None:
        self.loop.stop()
        self._stop.set()
        for w in self._feeds:
            w.stop()
        if self.faces is not None:
            self.faces.stop()
        for dev in [*self.card_readers.values(), *self.cameras.values(), *self.llrp.values(), *self.readers.values(),
                    *self.buses.values()]:
            dev.stop()
        if self.sync is not None:
            self.sync.stop()
        self.outbox.stop()
        self.client.close()
        if self.money is not None:
            self.money.close()
        self._publish()
        self.journal.close()

    def _spawn(self, fn, *args) -> None:
        w = Worker(f"feed-{fn.__name__}-{len(self._feeds)}", functools.partial(fn, *args), join_s=5,
                   stopping=self._stop)
        w.start()
        self._feeds.append(w)

    # what the screen uses ----------------------------------------------------------------------------------
    def act(self, operator: str, action: str, args: Any, timeout: float = 5.0) -> dict:
        """Apply an operator action (``operations.ACTIONS``) in the control loop and say what came of it: done
        (``ok`` True), not done (False: refused, or the loop was too busy to start it — then it never runs later),
        or, when it started and gave no word, unknown (``ok`` None)."""
        reply: queue.Queue = queue.Queue(maxsize=1)
        cmd = OperatorCommand(operator, action, args, reply)
        self.inbox.put(cmd)  # (if the inbox is full it is dropped: never started, so "not done" below is true)
        try:
            return reply.get(timeout=timeout)
        except queue.Empty:
            pass
        if cmd.ticket.cancel():
            return {"ok": False, "error": "not_run",
                    "detail": f"the control loop did not get to it in {timeout:g} s: nothing was done"}
        try:  # it started: its outcome is on its way
            return reply.get(timeout=timeout)
        except queue.Empty:
            return {"ok": None, "error": "outcome_unknown",
                    "detail": f"started, and no outcome within {2 * timeout:g} s: see the store's state"}

    # the loop's tick ---------------------------------------------------------------------------------------
    def _fatal(self, reason: str) -> None:
        """A part the doors depend on died (from its own thread): end the process so systemd starts it afresh —
        a door frozen with a dead driver must not go on looking alive."""
        if self.fatal is None:
            self.fatal = reason
            log.critical("%s: stopping so that the service is restarted", reason)
            os.kill(os.getpid(), signal.SIGTERM)

    def reload_keys(self) -> None:
        """Ask for the pinned keys to be read again (SIGHUP: ``systemctl reload`` after ``bingobox fetch-keys``)."""
        self._reload_keys.set()

    def _do_reload_keys(self) -> None:
        self._reload_keys.clear()
        path = self.wallet.keys_file
        try:
            keys, not_after = load_pinned(path)
        except ValueError as e:  # keep the keys it has: a broken file must not stop entry
            self.core.alarm("keys_reload_failed", None, {"error": str(e)})
            return
        before = set(self.gate.keys)
        self.gate.replace_keys(keys, not_after)
        log.warning("pinned keys reloaded from %s: %s (added %s, dropped %s)", path, ", ".join(sorted(keys)),
                    sorted(set(keys) - before) or "none", sorted(before - set(keys)) or "none")
        self.journal.evidence(None, "keys_reloaded", {"kids": sorted(keys), "not_after": not_after})

    def _after_tick(self) -> None:
        if self._reload_keys.is_set():
            self._do_reload_keys()
        sick = [n for n, d in self.doors.items() if not d.healthy()]
        if sick:  # no watchdog ping: a door thread that hangs gets the process restarted too
            if not self._sick_logged:
                log.error("door driver(s) %s not running their loop: the watchdog ping stops", ", ".join(sick))
                self._sick_logged = True
        else:
            self._sick_logged = False
            self.notifier.tick(f"{self.core.store.state}: {self.core.inside()} inside")
        now = time.time()
        if now - self._last_disk >= DISK_EVERY_S:
            self._last_disk = now
            self._check_disk()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self._prune(now)
        if now - self._last_view >= VIEW_EVERY_S:
            self._last_view = now
            self._publish()

    def _check_disk(self) -> None:
        """The journal's free disk, for the core (``DiskChecked``: entry stops before the disk fills)."""
        jc = self.cfg.journal
        try:
            free_mb = shutil.disk_usage(Path(jc.path).resolve().parent).free // 2**20
        except OSError as e:
            log.error("cannot see the journal's free disk: %s", e)
            return
        self.core.handle(DiskChecked(int(free_mb), jc.min_free_mb))  # (on the loop's thread: _after_tick)

    def _prune(self, now: float) -> None:
        jc, day = self.cfg.journal, 86_400.0
        try:
            got = self.journal.prune(now, jc.keep_visits_days * day, jc.keep_refusals_days * day,
                                     jc.keep_audit_days * day)
        except Exception as e:  # (a full disk: the deletes themselves need a little room)
            log.error("journal retention failed: %s", e)
            return
        for kind, n in got.items():
            self.core.telemetry.count(f"pruned_{kind}", n)
        if any(got.values()):
            log.info("journal retention: pruned %s", got)

    def _publish(self) -> None:
        charges = self.outbox.status()
        self.core.handle(ChargeQueueChanged(charges["admission"], charges["admission_reason"]))
        lay = self.lay
        shelves = {n: r for n, r in self.readers.items() if n != lay.exit_reader}
        devices = {n: d.status() for n, d in {**self.doors, **self.readers, **self.cameras,
                                              **self.card_readers, **self.probes}.items()}
        lat = {"qr_entry_ms": self.qr_ms["entry"].summary(), "qr_exit_ms": self.qr_ms["exit"].summary()}
        if self.faces is not None:
            lat["face_match_ms"] = self.faces.match_ms.summary()
        snap = self.core.snapshot()
        snap["latency"] = {**snap["latency"], **lat}
        self.view = build_view(snap, charges, devices, shelves, self.catalog,
                               {"loop": {"lag_ms": round(self.loop.lag_ms, 1), "inbox": len(self.inbox),
                                         **self.inbox.stats},
                                "faces": dict(self.faces.stats) if self.faces is not None else None,
                                "buses": {n: b.status() for n, b in self.buses.items()},
                                "shopper_sync": self.sync.status() if self.sync is not None else None,
                                "reviews": self._review_stats()})
        self._write_status(self.view)

    def _review_stats(self) -> dict:
        """The review queue and rate over the last 24 hours (read from the journal at most every 10 s: an indexed
        count, kept off most of the loop's snapshots)."""
        now = time.time()
        if now - self._reviews[0] >= REVIEW_STATS_EVERY_S:
            try:
                self._reviews = (now, self.journal.review_stats(now - 86_400))
            except Exception as e:  # the journal failing is said elsewhere; the last figures stay
                log.warning("review stats: %s", e)
        return self._reviews[1]

    def _write_status(self, snapshot: View) -> None:
        if self.status_path is None:
            return
        tmp = self.status_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(snapshot, default=str))
            tmp.replace(self.status_path)
        except OSError as e:
            log.warning("cannot write %s: %s", self.status_path, e)
