"""Operator actions (``actions.ACTIONS``: their arguments), carried out in the control loop: an ``OperatorCommand``
the screen or the fleet's signed command put in the inbox. Its ticket says whether it may still start (the asker may
have given up waiting: then it never runs behind their back); its result goes back once, and into the record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import actions as a
from .events import OperatorCommand

if TYPE_CHECKING:
    from .store import StoreCore

log = logging.getLogger(__name__)


class ActionError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class Operations:
    def __init__(self, core: StoreCore) -> None:
        self.core = core
        core.on(OperatorCommand, self.command)

    def command(self, cmd: OperatorCommand) -> None:
        if not cmd.ticket.start():
            return  # the screen stopped waiting before the loop got to it: it told the operator nothing was done

        def finish(result: dict[str, Any]) -> None:  # (from the loop, or a door driver's thread for an unlock)
            result = {**result, "state": self.core.store.state}
            try:
                self.core.journal.evidence(None, "operator", {"operator": cmd.operator, "action": cmd.action,
                                                              **result})
            finally:
                cmd.reply.put(result)

        try:
            detail = self.apply(cmd.operator, cmd.action, cmd.args, finish)
        except ActionError as e:
            finish({"ok": False, "error": e.code, "detail": str(e)})
            return
        if detail is not None:
            finish({"ok": True, "detail": detail})

    def apply(self, operator: str, action: str, args: a.Args, finish: Callable[[dict[str, Any]], None]) -> str | None:
        """Carry out ``action`` for ``operator``; what was done, or None when the outcome comes later through
        ``finish`` (an unlock: when the door's board answered)."""
        core = self.core
        st = core.store
        if isinstance(args, a.Unlock) and action == "unlock":
            self._unlock(args, finish)
            return None
        if action in ("lock_down", "release", "restock"):
            if not st.may(action):
                raise ActionError("not_now", f"cannot {action.replace('_', ' ')} while the store is {st.state}")
            inside = core.inside()
            if action == "restock" and inside:  # shelf changes during restocking are nobody's: wait for them
                raise ActionError("shoppers_inside", f"{inside} shopper(s) inside: restock when the store is empty")
            before = st.state
            getattr(st, action)()
            if before == "maintenance" and action in ("release", "lock_down"):
                core.attribution.restocked()  # the shelves as they are now are the new baseline
            log.warning("operator %s: %s (%s → %s)", operator, action, before, st.state)
            return f"store {before} → {st.state}"
        if isinstance(args, a.ClearAlarm) and action == "clear_alarm":
            if not core.journal.clear_alarm(args.alarm_id, operator):
                raise ActionError("no_such_alarm", f"alarm {args.alarm_id} is not open")
            return f"alarm {args.alarm_id} cleared"
        if isinstance(args, a.RetryCharge) and action == "retry_charge":
            try:
                intent = core.outbox.retry_failed(args.visit_id)
            except ValueError as e:
                raise ActionError("no_failed_charge", str(e)) from None
            return f"visit {args.visit_id}: charged again (intent {intent})"
        raise ActionError("unknown_action", action)

    def _unlock(self, args: a.Unlock, finish: Callable[[dict[str, Any]], None]) -> None:
        core = self.core
        if args.door not in core.doors:
            raise ActionError("no_such_door", f"no door {args.door!r} (doors: {', '.join(core.doors)})")

        def done(outcome: str, detail: str) -> None:
            ok = {"unlocked": True, "refused": False}.get(outcome)
            finish({"ok": ok, "detail": f"{detail} for {args.seconds:g} s" if ok else detail,
                    **({} if ok else {"error": "door_refused" if ok is False else "outcome_unknown"})})

        core.doors[args.door].grant(args.seconds, done=done)
        return None
