"""The catalog (an EPC prefix or a GTIN → SKU, name, price in integer fen, markdowns), the batches of its GS1 tags
(SGTIN-96: GTIN + serial → lot and expiry date) and a visit's basket, priced at the moment each item was taken."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any

from . import sgtin
from .batches import Batch, Batches, Markdowns, TableError, markdown_pct, marked_down, parse_markdowns, read_table


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_fen: int
    gtin: str = ""
    markdowns: Markdowns = ()


@dataclass(frozen=True, slots=True)
class Price:
    """What one tag costs at one moment: its product, the unit price charged, the markdown and its batch."""

    product: Product
    unit_fen: int
    pct_off: int = 0
    batch: Batch | None = None
    expired: bool = False


# What a wallet gateway accepts on a receipt line (the mock gateway enforces the same; a charge outside these is
# refused with a 4xx and could never succeed, so the catalog is checked against them when the config is loaded).
MAX_SKU = 64
MAX_NAME = 100
MAX_UNIT_FEN = 10_000_000


class CatalogError(TableError):
    """An unusable catalog; ``problems`` holds one 'file:line: column: reason' line each."""


def _row_problems(r: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    prefix, gtin = (r.get("epc_prefix") or "").strip(), (r.get("gtin") or "").strip()
    if not prefix and not gtin:
        out.append(("epc_prefix", "a row needs an epc_prefix, a gtin or both"))
    if prefix and any(c not in "0123456789abcdefABCDEF" for c in prefix):
        out.append(("epc_prefix", f"{prefix!r} is not hexadecimal"))
    if gtin and not sgtin.valid_gtin(gtin):
        out.append(("gtin", f"{gtin!r} is not a GTIN-14 with its check digit"))
    try:
        parse_markdowns(r.get("markdowns") or "")
    except ValueError as e:
        out.append(("markdowns", str(e)))
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
    """Lookup of EPCs (hex): an SGTIN-96 by its GTIN, any other by its longest listed prefix; prices by batch."""

    def __init__(self, entries: dict[str, Product], gtins: dict[str, Product] | None = None,
                 batches: Batches | None = None, tz: tzinfo = UTC) -> None:
        self.entries = {k.upper(): v for k, v in entries.items()}
        self.gtins = dict(gtins or {})
        self.batches = batches or Batches([])
        self.tz = tz
        self._lengths = sorted({len(k) for k in self.entries}, reverse=True)

    @classmethod
    def load(cls, path: str | Path, batches: str | Path | None = None, tz: tzinfo = UTC) -> Catalog:
        """Read the CSV (sku,name,price_fen; epc_prefix and/or gtin; optional markdowns) and the batches' CSV;
        every problem is reported, each as file:line: column."""
        rows, columns = read_table(path, "catalog", CatalogError)
        missing = {"sku", "name", "price_fen"} - columns
        if not columns & {"epc_prefix", "gtin"}:
            missing.add("epc_prefix or gtin")
        if missing:
            raise CatalogError([f"{path}:1: missing column(s) {', '.join(sorted(missing))}"])
        entries: dict[str, Product] = {}
        gtins: dict[str, Product] = {}
        skus: dict[str, int] = {}
        problems = []
        for n, r in enumerate(rows, start=2):
            bad = _row_problems(r)
            problems += [f"{path}:{n}: {col}: {why}" for col, why in bad]
            if bad:
                continue
            prefix, gtin = (r.get("epc_prefix") or "").strip().upper(), (r.get("gtin") or "").strip()
            sku = r["sku"].strip()
            if sku in skus:
                problems.append(f"{path}:{n}: sku: {sku} is listed on line {skus[sku]} too")
                continue
            skus[sku] = n
            if prefix in entries:
                problems.append(f"{path}:{n}: epc_prefix: {prefix} is listed twice")
                continue
            if gtin in gtins:
                problems.append(f"{path}:{n}: gtin: {gtin} is listed twice")
                continue
            p = Product(sku, r["name"].strip(), int(r["price_fen"]), gtin, parse_markdowns(r.get("markdowns") or ""))
            if prefix:
                entries[prefix] = p
            if gtin:
                gtins[gtin] = p
        if problems:
            raise CatalogError(problems)
        if batches is None:
            return cls(entries, gtins, tz=tz)
        try:
            return cls(entries, gtins, Batches.load(batches, set(gtins)), tz)
        except TableError as e:  # (the batch list's problems, as the catalog's: one error for the config to show)
            raise CatalogError(e.problems) from None

    def products(self) -> list[Product]:
        """Every product, each once."""
        return list({p.sku: p for p in [*self.entries.values(), *self.gtins.values()]}.values())

    def by_sku(self, sku: str) -> Product | None:
        """The product with this SKU (an operator lists items by SKU)."""
        return next((p for p in self.products() if p.sku == sku), None)

    def lookup(self, epc: str) -> Product | None:
        e = epc.upper()
        if self.gtins and e.startswith("30"):
            s = sgtin.decode(e)
            if s is not None and s.gtin in self.gtins:
                return self.gtins[s.gtin]
        for n in self._lengths:
            p = self.entries.get(e[:n])
            if p is not None:
                return p
        return None


    def price(self, epc: str, t: float) -> Price | None:
        """What ``epc`` costs when taken at ``t`` (unix seconds): its batch's markdown on the store's date then;
        ``expired`` past its batch's date (off sale). None: not in the catalog."""
        p = self.lookup(epc)
        if p is None:
            return None
        batch = self.batch_of(epc, p)
        if batch is None:
            return Price(p, p.price_fen)
        days_left = (batch.expires - self.day(t)).days
        if days_left < 0:
            return Price(p, 0, 100, batch, expired=True)
        pct = markdown_pct(p.markdowns, days_left)
        return Price(p, marked_down(p.price_fen, pct), pct, batch)

    def batch_of(self, epc: str, p: Product | None = None) -> Batch | None:
        """The batch of an SGTIN-96 tag of a product with a GTIN, if the batch list has its serial."""
        p = p or self.lookup(epc)
        if p is None or not p.gtin:
            return None
        s = sgtin.decode(epc.upper())
        return self.batches.find(p.gtin, s.serial) if s is not None and s.gtin == p.gtin else None

    def day(self, t: float) -> date:
        """The store's date at ``t``."""
        return datetime.fromtimestamp(t, self.tz).date()


