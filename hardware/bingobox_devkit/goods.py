"""The goods of the devkit's stores (the demo and the simulation): the catalog's products and their tags — SGTIN-96
by batch for a product with a GTIN (a fresh lot, a lot in its markdown days, an expired lot), a plain EPC prefix and
serial otherwise — the batch list the store is given, and what each tag costs on a day. The price is worked out
here from the catalog's columns, not by the store's code: the oracles check the store against it."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from bingobox.domain import sgtin

PREFIX_DIGITS = 7  # the demo catalog's GS1 company prefix (690 1234: a Chinese one) has 7 digits
# lot letter, first serial, its expiry date in days from the run's day, its share of a product's first stock.
# The dates are chosen so that no price changes if a run crosses midnight (the markdown steps of the catalog's
# products give the same percent on the day before the expiry date and on it).
LOTS = (("A", 1, 30, 0.66), ("M", 1 << 30, 1, 0.22), ("X", 2 << 30, -2, 0.12))


@dataclass
class Product:
    sku: str
    price_fen: int
    prefix: str  # the catalog's EPC prefix ("" for a GTIN-only product)
    gtin: str
    markdowns: list[tuple[int, int]] = field(default_factory=list)  # (days before, percent off)

    @property
    def tag_prefix(self) -> str:
        """What every tag of this product starts with (SGTIN-96: header to item reference; serials < 2**36)."""
        return sgtin.encode(self.gtin, PREFIX_DIGITS, 0)[:15] if self.gtin else self.prefix


class Goods:
    def __init__(self, catalog: Path, today: date, batched: bool = True, exclude: set[str] | None = None) -> None:
        """``batched``: products with a GTIN get SGTIN-96 tags of dated lots (else their plain prefix, if they have
        one); ``exclude``: SKUs not on this store's shelves."""
        self.today = today
        with open(catalog, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["sku"] not in (exclude or set())]
        self.products = [Product(r["sku"], int(r["price_fen"]), (r.get("epc_prefix") or "").upper(),
                                 (r.get("gtin") or "") if batched or not r.get("epc_prefix") else "",
                                 _steps(r.get("markdowns") or "")) for r in rows]
        self._next: dict[tuple[int, str], int] = {}  # (product, lot) → its next serial
        self.lot_of: dict[str, tuple[str, date]] = {}  # epc → (lot, expires) of every batched tag made

    def batch_rows(self) -> list[dict[str, str]]:
        """The batch list (the store's ``batches`` CSV) of every product with a GTIN."""
        return [{"gtin": p.gtin, "serial_from": str(first), "serial_to": str(first | ((1 << 30) - 1)),
                 "lot": f"{p.sku}-{letter}", "expires": (self.today + timedelta(days=days)).isoformat()}
                for p in self.products if p.gtin for letter, first, days, _ in LOTS]

    def write_batches(self, path: Path) -> Path:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, ["gtin", "serial_from", "serial_to", "lot", "expires"])
            w.writeheader()
            w.writerows(self.batch_rows())
        return path

    def new_tags(self, i: int, n: int, fresh: bool = False) -> list[str]:
        """``n`` new tags of product ``i``: of each lot by its share (``fresh``: a restock, all of the fresh lot)."""
        p = self.products[i]
        if not p.gtin:
            first = self._next.get((i, ""), 1)
            self._next[(i, "")] = first + n
            return [f"{p.prefix}{k:04X}" for k in range(first, first + n)]
        counts = [n, 0, 0] if fresh else [n - sum(round(n * s) for *_, s in LOTS[1:]),
                                          *[round(n * s) for *_, s in LOTS[1:]]]
        out = []
        for (letter, first, days, _), k in zip(LOTS, counts, strict=True):
            serial = self._next.get((i, letter), first)
            self._next[(i, letter)] = serial + k
            for s in range(serial, serial + k):
                epc = sgtin.encode(p.gtin, PREFIX_DIGITS, s)
                self.lot_of[epc] = (f"{p.sku}-{letter}", self.today + timedelta(days=days))
                out.append(epc)
        return out

    def product(self, epc: str) -> Product:
        return next(p for p in self.products if epc.startswith(p.tag_prefix))

    def price(self, epc: str, day: date) -> int:
        """What ``epc`` costs when taken on ``day``: 0 past its lot's date (off sale, not charged), its markdown
        (whole fen, rounded down) in its lot's last days, else the catalog's price."""
        p = self.product(epc)
        lot = self.lot_of.get(epc)
        if lot is None:
            return p.price_fen
        left = (lot[1] - day).days
        if left < 0:
            return 0
        pct = max((pct for days, pct in p.markdowns if left <= days), default=0)
        return p.price_fen * (100 - pct) // 100


def _steps(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"(\d+)\s*:\s*(\d+)", text)]
