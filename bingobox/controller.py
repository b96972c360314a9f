"""The store controller: one control loop owns the store and visit machines and consumes events one at a time.

Device drivers, the QR scanners, the face threads and the charge outbox only put events on the loop's queue;
the loop decides. Timeouts are the loop's own ticks (no timer threads). Nobody is ever kept inside by software:
request-to-exit and the fire alarm open the doors in the door machine itself, and an exit whose charge has no
answer yet opens after ``exit_charge_wait_s`` with the charge safe in the outbox.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from . import feeds
from .config import StoreConfig
from .devices.camera import Camera
from .devices.door import DoorBoard
from .devices.events import DeviceEvent
from .devices.rfid import RfidReader
from .domain.catalog import Basket, Catalog
from .domain.entry import EntryGate, load_pinned_keys
from .domain.store import WHAT_WORKS, StoreMachine
from .domain.visit import FINAL, VisitMachine
from .journal import Journal
from .metrics import Histogram
from .operations import ActionError, apply
from .screen.view import screen_view
from .service import Notifier
from .visit_record import IN_STORE, Visit, save_visit
from .wallet.client import WalletClient
from .wallet.outbox import Limits, Outbox, Policy

log = logging.getLogger(__name__)
UNSEEN_ENTRY = ("code_accepted", "door_unlocked")  # let in, but the door cycle was not seen (yet)
VIEW_EVERY_S = 1.0  # the snapshot for the screen and the status file (its SQL runs on the loop thread: keep it rare)


class Controller:
    def __init__(self, cfg: StoreConfig, face_worker: Any = None, notifier: Notifier | None = None) -> None:
        if cfg.wallet is None or cfg.layout is None or cfg.catalog is None:
            raise ValueError("running a store needs [wallet], [layout] and catalog in the config")
        self.cfg = cfg
        self.lay = cfg.layout
        self.q: queue.Queue = queue.Queue()
        self.journal = Journal(cfg.journal.path)
        self.catalog = Catalog.load(cfg.catalog)
        w = cfg.wallet
        self.client = WalletClient(w.gateway_url, cfg.store.id, w.secret(), w.connect_timeout_s, w.read_timeout_s)
        self.outbox = Outbox(self.journal, self.client, Limits(**w.limits.model_dump()),
                             Policy(w.retry_base_s, w.retry_max_s, w.poll_interval_s, w.paying_window_s,
                                    w.debt_retry_s), on_event=lambda k, d: self.q.put(("charge", k, d)))
        self.gate = EntryGate(load_pinned_keys(w.keys_file), cfg.store.id, self.journal, self.outbox)
        emit = self._device_event
        self.doors = {d.name: DoorBoard(d, emit) for d in cfg.doors}
        self.readers = {r.name: RfidReader(r, emit) for r in cfg.readers}
        self.cameras = {c.name: Camera(c, emit) for c in cfg.cameras}
        self.faces = face_worker
        self.store = StoreMachine()
        self.hours = cfg.store.hours.build() if cfg.store.hours is not None else None
        self.visits: dict[str, Visit] = {}
        self.unattributed: dict[str, float] = {}  # EPCs that left a shelf while several shoppers were inside
        self._recent_codes: dict[str, float] = {}
        self.metrics = {"entry_ms": Histogram(), "exit_ms": Histogram(), "face_match_ms": Histogram()}
        self.counts = {"entries": 0, "refused": 0, "left": 0, "charged": 0, "declined": 0, "fallback_qr": 0,
                       "abandoned": 0, "timed_out": 0, "alarms": 0, "zero_baskets": 0}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.status_path = None
        self.notifier = notifier or Notifier()  # systemd: watchdog pings come from the loop's own tick
        self.view: dict = {}  # the latest screen_view(), replaced (never mutated) by the loop
        self._last_view = 0.0

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Ordered start: journal (opened) → open visits restored → outbox → devices → faces → scanners → loop."""
        self._restore()
        self.outbox.start()
        for dev in [*self.doors.values(), *self.readers.values(), *self.cameras.values()]:
            dev.start()
        if self.faces is not None:
            try:
                self.faces.start()
            except Exception as e:  # no faces: every exit falls back to the QR code
                log.error("face worker did not start (%s): exits will ask for the QR code", e)
                self.faces = None
        self._spawn(feeds.qr_scanner, self.cameras[self.lay.entry_camera], "entry", self.q, self._stop)
        self._spawn(feeds.qr_scanner, self.cameras[self.lay.exit_camera], "exit", self.q, self._stop)
        if self.faces is not None:
            self._spawn(feeds.face_matcher, self.cameras[self.lay.exit_camera], self.faces, self._enrolled_inside,
                        self.q, self._stop, self.metrics["face_match_ms"], self.cfg.vision.agree_frames)
        self._spawn(self._loop)
        self.q.put(("started", None))

    def stop(self) -> None:
        """Reverse order; open visits and pending charges stay in the journal for the next start."""
        self._stop.set()
        self.q.put(("stop", None))
        for t in self._threads:
            t.join(timeout=5)
        if self.faces is not None:
            self.faces.stop()
        for dev in [*self.cameras.values(), *self.readers.values(), *self.doors.values()]:
            dev.stop()
        self.outbox.stop()
        self.client.close()
        self._write_status()
        self.journal.close()

    def _spawn(self, fn, *args) -> None:
        t = threading.Thread(target=fn, args=args, name=f"ctl-{fn.__name__}", daemon=True)
        t.start()
        self._threads.append(t)

    def _enrolled_inside(self) -> list[str]:
        """Visits the exit camera's faces are matched against (read from the feed thread: a snapshot)."""
        return [v.id for v in list(self.visits.values()) if v.enrolled and v.state in IN_STORE]

    # feeding the loop ------------------------------------------------------------------------------
    def _device_event(self, ev: DeviceEvent) -> None:
        self.q.put(("device", ev))

    # the loop --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        next_tick = 0.0
        while not self._stop.is_set():
            try:
                item = self.q.get(timeout=0.1)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(item)
                now = time.time()
                if now >= next_tick:
                    next_tick = now + 0.1
                    self._tick(now)
            except Exception:
                log.exception("control loop: failed on %s", item[0] if item else "tick")

    def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind == "device":
            self._on_device(item[1])
        elif kind == "qr":
            self._on_code(item[1], item[2], item[3])
        elif kind == "face":
            self._on_face(item[1], item[2])
        elif kind == "enrolled":
            self._on_enrolled(item[1], item[2])
        elif kind == "charge":
            self._on_charge(item[1], item[2])
        elif kind == "basket":
            self._on_exit_inventory(item[1], item[2])
        elif kind == "operator":
            self._on_operator(*item[1:])
        elif kind == "started":
            self.store.started()
            log.info("store %s: %s (%s)", self.cfg.store.id, self.store.state, WHAT_WORKS[self.store.state])

    # devices ---------------------------------------------------------------------------------------
    def _on_device(self, ev: DeviceEvent) -> None:
        if ev.kind in ("connected", "disconnected", "fault"):
            self.store.set_problem(f"device:{ev.device}", ev.kind != "connected")
        if ev.kind in ("alarm", "fault"):
            self.counts["alarms"] += 1
            self.journal.alarm(ev.data.get("alarm") or ev.data.get("fault") or ev.kind, ev.device, ev.data, ev.t)
            log.warning("alarm %s on %s: %s", ev.kind, ev.device, ev.data)
        if ev.kind == "fire_alarm":
            self.store.fire()
        elif ev.kind == "fire_cleared":
            self.store.fire_cleared()
        if ev.device == self.lay.entry_door:
            self._entry_door(ev)
        elif ev.device == self.lay.exit_door:
            self._exit_door(ev)
        elif ev.device in self.readers and ev.device != self.lay.exit_reader:
            self._shelf(ev)

    def _entry_door(self, ev: DeviceEvent) -> None:
        if ev.kind == "door_opened":
            waiting = sorted((v for v in self.visits.values() if v.state == "door_unlocked"),
                             key=lambda v: v.created_at)
            if waiting:
                v = waiting[-1]  # the newest grant is the one that unlocked the door now
                v.machine.fire("door_opened")
                v.entered_at = ev.t
                inside = [o for o in self.visits.values() if o.state in IN_STORE and o is not v]
                if inside:
                    for o in [*inside, v]:
                        o.alone = False
                self._evidence(v, "door_cycle", {"door": ev.device, "opened": ev.t})
        elif ev.kind == "door_closed":
            for v in self.visits.values():
                if v.state == "entered":
                    v.machine.fire("door_closed")
                    self._save(v)
        elif ev.kind == "alarm" and ev.data.get("alarm") == "door_forced":
            for v in self.visits.values():  # someone came in without a code while these were inside
                if v.state in IN_STORE:
                    self._flag(v, "possible_tailgater")

    def _exit_door(self, ev: DeviceEvent) -> None:
        if ev.kind != "door_opened":
            return
        leaving = [v for v in self.visits.values() if v.exit_granted and v.state in ("charging", "declined",
                                                                                        "at_exit")]
        if not leaving and any(v.state in IN_STORE for v in self.visits.values()):
            # someone left unidentified (request-to-exit, or behind another shopper): say so, don't guess who
            self.counts["alarms"] += 1
            self.journal.alarm("exit_unidentified", ev.device, {"inside": [v.id for v in self.visits.values()
                                                                           if v.state in IN_STORE]})
        for v in leaving:
            self._evidence(v, "door_cycle", {"door": ev.device, "opened": ev.t})
            v.machine.fire("exit_door_cycle") or v.machine.fire("walked_out")
            self._finish(v)

    def _shelf(self, ev: DeviceEvent) -> None:
        epc = ev.data.get("epc")
        if epc is None or ev.kind not in ("tag_gone", "tag_seen"):
            return
        if self.store.state == "maintenance":  # restocking: nobody's basket
            self.journal.evidence(None, "restock", {"epc": epc, "reader": ev.device, "change": ev.kind})
            return
        if ev.kind == "tag_gone":
            inside = [v for v in self.visits.values() if v.state in IN_STORE]
            if len(inside) == 1 and inside[0].alone:
                inside[0].basket.add(epc, f"shelf:{ev.device}")
                self._evidence(inside[0], "tag_taken", {"epc": epc, "reader": ev.device})
                self._save(inside[0])
            else:
                self.unattributed[epc] = ev.t
                self.journal.evidence(None, "tag_taken_unattributed",
                                      {"epc": epc, "reader": ev.device, "inside": [v.id for v in inside]})
        else:  # put back on a shelf: nobody pays for it
            self.unattributed.pop(epc, None)
            for v in self.visits.values():
                if v.basket.remove(epc):
                    self._evidence(v, "tag_put_back", {"epc": epc, "reader": ev.device})
                    self._save(v)

    # entry and exit codes --------------------------------------------------------------------------
    def _on_code(self, role: str, code: str, frame_t: float) -> None:
        now = time.time()
        last = self._recent_codes.get(code, 0)
        self._recent_codes[code] = now  # refreshed by every frame that shows it
        if now - last < self.cfg.visits.rescan_debounce_s:
            return  # the same code still in front of the camera: one scan
        for old in [c for c, t in self._recent_codes.items() if now - t > 60]:
            del self._recent_codes[old]
        if role == "entry":
            self._entry_code(code, frame_t)
        else:
            self._exit_code(code, frame_t)

    def _refuse(self, reason: str, detail: str, claims=None) -> None:
        self.counts["refused"] += 1
        log.warning("entry refused: %s %s", reason, detail)
        self.journal.evidence(None, "code_refused", {"reason": reason, "detail": detail,
                                                     "account": getattr(claims, "account", None)})

    def _entry_code(self, code: str, frame_t: float) -> None:
        if not self.store.admits:
            self._refuse("store_not_admitting", self.store.state)
            return
        if not self.open_now():
            self._refuse("store_closed", "outside the opening hours")  # the code stays unused
            return
        d = self.gate.check(code, self.lay.entry_door)
        if not d.ok:
            self._refuse(d.reason, d.detail, d.claims)
            return
        c = d.claims
        if any(v.account == c.account and v.state not in FINAL for v in self.visits.values()):
            self._refuse("already_inside", "one open visit per account", c)
            return
        self.doors[self.lay.entry_door].grant()
        entry_ms = (time.time() - frame_t) * 1000
        self.metrics["entry_ms"].add(entry_ms)
        vid = "v_" + uuid.uuid4().hex[:16]
        v = Visit(vid, c.account, c.face_consent, VisitMachine(vid), time.time())
        v.machine.fire("unlocked")
        self.visits[v.id] = v
        self.counts["entries"] += 1
        self._save(v, new=True)
        self._evidence(v, "code_accepted", {"jti": c.jti, "kid": c.kid, "face_consent": c.face_consent,
                                            "door": self.lay.entry_door, "latency_ms": round(entry_ms, 2)})
        if c.face_consent and self.faces is not None and self.cfg.vision.faces:
            self._spawn_once(feeds.enrol, self.cameras[self.lay.entry_camera], self.faces, v.id,
                             self.cfg.visits.enrol_frames, self.q, self._stop)

    def _exit_code(self, code: str, frame_t: float) -> None:
        d = self.gate.check(code, self.lay.exit_door)
        if d.claims is None or d.reason not in (None, "unpaid_charges", "store_offline_limit"):
            log.warning("exit code refused: %s %s", d.reason, d.detail)
            return  # limits never apply to leaving; a forged or replayed code identifies nobody
        v = next((v for v in self.visits.values() if v.account == d.claims.account and v.state in IN_STORE), None)
        if v is None:
            v = next((v for v in self.visits.values() if v.account == d.claims.account
                      and v.state in UNSEEN_ENTRY), None)
            if v is not None:  # they are at the exit, so they came in: the door cycle was missed
                self._evidence(v, "entry_cycle_not_seen", {})
                v.machine.fire("door_opened")
                v.machine.fire("door_closed")
                v.alone = False  # what they took was not attributed to them: the exit reader decides
        if v is None:
            log.info("exit code of %s who has no open visit: opening the exit", d.claims.account)
            self.doors[self.lay.exit_door].grant()
            return
        self.counts["fallback_qr"] += 1
        self._at_exit(v, frame_t, {"by": "qr"})

    def _on_face(self, d, frame_t: float) -> None:
        if d.reason == "matched" and d.match in self.visits and self.visits[d.match].state in IN_STORE:
            v = self.visits[d.match]
            self._at_exit(v, frame_t, {"by": "face", "distance": d.distance, "margin": d.margin})
        elif d.reason.startswith("unsure") or d.reason == "frames_disagree":
            v = self.visits.get(d.nearest or "")
            if v is not None and d.reason == "unsure_margin" and v.machine.fire("not_sure"):
                # probably them, but not sure enough to charge: they are asked to scan their code
                self._evidence(v, "face_unsure", {"distance": d.distance, "margin": d.margin, "reason": d.reason})
                self._save(v)
            else:
                self.journal.evidence(None, "face_unsure", {"distance": d.distance, "margin": d.margin,
                                                            "reason": d.reason})

    def _on_enrolled(self, visit_id: str, result: dict) -> None:
        v = self.visits.get(visit_id)
        if v is None:
            return
        v.enrolled = bool(result.get("ok"))
        self._evidence(v, "face_enrolment", {k: result.get(k) for k in ("ok", "reason", "face_px", "sharpness")})
        if result.get("reason") == "several_faces":
            self._flag(v, "tailgating")
            self.journal.alarm("tailgating", self.lay.entry_door, {"visit": v.id})
            self.counts["alarms"] += 1

    # exit and charging -----------------------------------------------------------------------------
    def _at_exit(self, v: Visit, frame_t: float, identified: dict) -> None:
        """Identified at the exit (by face or code): charge now, or once the exit reader has looked."""
        if not v.machine.fire("identified"):
            return
        v.exit_t0 = frame_t
        if self.lay.exit_reader and (not v.alone or self.unattributed):
            reader = self.readers[self.lay.exit_reader]
            if reader.online() and reader.rounds_since(frame_t) >= 2:
                # its continuous inventory has looked at the exit area since the shopper was seen there
                self._on_exit_inventory(v.id, set(reader.present()), [("identified", identified)])
            else:
                self._evidence(v, "identified", identified)  # (no intent to wait for yet: the reader looks first)
                self._spawn_once(feeds.exit_inventory, reader, v.id, frame_t, self.q)
        else:
            self._charge(v, [("identified", identified)])

    def _on_exit_inventory(self, visit_id: str, epcs: set[str] | None,
                           evidence: list[tuple[str, dict]] | None = None) -> None:
        v = self.visits.get(visit_id)
        if v is None:
            return
        evidence = list(evidence or [])
        if epcs is None:  # charge what was attributed; state the rest (saved with the charge, after the intent)
            if "exit_reader_unavailable" not in v.flags:
                v.flags.append("exit_reader_unavailable")
                evidence.append(("flag", {"flag": "exit_reader_unavailable"}))
        else:
            for epc in epcs:
                v.basket.add(epc, "exit_reader")
                self.unattributed.pop(epc, None)
            evidence.append(("exit_inventory", {"epcs": sorted(epcs)}))
        self._charge(v, evidence)

    def _charge(self, v: Visit, evidence: list[tuple[str, dict]] = ()) -> None:
        """The critical path: the intent is committed and the sender woken first; ``evidence`` of how we got here
        (identification, exit inventory) and the basket's follow, in that order."""
        lines, unknown = v.basket.lines(self.catalog)
        total = sum(li["amount_fen"] for li in lines)
        v.machine.fire("charge")
        if total == 0:
            self.counts["zero_baskets"] += 1
            self._grant_exit(v)
        else:
            self.outbox.submit(v.id, v.account, total, lines)
            v.exit_deadline = time.time() + self.cfg.visits.exit_charge_wait_s
        for kind, data in evidence:
            self._evidence(v, kind, data)
        if unknown:
            self._evidence(v, "unknown_items", {"epcs": unknown})
        self._evidence(v, "basket", {"lines": lines, "total_fen": total,
                                     "items": {e: how for e, how in v.basket.items.items()}})
        self._save(v, amount=total)

    def _on_charge(self, kind: str, data: dict) -> None:
        v = self.visits.get(data.get("visit_id"))
        if kind == "charge_succeeded":
            self.counts["charged"] += 1
        elif kind == "charge_declined":
            self.counts["declined"] += 1
        if v is None:
            return
        self._evidence(v, kind, data)
        if kind == "charge_declined":
            v.machine.fire("charge_declined")  # debt: the shopper still leaves
        if kind in ("charge_succeeded", "charge_declined") and not v.exit_granted and v.state in ("charging",
                                                                                                   "declined"):
            self._grant_exit(v)

    def _grant_exit(self, v: Visit) -> None:
        self.doors[self.lay.exit_door].grant()
        v.exit_granted = True
        exit_ms = (time.time() - v.exit_t0) * 1000 if v.exit_t0 else None
        if exit_ms is not None:
            self.metrics["exit_ms"].add(exit_ms)
        self._evidence(v, "exit_unlocked", {"door": self.lay.exit_door,
                                            "latency_ms": round(exit_ms, 2) if exit_ms is not None else None})
        self._save(v)

    def _finish(self, v: Visit) -> None:
        """The shopper is out: templates destroyed, receipt stored, the visit closed."""
        self._forget_face(v)
        lines, _ = v.basket.lines(self.catalog)
        st = self.outbox.visit_state(v.id)
        receipt = {"visit": v.id, "account": v.account, "lines": lines,
                   "total_fen": sum(li["amount_fen"] for li in lines),
                   "charge": {"state": st["state"], "charge_id": st["charge_id"]} if st else None}
        self._evidence(v, "receipt", receipt)
        self.counts["left"] += 1
        self._save(v, receipt=receipt, left=True)
        del self.visits[v.id]

    # timeouts --------------------------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        for v in list(self.visits.values()):
            if v.state in ("code_accepted", "door_unlocked") and now - v.created_at > self.cfg.visits.enter_within_s:
                v.machine.fire("abandon")
                self.counts["abandoned"] += 1
                self._forget_face(v)
                self._save(v)
                del self.visits[v.id]
            elif v.state in IN_STORE and now - v.created_at > self.cfg.visits.max_inside_s:
                v.machine.fire("time_out")
                self.counts["timed_out"] += 1
                self._flag(v, "timed_out")
                self._forget_face(v)
                lines, _ = v.basket.lines(self.catalog)  # only items attributed with certainty
                total = sum(li["amount_fen"] for li in lines)
                if total:
                    self.outbox.submit(v.id, v.account, total, lines)
                self._save(v, amount=total)
                del self.visits[v.id]
            elif v.exit_deadline and not v.exit_granted and now >= v.exit_deadline:
                self._evidence(v, "exit_without_answer", {"waited_s": self.cfg.visits.exit_charge_wait_s})
                self._grant_exit(v)  # the charge is safe in the outbox; nobody waits inside for the network
        self.notifier.tick(f"{self.store.state}: {self.inside()} inside")
        self.store.set_problem("gateway", self.outbox.gateway_ok is False)
        if now - self._last_view >= VIEW_EVERY_S:  # entry itself asks the outbox afresh; this is for the screen
            self._last_view = now
            charges = self.outbox.status()
            self.store.set_problem("charges_pending_limit", not charges["admission"])
            self.view = screen_view(self, charges)
            self._write_status(self.view)

    def _forget_face(self, v: Visit) -> None:
        if self.faces is not None and v.enrolled:
            try:
                self.faces.forget(v.id)
            except Exception as e:  # a dead worker has lost every template anyway
                log.warning("could not forget the templates of %s: %s", v.id, e)

    # persistence -----------------------------------------------------------------------------------
    def _evidence(self, v: Visit, kind: str, data: dict) -> None:
        self.journal.evidence(v.id, kind, data)

    def _flag(self, v: Visit, flag: str) -> None:
        if flag not in v.flags:
            v.flags.append(flag)
            self._evidence(v, "flag", {"flag": flag})
            self._save(v)

    def _save(self, v: Visit, new: bool = False, amount: int | None = None, receipt: dict | None = None,
              left: bool = False) -> None:
        save_visit(self.journal, v, new=new, amount=amount, receipt=receipt, left=left)

    def _restore(self) -> None:
        """Open visits from the journal come back after a restart (without face templates: QR at the exit)."""
        rows = self.journal.all("SELECT * FROM visits WHERE state NOT IN ('left', 'abandoned', 'timed_out')")
        for r in rows:
            v = Visit(r["id"], r["account_id"], bool(r["face_consent"]), VisitMachine(r["id"], initial=r["state"]),
                      r["created_at"], Basket(json.loads(r["basket"])), bool(r["alone"]), False, r["entered_at"],
                      flags=json.loads(r["flags"]))
            if v.state in ("charging", "declined"):
                st = self.outbox.visit_state(v.id)
                if st is None:
                    v.machine = VisitMachine(v.id, initial="inside")  # died before the intent was written
                else:
                    v.exit_deadline = time.time() + self.cfg.visits.exit_charge_wait_s
            self.visits[v.id] = v
            if v.state in ("code_accepted", "door_unlocked") and time.time() - v.created_at < \
                    self.doors[self.lay.entry_door].cfg.unlock_s:
                self.doors[self.lay.entry_door].grant()  # the restart relocked the door in front of them
        if rows:
            log.info("restored %d open visits from the journal", len(rows))

    def _spawn_once(self, fn, *args) -> None:
        threading.Thread(target=fn, args=args, name=f"ctl-{fn.__name__}", daemon=True).start()

    # operator actions ------------------------------------------------------------------------------
    def act(self, operator: str, action: str, args: Any, timeout: float = 5.0) -> dict:
        """Apply an operator action (``operations.ACTIONS``) in the control loop; its answer, or a timeout."""
        reply: queue.Queue = queue.Queue(maxsize=1)
        self.q.put(("operator", operator, action, args, reply))
        try:
            return reply.get(timeout=timeout)
        except queue.Empty:
            return {"ok": False, "error": "timeout", "detail": f"the control loop did not answer in {timeout} s"}

    def _on_operator(self, operator: str, action: str, args: Any, reply: queue.Queue) -> None:
        try:
            detail = apply(self, operator, action, args)
            result = {"ok": True, "detail": detail, "state": self.store.state}
        except ActionError as e:
            result = {"ok": False, "error": e.code, "detail": str(e), "state": self.store.state}
        self.journal.evidence(None, "operator", {"operator": operator, "action": action, **result})
        reply.put(result)

    # status ----------------------------------------------------------------------------------------
    def open_now(self) -> bool:
        return self.hours is None or self.hours.is_open(datetime.now(UTC))

    def inside(self) -> int:
        """Shoppers inside the store now."""
        return sum(v.state in IN_STORE for v in self.visits.values())

    def status(self, charges: dict | None = None) -> dict:
        return {"store": self.cfg.store.id, "state": self.store.state, "what_works": WHAT_WORKS[self.store.state],
                "open_now": self.open_now(), "problems": sorted(self.store.problems), "inside": self.inside(),
                "open_visits": len(self.visits), "unattributed_items": len(self.unattributed), "counts": self.counts,
                "latency": {k: h.summary() for k, h in self.metrics.items()},
                "charges": charges if charges is not None else self.outbox.status(),
                "devices": {n: d.status() for n, d in {**self.doors, **self.readers, **self.cameras}.items()},
                "t": time.time()}

    def _write_status(self, snapshot: dict | None = None) -> None:
        if self.status_path is None:
            return
        tmp = self.status_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(snapshot if snapshot is not None else self.status(), default=str))
            tmp.replace(self.status_path)
        except OSError as e:
            log.warning("cannot write %s: %s", self.status_path, e)
