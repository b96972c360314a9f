"""Grid refinement for codes that are not flat, on synthetic codes whose true module matrix is known: bent by a
smooth random displacement field (as fabric folds do), tilted in perspective, blurred, darkened and noisy."""

import cv2
import numpy as np
import pytest
import segno

from bingobox.vision.qr import QrReader, _finders, _render, _zbar, candidate_grids
from bingobox.vision.qr_grid import refine, sample

PX = 6  # pixels per module of the rendered code


def render(matrix: np.ndarray, border: int = 4) -> np.ndarray:
    bits = np.pad(matrix, border)
    return np.kron(np.where(bits, 0, 255).astype(np.uint8), np.ones((PX, PX), np.uint8))


def photograph(code: np.ndarray, bend_modules: float, rng: np.random.Generator) -> np.ndarray:
    """Bend by three random plane waves per axis (each up to ±bend/2 modules), tilt, blur, darken, add noise."""
    import cv2

    h, w = code.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    shift = []
    for _ in range(2):
        d = np.zeros_like(xs)
        for _ in range(3):
            fx, fy = rng.uniform(0.5, 2.0, 2) * 2 * np.pi / np.array([w, h])
            d += np.sin(xs * fx + ys * fy + rng.uniform(0, 2 * np.pi)) * bend_modules * PX / 2
        shift.append(d)
    bent = cv2.remap(code, xs + shift[0], ys + shift[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moved = corners + rng.uniform(-0.08, 0.08, (4, 2)).astype(np.float32) * w + 40
    img = cv2.warpPerspective(bent, cv2.getPerspectiveTransform(corners, moved), (w + 80, h + 80), borderValue=90)
    img = cv2.GaussianBlur(img, (3, 3), 0).astype(np.float32) * 0.7 + 30 + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def errors_before_and_after(text: str, bend: float, seed: int) -> tuple[int, int, list[str]]:
    rng = np.random.default_rng(seed)
    truth = np.array(segno.make(text, error="m", micro=False).matrix, bool)
    gray = photograph(render(truth), bend, rng)
    grid, module = next(g for g in candidate_grids(_finders(gray)) if g[0].n == truth.shape[0])
    flat = sample(gray, grid, module)
    bent = sample(gray, refine(gray, grid), module)
    return int((flat != truth).sum()), int((bent != truth).sum()), _zbar(_render(bent))


TEXTS = [f"bbx-entry-{i}-" + "k7Qz" * (2 + 3 * i) for i in range(8)]


def test_refinement_follows_a_bent_code_to_the_exact_matrix():
    results = [errors_before_and_after(t, 0.3, seed) for seed, t in enumerate(TEXTS)]
    before = [b for b, _, _ in results]
    after = [a for _, a, _ in results]
    print(f"\nmodules wrong, homography only: {before}; refined: {after}")
    assert sum(before) > 100  # the bend is real: sampling at the homography's centres misreads modules
    assert after == [0] * len(TEXTS)
    assert [texts for _, _, texts in results] == [[t] for t in TEXTS]


@pytest.mark.parametrize("seed", range(3))
def test_refinement_leaves_a_flat_code_where_it_is(seed):
    before, after, texts = errors_before_and_after(TEXTS[seed], 0.0, seed)
    assert before == after == 0 and texts == [TEXTS[seed]]


def test_the_reader_reads_bent_codes_that_plain_zbar_cannot():
    from pyzbar import pyzbar

    reader = QrReader(budget_ms=None)  # what it can read, not what a busy machine allows
    frames = [photograph(render(np.array(segno.make(t, error="m").matrix, bool)), 0.3, np.random.default_rng(s))
              for s, t in enumerate(TEXTS)]
    plain = sum(bool(pyzbar.decode(f)) for f in frames)
    ours = [reader.decode(f) for f in frames]
    read = sum(o == [t] for o, t in zip(ours, TEXTS, strict=True))
    print(f"\nbent codes: plain pyzbar {plain}/{len(frames)}, reader {read}/{len(frames)}")
    assert ours == [[t] for t in TEXTS]
    assert reader.stats["grid"] >= 1


def test_no_step_is_begun_that_cannot_finish_within_the_frame_s_budget():
    """Structural, not timed: each step asks the budget with what it will cost before it begins. With no budget
    left after the unconditional plain try, nothing else runs; a refinement told its next step would overrun stops
    before it; the adversarial frames all end (their times are `bench vision`'s)."""
    from bingobox.vision import qr as q
    from bingobox.vision.qr_grid import OverBudget
    from bingobox_devkit.sim.camera_server import adversarial_frames, finder_squares

    r = QrReader(budget_ms=0)
    assert r.decode(finder_squares(640, 480, 21)) == [] and r.stats["grids"] == 0 and r.stats["over_budget"] >= 1
    gray = cv2.cvtColor(finder_squares(640, 480, 21), cv2.COLOR_BGR2GRAY)
    grid, _ = next(q.candidate_grids(q._finders(gray)))
    asked: list[float] = []

    def over(need_s: float = 0.0) -> bool:
        asked.append(need_s)
        return need_s > 0.001  # any step that needs more than a millisecond would overrun

    with pytest.raises(OverBudget):
        refine(gray, grid, over=over)
    assert asked and asked[-1] > 0.001  # (it asked with the rectification's cost, and stopped)
    stats: dict = {}
    assert q.grid_decode(gray, q._finders(gray), over, stats) == [] and stats.get("grids", 0) == 0
    with pytest.raises(OverBudget):  # a noise frame's contour search is costed from its edges first
        q._finders(np.random.default_rng(1).integers(0, 256, (480, 640), dtype=np.uint8), over=over)
    r = QrReader(budget_ms=150)
    for _, frame in adversarial_frames():
        assert r.decode(frame) == []
