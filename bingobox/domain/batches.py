"""Batches and markdowns. A batch is a serial range of one GTIN with its expiry date (the last day it may be sold,
in the store's time zone); a product's markdowns are steps before that date (``2:30,1:50``: 30 % off from 2 days
before, 50 % on the last day and the one before it). An item of an expired batch is off sale. Pure."""

from __future__ import annotations

import bisect
import csv
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .sgtin import SERIAL_BITS, valid_gtin

LOT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
MAX_MARKDOWN_DAYS = 365


@dataclass(frozen=True, slots=True)
class Batch:
    gtin: str
    first: int  # serials first..last (inclusive)
    last: int
    lot: str
    expires: date


Markdowns = tuple[tuple[int, int], ...]  # (from this many days before expiry, percent off), most days first


def parse_markdowns(text: str) -> Markdowns:
    """``"2:30,1:50"`` → ((2, 30), (1, 50)). Steps: whole days 0..365 each once, 1..99 % off; a step nearer the
    date is not a smaller markdown (a price only falls as the date nears)."""
    text = text.strip()
    if not text:
        return ()
    steps = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d{1,3})\s*:\s*(\d{1,2})\s*%?\s*", part)
        if m is None:
            raise ValueError(f"{part.strip()!r} is not 'days:percent' (e.g. 2:30)")
        days, pct = int(m[1]), int(m[2])
        if days > MAX_MARKDOWN_DAYS or not 1 <= pct <= 99:
            raise ValueError(f"{part.strip()!r}: days 0..{MAX_MARKDOWN_DAYS}, percent 1..99")
        steps.append((days, pct))
    steps.sort(reverse=True)
    if len({d for d, _ in steps}) != len(steps):
        raise ValueError("a day is listed twice")
    if any(a[1] > b[1] for a, b in itertools.pairwise(steps)):
        raise ValueError("a markdown nearer the expiry date must not be smaller than one further from it")
    return tuple(steps)


def markdown_pct(steps: Markdowns, days_left: int) -> int:
    """The percent off with ``days_left`` days to the expiry date (0 on it)."""
    return max((pct for days, pct in steps if days_left <= days), default=0)


def marked_down(price_fen: int, pct: int) -> int:
    """The price with ``pct`` % off, in whole fen rounded down (the shopper's favour)."""
    return price_fen * (100 - pct) // 100


class TableError(ValueError):
    """An unusable CSV table; ``problems`` holds one 'file:line: column: reason' line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class BatchError(TableError):
    """An unusable batch list."""


def read_table(path: str | Path, what: str, error: type[TableError]) -> tuple[list[dict[str, str]], set[str]]:
    """The rows and the column names of the CSV file ``path`` (``what`` it holds, for the error)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return list(reader), set(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise error([f"{path}: cannot read the {what}: {e}"]) from None


class Batches:
    """Serial ranges per GTIN, for lookup by (GTIN, serial)."""

    def __init__(self, batches: list[Batch]) -> None:
        self.by_gtin: dict[str, list[Batch]] = {}
        for b in sorted(batches, key=lambda b: (b.gtin, b.first)):
            self.by_gtin.setdefault(b.gtin, []).append(b)
        self._firsts = {g: [b.first for b in bs] for g, bs in self.by_gtin.items()}

    def __iter__(self):  # type: ignore[no-untyped-def]
        for bs in self.by_gtin.values():
            yield from bs

    def find(self, gtin: str, serial: int) -> Batch | None:
        bs = self.by_gtin.get(gtin)
        if not bs:
            return None
        i = bisect.bisect_right(self._firsts[gtin], serial) - 1
        return bs[i] if i >= 0 and bs[i].first <= serial <= bs[i].last else None

    @classmethod
    def load(cls, path: str | Path, gtins: set[str]) -> Batches:
        """Read the CSV (gtin,serial_from,serial_to,lot,expires); every problem is reported as file:line: column.
        ``gtins``: the catalog's (a batch of a product it does not sell is a mistake)."""
        rows, columns = read_table(path, "batches", BatchError)
        missing = {"gtin", "serial_from", "serial_to", "lot", "expires"} - columns
        if missing:
            raise BatchError([f"{path}:1: missing column(s) {', '.join(sorted(missing))}"])
        problems: list[str] = []
        out: list[tuple[int, Batch]] = []
        for n, r in enumerate(rows, start=2):
            bad, b = _row(r, gtins)
            problems += [f"{path}:{n}: {col}: {why}" for col, why in bad]
            if b is not None:
                out.append((n, b))
        spans: dict[str, list[tuple[int, int, int]]] = {}
        for n, b in out:
            for first, last, m in spans.get(b.gtin, []):
                if b.first <= last and first <= b.last:
                    problems.append(f"{path}:{n}: serial_from: serials {b.first}..{b.last} overlap line {m}'s")
            spans.setdefault(b.gtin, []).append((b.first, b.last, n))
        if problems:
            raise BatchError(problems)
        return cls([b for _, b in out])


def _row(r: Mapping[str, str | None], gtins: set[str]) -> tuple[list[tuple[str, str]], Batch | None]:
    bad: list[tuple[str, str]] = []
    gtin = (r.get("gtin") or "").strip()
    if not valid_gtin(gtin):
        bad.append(("gtin", f"{gtin!r} is not a GTIN-14 with its check digit"))
    elif gtin not in gtins:
        bad.append(("gtin", f"{gtin} is not in the catalog"))
    serials = []
    for col in ("serial_from", "serial_to"):
        text = (r.get(col) or "").strip()
        if not text.isdigit() or int(text) >= 1 << SERIAL_BITS:
            bad.append((col, f"{text!r} is not a serial 0..{(1 << SERIAL_BITS) - 1}"))
        else:
            serials.append(int(text))
    if len(serials) == 2 and serials[0] > serials[1]:
        bad.append(("serial_to", f"{serials[1]} is below serial_from {serials[0]}"))
    lot = (r.get("lot") or "").strip()
    if not LOT.match(lot):
        bad.append(("lot", f"{lot!r}: 1 to 32 letters, digits, '.', '_' or '-'"))
    try:
        expires = date.fromisoformat((r.get("expires") or "").strip())
    except ValueError:
        bad.append(("expires", f"{r.get('expires')!r} is not a date (YYYY-MM-DD)"))
    if bad:
        return bad, None
    return [], Batch(gtin, serials[0], serials[1], lot, expires)
