"""``bingobox demo``: a whole store on one box — simulator, mock wallet gateway and controller as real processes —
with scripted shoppers walking through, and a JSON summary checked against the gateway's ledger.

Shoppers take turns at the doors (one person in front of a camera at a time) but shop concurrently. Each one gets
an entry code from the wallet, shows it to the door camera, (if they consented and photos exist) shows their face,
walks in, takes items off the shelves (sometimes putting one back), carries them into the exit area, shows their
face to the exit camera (or, if not recognised in time, a fresh code) and walks out.
"""

from __future__ import annotations

import collections
import concurrent.futures
import csv
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from bingobox.screen.auth import hash_password
from bingobox.secretfiles import write_secret

from ..gateway import resident_id
from ..goods import Goods
from . import oracle, report, storeconf
from .basket_watch import BasketWatch
from .process import ROOT, Proc, free_port, stop_together

FAULTS = ("gateway_drop", "gateway_errors", "gateway_outage", "unplug", "junk", "kill", "dead_board")
EXIT_WALK_S = 0.4  # from stepping into the exit area to reaching the exit door
WALKER_LOOK_S = 1.0  # a shopper without consent in front of the exit camera before they show their code
APPROACH_SETTLE_S = 0.25  # seen on approach: the exit reader's rounds this long after the frame join the window
APPROACH_FROM = 0.5  # seen on approach, they walk towards the camera: their face from half its size at the door
FAULT_AFTERMATH_S = 5.0  # a visit this close after a fault ended counts as touched by it (review rate per fault)
STOCK = 24  # tags per product on its shelf
CATALOG = ROOT / "config/catalog.csv"


@dataclass
class Shopper:
    n: int
    account: str
    face: tuple[list[Path], Path] | None  # photos shown walking in (enrolment), photo shown at the exit
    took: list[tuple[str, str]] = field(default_factory=list)  # (shelf, epc)
    visit: str | None = None
    used_qr_at_exit: bool = False
    done: bool = False
    error: str | None = None
    group: int = 1  # the shopper and their companions on one code (``--groups``)
    carried_first: list[str] = field(default_factory=list)  # a companion carried these out before the shopper left
    exit_zone_at: float | None = None  # when they stepped into the exit area (wall clock; the exit camera sees them)
    at_door_at: float | None = None  # … and when they reached the exit door
    inside_at_exit: int = 0  # shoppers (groups) inside, them included, as they stepped into the exit area
    walker_face: Path | None = None  # no consent: the photo the exit camera sees of them all the same
    let_out_by_face: bool = False  # … and the exit opened for that face (someone else's look-alike): wrong

    @property
    def person(self) -> Path | None:
        """Who they are (their exit photo), consenting or not: a person is never inside twice at once."""
        return self.face[1] if self.face else self.walker_face


MORE_FACES = "faces/more.csv"  # more people than the store's own photographs (a crowd's worth: ``more_faces``)


def photos_by_person(testdata: Path, more: bool = False) -> dict[tuple[bool, str], list[Path]]:
    """(from ``MORE_FACES``?, identity) → their photos with one face found, in manifest order; ``more``: also the
    people of ``MORE_FACES``."""
    by_id: dict[tuple[bool, str], list[Path]] = collections.defaultdict(list)
    for name in ("faces/manifest.csv", *((MORE_FACES,) if more else ())):
        manifest = testdata / name
        if not manifest.is_file():
            if name == MORE_FACES:
                raise FileNotFoundError(f"{manifest}: no such manifest (the crowd's photographs)")
            return {}
        with open(manifest) as f:
            for r in csv.DictReader(f):
                if r["category"] == "identity" and r["faces_detected_hog"] == "1":
                    by_id[(name == MORE_FACES, r["identity"])].append(testdata / "faces" / r["file"])
    return dict(by_id)


def _identities(testdata: Path, more: bool = False) -> list[tuple[list[Path], Path]]:
    """Per person: the photos they show walking in (up to three: their enrolment frames) and another one they show
    at the exit. ``more``: also the people of ``MORE_FACES`` (the store's own photographs come first either way)."""
    return [(ps[1:4], ps[0]) for _, ps in sorted(photos_by_person(testdata, more).items()) if len(ps) >= 2]


