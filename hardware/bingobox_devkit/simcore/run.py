"""Deterministic simulation of the store core (after FoundationDB's simulation testing and TigerBeetle's VOPR):
the real ``StoreCore``, ``Outbox``, ``EntryGate`` and ``Journal`` (a real SQLite file) in one process, on a
simulated clock, fed by simulated doors, readers, cameras and a simulated gateway, with a random schedule of
shoppers and faults drawn from a seed — and a crash + restart injected after the k-th journal commit.

A *run* is one seed's schedule: played once without a crash (which counts its commits and each shopper's span of
them), then once more for every commit k in the life of one of its visits, crashing right after commit k (the
process dies: memory gone, the relay left where it was, events lost until the restart). After each play the
oracle (``oracle.check``) compares the ledger with what the simulated shoppers really did.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bingobox.actions import RetryCharge
from bingobox.config import StoreConfig
from bingobox.core.events import ChargeUpdate, OperatorCommand, Started
from bingobox.core.store import StoreCore
from bingobox.devices.events import DeviceEvent
from bingobox.domain.catalog import Catalog
from bingobox.domain.entry import EntryGate
from bingobox.journal import Journal
from bingobox.wallet.outbox import Limits, Outbox, Policy

from ..goods import Goods
from ..harness.storeconf import RESTRICTED
from ..paths import repo
from . import oracle
from .devices import SimFaces
from .sched import START
from .shoppers import fire_alarm, shopper, tailgater
from .world import Shopper, World

ROOT = repo()
CATALOG = ROOT / "config/catalog.csv"
STORE_ID = "sim-store"
SHELVES = ["shelf-1", "shelf-2"]
MAX_INSIDE_S = 120.0


class SimCrash(BaseException):
    """The controller process dies right after a journal commit (a BaseException: no handler of the core's
    ``except Exception`` may swallow it)."""


def store_config(exit_settle_s: float = 0.0) -> StoreConfig:
    """The simulated store; ``exit_settle_s``: the exit camera sees shoppers as they step into the exit area, and
    the store waits this long past the frame for their goods (0: seen at the door, as the campaigns always were)."""
    return StoreConfig.model_validate({
        "store": {"id": STORE_ID},
        "catalog": str(CATALOG),
        "doors": [{"name": n, "port": f"sim://{n}", "energize_to_unlock": True, "unlock_s": 5, "held_open_s": 20}
                  for n in ("entrance", "exit")],
        "readers": [{"name": n, "port": f"sim://{n}"} for n in [*SHELVES, "exit-area"]],
        "cameras": [{"name": n, "source": f"sim://{n}"} for n in ("door-cam", "exit-cam")],
        "layout": {"entry_door": "entrance", "exit_door": "exit", "entry_camera": "door-cam",
                   "exit_camera": "exit-cam", "exit_reader": "exit-area"},
        "visits": {"exit_charge_wait_s": 3, "enter_within_s": 15, "max_inside_s": MAX_INSIDE_S,
                   "exit_settle_s": exit_settle_s},
    })


@dataclass
class Plan:
    """A seed's schedule: shoppers (arrival, consent, balance, what they take) and faults (when, how long)."""

    seed: int
    shoppers: list[dict]
    tailgaters: list[dict]
    faults: list[tuple[float, str, dict]]  # (at, fault, args)
    lag_max: float
    p_face_unsure: float
    fire: tuple[float, float] | None
    batches: bool = False  # goods of batches (fresh, marked down, expired SGTIN-96 lots); False: plain tags (the
    # world of the campaigns before batches, so that their seeds replay as they were)
    exit_settle_s: float = 0.0  # > 0: seen on approach (``store_config``); not drawn: the same schedule either way

    @classmethod
    def draw(cls, seed: int, max_shoppers: int = 6, groups: bool = False, batches: bool = False) -> Plan:
        """``groups``: some shoppers bring companions (drawn from a stream of their own: the rest of the schedule
        is the same as without); ``batches``: the shelves hold batched goods."""
        rng = random.Random(f"{seed}:plan")
        n = rng.randint(1, max_shoppers)
        t, shoppers = 0.0, []
        for i in range(n):
            t += rng.expovariate(1 / 4.0)
            shoppers.append({"n": i, "arrive": round(t, 3), "face": rng.random() < 0.7,
                             "balance_fen": 50 if rng.random() < 0.1 else 1_000_000, "takes": rng.randint(0, 4),
                             "put_back": rng.random() < 0.25, "tailgated": False})
        tailgaters = []
        if rng.random() < 0.1:
            host = rng.choice(shoppers)
            forced = not host["face"] or rng.random() < 0.5
            if not forced:
                host["tailgated"] = True
            tailgaters.append({"host": host["n"], "forced": forced, "takes": rng.randint(1, 2)})
        span = t + 20
        faults = []
        for name, p in (("outage", 0.3), ("drops", 0.3), ("errors", 0.3), ("pending", 0.2), ("reject", 0.1),
                        ("exit_reader_unplugged", 0.1), ("shelf_unplugged", 0.15), ("outbox_error", 0.08)):
            if rng.random() < p:
                faults.append((round(rng.uniform(0, span), 3), name, {"for": round(rng.uniform(2, 12), 3)}))
        fire = (round(rng.uniform(5, span), 3), 8.0) if rng.random() < 0.04 else None
        if groups:
            g = random.Random(f"{seed}:groups")
            for sp in shoppers:
                if g.random() < 0.4:
                    sp["group"], sp["companion_first"] = g.randint(2, 3), g.random() < 0.5
        return cls(seed, shoppers, tailgaters, sorted(faults, key=lambda f: f[0]),
                   rng.choice([0.0, 0.0, 0.0, 0.3, 1.5]), rng.choice([0.0, 0.05, 0.3]), fire, batches)


