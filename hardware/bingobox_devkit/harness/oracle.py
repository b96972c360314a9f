"""The demo's ledger oracle: what each scripted shopper really carried out, against the gateway's ledger and the
store's journal — lost, doubled, wrong person, wrong amount, items not charged — and the latencies the store
recorded (each entry's and exit's stage times, ``stages`` evidence)."""

from __future__ import annotations

import collections
import itertools
import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bingobox.core.store import ENTRY_STAGES, EXIT_STAGES
from bingobox.metrics import percentiles

from ..goods import Goods


class Shopper(Protocol):
    n: int
    account: str
    took: list[tuple[str, str]]
    used_qr_at_exit: bool
    error: str | None


def _rows(db: Path, sql: str, args: tuple = ()) -> list[dict]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute(sql, args)]


def settle(db: Path, timeout: float = 60) -> None:
    """Wait until no charge is pending (the outbox has drained)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _rows(db, "SELECT 1 FROM charge_intents WHERE state IN ('pending','paying') LIMIT 1"):
            return
        time.sleep(0.5)


def stage_table(db: Path) -> dict:
    """Per path (entry/exit): the total latency and each stage's share, ms (p50/p90/p99/max)."""
    out: dict = {}
    for r in _rows(db, "SELECT data FROM visit_events WHERE kind='stages'"):
        d = json.loads(r["data"])
        path = out.setdefault(d["path"], {"total": [], "stages": collections.defaultdict(list)})
        path["total"].append(d["latency_ms"])
        order = [k for k in (ENTRY_STAGES if d["path"] == "entry" else EXIT_STAGES) if d.get(k) is not None]
        for a, b in itertools.pairwise(order):
            path["stages"][f"{a}→{b}"].append((d[b] - d[a]) * 1000)
    return {p: {"total_ms": percentiles(v["total"]),
                "stages_ms": {k: percentiles(x) for k, x in v["stages"].items()}} for p, v in out.items()}


def summarise(db: Path, ledger: list[dict], shoppers: Sequence[Shopper], status: dict, goods: Goods) -> dict:
    visits = _rows(db, "SELECT * FROM visits")
    intents = _rows(db, "SELECT * FROM charge_intents")
    # the day's prices: the demo's lots are dated so that a run crossing midnight changes no price (goods.LOTS)
    today = datetime.now(UTC).date()
    ok = collections.Counter(ch["visit_id"] for ch in ledger if ch["status"] == "succeeded")
    paid: collections.Counter = collections.Counter()
    for ch in ledger:
        if ch["status"] == "succeeded":
            paid[ch["account_id"]] += ch["amount_fen"] - ch["refunded_fen"]
    declined = {i["account_id"] for i in intents if i["state"] == "declined"} - {
        i["account_id"] for i in intents if i["state"] == "succeeded"}
    baskets = {v["id"]: json.loads(v["basket"]) for v in visits}
    lost, wrong_amount, wrong = [], [], []
    for s in shoppers:  # the oracle is what each shopper really carried out
        owed = sum(goods.price(e, today) for _, e in s.took)
        if owed and paid[s.account] == 0 and s.account not in declined:
            lost.append(s.n)
        elif paid[s.account] and paid[s.account] != owed:
            wrong_amount.append(s.n)
    doubled = [vid for vid, n in ok.items() if n > 1]
    by_account = {s.account: s for s in shoppers}
    for v in visits:
        who = by_account.get(v["account_id"])
        took = {e for _, e in who.took} if who else set()
        if ok[v["id"]] and not set(baskets[v["id"]]) <= took:
            wrong.append(v["id"])
    left_accounts = {v["account_id"] for v in visits if v["state"] == "left"}
    missed_items = sum(len({e for _, e in s.took} - {e for v in visits if v["account_id"] == s.account
                                                        for e in baskets[v["id"]]}) for s in shoppers)
    stages = stage_table(db)
    spans = sorted([(v["entered_at"], 1) for v in visits if v["entered_at"]] +
                   [(v["left_at"], -1) for v in visits if v["entered_at"] and v["left_at"]])
    inside = max_inside = 0
    for _, step in spans:  # how many were inside at once, at most
        inside += step
        max_inside = max(max_inside, inside)
    summary = {
        "shoppers": len(shoppers), "visits": sum(s.account in left_accounts for s in shoppers),
        "visit_rows": len(visits), "charged": len(ok), "charges_at_gateway": sum(ok.values()), "lost": len(lost),
        "doubled": len(doubled), "wrong_person": len(wrong), "wrong_amount": len(wrong_amount),
        "declined": len(declined), "fallback_qr": sum(s.used_qr_at_exit for s in shoppers),
        "alarms": status.get("counts", {}).get("alarms"), "items_not_charged": missed_items,
        "recovery_visits": sum("recovery" in json.loads(v["flags"]) for v in visits), "max_inside": max_inside,
        "shopper_errors": [s.error for s in shoppers if s.error],
        "latency_ms": {"entry": stages.get("entry", {}).get("total_ms", {"count": 0}),
                       "exit": stages.get("exit", {}).get("total_ms", {"count": 0}),
                       "face_match_since_last_start": status.get("latency", {}).get("face_match_ms")},
        "stages_ms": {p: v["stages_ms"] for p, v in stages.items()},
        **_reviews(db, visits),
    }
    if lost or doubled or wrong or wrong_amount:
        summary["problems"] = {"lost_shoppers": lost, "doubled": doubled, "wrong_person": wrong,
                               "wrong_amount_shoppers": wrong_amount}
    return summary


