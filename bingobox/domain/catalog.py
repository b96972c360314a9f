"""The catalog (EPC or EPC prefix → SKU, name, price in integer fen) and a visit's basket."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_fen: int


class CatalogError(ValueError):
    pass


class Catalog:
    """Longest-prefix lookup of EPCs (hex, upper case)."""

    def __init__(self, entries: dict[str, Product]) -> None:
        self.entries = {k.upper(): v for k, v in entries.items()}
        self._lengths = sorted({len(k) for k in self.entries}, reverse=True)

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        entries: dict[str, Product] = {}
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            raise CatalogError(f"{path}: cannot read the catalog: {e}") from None
        for n, r in enumerate(rows, start=2):
            try:
                prefix = r["epc_prefix"].strip().upper()
                int(prefix, 16)
                price = int(r["price_fen"])
                if price < 0 or not r["sku"].strip() or not r["name"].strip():
                    raise ValueError("empty sku/name or negative price")
            except (KeyError, ValueError, TypeError, AttributeError) as e:
                raise CatalogError(f"{path}:{n}: bad row {r}: {e}") from None
            if prefix in entries:
                raise CatalogError(f"{path}:{n}: EPC prefix {prefix} listed twice")
            entries[prefix] = Product(r["sku"].strip(), r["name"].strip(), price)
        return cls(entries)

    def lookup(self, epc: str) -> Product | None:
        e = epc.upper()
        for n in self._lengths:
            p = self.entries.get(e[:n])
            if p is not None:
                return p
        return None


@dataclass
class Basket:
    """EPCs a visit is charged for, and why each is in it."""

    items: dict[str, str] = field(default_factory=dict)  # epc → how it was attributed

    def add(self, epc: str, how: str) -> None:
        self.items.setdefault(epc, how)

    def remove(self, epc: str) -> bool:
        return self.items.pop(epc, None) is not None

    def lines(self, catalog: Catalog) -> tuple[list[dict], list[str]]:
        """Receipt lines grouped by SKU, and the EPCs the catalog does not know (not charged, reported)."""
        by_sku: dict[str, dict] = {}
        unknown = []
        for epc in sorted(self.items):
            p = catalog.lookup(epc)
            if p is None:
                unknown.append(epc)
                continue
            line = by_sku.setdefault(p.sku, {"sku": p.sku, "name": p.name, "qty": 0, "unit_fen": p.price_fen,
                                             "amount_fen": 0})
            line["qty"] += 1
            line["amount_fen"] += p.price_fen
        return list(by_sku.values()), unknown
