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
        if isinstance(args, a.DecideReview) and action == "decide_review":
            return self._decide_review(operator, args)
        if isinstance(args, a.ClearZone) and action == "clear_zone":
            cold = core.cold_chain
            if args.zone not in cold.states:
                raise ActionError("no_such_zone", f"no chilled zone {args.zone!r}")
            zone = cold.states[args.zone]
            if zone.last_c is not None and zone.last_c > cold.rules[args.zone].max_c:
                raise ActionError("still_warm", f"zone {args.zone} reads {zone.last_c} °C: mend the fridge first")
            cold.clear(args.zone)
            log.warning("operator %s: zone %s cleared (goods replaced): on sale again", operator, args.zone)
            return f"zone {args.zone}: on sale again, its time-temperature budget reset"
        raise ActionError("unknown_action", action)

    def _decide_review(self, operator: str, args: a.DecideReview) -> str:
        """A supplementary charge (its own intent and key, bound to the visit's code) or closed without a charge;
        a refund goes through the gateway outside the loop (``wallet.money``)."""
        core = self.core
        r = core.journal.review_of(args.visit_id)
        if r is None or r["state"] != "open":
            raise ActionError("no_open_review", f"visit {args.visit_id} has no open review")
        if args.decision == "refund":
            raise ActionError("not_here", "a refund is decided through the wallet gateway (the screen does it)")
        charge = None
        amount = None
        if args.decision == "charge":
            st = core.outbox.visit_state(args.visit_id)
            if st is not None and st["state"] not in ("succeeded", "canceled"):
                raise ActionError("charge_open", f"visit {args.visit_id}'s charge is {st['state']}: settle it first")
            lines: list[dict[str, Any]] = []
            for it in args.items:
                p = core.catalog.by_sku(it.sku)
                if p is None:
                    raise ActionError("no_such_product", f"no product {it.sku!r} in the catalog")
                lines.append({"sku": p.sku, "name": p.name, "qty": it.qty, "unit_fen": p.price_fen,
                              "amount_fen": p.price_fen * it.qty})
            amount = sum(li["amount_fen"] for li in lines)

            def charge(c: Any) -> int:  # (bound to the visit's code: the outbox reads it from the evidence)
                return core.outbox.add_intent_in(c, args.visit_id, r["account_id"], amount, lines, supplement=True)
        if not core.journal.decide_review(args.visit_id, args.decision, args.reason, operator, amount, charge):
            raise ActionError("no_open_review", f"visit {args.visit_id} has no open review")
        if charge is not None:
            core.outbox.wake()
            return f"visit {args.visit_id}: charged {amount} fen more ({args.reason})"
        return f"visit {args.visit_id}: closed without a charge ({args.reason})"

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
