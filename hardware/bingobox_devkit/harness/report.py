"""The demo's summary as a person reads it at a glance: did the money come out right, how people got out, how fast.
The whole summary stays JSON (``--json``, and ``summary.json`` in the run's folder)."""

from __future__ import annotations

from typing import Any

MONEY_CHECKS = ("lost", "doubled", "wrong_person", "wrong_amount")


def money_ok(summary: dict[str, Any]) -> bool:
    """Nothing lost, doubled, charged to the wrong person or in the wrong amount, and nobody let out as someone else
    (a shopper without consent whose face the exit took for a look-alike's: that visit closes as theirs)."""
    return not any(summary.get(k) for k in MONEY_CHECKS) and \
        not (summary.get("faces") or {}).get("no_consent_let_out_by_face")


def _ms(v: Any) -> str:
    return "—" if v is None else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def _latency_rows(summary: dict[str, Any]) -> list[str]:
    rows = [f"  {'latency ms':<14}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'n':>6}"]
    for what in ("entry", "exit"):
        p = summary.get("latency_ms", {}).get(what) or {"count": 0}
        rows.append(f"  {what:<14}" + "".join(f"{_ms(p.get(k)):>8}" for k in ("p50", "p90", "p99", "max"))
                    + f"{p.get('count', 0):>6}")
    b = summary.get("basket_ms") or {"count": 0}
    if b.get("count"):
        rows.append(f"  {'take → app':<14}" + "".join(f"{_ms(b.get(k)):>8}" for k in ("p50", "p90", "p99", "max"))
                    + f"{b['count']:>6}   (p95 {_ms(b.get('p95'))}; the app asks every {b['app_poll_s']:.0f} s)")
    stages = summary.get("stages_ms", {}).get("exit", {})
    slow = sorted(((v.get("p99"), k) for k, v in stages.items() if v.get("p99") is not None), reverse=True)[:3]
    if slow:
        rows.append("  slowest exit stages (p99): " + ", ".join(f"{k} {_ms(p)}" for p, k in slow))
    return rows


def _faces_row(f: dict) -> str:
    """Face billing as the shoppers met it (``oracle.face_exits``)."""
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    return (f"  {'faces':<14}consented {f['consented']}, enrolled {f['enrolled']} ({pct(f['enrolled_share'])}), "
            f"recognised at the exit {f['by_face']} ({pct(f['by_face_share'])}); with inside: "
            + ", ".join(f"{k} {b['by_face']}/{b['enrolled']}" for k, b in f["by_inside_at_exit"].items())
            + (f"; no consent, face seen at the exit {f['no_consent_seen_at_exit']}, let out by it "
               f"{f['no_consent_let_out_by_face']}" if f.get("no_consent_seen_at_exit") else ""))


def human(summary: dict[str, Any], title: str) -> str:
    """A dozen lines: the verdict first, then money, the ways out, latency; where the JSON is."""
    s = summary
    rv = s.get("reviews") or {}
    ok = money_ok(s)
    verdict = "OK: every shopper charged once, the right amount, to the right person" if ok else \
        "FAILED: " + ", ".join(f"{k.replace('_', ' ')} {s.get(k)}" for k in MONEY_CHECKS if s.get(k))
    lines = [
        f"{title} — {s.get('seconds', 0):.0f} s",
        f"  {verdict}",
        "",
        f"  {'shoppers':<14}{s.get('shoppers', 0)} in, {s.get('visits', 0)} left    "
        f"charged {s.get('charged', 0)} (at the gateway {s.get('charges_at_gateway', 0)})    "
        f"declined {s.get('declined', 0)}",
        f"  {'checked':<14}lost {s.get('lost', 0)}   doubled {s.get('doubled', 0)}   wrong person "
        f"{s.get('wrong_person', 0)}   wrong amount {s.get('wrong_amount', 0)}   items not charged "
        f"{s.get('items_not_charged', 0)}",
        f"  {'ways out':<14}by QR code {s.get('fallback_qr', 0)} (the rest by face)   recovery visits "
        f"{s.get('recovery_visits', 0)}   entry retries {s.get('entry_retries', 0)}   inside at once "
        f"{s.get('max_inside', 0)}   alarms {s.get('alarms') or 0}",
        *([_faces_row(s["faces"])] if (s.get("faces") or {}).get("consented") else []),
        f"  {'for review':<14}{rv.get('reviews', 0)} of {rv.get('visits', 0)} visits (review rate "
        f"{100 * (s.get('review_rate') or 0):.1f} %)"
        + "".join(f"   {k} {n}" for k, n in (rv.get("by_cause") or {}).items()),
        *([f"  {'per fault':<14}" + "   ".join(
            f"{f} {r['reviews']}/{r['visits']} ({100 * r['review_rate']:.0f} %)"
            for f, r in s["review_by_fault"].items())] if s.get("review_by_fault") else []),
        *([f"  {'groups':<14}{s['groups']['groups']} groups, {s['groups']['people']} people on their codes   "
            f"companions out first by the button {s['groups']['companions_left_first']}"]
          if (s.get("groups") or {}).get("groups") else []),
        "",
        *_latency_rows(s),
    ]
    if s.get("shopper_errors"):
        lines += ["", f"  scripted shoppers' errors ({len(s['shopper_errors'])}): {s['shopper_errors'][0]}"
                  + (" …" if len(s["shopper_errors"]) > 1 else "")]
    if s.get("problems"):
        lines += ["", f"  problems: {s['problems']}"]
    return "\n".join(lines)
