"""The scripted people of the simulation, as processes: shoppers (queue at the entrance, show a code, walk in,
take and put back goods, queue for the exit area, show their face or a code, walk out — patient, but they press
the exit button in the end), tailgaters (in without a code, out by the button), and the fire alarm."""

from __future__ import annotations

import functools

from bingobox.core.events import CodeSeen

from .sched import Process, until
from .world import Shopper, World

SCAN_EVERY_S = 0.2  # how often the scanner reports a code still in front of the camera


def show_code(world: World, role: str, text: str, shown: list[bool]) -> Process:
    """The QR scanner sees the code in every frame while it is shown (the core debounces)."""
    while shown[0]:
        t = world.clock()
        if world.up:
            world.sched.after(0.012, functools.partial(world.post, CodeSeen(role, text, t, {"decoded": t + 0.012})))
        yield SCAN_EVERY_S


def shopper(world: World, s: Shopper) -> Process:
    ent, ex = world.doors["entrance"], world.doors["exit"]
    yield until(lambda: not world.entrance_busy, 900, 0.1)
    world.entrance_busy, world.at_entrance = True, s
    s.first_commit = world.commit_count()
    entered = False
    text = ""
    for _ in range(4):  # a relocked door or a restarted controller: a fresh code
        shown = [True]
        text = world.code(s, "entrance")
        world.sched.spawn(show_code(world, "entry", text, shown))
        ok = yield until(lambda: ent.unlocked, 8)
        shown[0] = False
        if not ok:
            continue
        if s.face:
            yield 1.0  # looking at the camera while the face is enrolled
        if ent.push_open():
            entered = True
            break
    if not entered:
        world.entrance_busy, world.at_entrance = False, None
        s.left_how, s.done = "never_entered", True
        s.last_commit = world.commit_count()
        return
    s.entered = True
    yield 1.0  # walking through
    ent.close()
    yield until(lambda: not ent.unlocked, 3)  # the door latches behind them before the next one steps up
    for _ in range(s.group - 1):  # each companion: the same code shown again, a passage of their own
        yield 1.2  # (the phone away and back: a code out of sight this long is a new showing, not the same one)
        shown = [True]
        world.sched.spawn(show_code(world, "entry", text, shown))
        ok = yield until(lambda: ent.unlocked, 6)
        shown[0] = False
        if not ok or not ent.push_open():  # (the controller down, say: they wait outside, and go home)
            continue
        s.passages += 1
        yield 0.8
        ent.close()
        yield until(lambda: not ent.unlocked, 3)
    world.at_entrance, world.entrance_busy = None, False
    for _ in range(s.takes):
        yield world.rng.uniform(0.5, 2.5)
        if world.fire_active:
            break
        on_shelves = sorted(world.shelf)
        if on_shelves:
            world.take(s, world.rng.choice(on_shelves))
    if s.put_back and s.carried and not world.fire_active:
        yield world.rng.uniform(0.5, 1.5)
        world.put_back(s, world.rng.choice(sorted(s.carried)))
    yield world.rng.uniform(1.0, 3.0)
    if s.companion_first and s.passages > 1 and s.carried and not world.fire_active:
        yield from companion_out(world, s, ex)
    yield from leave(world, s, ex)


def companion_out(world: World, s: Shopper, ex) -> Process:
    """A companion leaves before the shopper, by the exit button, with one of the group's items."""
    yield until(lambda: world.in_exit_area is None or world.fire_active, 900, 0.1)
    if world.fire_active or not s.carried:
        return
    world.in_exit_area = s
    item = {sorted(s.carried)[0]}
    world.carry_into_exit_area(s, item)
    yield 0.5  # through the exit area to the door
    ex.rex()
    yield until(lambda: ex.unlocked, 3)
    tries = 0
    while not ex.push_open():
        tries += 1
        if tries % 30 == 0:
            ex.rex()
        yield 0.1
    yield 0.5
    world.carry_out(s, item)
    s.companions_out += 1
    s.companion_exits.append((world.clock(), set(item)))
    yield 0.5
    ex.close()
    yield until(lambda: not ex.unlocked or world.fire_active, 3)
    if world.in_exit_area is s:
        world.in_exit_area = None
    yield 1.0


