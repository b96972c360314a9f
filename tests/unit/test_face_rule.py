"""The exit decision rule alone, on synthetic 128-d vectors (no photographs needed)."""

import numpy as np

from bingobox.vision.faces import Rule, decide


def at(base: np.ndarray, distance: float, seed: int) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=128)
    return base + d / np.linalg.norm(d) * distance


BASE = np.random.default_rng(0).normal(0, 0.1, 128)


def test_matched_only_within_threshold_and_margin():
    rule = Rule(threshold=0.56, margin=0.06)
    gallery = {"a": [at(BASE, 0.30, 1)], "b": [at(BASE, 0.90, 2)]}
    d = decide(BASE, gallery, rule)
    assert (d.match, d.reason, d.nearest) == ("a", "matched", "a") and abs(d.distance - 0.30) < 1e-3
    far = decide(BASE, {"a": [at(BASE, 0.58, 3)]}, rule)
    assert (far.match, far.reason, far.nearest) == (None, "unsure_distance", "a")
    close = decide(BASE, {"a": [at(BASE, 0.40, 4)], "b": [at(BASE, 0.43, 5)]}, rule)
    assert (close.match, close.reason, close.nearest) == (None, "unsure_margin", "a")


def test_best_template_counts_and_nobody_inside():
    gallery = {"a": [at(BASE, 0.80, 6), at(BASE, 0.20, 7)], "b": [at(BASE, 0.70, 8)]}
    assert decide(BASE, gallery).match == "a"
    assert decide(BASE, {}).reason == "nobody_inside"
    assert decide(BASE, {"a": []}).reason == "nobody_inside"


def test_frames_must_agree():
    from bingobox.vision.faces import Decision
    from bingobox.vision.worker import _agree

    a = Decision("a", 0.3, 0.2, "matched", "a")
    b = Decision("b", 0.3, 0.2, "matched", "b")
    unsure = Decision(None, 0.6, None, "unsure_distance", "a")
    two = Rule(agree_frames=2)
    assert _agree([a, a], two).match == "a"
    assert _agree([a, b], two).reason == "frames_disagree"
    assert _agree([a, unsure], two).reason == "frames_disagree"  # one sure frame is not enough when two are asked
    assert _agree([a], Rule()).match == "a"
    assert _agree([unsure], Rule()).reason == "unsure_distance"