@dataclass
class Played:
    seed: int
    crash_at: int | None
    violations: list[dict]
    commits: int
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)  # shopper → (first, last) commit of their visit
    crashed: bool = False
    sim_s: float = 0.0
    stats: dict = field(default_factory=dict)


class InjectedFault(OSError):
    """A disk fault the schedule injects (not a bug: the code must live with it)."""


class FaultyOutbox(Outbox):
    """The outbox, with the schedule's failing disk (or bug) where the charge intent is written."""

    def __init__(self, play: Play, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.play = play

    def add_intent_in(self, *args: Any, **kw: Any) -> int:
        if self.play.outbox_error:
            raise InjectedFault("injected: the charge intent could not be written")
        return super().add_intent_in(*args, **kw)


class Controller:
    """One incarnation of the controller process, built as ``app.StoreApp`` builds it, on simulated devices."""

    def __init__(self, play: Play) -> None:
        w = play.world
        self.journal = Journal(play.journal_path, clock=w.clock)
        self.journal.after_commit = play.on_commit
        self.outbox = FaultyOutbox(play, self.journal, w.gateway, play.limits, play.policy,
                                   on_event=lambda kind, data: w.post(ChargeUpdate(kind, data)), clock=w.clock,
                                   rng=random.Random(f"{play.seed}:{w.epoch}:outbox"))
        self.faces = SimFaces(w, random.Random(f"{play.seed}:{w.epoch}:faces"), w.post)
        gate = EntryGate(w.public_keys(), STORE_ID, self.journal, self.outbox, clock=w.clock)
        self.core = StoreCore(play.cfg, self.journal, play.catalog, self.outbox, gate, w.doors, w.exit_reader,
                              self.faces, post=w.post, clock=w.clock, rng=random.Random(f"{play.seed}:{w.epoch}:core"))


class Play:
    """One play of a plan, optionally crashing after global commit ``crash_at``."""

    def __init__(self, plan: Plan, crash_at: int | None, workdir: Path, restart_s: float = 2.0) -> None:
        self.plan, self.seed, self.crash_at = plan, plan.seed, crash_at
        self.cfg = store_config(plan.exit_settle_s)
        # (the simulated store has no cabinet: no age-restricted goods on its shelves)
        goods = Goods(CATALOG, datetime.fromtimestamp(START, UTC).date(), batched=plan.batches,
                      exclude=set(RESTRICTED))
        if plan.batches:
            self.cfg.batches = goods.write_batches(workdir / f"batches-{plan.seed}-{crash_at}.csv")
        self.catalog = Catalog.load(CATALOG, self.cfg.batches)
        self.world = World(plan.seed, STORE_ID, goods, SHELVES)
        self.world.lag_max = plan.lag_max
        self.world.p_face_unsure = plan.p_face_unsure
        self.world.approach = plan.exit_settle_s > 0
        self.journal_path = workdir / f"journal-{plan.seed}-{crash_at}.db"
        for stale in workdir.glob(f"{self.journal_path.name}*"):  # a fresh store (an earlier play's file, -wal, -shm)
            stale.unlink()
        self.restart_s = restart_s
        self.commits = 0
        self.crashed = False
        self.errors: list[dict] = []
        self.outbox_error = False
        self.send_after = 0.0  # the simulated sender waits after a step that raised
        self.slow = 1  # settling: once nobody is in the store, time may pass in larger steps
        self.ctl: Controller | None = None
        # the offline limits and the sender's timing (a campaign's: short, so that minutes of plays cover much)
        self.limits = Limits()
        self.policy = Policy(retry_base_s=0.1, retry_max_s=2, poll_interval_s=0.5, paying_window_s=6,
                             debt_retry_s=0, max_rejections=3)
        self.until_s = 900.0  # the longest a plan may play before it is settled
        self.world.connect(self._deliver)
        self.world.commit_count = lambda: self.commits

    # the controller's life ---------------------------------------------------------------------------------
    def on_commit(self, _n: int) -> None:
        self.commits += 1
        if self.crash_at is not None and self.commits == self.crash_at and not self.crashed:
            self.crashed = True
            raise SimCrash(self.commits)

    def _guard(self, fn: Callable[[Controller], object]) -> None:
        """Run ``fn`` as the control loop would: a crash kills the controller; any other exception is a bug (the
        real loop logs it and goes on; here it is also a finding)."""
        if self.ctl is None:
            return
        try:
            fn(self.ctl)
        except SimCrash:
            self._die()
        except Exception as e:
            self.errors.append({"kind": "exception", "error": f"{type(e).__name__}: {e}",
                                "where": _where(e), "t": round(self.world.clock() - self.world.start, 3)})

    def _deliver(self, ev: object) -> None:
        self._guard(lambda ctl: ctl.core.handle(ev))

    def _start(self) -> None:
        w = self.world
        self.send_after = 0.0  # (a new process's sender starts at once)
        w.epoch += 1
        w.up = True
        if w.down_spans and w.down_spans[-1][1] is None:
            w.down_spans[-1] = (w.down_spans[-1][0], w.clock())
        w.exit_reader.restart()
        try:
            self.ctl = Controller(self)
            for d in w.doors.values():
                d.attach(w.post)
            self.ctl.core.restore()
        except SimCrash:
            self._die()
            return
        w.post(Started())
        if w.epoch > 1:
            w.shelves_after_restart()

    def _die(self) -> None:
        w = self.world
        w.up = False
        w.down_spans.append((w.clock(), None))
        for d in w.doors.values():
            d.detach()
        if self.ctl is not None:
            with contextlib.suppress(Exception):
                self.ctl.journal.close()
        self.ctl = None
        w.sched.after(self.restart_s, self._start)

    def _tick(self) -> None:
        for d in self.world.doors.values():
            d.tick()
        self._guard(lambda ctl: ctl.core.tick())

    def _send(self) -> None:
        """The outbox's sender thread (``Outbox._run``): a step that raises waits ``step_failed()`` — an injected
        disk fault is expected to make steps fail; anything else is a finding."""
        if self.ctl is None or self.world.clock() < self.send_after:
            return

        def steps(ctl: Controller) -> None:
            box = ctl.outbox
            for _ in range(4):
                try:
                    worked = box.step()
                except InjectedFault:
                    self.send_after = self.world.clock() + box.step_failed()
                    return
                box.step_failures = 0
                if not worked:
                    break
        self._guard(steps)

    def _look(self) -> None:
        if self.ctl is not None:
            self.ctl.faces.look()

    # the run -----------------------------------------------------------------------------------------------
    def run(self) -> Played:
        w, plan = self.world, self.plan
        for sp in plan.shoppers:
            s = Shopper(sp["n"], f"acc_sim_{sp['n']:03d}", sp["face"], sp["balance_fen"], sp["takes"],
                        sp["put_back"], sp["arrive"], tailgated_at_entrance=sp["tailgated"],
                        group=sp.get("group", 1), companion_first=sp.get("companion_first", False))
            w.shoppers.append(s)
            w.gateway.balances[s.account] = s.balance_fen
            w.sched.spawn(shopper(w, s), delay=sp["arrive"] + 0.5)
        for i, tg in enumerate(plan.tailgaters):
            t = Shopper(100 + i, f"tailgater_{i}", False, 0, tg["takes"], False, 0.0, tailgater=True)
            w.shoppers.append(t)
            host = plan.shoppers[tg["host"]]
            host_s = next(x for x in w.shoppers if x.n == host["n"])
            w.sched.spawn(tailgater(w, t, tg["forced"], host_s), delay=host["arrive"] + 2.0)
        if plan.fire:
            w.sched.spawn(fire_alarm(w, *plan.fire), delay=0.5)
        for at, name, args in plan.faults:
            w.sched.spawn(self._fault(name, args), delay=at)
        w.sched.every(lambda: 0.1 * self.slow, self._tick)
        w.sched.every(lambda: 0.05 * self.slow, self._send)
        w.sched.every(lambda: 0.2 * self.slow, self._look)
        self._start()
        end = w.clock() + self.until_s
        w.sched.run_until(end, stop=lambda: all(s.done for s in w.shoppers))
        self._settle()
        excused: list[dict] = []
        violations = self.errors + oracle.check(w, self.journal_path, excused)
        with contextlib.suppress(Exception):
            if self.ctl is not None:
                self.ctl.journal.close()
        spans = {s.n: span for s in w.shoppers if (span := s.commit_span) is not None}
        return Played(self.seed, self.crash_at, violations, self.commits, spans, self.crashed,
                      round(w.clock() - w.start, 1),
                      {"gateway": dict(w.gateway.counts), "downs": len(w.down_spans), "excused": excused,
                       "review": oracle.reviews(self.journal_path)})

    def _fault(self, name: str, args: dict):
        w, g = self.world, self.world.gateway
        on = {"outage": lambda v: setattr(g.faults, "outage", v),
              "drops": lambda v: setattr(g.faults, "drop_rate", 0.5 if v else 0.0),
              "errors": lambda v: setattr(g.faults, "error_rate", 0.5 if v else 0.0),
              "pending": lambda v: setattr(g.faults, "pending_rate", 0.7 if v else 0.0),
              "reject": lambda v: setattr(g.faults, "reject", v),
              "exit_reader_unplugged": lambda v: setattr(w.exit_reader, "unplugged", v),
              "shelf_unplugged": lambda v: self._shelf_unplug(v, args["for"]),
              "outbox_error": lambda v: setattr(self, "outbox_error", v)}[name]
        on(True)
        yield args["for"]
        on(False)

    def _shelf_unplug(self, on: bool, lasts: float) -> None:
        w = self.world
        shelf = SHELVES[self.seed % len(SHELVES)]
        w.shelf_unplugged[shelf] = w.clock() + lasts if on else None
        # its driver says so, as the real one does (the link goes down / comes back)
        w.post(DeviceEvent(shelf, "disconnected" if on else "connected", {}, w.clock()))

    def _settle(self) -> None:
        """Faults heal, the outbox drains, an operator charges failed charges again, time passes past every
        timeout: then nothing may be left open."""
        w = self.world
        g = w.gateway.faults
        g.outage, g.drop_rate, g.error_rate, g.pending_rate, g.reject = False, 0.0, 0.0, 0.0, False
        w.exit_reader.unplugged = False
        self.outbox_error = False
        for shelf in w.shelf_unplugged:
            w.shelf_unplugged[shelf] = None
        w.sched.run_until(w.clock() + 30)
        if self.ctl is not None:
            failed = [r["visit_id"] for r in self.ctl.journal.all(
                "SELECT visit_id FROM charge_intents c WHERE state='failed' AND id = (SELECT MAX(id) FROM "
                "charge_intents d WHERE d.visit_id=c.visit_id)")]
            for vid in failed:
                w.post(OperatorCommand("sim-operator", "retry_charge", RetryCharge(visit_id=vid), queue.Queue()))
        w.sched.run_until(w.clock() + 5)
        self.slow = 20
        w.sched.run_until(w.clock() + MAX_INSIDE_S + 60)


def _where(e: BaseException) -> str:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 2)[-1]}:{tb.tb_lineno}" if tb else "?"


