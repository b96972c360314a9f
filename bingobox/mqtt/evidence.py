"""A review's evidence as the fleet sees it: the visit's record (its stages, what the shelves and the exit reader
saw, the face decision, the basket and the charge), without anything that names the shopper, and bounded — so that
an operator of several stores has it one click away on the fleet page."""

from __future__ import annotations

import json
from typing import Any

from ..journal import Journal

PERSONAL = frozenset({"account", "account_id", "accounts", "name", "nm", "jti", "code", "card", "real_name"})
MAX_EVENTS = 60
MAX_VALUE_CHARS = 400
MAX_BYTES = 12 * 1024  # (the fleet takes an event's data up to 16 KiB)


def digest(journal: Journal, visit_id: str) -> dict[str, Any]:
    """The visit's record, shopper-free and at most ``MAX_BYTES`` of JSON (the first and the last events kept
    when there are more)."""
    rec = journal.visit_record(visit_id)
    if rec is None:
        return {}
    events = rec["events"]
    if len(events) > MAX_EVENTS:
        gap = {"t": None, "kind": "…", "data": {"left_out": len(events) - MAX_EVENTS}}
        events = [*events[:MAX_EVENTS // 2], gap, *events[-MAX_EVENTS // 2:]]
    out = {"state": rec["state"], "flags": rec["flags"], "amount_fen": rec["amount_fen"],
           "entered_at": rec["entered_at"], "left_at": rec["left_at"], "group": rec.get("group_size"),
           "charges": [{k: c[k] for k in ("amount_fen", "state", "reason", "attempts")} for c in rec["charges"]],
           "events": [{"t": e["t"], "kind": e["kind"], "data": _clean(e["data"])} for e in events]}
    while len(json.dumps(out, default=str)) > MAX_BYTES and out["events"]:
        out["events"] = out["events"][:-1]
        out["cut"] = True
    return out


def _clean(v: Any) -> Any:
    """``v`` without the keys that name a shopper, each leaf at most ``MAX_VALUE_CHARS`` characters."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if k not in PERSONAL}
    if isinstance(v, list):
        return [_clean(x) for x in v[:50]]
    if isinstance(v, str) and len(v) > MAX_VALUE_CHARS:
        return v[:MAX_VALUE_CHARS] + "…"
    return v
