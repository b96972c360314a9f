"""Simulated devices behind the store core's ports: doors (the real door state machine, driven by simulated
contacts and the relay as the board holds it), the exit area's reader (inventory rounds every few tens of ms, with
missed reads, a bounded history lost on restart), and the face side (enrolment at the entrance, the exit matcher).

When the controller dies, what the hardware holds stays: a relay keeps its last position, tags stay where they
are. What lived in the controller's memory is gone: the door machines, the reader's history, the face templates."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from bingobox.core.events import Enrolled, FaceDecided
from bingobox.devices.events import DeviceEvent
from bingobox.domain import exit_window
from bingobox.domain.door import DoorMachine, DoorTiming
from bingobox.domain.faces import FaceDecision as Decision

from .sched import Scheduler

if TYPE_CHECKING:
    from .world import Shopper, World

DETECT_S = 0.05  # a door board polled at 20 Hz


class SimDoor:
    """A door: its physical contact and relay (the world's) and the driver's door machine (the controller's)."""

    def __init__(self, name: str, timing: DoorTiming, sched: Scheduler) -> None:
        self.name = name
        self.timing = timing
        self.sched = sched
        self.is_open = False
        self.relay_unlocked = False  # what the board holds (survives a controller crash)
        self.lit = (False, False)  # (green, red) lamps
        self.rex_pressed_at = -1.0  # the button last pressed (someone at the door)
        self.fire = False
        self.machine: DoorMachine | None = None
        self.post: Callable[[object], None] | None = None
        self.opened_count = 0
        self.on_unlock: Callable[[], None] | None = None  # the relay went to "unlocked" (the oracle watches)
        self.hw_rex_until = 0.0  # the exit button also frees the door in hardware (its own wiring)

    # the controller's side (the driver) --------------------------------------------------------------------
    def attach(self, post: Callable[[object], None]) -> None:
        """A (re)started controller: a fresh driver syncs to the board (locks unless fire or the door is open)."""
        self.post = post
        m = DoorMachine(self.name, self.timing, initial="fault")
        m.door_open, m.fire = self.is_open, self.fire
        m.on_link(self.sched.clock(), True)
        m.drain()
        self.machine = m
        self._sync()

    def detach(self, watchdog_s: float | None = 1.0) -> None:
        """The controller died: the relay stays where it is — until the board's communication watchdog (if it has
        one) sees no request for ``watchdog_s`` and drops the relay (a strike locks; a maglock would unlock)."""
        self.machine = None
        self.post = None
        if watchdog_s is not None:
            def drop() -> None:
                if self.machine is None:
                    self.relay_unlocked = False  # de-energised: this simulated store's doors are strikes
            self.sched.after(watchdog_s, drop)

    def grant(self, seconds: float | None = None, tag: str | None = None,
              done: Callable[[str, str], None] | None = None) -> None:
        m = self.machine
        if m is None:
            return
        now = self.sched.clock()
        granted = m.on_grant(now, seconds)
        if not granted and self.post:
            self.post(DeviceEvent(self.name, "grant_refused", {"state": m.state, "tag": tag}, now))
        self._sync()
        if done is not None:
            done("unlocked" if granted and self.relay_unlocked else "refused", m.state)
        if tag is not None and self.post is not None and self.relay_unlocked:
            post = self.post
            self.sched.after(0.004, lambda: post(DeviceEvent(self.name, "unlock_written",
                                                             {"tag": tag, "written": now + 0.001,
                                                              "acked": now + 0.004}, now + 0.004)))

    def lamps(self, green: bool, red: bool) -> None:
        self.lit = (green, red)  # (what a lamp shows is not money: the simulation's oracle does not judge it)

    def status(self) -> dict:
        return {"kind": "door", "name": self.name, "state": self.machine.state if self.machine else "fault",
                "lock_engaged": not self.relay_unlocked}

    def tick(self) -> None:
        if self.machine is not None:
            self.machine.on_tick(self.sched.clock())
            self._sync()

    def _sync(self) -> None:
        m = self.machine
        if m is None:
            return
        was = self.relay_unlocked
        self.relay_unlocked = not m.lock_wanted
        if self.relay_unlocked and not was and self.on_unlock is not None:
            self.on_unlock()
        events = m.drain()
        if self.post is not None:
            for kind, data in events:
                self.post(DeviceEvent(self.name, kind, data, self.sched.clock()))

    # the world's side --------------------------------------------------------------------------------------
    @property
    def unlocked(self) -> bool:
        return self.relay_unlocked or self.fire or self.sched.clock() < self.hw_rex_until

    def push_open(self, force: bool = False) -> bool:
        """Open the door (a shopper pushes it); only while unlocked, unless forced."""
        if self.is_open or not (self.unlocked or force):
            return False
        self.is_open = True
        self.opened_count += 1
        self._contact()
        return True

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self.hw_rex_until = 0.0  # the button's timer relay ends when the door shuts
            self._contact()

    def rex(self) -> None:
        """The request-to-exit button: it frees the door in hardware for the grant window (whether or not the
        controller runs), and the controller, if it runs, sees it."""
        self.hw_rex_until = self.sched.clock() + self.timing.unlock_s
        self.rex_pressed_at = self.sched.clock()
        self.sched.after(DETECT_S, self._rex)

    def _rex(self) -> None:
        if self.machine is not None:
            self.machine.on_rex(self.sched.clock())
            self._sync()

    def set_fire(self, active: bool) -> None:
        self.fire = active
        if self.machine is not None:
            self.sched.after(DETECT_S, lambda: self._fire(active))

    def _fire(self, active: bool) -> None:
        if self.machine is not None:
            self.machine.on_fire(self.sched.clock(), active)
            self._sync()

    def _contact(self) -> None:
        state = self.is_open

        def seen() -> None:
            if self.machine is not None:
                self.machine.on_contact(self.sched.clock(), state)
                self._sync()
        self.sched.after(DETECT_S, seen)


class SimExitReader:
    """The exit area's reader: a round every ``round_s``, each reading every tag in the field with probability
    1 - ``miss``; a history of 200 rounds, kept by the controller (gone when it restarts)."""

    def __init__(self, world: World, round_s: float = 0.03, miss: float = 0.1, seed: int = 0) -> None:
        self.world = world
        self.round_s = round_s
        self.miss = miss
        self.seed = seed
        self.history_from = world.clock()  # rounds before the controller's start are not known to it
        self.unplugged = False

    def restart(self) -> None:
        self.history_from = self.world.clock()

    def online(self) -> bool:
        return not self.unplugged

    def _ends(self, t0: float, t1: float) -> list[float]:
        """Round end times in (t0, t1] that this controller saw (200 rounds of history)."""
        lo = max(t0, self.history_from, self.world.clock() - 200 * self.round_s)
        k = int(lo // self.round_s) + 1
        out = []
        while k * self.round_s <= t1:
            out.append(k * self.round_s)
            k += 1
        return out

    def _read(self, end: float) -> set[str]:
        k = round(end / self.round_s)
        return {e for e in self.world.exit_field_at(end - self.round_s / 2)
                if zlib.crc32(f"{self.seed}:{e}:{k}".encode()) % 1000 >= self.miss * 1000}

    def window(self, t0: float, t_after: float, min_rounds: int = 1) -> set[str] | None:
        if self.unplugged:
            return None
        now = self.world.clock()  # (the production rule over the rounds read so far)
        return exit_window.window(((end, self._read(end)) for end in self._ends(t0, now)), t0, t_after, min_rounds)

    def when_ready(self, t0: float, t_after: float, min_rounds: int, callback: Callable[[], None],
                   timeout: float) -> None:
        now = self.world.clock()
        if self.unplugged:
            self.world.sched.after(timeout, callback)
            return
        have = len(self._ends(t0, now))
        first = max(t_after, now)
        k = int(first // self.round_s) + 1 + max(0, min_rounds - have - 1)
        self.world.sched.at(min(k * self.round_s + 0.001, now + timeout), callback)


class SimFaces:
    """The face side: enrolment from the shopper at the entrance, matching the shopper at the exit camera against
    the candidates the core names. Templates live here (and die with the controller)."""

    def __init__(self, world: World, rng: random.Random, post: Callable[[object], None]) -> None:
        self.world = world
        self.rng = rng
        self.post = post
        self.templates: dict[str, Shopper] = {}
        self.candidates: list[str] = []

    def enrol(self, visit_id: str) -> None:
        s = self.world.at_entrance
        ok = s is not None and s.face and self.rng.random() >= self.world.p_enrol_fail
        several = s is not None and s.tailgated_at_entrance

        # a group in front of the camera together: their faces (the payer not enrolled); a tailgater adds one
        together = s is not None and s.group > 1 and not several and self.rng.random() < 0.5
        faces = (s.group if s is not None else 1) + 1 if several else (s.group if s is not None else 1)

        def done() -> None:
            if several or together:
                self.post(Enrolled(visit_id, {"ok": False, "reason": "several_faces", "faces": faces}))
            elif ok and s is not None:
                self.templates[visit_id] = s
                self.post(Enrolled(visit_id, {"ok": True, "reason": "enrolled", "templates": 2}))
            else:
                self.post(Enrolled(visit_id, {"ok": False, "reason": "no_face"}))
        self.world.sched.after(1.0, done)

    def forget(self, visit_id: str) -> None:
        self.templates.pop(visit_id, None)

    def set_candidates(self, visit_ids: list[str], others: int = 0) -> None:
        self.candidates = list(visit_ids)

    def look(self) -> None:
        """One look at the exit camera (the matcher runs this every few frames)."""
        s = self.world.at_exit_camera
        if s is None or not self.candidates:
            return
        mine = [v for v in self.candidates if self.templates.get(v) is s]
        if not mine:
            return  # nobody inside looks like them: no decision (they scan their code)
        t = self.world.clock()
        if self.rng.random() < self.world.p_face_unsure:
            d = Decision(None, 0.5, 0.01, "unsure_margin", mine[0])
        else:
            d = Decision(mine[0], 0.4, 0.2, "matched", mine[0])
        lag = self.world.lag()
        self.world.sched.after(0.03 + lag, lambda: self.post(FaceDecided(d, t, {"decided": t + 0.03})))
