"""The simulated store around the core: shelves with tagged goods, the exit area, two doors, the face side, the
wallet gateway, and scripted shoppers who walk through it. It knows the truth the oracle checks against: who
carried which item out, who left how (identified, request-to-exit, fire), and when the controller was down."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bingobox.devices.events import DeviceEvent
from bingobox.domain import tokens
from bingobox.domain.door import DoorTiming

from ..goods import Goods
from .devices import SimDoor, SimExitReader
from .gateway import SimGateway
from .sched import Clock, Scheduler

GONE_AFTER_S = 0.6  # the shelf readers' "gone" hysteresis
SEEN_AFTER_S = 0.1


@dataclass
class Shopper:
    n: int
    account: str
    face: bool  # consented to face billing (and their photo enrols)
    balance_fen: int
    takes: int
    put_back: bool
    arrive: float
    tailgater: bool = False  # came in behind someone, without a code
    tailgated_at_entrance: bool = False  # two faces at the entrance camera on one code
    group: int = 1  # the shopper and their companions on one code (each passes the entrance on it)
    companion_first: bool = False  # a companion leaves before the shopper, by the exit button, with one item
    passages: int = 1  # of the group, through the entrance (a companion may be left outside)
    companions_out: int = 0
    companion_exits: list[tuple[float, set[str]]] = field(default_factory=list)  # (when, what they carried)
    carried: set[str] = field(default_factory=set)  # what they carry now (the truth)
    carried_out: set[str] = field(default_factory=set)  # what they carried through the exit
    entered: bool = False
    left_how: str | None = None  # door | rex | fire | never_entered
    waited_exit_s: float = 0.0
    rex_while_up: bool = False  # had to press the exit button although the controller was running
    codes: list[str] = field(default_factory=list)
    done: bool = False
    first_commit: int | None = None  # the journal's commit count when they reached the entrance
    last_commit: int | None = None  # … and when they were out

    @property
    def commit_span(self) -> tuple[int, int] | None:
        if self.first_commit is None or self.last_commit is None:
            return None
        return self.first_commit + 1, self.last_commit


class World:
    def __init__(self, seed: int, store_id: str, goods: Goods, shelves: list[str], unlock_s: float = 5.0) -> None:
        self.rng = random.Random(f"{seed}:world")
        self.seed = seed
        self.clock = Clock()
        self.sched = Scheduler(self.clock)
        self.store_id = store_id
        key = Ed25519PrivateKey.from_private_bytes(random.Random(f"{seed}:key").randbytes(32))
        self.signing_key = key
        self.kid = "sim-key-1"
        self.goods = goods  # (what each tag is and costs: fresh, marked down and expired batches)
        self.shelf_names = shelves
        self.shelf: dict[str, str] = {}  # epc → shelf it is on now
        for i in range(len(goods.products)):
            for epc in goods.new_tags(i, 39):
                self.shelf[epc] = shelves[i % len(shelves)]
        self.exit_field: list[tuple[str, float, float]] = []  # (epc, in, out) in the exit reader's field
        timing = DoorTiming(unlock_s=unlock_s, held_open_s=20.0)
        self.doors = {"entrance": SimDoor("entrance", timing, self.sched), "exit": SimDoor("exit", timing, self.sched)}
        self.exit_reader = SimExitReader(self, seed=seed)
        self.gateway = SimGateway(self.clock, random.Random(f"{seed}:gateway"))
        self.shoppers: list[Shopper] = []
        self.at_entrance: Shopper | None = None
        self.in_exit_area: Shopper | None = None
        self.at_exit_camera: Shopper | None = None
        self.entrance_busy = False
        self.up = False  # the controller is running
        self.epoch = 0  # controller incarnations (events of an earlier one are lost)
        self.down_spans: list[tuple[float, float | None]] = []  # (down, up again; None: still down)
        self.had_fire = False
        self.shelf_unplugged: dict[str, float | None] = {s: None for s in shelves}
        self.p_enrol_fail = 0.05
        self.p_face_unsure = 0.05
        self.lag_max = 0.0  # the control loop runs this far behind (a rush)
        self.approach = False  # the exit camera sees shoppers as they step into the exit area (exit_settle_s > 0)
        self.exit_grants_nobody: list[float] = []
        self.fire_active = False
        self.start = self.clock()
        self.doors["exit"].on_unlock = self._exit_unlocked
        self._deliver: Callable[[object], None] = lambda ev: None
        self.commit_count: Callable[[], int] = lambda: 0
        self._last_delivery = 0.0

    # the controller's inbox ----------------------------------------------------------------------------------
    def lag(self) -> float:
        return self.rng.uniform(0, self.lag_max) if self.lag_max else 0.0

    def connect(self, deliver: Callable[[object], None]) -> None:
        self._deliver = deliver

    def post(self, ev: object) -> None:
        """An event for the controller: handled in order, after the loop's lag; lost if it dies meanwhile."""
        if not self.up:
            return
        epoch = self.epoch
        t = max(self.clock() + self.lag(), self._last_delivery)
        self._last_delivery = t

        def deliver() -> None:
            if self.up and self.epoch == epoch:
                self._deliver(ev)
        self.sched.at(t, deliver)

    def _exit_unlocked(self) -> None:
        door = self.doors["exit"]
        pressed = self.clock() - door.rex_pressed_at < 1.0  # (someone at the door pressed its button)
        # a door standing open (left open through a fire, a restarted controller finds it so) is not held by its
        # relay: the driver keeps it unlocked until it shuts, and that lets nobody out who could not already go
        if self.in_exit_area is None and not self.fire and not pressed and not door.is_open:
            self.exit_grants_nobody.append(self.clock())

    @property
    def fire(self) -> bool:
        return any(d.fire for d in self.doors.values())

    # entry codes ---------------------------------------------------------------------------------------------
    def code(self, s: Shopper, door: str = "*") -> str:
        now = int(self.clock())
        jti = tokens.b64e(self.rng.randbytes(16))
        text = tokens.issue(self.signing_key, self.kid, s.account, self.store_id, door, now, 60, s.face, jti=jti,
                            group=s.group if door == "entrance" else 1)
        s.codes.append(text)
        self.gateway.codes[jti] = s.account  # (as the real gateway remembers the codes it issued)
        return text

    def public_keys(self) -> dict:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {self.kid: tokens.public_key_from_b64(tokens.b64e(raw))}

    # shelves and the exit area ------------------------------------------------------------------------------
    def take(self, s: Shopper, epc: str) -> None:
        shelf = self.shelf.pop(epc)
        s.carried.add(epc)
        self._shelf_event(shelf, "tag_gone", epc, GONE_AFTER_S)

    def restock(self, low: int = 10, add: int = 30) -> int:
        """Staff put new goods out where a product runs low (a long run empties the shelves): new tags, seen by
        their shelf's reader. Returns how many."""
        n = 0
        for i, product in enumerate(self.goods.products):
            on = [e for e in self.shelf if e.startswith(product.tag_prefix)]
            if len(on) >= low:
                continue
            shelf = self.shelf_names[i % len(self.shelf_names)]
            for epc in self.goods.new_tags(i, add, fresh=True):
                self.shelf[epc] = shelf
                self._shelf_event(shelf, "tag_seen", epc, SEEN_AFTER_S)
                n += 1
        return n

    def put_back(self, s: Shopper, epc: str) -> None:
        s.carried.discard(epc)
        shelf = self.rng.choice(self.shelf_names)
        self.shelf[epc] = shelf
        self._shelf_event(shelf, "tag_seen", epc, SEEN_AFTER_S)

    def _shelf_event(self, shelf: str, kind: str, epc: str, after: float) -> None:
        """A shelf reader's driver reports a change after its hysteresis, if the same driver is still running
        (a restarted one never saw what changed before it started; an unplugged one reports after the replug)."""
        epoch = self.epoch

        def report() -> None:
            if self.epoch != epoch or not self.up:
                return
            back = self.shelf_unplugged[shelf]
            if back is not None:  # away: nothing declared gone until it is back, then after a grace period
                self.sched.at(back + GONE_AFTER_S, report)
                return
            if (kind == "tag_gone") == (self.shelf.get(epc) != shelf):  # still true
                self.post(DeviceEvent(shelf, kind, {"epc": epc}, self.clock()))
        self.sched.after(after, report)

    def shelves_after_restart(self) -> None:
        """A restarted controller's shelf drivers see every tag on their shelves (tag_seen for each); one that is
        unplugged sees nothing and says it is disconnected."""
        for shelf in self.shelf_names:
            if self.shelf_unplugged[shelf] is not None:
                self.post(DeviceEvent(shelf, "disconnected", {}, self.clock()))
        for epc, shelf in sorted(self.shelf.items()):
            if self.shelf_unplugged[shelf] is None:
                self.post(DeviceEvent(shelf, "tag_seen", {"epc": epc}, self.clock()))

    def exit_field_at(self, t: float) -> set[str]:
        return {e for e, t_in, t_out in self.exit_field if t_in <= t < t_out}

    def carry_into_exit_area(self, s: Shopper, epcs: set[str] | None = None) -> None:
        for e in sorted(s.carried if epcs is None else epcs):
            self.exit_field.append((e, self.clock(), float("inf")))

    def carry_out(self, s: Shopper, epcs: set[str] | None = None) -> None:
        """``s`` (or their companion, with ``epcs``) walks out with what they carry: the group's, owed by ``s``."""
        now = self.clock()
        out = set(s.carried) if epcs is None else set(epcs)
        self.exit_field = [(e, a, now if e in out and b == float("inf") else b) for e, a, b in self.exit_field]
        s.carried_out |= out
        s.carried -= out

    def owed(self, s: Shopper) -> int:
        return sum(self.price(e) for e in s.carried_out)

    def price(self, epc: str) -> int:
        """What ``epc`` costs today (0: expired, not charged); a play never crosses midnight (START + minutes)."""
        return self.goods.price(epc, datetime.fromtimestamp(self.clock(), UTC).date())
