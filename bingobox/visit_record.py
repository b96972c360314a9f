"""A visit's record: the state machine beside its data (basket, flags, exit progress), and how it is saved."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .domain.catalog import Basket
from .domain.visit import VisitMachine
from .journal import Journal

IN_STORE = ("entered", "inside", "unsure")


@dataclass
class Visit:
    id: str
    account: str
    face_consent: bool
    machine: VisitMachine
    created_at: float
    basket: Basket = field(default_factory=Basket)
    alone: bool = True
    enrolled: bool = False
    entered_at: float | None = None
    exit_t0: float | None = None  # when the shopper was seen at the exit (frame time)
    exit_deadline: float | None = None
    exit_granted: bool = False
    flags: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.machine.state


def save_visit(journal: Journal, v: Visit, new: bool = False, amount: int | None = None,
               receipt: dict | None = None, left: bool = False) -> None:
    """Write the visit's row (one durable transaction)."""
    now = time.time()
    with journal.tx() as c:
        if new:
            c.execute("INSERT INTO visits (id, account_id, state, face_consent, alone, created_at, updated_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)", (v.id, v.account, v.state, int(v.face_consent),
                                                       int(v.alone), v.created_at, now))
        c.execute("UPDATE visits SET state=?, alone=?, updated_at=?, entered_at=?, basket=?, flags=?, "
                  "amount_fen=COALESCE(?, amount_fen), receipt=COALESCE(?, receipt), left_at=? WHERE id=?",
                  (v.state, int(v.alone), now, v.entered_at, json.dumps(v.basket.items), json.dumps(v.flags),
                   amount, json.dumps(receipt) if receipt else None, now if left else None, v.id))
