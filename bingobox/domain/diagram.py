"""The state machines as data → Mermaid state diagrams, and checks that every state is reachable."""

from __future__ import annotations

from typing import Any

from . import door, store, visit

# name → (states, transitions, the states a machine starts in): a visit starts when its code is accepted, or at
# the exit (a recovery visit)
MACHINES = {
    "store": (store.STATES, store.TRANSITIONS, ["starting"]),
    "visit": (visit.STATES, visit.TRANSITIONS, [str(visit.INITIAL), str(visit.S.at_exit)]),
    "door": (door.STATES, door.TRANSITIONS, ["locked"]),
}


def _sources(t: dict[str, Any]) -> list[str]:
    return t["source"] if isinstance(t["source"], list) else [t["source"]]


def mermaid(name: str) -> str:
    _, transitions, initial = MACHINES[name]
    lines = ["stateDiagram-v2", *(f"    [*] --> {s}" for s in initial)]
    for t in transitions:
        label = t["trigger"] + (f" [{t['conditions']}]" if t.get("conditions") else "")
        for s in _sources(t):
            lines.append(f"    {s} --> {t['dest']}: {label}")
    return "\n".join(lines)


def unreachable(name: str) -> set[str]:
    states, transitions, initial = MACHINES[name]
    seen, todo = set(initial), list(initial)
    while todo:
        s = todo.pop()
        for t in transitions:
            if s in _sources(t) and t["dest"] not in seen:
                seen.add(t["dest"])
                todo.append(t["dest"])
    return set(states) - seen


def unknown_states(name: str) -> set[str]:
    states, transitions, _ = MACHINES[name]
    used = {t["dest"] for t in transitions} | {s for t in transitions for s in _sources(t)}
    return used - set(states)
