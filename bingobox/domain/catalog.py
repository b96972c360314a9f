"""The catalog (EPC or EPC prefix → SKU, name, price in integer fen) and a visit's basket."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_fen: int


# What a wallet gateway accepts on a receipt line (the mock gateway enforces the same; a charge outside these is
# refused with a 4xx and could never succeed, so the catalog is checked against them when the config is loaded).
MAX_SKU = 64
MAX_NAME = 100
MAX_UNIT_FEN = 10_000_000


class CatalogError(ValueError):
    """An unusable catalog; ``problems`` holds one 'file:line: column: reason' line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _row_problems(r: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    prefix = (r.get("epc_prefix") or "").strip()
    if not prefix or any(c not in "0123456789abcdefABCDEF" for c in prefix):
        out.append(("epc_prefix", f"{prefix!r} is not hexadecimal"))
    sku, name = (r.get("sku") or "").strip(), (r.get("name") or "").strip()
    if not sku or len(sku) > MAX_SKU:
        out.append(("sku", f"{len(sku)} characters; the gateway accepts 1 to {MAX_SKU}"))
    if not name or len(name) > MAX_NAME:
        out.append(("name", f"{len(name)} characters; the gateway accepts 1 to {MAX_NAME}"))
    try:
        price = int((r.get("price_fen") or "").strip())
        if not 0 <= price <= MAX_UNIT_FEN:
            out.append(("price_fen", f"{price} fen is outside 0..{MAX_UNIT_FEN}"))
    except ValueError:
        out.append(("price_fen", f"{r.get('price_fen')!r} is not a whole number of fen"))
    return out


class Catalog:
    """Longest-prefix lookup of EPCs (hex, upper case)."""

    def __init__(self, entries: dict[str, Product]) -> None:
        self.entries = {k.upper(): v for k, v in entries.items()}
        self._lengths = sorted({len(k) for k in self.entries}, reverse=True)

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        """Read the CSV (epc_prefix,sku,name,price_fen); every problem is reported, each as file:line: column."""
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                columns = set(reader.fieldnames or [])
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise CatalogError([f"{path}: cannot read the catalog: {e}"]) from None
        missing = {"epc_prefix", "sku", "name", "price_fen"} - columns
        if missing:
            raise CatalogError([f"{path}:1: missing column(s) {', '.join(sorted(missing))}"])
        entries: dict[str, Product] = {}
        problems = []
        for n, r in enumerate(rows, start=2):
            bad = _row_problems(r)
            problems += [f"{path}:{n}: {col}: {why}" for col, why in bad]
            if bad:
                continue
            prefix = r["epc_prefix"].strip().upper()
            if prefix in entries:
                problems.append(f"{path}:{n}: epc_prefix: {prefix} is listed twice")
                continue
            entries[prefix] = Product(r["sku"].strip(), r["name"].strip(), int(r["price_fen"]))
        if problems:
            raise CatalogError(problems)
        return cls(entries)

    def by_sku(self, sku: str) -> Product | None:
        """The product with this SKU (an operator lists items by SKU)."""
        return next((p for p in self.entries.values() if p.sku == sku), None)

    def lookup(self, epc: str) -> Product | None:
        e = epc.upper()
        for n in self._lengths:
            p = self.entries.get(e[:n])
            if p is not None:
                return p
        return None


CARRIED_BY_COMPANION = "exit_reader:companion"  # how: a group's companion carried it out before the payer left


@dataclass
class Basket:
    """EPCs a visit is charged for, and why each is in it."""

    items: dict[str, str] = field(default_factory=dict)  # epc → how it was attributed

    def add(self, epc: str, how: str) -> None:
        self.items.setdefault(epc, how)

    def remove(self, epc: str) -> bool:
        return self.items.pop(epc, None) is not None

    def lines(self, catalog: Catalog) -> tuple[list[dict[str, Any]], list[str]]:
        """Receipt lines grouped by SKU, and the EPCs the catalog does not know (not charged, reported)."""
        by_sku: dict[str, dict[str, Any]] = {}
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