def play(plan: Plan, crash_at: int | None, workdir: Path) -> Played:
    return Play(plan, crash_at, workdir).run()


def workdir() -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="bbx-sim-", dir=base))


def run_seed(seed: int, max_shoppers: int = 6, every_k: bool = True, groups: bool = False,
             batches: bool = False, exit_settle_s: float = 0.0) -> dict:
    """One run: the plan once without a crash, then a crash after each commit k in one visit's life."""
    plan = replace(Plan.draw(seed, max_shoppers, groups, batches), exit_settle_s=exit_settle_s)
    wd = workdir()
    try:
        t0 = time.perf_counter()
        base = play(plan, None, wd)
        violations = [{**v, "seed": seed, "crash_at": None} for v in base.violations]
        excused = list(base.stats["excused"])
        crash_points = []
        if every_k and base.commits:
            rng = random.Random(f"{seed}:crash")
            spans = [sp for sp in base.spans.values() if sp[1] >= sp[0]]
            first, last = rng.choice(spans) if spans else (1, base.commits)
            crash_points = list(range(first, last + 1))
        for k in crash_points:
            p = play(plan, k, wd)
            violations += [{**v, "seed": seed, "crash_at": k} for v in p.violations]
            excused += p.stats["excused"]
            (wd / f"journal-{seed}-{k}.db").unlink(missing_ok=True)
        return {"seed": seed, "shoppers": len(plan.shoppers), "commits": base.commits,
                "crash_points": len(crash_points), "violations": violations, "excused": excused,
                "review": {**base.stats["review"], "faults": sorted({f[1] for f in plan.faults}
                                                                   | ({"fire"} if plan.fire else set())
                                                                   | ({"tailgater"} if plan.tailgaters else set()))},
                "seconds": round(time.perf_counter() - t0, 3)}
    finally:
        shutil.rmtree(wd, ignore_errors=True)
