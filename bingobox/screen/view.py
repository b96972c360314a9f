"""What the status screen shows: the controller's status plus who is inside (pseudonymous), stock per shelf and
RFID health. Built in the control loop's thread (a consistent snapshot) and published as ``Controller.view``."""

from __future__ import annotations

import time
from typing import Any

# A shelf tag read in fewer than half of the recent rounds is loose, shielded or misplaced: it may be declared gone
# (and charged) while still on the shelf. Healthy tags on the simulator read in 100 % of rounds.
WEAK_READ_RATE = 0.5


def _short(account: str) -> str:
    """A pseudonymous account id shortened for the screen."""
    return account if len(account) <= 10 else f"{account[:4]}…{account[-4:]}"


def screen_view(ctl: Any, charges: dict | None = None) -> dict:
    """What the status screen shows, built in the loop thread (a consistent snapshot); ``charges``: the outbox
    status if already read."""
    now = time.time()
    inside = [{"visit": v.id, "account": _short(v.account), "state": v.state, "face": v.enrolled,
               "since_s": round(now - (v.entered_at or v.created_at)), "items": len(v.basket.items),
               "flags": list(v.flags)} for v in ctl.visits.values()]
    stock, health, shelves_of = {}, {}, {}
    for name, r in ctl.readers.items():
        if name == ctl.lay.exit_reader:
            continue
        skus: dict[str, int] = {}
        unknown = []
        for epc in r.present():
            p = ctl.catalog.lookup(epc)
            skus[p.name if p else "unknown tag"] = skus.get(p.name if p else "unknown tag", 0) + 1
            if p is None:
                unknown.append(epc)
            shelves_of.setdefault(epc, []).append(name)
        stock[name] = dict(sorted(skus.items()))
        rates = r.read_rates()
        health[name] = {"weak": sorted(e for e, x in rates.items() if x < WEAK_READ_RATE), "unknown": unknown,
                        "lowest_read_rate": min(rates.values()) if rates else None}
    cross = {e: names for e, names in shelves_of.items() if len(names) > 1}
    return {**ctl.status(charges), "visits": inside, "stock": stock, "rfid_health": health, "cross_read": cross}
