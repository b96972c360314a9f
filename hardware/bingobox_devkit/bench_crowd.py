"""``bingobox bench faces``: the exit's face rule with a crowd inside, on photographs seen through the simulated
camera. Everyone with at least two usable photographs (the store's own, ``faces/manifest.csv``, and the crowd's,
``faces/more.csv``) is enrolled from the photos they show walking in (as the demo does); their other photos are
exit frames. Each trial puts ``n`` of them inside and decides two exits with ``faces.decide``:

- a *genuine* exit: one of those inside, one of their exit photos — recognised, sent to the code (fallback) or
  matched to someone else (wrong);
- a *not-enrolled walker*: someone who is not among the candidates (no consent, an enrolment that failed) in front
  of the exit camera — the exit camera sees everyone — matched to someone inside is a wrong person. The store
  knows someone inside is not a candidate then: the walk is decided on the open set.

A genuine exit is decided twice: with everyone inside a candidate (``fallback``), and with someone else inside who
is not (the open set: ``fallback_open``). The store's impostor scale (``faces.ImpostorScale``) is learnt from the
enrolments, as the matcher learns it.

Counts are split by where the exit photo comes from (``store`` or ``more``), so a figure of the store's own
photographs is not diluted by the other set, nor the other way round.
"""

from __future__ import annotations

import collections
import random
from pathlib import Path

import numpy as np

from .harness.demo import photos_by_person

CROWDS = (3, 10, 20, 40)


def _people(testdata: Path) -> dict[tuple[str, str], list[Path]]:
    """(set, identity) → usable photos, in manifest order (the demo's: the first is the exit photo, the next three
    are walked in with)."""
    return {("more" if more else "store", who): ps for (more, who), ps in photos_by_person(testdata, True).items()
            if len(ps) >= 2}


def bench_faces(testdata: Path, seed: int = 1, trials: int = 3000) -> dict:
    from bingobox.vision.faces import FaceEngine, ImpostorScale, Rule, decide

    from .bench import _held_up

    engine, rule = FaceEngine(), Rule()
    gallery: dict[tuple[str, str], list[np.ndarray]] = {}
    probes: dict[tuple[str, str], list[np.ndarray]] = {}
    for who, photos in _people(testdata).items():
        walk, rest = photos[1:4], [photos[0], *photos[4:]]
        temps = [e.encoding for e in (engine.enrol(_held_up(p)) for p in walk) if e.ok and e.encoding is not None]
        if temps:
            gallery[who] = temps
        probes[who] = [enc for enc in (engine.probe(_held_up(p))[0] for p in rest) if enc is not None]
    enrolled = sorted(gallery)
    rng = random.Random(seed)
    scale = ImpostorScale()
    order = rng.sample(enrolled, len(enrolled))  # (the order they came in)
    for i, who in enumerate(order):
        scale.enrolled(gallery[who], [gallery[k] for k in order[max(0, i - 40):i]])  # (those inside with them)
    med = scale.median()
    out: dict = {"rule": {"threshold": rule.threshold, "margin": rule.margin, "open_ratio": rule.open_ratio,
                          "cohort_min": rule.cohort_min, "impostor_median": round(med, 4)},
                 "seed": seed, "trials": trials,
                 "people": {s: sum(k[0] == s for k in probes) for s in ("store", "more")},
                 "enrolled_from_walk_in": {s: sum(k[0] == s for k in enrolled) for s in ("store", "more")},
                 "exit_photos": {s: sum(len(v) for k, v in probes.items() if k[0] == s) for s in ("store", "more")}}
    for n in CROWDS:
        if n > len(enrolled) - 1:
            continue
        c: collections.Counter[str] = collections.Counter()
        for _ in range(trials):
            inside = rng.sample(enrolled, n)
            g = {f"{k[0]}/{k[1]}": gallery[k] for k in inside}
            who = rng.choice(inside)
            if probes[who]:
                probe, tag = rng.choice(probes[who]), who[0]
                c[f"{tag}_genuine"] += 1
                for key, open_set in (("", False), ("_open", True)):
                    d = decide(probe, g, rule, open_set, med)
                    c[f"{tag}_" + ("recognised" if d.match == f"{who[0]}/{who[1]}" else "wrong" if d.match
                                   else "fallback") + key] += 1
            outside = [k for k in probes if k not in inside and probes[k]]
            x = rng.choice(outside)
            probe = rng.choice(probes[x])
            c[f"{x[0]}_walker"] += 1
            c[f"{x[0]}_walker_matched"] += decide(probe, g, rule, True, med).match is not None
            c[f"{x[0]}_walker_matched_closed"] += decide(probe, g, rule).match is not None
        row: dict = {}
        for s in ("store", "more"):
            gen, walkers = c[f"{s}_genuine"], c[f"{s}_walker"]
            row[s] = {"genuine": gen, "recognised": c[f"{s}_recognised"], "fallback": c[f"{s}_fallback"],
                      "wrong": c[f"{s}_wrong"] + c[f"{s}_wrong_open"],
                      "fallback_share": round(c[f"{s}_fallback"] / gen, 4) if gen else None,
                      "fallback_open": c[f"{s}_fallback_open"],
                      "fallback_open_share": round(c[f"{s}_fallback_open"] / gen, 4) if gen else None,
                      "walkers": walkers, "walkers_matched": c[f"{s}_walker_matched"],
                      "walkers_matched_share": round(c[f"{s}_walker_matched"] / walkers, 4) if walkers else None,
                      "walkers_matched_by_the_closed_rule": c[f"{s}_walker_matched_closed"]}
        out[f"inside_{n}"] = row
    return out
