"""The published snapshot: what the status screen, the status file and /metrics show. Built on the control loop's
thread from the store core's own snapshot plus the devices' status, stock per shelf, RFID health and the outbox;
published as a fresh dict (``StoreApp.view``) that is replaced, never mutated. Its schema: ``bingobox.view.View``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

from .domain.catalog import Catalog
from .view import View

# A shelf tag read in fewer than half of the recent rounds is loose, shielded or misplaced: it may be declared gone
# (and charged) while still on the shelf. Healthy tags on the simulator read in 100 % of rounds.
WEAK_READ_RATE = 0.5


class ShelfReader(Protocol):
    def present(self) -> Mapping: ...

    def read_rates(self) -> dict[str, float]: ...


def build_view(core: dict, charges: dict, devices: dict[str, dict], shelves: dict[str, ShelfReader],
               catalog: Catalog, extra: dict | None = None) -> View:
    """``core``: ``StoreCore.snapshot()``; ``charges``: the outbox's status; ``devices``: each device's status;
    ``shelves``: the shelf readers (stock and read rates)."""
    stock: dict[str, Any] = {}
    health: dict[str, Any] = {}
    shelves_of: dict[str, list[str]] = {}
    for name, r in shelves.items():
        skus: dict[str, int] = {}
        unknown = []
        for epc in r.present():
            p = catalog.lookup(epc)
            skus[p.name if p else "unknown tag"] = skus.get(p.name if p else "unknown tag", 0) + 1
            if p is None:
                unknown.append(epc)
            shelves_of.setdefault(epc, []).append(name)
        stock[name] = dict(sorted(skus.items()))
        rates = r.read_rates()
        health[name] = {"weak": sorted(e for e, x in rates.items() if x < WEAK_READ_RATE), "unknown": unknown,
                        "lowest_read_rate": min(rates.values()) if rates else None}
    cross = {e: names for e, names in shelves_of.items() if len(names) > 1}
    return cast(View, {**core, "charges": charges, "devices": devices, "stock": stock, "rfid_health": health,
                       "cross_read": cross, **(extra or {})})
