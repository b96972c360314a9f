"""The exit decision rule alone, on synthetic 128-d vectors (no photographs needed)."""

import numpy as np

from bingobox.vision.faces import ImpostorScale, Rule, decide


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


def test_the_open_set_asks_the_face_to_be_much_nearer_its_match_than_the_others():
    """A face 0.45 from one candidate and 0.75 from the others passes the rule; when someone inside is not a
    candidate, it may be theirs (a look-alike of a candidate): it goes to the code unless it is at most
    ``open_ratio`` times the others' median distance."""
    rule = Rule()
    gallery = {"a": [at(BASE, 0.45, 11)], **{k: [at(BASE, 0.75, 12 + i)] for i, k in enumerate("bcde")}}
    assert decide(BASE, gallery, rule).reason == "matched"
    d = decide(BASE, gallery, rule, open_set=True)
    assert (d.match, d.reason, d.nearest) == (None, "unsure_open", "a")
    near = {**gallery, "a": [at(BASE, 0.30, 16)]}  # 0.30 <= 0.55 x 0.75
    assert decide(BASE, near, rule, open_set=True).match == "a"
    # few others: the store's own scale stands for the missing ones
    alone = {"a": [at(BASE, 0.45, 17)]}
    assert decide(BASE, alone, rule, open_set=True, scale=0.86).match == "a"  # 0.45 <= 0.55 x 0.86
    assert decide(BASE, alone, rule, open_set=True, scale=0.75).reason == "unsure_open"  # a softer camera


def test_the_impostor_scale_learns_the_store_s_own_distances():
    s = ImpostorScale(keep=50, min_pairs=3, prior=0.86)
    assert s.median() == 0.86
    a, b, c = [at(BASE, 0.0, 20)], [at(BASE, 0.7, 21)], [at(BASE, 0.7, 22)]
    s.enrolled(b, [a])
    s.enrolled(c, [a, b, []])
    assert len(s.pairs) == 3 and abs(s.median() - 0.7) < 0.05  # (b-c ~ 0.99 : the median of 0.7, 0.7, 0.99)
    for i in range(60):
        s.enrolled([at(BASE, 0.5, 100 + i)], [[BASE]])
    assert len(s.pairs) == 50 and abs(s.median() - 0.5) < 1e-6  # bounded; the newest stand


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
