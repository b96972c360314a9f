"""The audit log's one API, for the store's journal and the fleet's database alike: every operator action, login
and refused command, whatever its outcome — who, what, the arguments (JSON), the outcome and why, from where
(the ``audit`` table of both: id, t, operator, action, args, outcome, detail, source)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any


class AuditLog:
    """Mixed into a database class that has ``tx()`` (a transaction whose ``execute`` takes ``?`` placeholders)
    and ``all(sql, args)``; ``audit_clock`` is when a row is written (the journal's clock, or wall time)."""

    audit_clock: Callable[[], float] = staticmethod(time.time)

    def tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError

    def audit(self, operator: str | None, action: str, args: dict[str, Any], outcome: str, detail: str = "",
              source: str = "") -> int:
        """One operator action (or login, or refused command), whatever its outcome; returns its id."""
        with self.tx() as c:
            row = c.execute("INSERT INTO audit (t, operator, action, args, outcome, detail, source) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                            (self.audit_clock(), operator, action, json.dumps(args, default=str), outcome, detail,
                             source)).fetchone()
            return int(row["id"])

    def set_audit_outcome(self, audit_id: int, outcome: str, detail: str) -> None:
        """An action's outcome once known (an action is written before it runs: a crash leaves it "started")."""
        with self.tx() as c:
            c.execute("UPDATE audit SET outcome=?, detail=? WHERE id=?", (outcome, detail, audit_id))

    def recent_audit(self, limit: int = 30) -> list[dict[str, Any]]:
        """The newest rows first, arguments decoded."""
        return [{**dict(r), "args": json.loads(r["args"])} for r in self.all(
            "SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))]
