"""A visit's record (the state machine beside its data) and the book of open visits, with the one way a visit
changes: ``VisitBook.commit`` writes the row, its evidence and anything else of the same transition (a used code,
a charge intent, an alarm) in one journal transaction, and undoes the change in memory if that transaction fails."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..domain import review, tokens
from ..domain.catalog import Basket
from ..domain.visit import FINAL, IN_STORE, LEAVING, UNSEEN_ENTRY, VisitMachine
from .ports import Journal, JournalTx

Evidence = list[tuple["Visit | None", str, dict[str, Any]]]


class CodeUsed(Exception):
    """The code was used up between its check and its commit."""


@dataclass
class Visit:
    id: str
    account: str
    face_consent: bool
    machine: VisitMachine
    created_at: float
    basket: Basket = field(default_factory=Basket)
    alone: bool = True
    enrolled: bool = False  # memory only: templates live in the face worker
    entered_at: float | None = None
    identified_at: float | None = None  # frame time of the exit identification
    exit_granted_at: float | None = None
    left_at: float | None = None
    amount_fen: int | None = None
    receipt: dict[str, Any] | None = None
    flags: list[str] = field(default_factory=list)
    code: str | None = None  # the id (jti) of the code that opened the visit: its charges are bound to it
    group: int = 1  # people on the code: the shopper, who pays, and their companions
    passages: int = 0  # the group's door passages at the entrance so far
    members_out: int = 0  # companions who left before the shopper (the exit button, unidentified)
    # memory only: the checkout in progress
    exit_deadline: float | None = None
    exit_from: float | None = None  # the exit window starts here (see checkout)
    inventory_deadline: float | None = None  # when to stop waiting for the exit reader
    stages: dict[str, float] = field(default_factory=dict)  # stage → wall-clock time, for the per-stage budget
    passage_granted_at: float | None = None  # the entrance unlocked for the group's next companion

    @property
    def state(self) -> str:
        return self.machine.state

    @property
    def inside(self) -> bool:
        return self.state in IN_STORE

    @property
    def companions_inside(self) -> int:
        """Companions of a group still inside, as far as the store can count (0 for a shopper alone)."""
        return max(0, self.group - 1 - self.members_out)

    @property
    def leaving(self) -> bool:
        return self.state in LEAVING

    def flag(self, name: str) -> bool:
        """Add a flag; False if it was there already."""
        if name in self.flags:
            return False
        self.flags.append(name)
        return True

    def row(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "account_id": self.account, "state": str(self.state),
                "face_consent": int(self.face_consent), "alone": int(self.alone), "created_at": self.created_at,
                "updated_at": now, "entered_at": self.entered_at, "left_at": self.left_at,
                "basket": json.dumps(self.basket.items), "taken": json.dumps(self.basket.taken),
                "amount_fen": self.amount_fen,
                "receipt": json.dumps(self.receipt) if self.receipt is not None else None,
                "flags": json.dumps(self.flags), "identified_at": self.identified_at,
                "exit_granted_at": self.exit_granted_at, "entry_jti": self.code, "group_size": self.group,
                "passages": self.passages, "members_out": self.members_out}

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Visit:
        return cls(r["id"], r["account_id"], bool(r["face_consent"]), VisitMachine(r["id"], initial=r["state"]),
                   r["created_at"], basket=Basket(json.loads(r["basket"]), json.loads(r.get("taken") or "{}")),
                   alone=bool(r["alone"]),
                   entered_at=r["entered_at"], identified_at=r.get("identified_at"),
                   exit_granted_at=r.get("exit_granted_at"), amount_fen=r["amount_fen"],
                   flags=json.loads(r["flags"]), code=r.get("entry_jti"), group=r.get("group_size") or 1,
                   passages=r.get("passages") or 0, members_out=r.get("members_out") or 0)


_PERSISTED = ("basket", "alone", "entered_at", "identified_at", "exit_granted_at", "left_at", "amount_fen", "receipt",
              "flags", "face_consent", "passages", "members_out")


class VisitBook:
    """The open visits (memory) over the journal (disk). Closed visits leave the book."""

    def __init__(self, journal: Journal, clock: Callable[[], float]) -> None:
        self.journal = journal
        self.clock = clock
        self.visits: dict[str, Visit] = {}

    def __iter__(self) -> Iterator[Visit]:
        return iter(list(self.visits.values()))

    def get(self, visit_id: str | None) -> Visit | None:
        return self.visits.get(visit_id or "")

    def of_account(self, account: str) -> Visit | None:
        return next((v for v in self.visits.values() if v.account == account), None)

    def inside(self) -> list[Visit]:
        return [v for v in self.visits.values() if v.inside]

    def waiting_at_entrance(self) -> list[Visit]:
        return sorted((v for v in self.visits.values() if v.state in UNSEEN_ENTRY), key=lambda v: v.created_at)

    @contextmanager
    def commit(self, visits: Iterable[Visit], evidence: Iterable[tuple[Visit | None, str, dict[str, Any]]] = (),
               new: Iterable[Visit] = ()) -> Iterator[Tx]:
        """Change ``visits`` (and create ``new`` ones) in the ``with`` body, then write them and ``evidence`` in one
        transaction (the body gets the open transaction for whatever else belongs to the same transition). If the
        body or the commit fails, every change to these visits in memory is undone and the error propagates."""
        new = list(new)
        touched = {v.id: v for v in [*visits, *new]}
        new_ids = {n.id for n in new}
        before = {vid: (v.state, {k: copy.deepcopy(getattr(v, k)) for k in _PERSISTED})
                  for vid, v in touched.items() if vid not in new_ids}
        evidence = list(evidence)
        now = self.clock()
        try:
            with self.journal.visit_tx(now) as jtx:
                tx = Tx(jtx, now)
                yield tx
                for v in touched.values():
                    jtx.save_visit(v.row(now), new=v.id not in before)
                    why = review.causes(v.flags) if v.state in FINAL else []
                    if why:  # it ended, and the store was not sure of something: into the operator's queue
                        jtx.review(v.id, v.account, why)
                for ev_v, kind, data in [*evidence, *tx.evidence]:
                    jtx.evidence(ev_v.id if ev_v is not None else None, kind, data)
        except BaseException:
            for vid, (state, fields) in before.items():
                v = touched[vid]
                v.machine.set(state)
                for k, val in fields.items():
                    setattr(v, k, val)
            raise
        for v in new:
            self.visits[v.id] = v
        for v in touched.values():
            if v.state in FINAL:
                self.visits.pop(v.id, None)

    def restore(self) -> list[Visit]:
        """The open visits from the journal (after a restart), into the book."""
        out = [Visit.from_row(r) for r in self.journal.open_visits()]
        for v in out:
            self.visits[v.id] = v
        return out


class Tx:
    """The open transaction of a ``VisitBook.commit``: more evidence, a code used up, an alarm, or the charge
    queue's intent (``journal``: what it writes through) — all in the same commit."""

    def __init__(self, journal: JournalTx, now: float) -> None:
        self.journal = journal
        self.now = now
        self.evidence: Evidence = []

    def add(self, v: Visit | None, kind: str, data: dict[str, Any]) -> None:
        self.evidence.append((v, kind, data))

    def use_code(self, claims: tokens.EntryClaims) -> None:
        """The code is used up with this commit (replay cache; kept past its expiry): ``CodeUsed`` if it was."""
        if not self.journal.remember_code(claims.jti, claims.exp, tokens.CLOCK_SKEW_S):
            raise CodeUsed(claims.jti)

    def alarm(self, kind: str, device: str | None, data: dict[str, Any]) -> None:
        self.journal.alarm(kind, device, data)