class Demo:
    def __init__(self, shoppers: int, seed: int, faults: set[str], run_dir: Path, testdata: Path,
                 concurrency: int = 3, verbose: bool = True, screen_port: int = 0, camera_fps: float = 15,
                 browse_s: float = 0.0, wiring: str = "own", shelves: str = "m100", mqtt: dict | None = None,
                 overrides: dict | None = None, controller_command: list[str] | None = None,
                 groups: bool = False, take_expired: float = 0.0, cabinets: bool = True,
                 approach: bool = False, repeat_faces: bool = False, more_faces: bool = False) -> None:
        """``mqtt``: the store's [mqtt] section (url, username, password_file, command_secret_file, …);
        ``overrides``: sections of the store's config to change (e.g. {"journal": {"keep_visits_days": 0.02}});
        ``controller_command``: how to run the controller's ``bingobox`` (another venv's: the product alone);
        ``take_expired``: how likely a shopper who reaches for an item of an expired lot keeps it (not charged;
        0: they put it back and take another, so a test's one item is always one that is charged);
        ``approach``: the exit camera sees each shopper as they step into the exit area, with their goods, not at
        the door, and as they walk to it (their face growing from ``APPROACH_FROM`` of its size there); the store
        waits ``APPROACH_SETTLE_S`` after the frame for the goods to be read (``exit_settle_s``) and the walk to the
        door hides it; ``more_faces``: shoppers' faces also from ``MORE_FACES`` (a crowd with a face each)."""
        self.approach = approach
        self.more_faces = more_faces
        # a person is inside once at a time: a shopper whose face is inside already waits (``repeat_faces``: not)
        self.repeat_faces = repeat_faces
        self.faces_inside: collections.Counter[Path] = collections.Counter()
        self.faces_lock = threading.Lock()
        self.most_of_one_face_inside = 0  # (reported: 1 unless repeat_faces)
        self.take_expired = take_expired
        self.fault_spans: list[tuple[str, float, float]] = []  # (fault, from, until): for the review rate per fault
        self.cabinets = cabinets  # the fridge's and the bar's locked doors (shoppers open them now and then)
        self.locked_away = {*storeconf.CHILLED, *storeconf.RESTRICTED} if cabinets else set()  # (behind them)
        self.controller_command = controller_command
        self.groups = groups  # some shoppers bring companions on their code
        self.inside = 0  # shoppers (groups) the script has inside now
        self.companions_first = 0  # companions who left before their shopper, by the exit button
        self.n, self.seed, self.faults = shoppers, seed, faults
        self.wiring = wiring
        self.mqtt = mqtt
        self.overrides = {**(overrides or {}), **({"mqtt": mqtt} if mqtt else {})}
        if approach:
            self.overrides["visits"] = {"exit_settle_s": APPROACH_SETTLE_S, **self.overrides.get("visits", {})}
        self.shelf_kind = shelves  # M100 readers, or the antennas of one LLRP reader
        self.screen_port = screen_port or free_port()  # fixed for the run: a restarted controller keeps the URL
        self.screen_url: str | None = None
        self.operator = ("operator", os.environ.get("BINGOBOX_OPERATOR_PASSWORD") or secrets.token_urlsafe(12))
        self.rng = random.Random(seed)
        self.dir = run_dir
        self.testdata = testdata
        self.concurrency = concurrency
        self.camera_fps = camera_fps
        self.browse_s = browse_s  # mean time a shopper spends looking around besides taking goods
        self.verbose = verbose
        self.procs: dict[str, Proc] = {}
        self.entry_lock = threading.Lock()
        self.basket_watch: BasketWatch | None = None  # (``run``: the shoppers' apps, timed)
        self.entry_retries = 0  # entrances that stayed shut on the first code (a fault): a fresh code was shown
        self.exit_lock = threading.Lock()
        self.shelf_lock = threading.Lock()
        self.cabinet_locks = {str(c["name"]): threading.Lock() for c in storeconf.CABINETS}
        self.shelves: dict[str, list[str]] = {}
        # what is on the shelves and what each tag costs (the oracle's prices: fresh, marked-down, expired lots)
        self.goods = Goods(CATALOG, datetime.now(UTC).date())

    def say(self, msg: str) -> None:
        if self.verbose:
            print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    # setting up the store --------------------------------------------------------------------------
    def setup(self) -> None:
        """Start the store's processes; if any step fails, stop those already started (nothing left running)."""
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        d = self.dir
        if d.exists() and any(d.iterdir()):
            if not (d / "store.toml").exists():
                raise RuntimeError(f"{d} is not empty and not an earlier demo's folder: choose another --run-dir")
            import shutil

            shutil.rmtree(d)  # a fresh store each run
        d.mkdir(parents=True, exist_ok=True)
        self.store_id, self.secret, self.admin = "demo-store", secrets.token_urlsafe(24), secrets.token_urlsafe(16)
        # the operator's scrypt hash (~0.45 s; hashlib lets go of the GIL) is made while the gateway and the
        # simulator start
        hashing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="operator-hash")
        operator_hash = hashing.submit(hash_password, self.operator[1])
        hashing.shutdown(wait=False)
        gport = free_port()
        # secrets go by environment and owner-only files: not in `ps`
        write_secret(d / "store-secret", self.secret)
        self.procs["gateway"] = Proc("gateway", ["gateway", "--db", str(d / "gateway.db"), "--port", str(gport),
                                                 "--store", f"{self.store_id}=@{d / 'store-secret'}",
                                                 "--seed", str(self.seed)],
                                     d / "gateway.log", env={"BINGOBOX_GATEWAY_ADMIN_TOKEN": self.admin})
        # a shelf holds what a real one would (STOCK per product; one reader reads ~150 tags in a third of a second);
        # staff put new ones out when a product runs low (restock)
        for i in range(len(self.goods.products)):
            shelf = storeconf.SHELVES[i % len(storeconf.SHELVES)]
            self.shelves.setdefault(shelf, []).extend(self.goods.new_tags(i, STOCK))
        (d / "shown").mkdir()  # pictures a person shows the cameras (a screenshot of the wallet app's code)
        sim_cfg = storeconf.write(d / "sim.toml", storeconf.sim_config(self.seed, self.camera_fps,
                                                                       (Path(self.testdata), d / "shown"),
                                                                       self.wiring, self.shelf_kind, self.cabinets))
        self.procs["sim"] = Proc("sim", ["sim", "--config", str(sim_cfg), "--run-dir", str(d / "sim"),
                                         "--control-port", "0"], d / "sim.log")  # (starts while the gateway does)
        self.procs["gateway"].wait_line("ready")
        self.gw = f"http://127.0.0.1:{gport}"
        self.http = requests.Session()
        self.procs["sim"].wait_line("ready")
        self.manifest = json.loads((d / "sim" / "sim.json").read_text())
        self.sim = self.manifest["control"]
        self.sim_http = requests.Session()  # the simulator's control API wants its token
        self.sim_http.headers["Authorization"] = f"Bearer {self.manifest['token']}"
        for shelf, epcs in self.shelves.items():
            self.act("tags.set", **self.at(shelf), epcs=epcs)
        keys = self.http.get(f"{self.gw}/v1/public-keys", timeout=10).json()
        (d / "keys.json").write_text(json.dumps(keys))
        storeconf.write(d / "store.toml", storeconf.store_config(
            self.store_id, self.manifest["devices"], CATALOG, self.gw, d / "store-secret", d / "keys.json",
            d / "store.db", self.screen_port, (self.operator[0], operator_hash.result()), self.wiring,
            self.shelf_kind, self.overrides, batches=self.goods.write_batches(d / "batches.csv"),
            cabinets=self.cabinets))
        self.start_controller()
        lay = tomllib.loads((d / "store.toml").read_text())["layout"]
        self.panels = {door: f"{self.screen_url}panel/{door}" for door in (lay["entry_door"], lay["exit_door"])}
        self.endpoints = {"gateway": self.gw, "wallet_app": f"{self.gw}/app/", "screen": self.screen_url,
                          "panels": self.panels, "sim_control": self.sim, "store_id": self.store_id,
                          "images_dir": str(d / "shown")}
        (d / "endpoints.json").write_text(json.dumps(self.endpoints, indent=1))
        self.say(f"status screen: {self.screen_url} (log in as {self.operator[0]} / {self.operator[1]})")
        self.say(f"wallet app: {self.gw}/app/ (sign up there and shop with the code it shows)")
        self.say("door panels: " + ", ".join(f"{door} {url}" for door, url in self.panels.items()))
        self.say(f"simulator control: {self.sim} (token in {d / 'sim' / 'sim.json'}); all in {d / 'endpoints.json'}")

    def start_controller(self) -> None:
        self.procs["controller"] = Proc("controller", ["run", "--config", str(self.dir / "store.toml"),
                                                       "--status-file", str(self.dir / "status.json")],
                                        self.dir / "controller.log", command=self.controller_command)
        for line in self.procs["controller"].wait_line("running", timeout=120):
            if "status screen at " in line:
                self.screen_url = line.split("status screen at ", 1)[1].strip()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # devices connected and the face worker up
            st = self.status()
            if st and not [p for p in st.get("problems", []) if p.startswith("device:")]:
                return
            time.sleep(0.2)

    # helpers ---------------------------------------------------------------------------------------
    def act(self, action: str, **args) -> dict:
        r = self.sim_http.post(f"{self.sim}/action", json={"action": action, **args}, timeout=10)
        body = r.json()
        if r.status_code != 200:
            raise RuntimeError(f"{action}: {body}")
        return body

    def sim_status(self, device: str) -> dict:
        return self.sim_http.get(f"{self.sim}/status", timeout=10).json()["devices"][device]

    def status(self) -> dict:
        try:
            return json.loads((self.dir / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def admin_post(self, path: str, body: dict) -> dict:
        r = self.http.post(self.gw + path, json=body, headers={"X-Admin-Token": self.admin}, timeout=10)
        r.raise_for_status()
        return r.json()

    def code(self, s: Shopper, door: str = "*", issued_ago_s: int = 0) -> str:
        return self.admin_post("/v1/entry-codes", {"account_id": s.account, "store_id": self.store_id,
                                                   "door": door, "issued_ago_s": issued_ago_s,
                                                   "group": s.group if door == "entrance" else 1})["code"]

    def wait_unlocked(self, door: str, timeout: float, locked: bool = False) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sim_status(door)["lock_engaged"] == locked:
                return True
            time.sleep(0.05)
        return False

    # a shopper -------------------------------------------------------------------------------------
    def enter(self, s: Shopper, code: str | None = None) -> None:
        """Show the entry code (and the face, if consenting) at the door, walk in."""
        with self.entry_lock:
            tries = 1 if code else 3  # a shopper whose door stays shut shows the wallet's fresh code again
            for attempt in range(tries):
                self.act("camera.show", camera="door-cam", qr=code or self.code(s, "entrance"))
                if self.wait_unlocked("entrance", 8):
                    break
                self.act("camera.clear", camera="door-cam")
                if attempt + 1 < tries:
                    self.entry_retries += 1
                    time.sleep(1.0)
            else:
                raise RuntimeError("entrance did not unlock")
            if s.face:  # walking in, they give the camera a few frames (the best become their templates)
                for photo in s.face[0]:
                    self.act("camera.show", camera="door-cam", image=str(photo), scale=0.8)
                    time.sleep(1.2 / len(s.face[0]))
            for _ in range(3):
                try:
                    self.act("door.open", door="entrance")
                    self.act("door.pass", door="entrance", people=1)  # through the people counter
                    break
                except RuntimeError:  # relocked in front of us (e.g. the controller restarted): scan again
                    self.act("camera.show", camera="door-cam", qr=self.code(s, "entrance"))
                    self.wait_unlocked("entrance", 8)
            else:
                raise RuntimeError("the entrance stayed locked")
            time.sleep(1.0)  # walking through
            self.act("door.close", door="entrance")
            self.act("camera.clear", camera="door-cam")
            self.wait_unlocked("entrance", 3, locked=True)  # the door shuts behind them
            for _ in range(s.group - 1):  # each companion: the code shown again, a door passage of their own
                self.act("camera.show", camera="door-cam", qr=self.code(s, "entrance"))
                if not self.wait_unlocked("entrance", 8):
                    raise RuntimeError("the entrance did not open for a companion")
                self.act("camera.clear", camera="door-cam")
                self.act("door.open", door="entrance")
                self.act("door.pass", door="entrance", people=1)
                time.sleep(0.8)
                self.act("door.close", door="entrance")
                self.wait_unlocked("entrance", 3, locked=True)
            with self.shelf_lock:
                self.inside += 1

    def at(self, shelf: str) -> dict:
        return storeconf.shelf_address(self.shelf_kind, shelf)

    def _pick(self, shelf: str, skus: set[str] | None) -> int | None:
        """Which tag on ``shelf`` a shopper takes: any on the open shelf (``skus`` None: not the goods locked in a
        cabinet), else one of ``skus`` (from an open cabinet). An item of an expired lot is put back and another
        taken, unless ``take_expired`` says they keep it. None: nothing of the kind is there."""
        tags = self.shelves[shelf]
        can = [k for k, e in enumerate(tags) if (self.goods.product(e).sku in skus if skus is not None
                                                 else self.goods.product(e).sku not in self.locked_away)]
        if not can:
            return None
        i = can[self.rng.randrange(len(can))]
        if self.goods.price(tags[i], self.goods.today) == 0 and self.rng.random() >= self.take_expired:
            fresh = [k for k in can if self.goods.price(tags[k], self.goods.today)]
            i = self.rng.choice(fresh) if fresh else i
        return i

    def from_cabinet(self, s: Shopper, name: str) -> bool:
        """``s`` asks at a cabinet — the fridge by its button, the age-restricted one by their code shown to its
        camera — and takes one of its goods if it opens; False if it stayed shut (off sale, not an adult…)."""
        with self.cabinet_locks[name]:  # one person at a cabinet's door at a time (it is one door)
            return self._at_cabinet(s, next(c for c in storeconf.CABINETS if c["name"] == name))

    def _at_cabinet(self, s: Shopper, cab: dict) -> bool:
        door = str(cab["door"])
        if cab.get("restricted"):
            self.act("camera.show", camera=storeconf.CABINET_CAM, qr=self.code(s))
        else:
            self.act("door.rex", door=door)
        opened = self.wait_unlocked(door, 4)
        if cab.get("restricted"):
            self.act("camera.clear", camera=storeconf.CABINET_CAM)
        if not opened:
            return False
        self.act("door.open", door=door)
        skus = set(cab.get("skus") or storeconf.CHILLED)
        self.take(s, 1, next((sh for sh, tags in self.shelves.items()
                              if any(self.goods.product(e).sku in skus for e in tags)), None), skus)
        time.sleep(0.3)
        self.act("door.close", door=door)
        return True

    def take(self, s: Shopper, k: int, shelf: str | None = None, skus: set[str] | None = None) -> None:
        if shelf is None and skus is not None:
            return
        with self.shelf_lock:
            for _ in range(k):
                sh = shelf or self.rng.choice(sorted(self.shelves))
                i = self._pick(sh, skus)
                if i is None:
                    continue
                epc = self.shelves[sh].pop(i)
                self.act("tags.remove", **self.at(sh), epcs=[epc])
                s.took.append((sh, epc))
                if self.basket_watch is not None:
                    self.basket_watch.took(s.account, len(s.took))
                product = self.goods.product(epc)
                if sum(e.startswith(product.tag_prefix) for e in self.shelves[sh]) < STOCK // 2:  # staff restock it
                    more = self.goods.new_tags(self.goods.products.index(product), STOCK // 2, fresh=True)
                    self.act("tags.add", **self.at(sh), epcs=more)
                    self.shelves[sh].extend(more)

    def put_back(self, s: Shopper) -> None:
        shelf, epc = s.took.pop()
        if self.basket_watch is not None:
            self.basket_watch.put_back(s.account)
        self.act("tags.add", **self.at(shelf), epcs=[epc])

    def companion_first(self, s: Shopper) -> None:
        """A companion leaves before the shopper, by the exit button, with the last item the group took — only
        while the group is alone inside (with anyone else inside nobody could tell whose companion it is)."""
        with self.entry_lock, self.exit_lock:
            if self.inside != 1 or not s.took:
                return
            epc = s.took[-1][1]
            self.act("tags.add", reader="exit-area", epcs=[epc])
            time.sleep(0.5)  # through the exit area to the door
            self.act("door.rex", door="exit")
            if not self.wait_unlocked("exit", 3):
                raise RuntimeError("the exit button did not open the exit")
            self.act("door.open", door="exit")
            time.sleep(0.8)
            self.act("door.close", door="exit")
            self.act("tags.remove", reader="exit-area", epcs=[epc])
            self.wait_unlocked("exit", 3, locked=True)
            s.carried_first.append(epc)
            self.companions_first += 1

    def leave(self, s: Shopper, face: bool = True) -> None:
        """Carry the items through the exit area, be recognised (or scan a fresh code), walk out."""
        with self.exit_lock:
            epcs = [e for _, e in s.took if e not in s.carried_first]
            s.exit_zone_at = time.time()
            s.inside_at_exit = self.inside
            if epcs:
                self.act("tags.add", reader="exit-area", epcs=epcs)
            show = (s.face[1] if s.face else s.walker_face) if face else None
            if show and self.approach:  # seen as they step into the exit area, with their goods, walking closer
                self.act("camera.show", camera="exit-cam", image=str(show), scale=0.8, walk_from=APPROACH_FROM,
                         walk_s=EXIT_WALK_S)
            # walking through the exit area to the door. (Seen at the door, the goods have been in the reader's
            # field for the walk; seen on approach, the store waits ``exit_settle_s`` for them: without it the
            # window can close before the reader has read them, and a CI demo once charged them to the next shopper.)
            time.sleep(EXIT_WALK_S)
            s.at_door_at = time.time()
            if show and not self.approach:
                self.act("camera.show", camera="exit-cam", image=str(show), scale=0.8)
            opened = self.wait_unlocked("exit", 6 if s.face and face else WALKER_LOOK_S if show else 0.5)
            if opened and show and not s.face:  # their face, no templates of theirs: taken for someone else
                s.let_out_by_face = True
                s.error = "let out by the face of someone without consent (a look-alike's visit identified)"
            if not opened:  # not recognised (or no face billing): scan a fresh code
                s.used_qr_at_exit = True
                self.act("camera.show", camera="exit-cam", qr=self.code(s))
                opened = self.wait_unlocked("exit", 10)
            if not opened:  # the way out is never blocked: the exit button
                s.error = "exit needed the request-to-exit button"
                self.act("door.rex", door="exit")
                self.wait_unlocked("exit", 3)
            self.act("door.open", door="exit")
            time.sleep(1.0)
            self.act("door.close", door="exit")
            self.act("camera.clear", camera="exit-cam")
            self.wait_unlocked("exit", 3, locked=True)
            if epcs:
                self.act("tags.remove", reader="exit-area", epcs=epcs)
            with self.shelf_lock:
                self.inside -= 1

    def shop(self, s: Shopper) -> None:
        try:
            self.enter(s)
            time.sleep(0.3 + (self.rng.uniform(0, 2 * self.browse_s) if self.browse_s else 0.0))
            self.take(s, self.rng.randint(0, 3))
            if self.cabinets and self.rng.random() < 0.35:  # something chilled from the fridge
                self.from_cabinet(s, "fridge")
            if self.cabinets and self.rng.random() < 0.2:  # a beer: adults only (a minor is told so, takes none)
                self.from_cabinet(s, "bar")
            if s.took and self.rng.random() < 0.2:  # changed their mind
                time.sleep(1.0)
                self.put_back(s)
            time.sleep(1.2)  # shelves report a removal after a moment
            if s.group > 1 and self.rng.random() < 0.5:
                self.companion_first(s)
                time.sleep(0.5)
            self.leave(s)
            s.done = True
            self.say(f"shopper {s.n}: out with {len(s.took)} items"
                     f"{' (QR at exit)' if s.used_qr_at_exit else ''}{' — ' + s.error if s.error else ''}")
        except Exception as e:
            s.error = f"{type(e).__name__}: {e}"
            self.say(f"shopper {s.n}: {s.error}")

    def new_shopper(self, n: int, balance_fen: int = 1_000_000, face: tuple[list[Path], Path] | None = None) -> Shopper:
        acc = self.admin_post("/admin/accounts", {"real_name": f"Shopper {n}", "id_number": id_number(n),
                                                  "balance_fen": balance_fen, "face_consent": face is not None})
        return Shopper(n, acc["id"], face)

    # faults ----------------------------------------------------------------------------------------
    def chaos(self, stop: threading.Event) -> None:
        if "dead_board" in self.faults:  # the staff door's board on the shoppers' bus dies for the whole run
            self.say("fault: dead_board (the staff door's board stops answering)")
            self.act("fault.silent", device="staff")
        if "dead_board" in self.faults:
            self.fault_spans.append(("dead_board", 0.0, float("inf")))
        plan = [f for f in FAULTS if f in self.faults and f != "dead_board"]
        i = 0
        while plan and not stop.wait(self.rng.uniform(3, 6)):
            f = plan[i % len(plan)]
            i += 1
            self.say(f"fault: {f}")
            began = time.time()
            if f == "gateway_drop":
                self.admin_post("/admin/faults", {"drop_rate": 0.5})
                stop.wait(3)
                self.admin_post("/admin/faults", {"drop_rate": 0.0})
            elif f == "gateway_errors":
                self.admin_post("/admin/faults", {"error_rate": 0.5})
                stop.wait(3)
                self.admin_post("/admin/faults", {"error_rate": 0.0})
            elif f == "gateway_outage":
                self.admin_post("/admin/faults", {"outage": True})
                stop.wait(4)
                self.admin_post("/admin/faults", {"outage": False})
            elif f == "unplug":
                shelf = self.at("shelf-2")["reader"]  # (with LLRP shelves: the whole reader)
                self.act("fault.unplug", device=shelf)
                stop.wait(1.5)
                self.act("fault.replug", device=shelf)
            elif f == "junk":
                for dev in ("entrance", self.at("shelf-1")["reader"], "exit-area"):
                    self.act("fault.garbage", device=dev, bytes=32)
                    self.act("fault.corrupt", device=dev, count=2)
            elif f == "kill":
                self.procs["controller"].stop(signal.SIGKILL)
                self.start_controller()
            # (what a fault touches lasts a little past it: a read missed, a charge retried, a restart recovered)
            self.fault_spans.append((f, began, time.time() + FAULT_AFTERMATH_S))

    # the run ---------------------------------------------------------------------------------------
    def run(self, after_setup: Callable[[], object] | None = None) -> dict:
        """Set the store up, run the shoppers through it (``after_setup``: called once the store is up)."""
        self.setup()
        self.basket_watch = BasketWatch(self.gw, self.admin).start()
        if after_setup is not None:
            after_setup()
        faces = _identities(self.testdata, self.more_faces)
        shoppers = []
        for i in range(self.n):
            low = self.rng.random() < 0.1  # some wallets are nearly empty: declined, recorded as debt
            # (a person comes back every len(faces) shoppers; never inside twice at once: see ``_next``). Those who
            # do not consent have a face all the same: the exit camera sees it (the store must not take it for a
            # look-alike's among the candidates)
            person = faces[i % len(faces)] if faces else None
            face = person if person and self.rng.random() < 0.7 else None
            shoppers.append(self.new_shopper(i, 50 if low else 1_000_000, face))
            shoppers[-1].walker_face = person[1] if person and not face else None
            if self.groups and self.rng.random() < 0.5:
                shoppers[-1].group = self.rng.randint(2, 3)
        stop = threading.Event()
        chaos = threading.Thread(target=self.chaos, args=(stop,), daemon=True)
        chaos.start()
        pending = list(shoppers)
        running: list[threading.Thread] = []
        t0 = time.monotonic()
        while pending or running:
            running = [t for t in running if t.is_alive()]
            while pending and len(running) < self.concurrency:
                s = self._next(pending)
                if s is None:  # everyone waiting is someone inside already
                    break
                t = threading.Thread(target=self._shop_once, args=(s,), daemon=True)
                t.start()
                running.append(t)
                time.sleep(0.5)
            time.sleep(0.1)
        stop.set()
        chaos.join(timeout=30)
        self.admin_post("/admin/faults", {"drop_rate": 0, "error_rate": 0, "outage": False})
        self.shoppers = shoppers
        baskets = self.basket_watch.stop()
        summary = self.settle_and_summarise(shoppers, time.monotonic() - t0)
        groups = [sh for sh in shoppers if sh.group > 1]
        return {**summary, "basket_ms": baskets, "most_of_one_face_inside": self.most_of_one_face_inside,
                "faces": oracle.face_exits(self.dir / "store.db", shoppers),
                "groups": {"groups": len(groups), "people": sum(sh.group for sh in groups),
                           "companions_left_first": self.companions_first}}

    def _next(self, pending: list[Shopper]) -> Shopper | None:
        """The first waiting shopper who is not inside already (the same face twice inside at once is the same
        person twice, which the store rightly cannot tell apart); their face is marked inside."""
        with self.faces_lock:
            for i, s in enumerate(pending):
                key = s.person
                if key is None or self.repeat_faces or not self.faces_inside[key]:
                    if key is not None:
                        self.faces_inside[key] += 1
                        self.most_of_one_face_inside = max(self.most_of_one_face_inside, self.faces_inside[key])
                    return pending.pop(i)
        return None

    def _shop_once(self, s: Shopper) -> None:
        try:
            self.shop(s)
        finally:
            with self.faces_lock:
                if s.person is not None:
                    self.faces_inside[s.person] -= 1

    def settle_and_summarise(self, shoppers: list[Shopper], seconds: float) -> dict:
        oracle.settle(self.dir / "store.db")
        ledger = self.http.get(f"{self.gw}/admin/charges", headers={"X-Admin-Token": self.admin},
                               timeout=10).json()["data"]
        summary = oracle.summarise(self.dir / "store.db", ledger, shoppers, self.status(), self.goods)
        if self.faults:
            summary["review_by_fault"] = oracle.reviews_by_fault(self.dir / "store.db", self.fault_spans)
        return {**summary, "entry_retries": self.entry_retries, "faults": sorted(self.faults),
                "seconds": round(seconds, 1), "run_dir": str(self.dir)}

    def close(self) -> None:
        """The controller first (it may still talk to its devices and the gateway as it stops), then those two at
        once."""
        if "controller" in self.procs:
            self.procs["controller"].stop()
        stop_together([self.procs[name] for name in ("sim", "gateway") if name in self.procs])


def main(args) -> int:
    faults = set(FAULTS) - {"dead_board"} if args.faults == "all" else {f for f in (args.faults or "").split(",") if f}
    unknown = faults - set(FAULTS)
    if unknown:
        print(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}, all", file=sys.stderr)
        return 2
    if "dead_board" in faults and args.wiring != "bus":
        print("the dead_board fault needs --wiring bus (a third board on the shoppers' line)", file=sys.stderr)
        return 2
    if args.more_faces and not (Path(args.testdata) / MORE_FACES).is_file():
        print(f"--more-faces: {Path(args.testdata) / MORE_FACES} is missing (the crowd's photographs)", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir or f"run/demo-{os.getpid()}").resolve()
    mqtt = None
    if args.mqtt:
        mqtt = {"url": args.mqtt, "state_every_s": 2.0, "metrics_every_s": 10.0}
        if args.mqtt_user:
            mqtt["username"] = args.mqtt_user
        if args.mqtt_password_file:
            mqtt["password_file"] = str(Path(args.mqtt_password_file).resolve())
        if args.mqtt_command_key_file:
            mqtt["command_secret_file"] = str(Path(args.mqtt_command_key_file).resolve())
    demo = Demo(args.shoppers, args.seed, faults, run_dir, Path(args.testdata), args.concurrency,
                verbose=not args.quiet, screen_port=args.screen_port, camera_fps=args.camera_fps,
                browse_s=args.browse_s, wiring=args.wiring, shelves=args.shelves, mqtt=mqtt, groups=args.groups,
                take_expired=args.take_expired, approach=args.approach, repeat_faces=args.repeat_faces,
                more_faces=args.more_faces)
    try:
        summary = demo.run()
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        if args.json:
            print(json.dumps(summary), flush=True)
        else:
            title = (f"bingobox demo: {args.shoppers} shoppers, seed {args.seed}, concurrency {args.concurrency}, "
                     f"faults: {', '.join(sorted(faults)) or 'none'}")
            print(report.human(summary, title), flush=True)
            print(f"\n  the whole summary: {run_dir / 'summary.json'} (or --json)", flush=True)
        if args.keep:
            print(f"the store keeps running: status screen {demo.screen_url} (operator / "
                  f"{demo.operator[1]}); wallet app {demo.endpoints['wallet_app']}; Ctrl-C stops it",
                  file=sys.stderr, flush=True)
            from bingobox.sdnotify import wait_for_signal

            wait_for_signal()
    finally:
        demo.close()
    return 0 if report.money_ok(summary) else 1


def id_number(n: int) -> str:
    """Shopper ``n``'s resident ID number (valid, unique in a run): an adult, but every fifth shopper a minor (the
    age-restricted cabinet tells them so)."""
    from datetime import date, timedelta

    born = (date(2012, 1, 1) if n % 5 == 4 else date(1980, 1, 1)) + timedelta(days=n)
    first = f"110105{born:%Y%m%d}{n % 1000:03d}"
    return first + resident_id.CHECK[sum(int(d) * w for d, w in zip(first, resident_id.WEIGHTS, strict=True)) % 11]