def leave(world: World, s: Shopper, ex) -> Process:
    yield until(lambda: world.in_exit_area is None or world.fire_active, 900, 0.1)
    if world.fire_active:  # everyone out, through whatever door is open
        yield from _go_out(world, s, ex, "fire")
        return
    world.in_exit_area = s
    world.carry_into_exit_area(s)
    if world.approach:  # seen as they step in, with their goods (the store waits ``exit_settle_s`` for them)
        world.at_exit_camera = s
    yield 0.4  # walking through the exit area to the door (and its camera)
    world.at_exit_camera = s
    t0, down_before = world.clock(), len(world.down_spans) + (not world.up)
    opened = yield until(lambda: ex.unlocked, 6 if s.face else 0.5)
    tries = 0
    while not opened and tries < 3:  # not recognised (or no face billing): a fresh code, and again
        shown = [True]
        world.sched.spawn(show_code(world, "exit", world.code(s), shown))
        opened = yield until(lambda: ex.unlocked, 10)
        shown[0] = False
        tries += 1
    world.at_exit_camera = None
    s.waited_exit_s = world.clock() - t0
    how = "fire" if world.fire_active else "door"
    if not opened:  # the way out is never blocked: the request-to-exit button
        how = "rex"
        s.rex_while_up = world.up and len(world.down_spans) + (not world.up) == down_before
        ex.rex()
        yield until(lambda: ex.unlocked, 3)
    yield from _go_out(world, s, ex, how)


def _go_out(world: World, s: Shopper, ex, how: str) -> Process:
    tries = 0
    while not ex.push_open():  # nobody walks through a locked door: the button again, now and then
        tries += 1
        if tries % 30 == 0:
            ex.rex()
        yield 0.1
    yield 0.5
    world.carry_out(s)
    yield 0.5
    ex.close()
    yield until(lambda: not ex.unlocked or world.fire_active, 3)  # it latches behind them
    if world.in_exit_area is s:
        world.in_exit_area = None
    s.left_how, s.done = how, True
    s.last_commit = world.commit_count()


def tailgater(world: World, s: Shopper, forced: bool, host: Shopper | None = None) -> Process:
    """Someone without a code: in behind a shopper (``forced``: pushing the locked door once it shut; else through
    the opening their ``host``'s code made, when the host walks in), takes goods, leaves by the exit button."""
    ent, ex = world.doors["entrance"], world.doors["exit"]
    if not forced and host is not None:
        yield until(lambda: host.entered or host.done, 900, 0.1)
        if not host.entered:
            s.done = True  # the host never got in: nor did they
            return
    if forced:
        yield until(lambda: not ent.is_open and not world.entrance_busy, 900, 0.1)
        world.entrance_busy = True  # (at the door: the next shopper waits behind them)
        ent.push_open(force=True)
        yield 0.5
        ent.close()
        world.entrance_busy = False
    s.entered = True
    yield world.rng.uniform(2.0, 4.0)
    for _ in range(s.takes):
        on_shelves = sorted(world.shelf)
        if on_shelves:
            world.take(s, world.rng.choice(on_shelves))
        yield world.rng.uniform(0.5, 1.5)
    yield world.rng.uniform(1.0, 2.0)
    yield until(lambda: world.in_exit_area is None, 900, 0.1)
    world.in_exit_area = s
    world.carry_into_exit_area(s)
    yield 0.5
    ex.rex()
    yield until(lambda: ex.unlocked, 3)
    yield from _go_out(world, s, ex, "rex")


def fire_alarm(world: World, at: float, lasts: float) -> Process:
    yield at
    world.fire_active = world.had_fire = True
    for d in world.doors.values():
        d.set_fire(True)
    yield lasts
    world.fire_active = False
    for d in world.doors.values():
        d.set_fire(False)