INSIDE_BUCKETS = ((1, 5), (6, 10), (11, 20), (21, 40))  # (``face_exits``: how many were inside)


class FaceShopper(Shopper, Protocol):
    @property
    def face(self) -> object | None: ...  # (their photographs, if they consented to face billing)

    @property
    def inside_at_exit(self) -> int: ...

    @property
    def walker_face(self) -> object | None: ...  # (no consent: the photo the exit camera saw of them)

    @property
    def let_out_by_face(self) -> bool: ...


def face_exits(db: Path, shoppers: Sequence[FaceShopper]) -> dict:
    """Face billing as the shoppers met it: of those who consented, how many the store enrolled, and of those, how
    many it recognised at the exit (the door opened without a code), overall and by how many were inside as they
    stepped into the exit area (``inside_at_exit``, in ``INSIDE_BUCKETS``). The demo never has a face inside
    twice (unless asked to), so each enrolled shopper's face is the only one of its person inside."""
    by_account = {r["account_id"]: r["id"] for r in _rows(db, "SELECT id, account_id FROM visits")}
    enrolled = {r["visit_id"] for r in _rows(db, "SELECT visit_id, data FROM visit_events WHERE kind='face_enrolment'")
                if json.loads(r["data"]).get("ok")}
    consented = [s for s in shoppers if s.face is not None and s.account in by_account]
    known = [s for s in consented if by_account[s.account] in enrolled]
    labels = [*(f"{lo}-{hi}" for lo, hi in INSIDE_BUCKETS), f"{INSIDE_BUCKETS[-1][1] + 1}+"]
    buckets = {k: [0, 0] for k in labels}  # label → [enrolled, recognised]
    for s in known:
        label = next((f"{lo}-{hi}" for lo, hi in INSIDE_BUCKETS if s.inside_at_exit <= hi), labels[-1])
        buckets[label][0] += 1
        buckets[label][1] += not s.used_qr_at_exit

    def share(n: int, of: int) -> float | None:
        return round(n / of, 4) if of else None

    by_face = sum(not s.used_qr_at_exit for s in known)
    return {"consented": len(consented), "enrolled": len(known), "enrolled_share": share(len(known), len(consented)),
            "by_face": by_face, "by_face_share": share(by_face, len(known)),
            "by_inside_at_exit": {k: {"enrolled": n, "by_face": f, "by_face_share": share(f, n)}
                                  for k, (n, f) in buckets.items() if n},
            "most_inside_at_exit": max((s.inside_at_exit for s in known), default=0),
            # shoppers without consent whose face the exit camera saw: the door must not open for it
            "no_consent_seen_at_exit": sum(s.walker_face is not None for s in shoppers),
            "no_consent_let_out_by_face": sum(s.let_out_by_face for s in shoppers)}


def reviews_by_fault(db: Path, spans: list[tuple[str, float, float]]) -> dict[str, dict]:
    """Per fault the demo injected: the visits that ended and were in the store while it was on (``spans``: fault,
    from, until), how many of them entered the review queue, and that rate. A visit under two faults counts for
    both; ``none``: visits no fault touched."""
    visits = [v for v in _rows(db, "SELECT id, created_at, left_at, updated_at, state FROM visits")
              if v["state"] in ("left", "abandoned", "timed_out")]
    reviewed = {r["visit_id"] for r in _rows(db, "SELECT visit_id FROM reviews")}
    out: dict[str, dict] = {}
    for v in visits:
        end = v["left_at"] or v["updated_at"]
        hit = sorted({f for f, a, b in spans if v["created_at"] <= b and end >= a}) or ["none"]
        for f in hit:
            row = out.setdefault(f, {"visits": 0, "reviews": 0})
            row["visits"] += 1
            row["reviews"] += v["id"] in reviewed
    for row in out.values():
        row["review_rate"] = round(row["reviews"] / row["visits"], 4)
    return dict(sorted(out.items()))


def _reviews(db: Path, visits: list[dict]) -> dict:
    """The review queue the run left (``review_rate``: visits that entered it / visits that ended; by cause)."""
    causes = [json.loads(r["causes"]) for r in _rows(db, "SELECT causes FROM reviews")]
    ended = sum(v["state"] in ("left", "abandoned", "timed_out") for v in visits)
    by_cause = collections.Counter(c for cs in causes for c in cs)
    return {"review_rate": round(len(causes) / ended, 4) if ended else 0.0,
            "reviews": {"visits": ended, "reviews": len(causes), "by_cause": dict(sorted(by_cause.items()))}}