CARRIED_BY_COMPANION = "exit_reader:companion"  # how: a group's companion carried it out before the payer left


@dataclass
class Basket:
    """EPCs a visit is charged for, why each is in it, and when it was taken (its price is the one then)."""

    items: dict[str, str] = field(default_factory=dict)  # epc → how it was attributed
    taken: dict[str, float] = field(default_factory=dict)  # epc → when (unix s; none: priced when charged)

    def add(self, epc: str, how: str, t: float | None = None) -> None:
        if epc not in self.items:
            self.items[epc] = how
            if t is not None:
                self.taken[epc] = t

    def remove(self, epc: str) -> bool:
        self.taken.pop(epc, None)
        return self.items.pop(epc, None) is not None

    def lines(self, catalog: Catalog, now: float) -> tuple[list[dict[str, Any]], list[str]]:
        """Receipt lines and the EPCs the catalog does not know (not charged, reported); expired items left out."""
        lines, unknown, _ = self.priced(catalog, now)
        return lines, unknown

    def priced(self, catalog: Catalog, now: float) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
        """Receipt lines, one per product and unit price (a markdown says so in its name: the gateway's receipt
        line has no other place for it), the EPCs the catalog does not know, and the expired items (off sale: not
        charged, listed). Each item is priced at the moment it was taken (``now`` when that is not known)."""
        by_price: dict[tuple[str, int], dict[str, Any]] = {}
        unknown, expired = [], []
        for epc in sorted(self.items):
            pr = catalog.price(epc, self.taken.get(epc, now))
            if pr is None:
                unknown.append(epc)
                continue
            p = pr.product
            if pr.expired:
                assert pr.batch is not None
                expired.append({"epc": epc, "sku": p.sku, "name": p.name, "lot": pr.batch.lot,
                                "expires": pr.batch.expires.isoformat()})
                continue
            line = by_price.get((p.sku, pr.unit_fen))
            if line is None:
                suffix = f" -{pr.pct_off}%" if pr.pct_off else ""
                line = by_price[(p.sku, pr.unit_fen)] = {
                    "sku": p.sku, "name": p.name[:MAX_NAME - len(suffix)] + suffix, "qty": 0,
                    "unit_fen": pr.unit_fen, "amount_fen": 0}
            line["qty"] += 1
            line["amount_fen"] += pr.unit_fen
        return list(by_price.values()), unknown, expired
