"""The state machines are data: printable as diagrams, every state reachable, every trigger handled."""

import pytest

from bingobox.domain import diagram
from bingobox.domain.store import StoreMachine
from bingobox.domain.visit import FINAL, VisitMachine


@pytest.mark.parametrize("name", sorted(diagram.MACHINES))
def test_every_state_reachable_and_known(name):
    assert diagram.unreachable(name) == set()
    assert diagram.unknown_states(name) == set()
    text = diagram.mermaid(name)
    assert text.startswith("stateDiagram-v2") and text.count("-->") > len(diagram.MACHINES[name][0])


def test_every_trigger_has_a_handler():
    v = VisitMachine("v")
    for name in {t["trigger"] for t in diagram.MACHINES["visit"][1]}:
        assert callable(getattr(v, name))
    s = StoreMachine()
    for name in {t["trigger"] for t in diagram.MACHINES["store"][1]}:
        assert callable(getattr(s, name))


def test_a_whole_visit_and_the_side_exits():
    v = VisitMachine("v1")
    for trig in ("door_opened", "door_closed", "identified", "charge", "exit_door_cycle"):
        assert v.fire(trig), trig
    assert v.state == "left" and v.final
    a = VisitMachine("v2")
    assert a.fire("abandon") and a.state == "abandoned"
    r = VisitMachine("v6")  # across a restart: never abandoned, presumed inside; a new code replaces it
    assert r.fire("presume_inside") and r.state == "inside" and r.fire("replaced") and r.state == "abandoned"
    assert VisitMachine("v7", initial="code_accepted").state == "door_unlocked"  # an older journal's state
    u = VisitMachine("v3", initial="inside")
    assert u.fire("not_sure") and u.fire("identified") and u.state == "at_exit"
    d = VisitMachine("v4", initial="charging")
    assert d.fire("charge_declined") and d.fire("exit_door_cycle") and d.state == "left"
    assert not VisitMachine("v5").fire("charge")  # a guard, not an unconditional jump
    assert {"left", "abandoned", "timed_out"} == FINAL


def test_store_health_and_emergency():
    s = StoreMachine()
    s.started()
    assert s.state == "ready" and s.admits
    s.set_problem("gateway", True)
    assert s.state == "degraded"
    s.fire()
    assert s.state == "emergency" and not s.admits
    s.set_problem("gateway", False)
    s.fire_cleared()
    assert s.state == "ready"
    s.lock_down()
    assert not s.admits
    s.release()
    assert s.state == "ready"
