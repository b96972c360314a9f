"""Door logic with an explicit clock: grant window, relock, forced, held-open, REX, fire, link loss."""

from bingobox.domain.door import DoorMachine, DoorTiming


def machine(**kw):
    return DoorMachine("d", DoorTiming(unlock_s=5, held_open_s=20, rex_shunt_s=3, **kw))


def kinds(m):
    return [k if k != "alarm" else f"alarm:{d['alarm']}" for k, d in m.drain() if k != "state"]


def test_grant_then_relock_if_never_opened():
    m = machine()
    assert m.lock_wanted
    assert m.on_grant(0.0)
    assert m.state == "unlocked" and not m.lock_wanted
    m.on_tick(4.9)
    assert m.state == "unlocked"
    m.on_tick(5.0)
    assert m.state == "locked" and m.lock_wanted


def test_normal_cycle_relocks_on_close():
    m = machine()
    m.on_grant(0)
    m.on_contact(1, True)
    assert m.state == "open" and not m.lock_wanted
    m.on_contact(3, False)
    assert m.state == "locked" and m.lock_wanted
    assert kinds(m) == ["door_opened", "door_closed"]


def test_relock_on_open_for_strikes():
    m = machine(relock_on="open")
    m.on_grant(0)
    m.on_contact(1, True)
    assert m.state == "open" and m.lock_wanted


def test_forced_open_alarm_and_clear():
    m = machine()
    m.on_contact(10, True)
    assert m.state == "forced"
    assert "alarm:door_forced" in kinds(m)
    m.on_contact(12, False)
    assert m.state == "locked"


def test_rex_shunts_forced_alarm_and_unlocks():
    m = machine(rex_unlocks=False)
    m.on_rex(10)
    assert m.state == "locked"
    m.on_contact(11, True)
    assert m.state == "open"
    m2 = machine()
    m2.on_rex(0)
    assert m2.state == "unlocked"
    m3 = machine(rex_unlocks=False)
    m3.on_rex(0)
    m3.on_contact(3.5, True)
    assert m3.state == "forced"


def test_held_open_alarm_then_clears_on_close():
    m = machine()
    m.on_grant(0)
    m.on_contact(1, True)
    m.on_tick(20.9)
    assert m.state == "open"
    m.on_tick(21.0)
    assert m.state == "held_open"
    assert "alarm:door_held_open" in kinds(m)
    m.on_contact(30, False)
    assert m.state == "locked"


def test_fire_unlocks_everything_and_blocks_nothing():
    m = machine()
    m.on_fire(0, True)
    assert m.state == "emergency" and not m.lock_wanted
    m.on_contact(1, True)
    m.on_tick(100)
    assert m.state == "emergency" and not m.lock_wanted
    m.on_fire(101, False)
    assert m.state == "open"
    m.on_contact(102, False)
    assert m.state == "locked"


def test_link_loss_and_restore():
    m = machine()
    m.on_link(0, False)
    assert m.state == "fault"
    m.on_grant(1)
    assert m.state == "fault"
    m.on_link(2, True)
    assert m.state == "locked"
    m.on_fire(3, True)
    m.on_link(4, False)
    m.on_link(5, True)
    assert m.state == "emergency"


def test_every_state_is_reachable():
    from bingobox.domain.door import STATES, TRANSITIONS
    reached, frontier = {"locked"}, ["locked"]
    while frontier:
        s = frontier.pop()
        for t in TRANSITIONS:
            src = t["source"] if isinstance(t["source"], list) else [t["source"]]
            if s in src and t["dest"] not in reached:
                reached.add(t["dest"])
                frontier.append(t["dest"])
    assert reached == set(STATES)
