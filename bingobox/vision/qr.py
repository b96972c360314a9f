"""QR decoding from camera frames with pyzbar, cheapest first.

1. pyzbar on the grayscale frame (QR only). Most frames hold no code: this is all they cost, plus step 2.
2. A gate: are there finder-pattern-like shapes (a dark square in a light ring in a dark square)? If not,
   nothing below can pay off and the frame is done.
3. Retries that rescue hard photos: rescale, local binarisation, inverted (light-on-dark) codes.
4. Grid re-rendering: locate the three finder patterns, fit a homography from their corners to the module
   grid, sample every module, and hand pyzbar a clean synthetic code. This reads strongly tilted codes. If that
   fails, the grid is bent to follow the code's own module edges (``qr_grid.refine``) and sampled again: this
   reads codes on wrinkled fabric and curved surfaces.

Every frame's cost is bounded, whatever is in it, and no single step overruns the bound: frames larger than
``max_side`` are scaled down first; grids are tried only for real QR versions (n = 17 + 4v, v ≤ 40) with a module
size that the finder patterns' own size agrees with; at most ``MAX_GRIDS`` grids; and every step after the plain
try is begun only if its expected cost still fits in ``budget_ms`` (``over(need_s)``): the contour search costed
from the frame's edges, each retry from what pyzbar cost on this frame, a grid's rendering from its size, the
refinement's rectification from its image, and the refinement's longest loop asks as it goes. Three finder-like
squares at a 3-pixel module cost 3.6 s with no budget; with the camera's 150 ms they end within it (``bench
vision``'s ``qr_adversarial``), and ``bingobox vision qr`` has a bound too (1 s a file).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pyzbar import pyzbar
from pyzbar.pyzbar import ZBarSymbol

from .qr_grid import GridMap, Over, OverBudget, _never, refine, sample

_QR = [ZBarSymbol.QRCODE]
MIN_N, MAX_N = 21, 177  # QR versions 1…40: n = 17 + 4v modules per side
MAX_GRIDS = 12  # grids tried per frame at most (each costs a sampling and maybe a refinement, ~10 ms)
NS_PER_ZBAR_PX = 40e-9  # what pyzbar costs per pixel of an image with no code (10-20 ns measured; twice, loaded)
ZBAR_WORST_S_PX = 250e-9  # pyzbar on the worst content measured (finder-like squares everywhere: ~160 ns a pixel) with
# a margin: the plain try, the one step always taken, is given a frame small enough to end within the budget
NS_PER_EDGE = 800e-9  # what finding the contours costs per light/dark transition of the binarised frame (120-620 ns
# measured, noise the worst): a noise frame's contour search is not begun when it cannot finish in time


def _zbar(gray: np.ndarray) -> list[str]:
    out = []
    for s in pyzbar.decode(gray, symbols=_QR):
        try:
            out.append(s.data.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(s.data.decode("latin-1"))
    return out


@dataclass
class _Finder:
    centre: np.ndarray
    size: float
    contour: np.ndarray


def _nested(bw: np.ndarray, lo: float, hi: float, max_out: int = 12) -> list[_Finder]:
    """Contours holding a contour holding a contour, with an outer/inner area ratio in (lo, hi)."""
    cs, hier = cv2.findContours(bw, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if hier is None:
        return []
    hier = hier[0]
    found = []
    for i, c in enumerate(cs):
        k = hier[i][2]
        if k < 0 or hier[k][2] < 0:
            continue
        a0 = cv2.contourArea(c)
        a2 = max(cv2.contourArea(cs[hier[k][2]]), 0.5)
        if a0 < 20 or not lo < a0 / a2 < hi:
            continue
        _, _, w, h = cv2.boundingRect(c)
        if not 0.5 < w / h < 2:
            continue
        m = cv2.moments(c)
        if m["m00"]:
            found.append(_Finder(np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]]), float(np.sqrt(a0)), c))
    kept: list[_Finder] = []
    for f in sorted(found, key=lambda f: -f.size):
        if all(np.linalg.norm(f.centre - q.centre) > q.size * 0.5 for q in kept):
            kept.append(f)
    return kept[:max_out]


def _finders(gray: np.ndarray, block: int = 31, invert: bool = False, over: Over | None = None) -> list[_Finder]:
    """Finder-pattern candidates. The contour search's cost grows with the frame's edges (noise is the worst): it is
    estimated from them first, and not begun if ``over`` says it cannot finish in time (OverBudget)."""
    mode = cv2.THRESH_BINARY if invert else cv2.THRESH_BINARY_INV
    bw = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, mode, block, 3)
    if over is not None and over(np.count_nonzero(bw[:, 1:] != bw[:, :-1]) * NS_PER_EDGE):
        raise OverBudget
    return _nested(bw, 2.5, 10)


def _quad(contour: np.ndarray) -> np.ndarray:
    hull = cv2.convexHull(contour)
    for eps in (0.02, 0.04, 0.06, 0.1):
        ap = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
        if len(ap) == 4:
            return ap.reshape(4, 2).astype(np.float32)
    return cv2.boxPoints(cv2.minAreaRect(contour)).astype(np.float32)


def _corners_in_code_frame(pts: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> list[np.ndarray]:
    uv = [(p @ ex, p @ ey) for p in pts]
    return [pts[int(np.argmin([u + v for u, v in uv]))], pts[int(np.argmax([u - v for u, v in uv]))],
            pts[int(np.argmax([u + v for u, v in uv]))], pts[int(np.argmax([v - u for u, v in uv]))]]


def _render(bits: np.ndarray, module: int = 6, quiet: int = 4) -> np.ndarray:
    n = bits.shape[0]
    img = np.full(((n + 2 * quiet) * module,) * 2, 255, np.uint8)
    big = np.kron(bits.astype(np.uint8), np.ones((module, module), np.uint8))
    img[quiet * module:(quiet + n) * module, quiet * module:(quiet + n) * module][big > 0] = 0
    return img


def candidate_grids(finders: list[_Finder]) -> Iterator[tuple[GridMap, float]]:
    """Module grids (with the module size in pixels) that three of the finder patterns could belong to: each
    plausible trio, and the code sizes near the one their spacing suggests, most likely first."""
    for trio in itertools.combinations(finders[:5], 3):
        p = [f.centre for f in trio]
        sides = [np.linalg.norm(p[(i + 1) % 3] - p[(i + 2) % 3]) for i in range(3)]
        i0 = int(np.argmax(sides))  # the corner finder is opposite the longest side
        ftl, fa, fb = trio[i0], trio[(i0 + 1) % 3], trio[(i0 + 2) % 3]
        va, vb = fa.centre - ftl.centre, fb.centre - ftl.centre
        if va[0] * vb[1] - va[1] * vb[0] < 0:
            fa, fb, va, vb = fb, fa, vb, va
        la, lb = np.linalg.norm(va), np.linalg.norm(vb)
        if not 0.6 < la / lb < 1.6:
            continue
        sizes = [f.size for f in trio]
        if max(sizes) > 2.5 * min(sizes):  # one code's finders are alike (perspective makes them differ a little)
            continue
        ex, ey = va / la, vb / lb
        module = float(np.mean(sizes) / 7.0)
        est = (la + lb) / 2 / module + 7
        if not MIN_N - 4 <= est <= MAX_N + 4:  # no QR version has that many modules: not one code's finders
            continue
        for n in sorted({21 + 4 * max(0, round((est - 21) / 4) + k) for k in (0, -1, 1)}):
            if n > MAX_N:
                continue
            src: list[Any] = []
            dst: list[tuple[float, float]] = []
            for f, (ox, oy) in ((ftl, (0, 0)), (fa, (n - 7, 0)), (fb, (0, n - 7))):
                src += _corners_in_code_frame(_quad(f.contour) - ftl.centre, ex, ey)
                dst += [(ox, oy), (ox + 7, oy), (ox + 7, oy + 7), (ox, oy + 7)]
                src.append(f.centre - ftl.centre)
                dst.append((ox + 3.5, oy + 3.5))
            h, _ = cv2.findHomography(np.array(dst, np.float32),
                                      np.array(src, np.float32) + ftl.centre.astype(np.float32))
            if h is not None:
                yield GridMap(h, n), module


def grid_decode(gray: np.ndarray, finders: list[_Finder], over: Over = _never,
                stats: dict | None = None) -> list[str]:
    """Re-render the code from its finder patterns and decode the clean image; if the code is not flat, bend
    the grid to follow its own module edges and try again. Stops when ``over`` says the budget is spent, or that
    the next step would overrun it."""
    for i, (grid, module) in enumerate(candidate_grids(finders)):
        need = ((grid.n + 8) * 6) ** 2 * NS_PER_ZBAR_PX  # sampling, rendering and reading one grid
        if i >= MAX_GRIDS or over(need):
            break
        if stats is not None:
            stats["grids"] = stats.get("grids", 0) + 1
        texts = _zbar(_render(sample(gray, grid, module)))
        if not texts:
            try:
                bent = refine(gray, grid, over=over)
                if over(need):
                    return []
                texts = _zbar(_render(sample(gray, bent, module)))
            except OverBudget:
                return []
        if texts:
            return texts
    return []


def _dedupe(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


class QrReader:
    """Decode entry codes from frames. ``decode`` returns the texts found (several codes are all returned).
    ``budget_ms``: past this much time on one frame the cascade stops (None: no limit, for photographs)."""

    def __init__(self, max_side: int = 1280, budget_ms: float | None = 150.0) -> None:
        self.max_side = max_side
        self.budget_ms = budget_ms
        self.stats = {"frames": 0, "plain": 0, "gated_out": 0, "retry": 0, "grid": 0, "none": 0, "over_budget": 0,
                      "grids": 0, "scaled": 0}

    def decode(self, image: np.ndarray) -> list[str]:
        t0 = time.perf_counter()
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        self.stats["frames"] += 1
        budget = self.budget_ms / 1000 if self.budget_ms is not None else None
        f = self.max_side / max(gray.shape)
        if budget:  # (the plain try is never skipped: at the worst rate it must fit the budget; a 640×480
            f = min(f, (budget / ZBAR_WORST_S_PX / gray.size) ** 0.5)  # frame does within 80 ms, a larger one is
            # scaled down to what does)
        if f < 1:
            gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            self.stats["scaled"] += 1

        def over(need_s: float = 0.0) -> bool:
            """The frame's budget is spent — or would be, by the end of a step expected to take ``need_s``: a step
            is begun only if it can finish in time (no single step overruns the budget)."""
            if budget is not None and time.perf_counter() - t0 + need_s > budget:
                self.stats["over_budget"] += 1
                return True
            return False
        t_zbar = time.perf_counter()
        texts = _zbar(gray)
        if texts:
            self.stats["plain"] += 1
            return _dedupe(texts)
        # what pyzbar costs per pixel on this frame's content (finder-like shapes make it slow): the retries of the
        # same picture are expected to cost as much again, with a margin
        zbar_s_px = max(NS_PER_ZBAR_PX, 1.5 * (time.perf_counter() - t_zbar) / gray.size)
        try:
            return self._cascade(gray, over, zbar_s_px)
        except OverBudget:  # (a step that could not have finished in time was not begun)
            return []

    def _cascade(self, gray: np.ndarray, over: Over, zbar_s_px: float) -> list[str]:
        """Steps 2-4 (after the plain try): the finder gate, the retries, the grids."""
        finders = _finders(gray, over=over)
        inverted = None if len(finders) >= 2 else _finders(gray, invert=True, over=over)
        if len(finders) < 2 and inverted is not None and len(inverted) < 2:
            self.stats["gated_out"] += 1
            return []
        for work, found in ((gray, finders), (255 - gray, inverted)):
            if found is None:  # the normal path failed: is it a light-on-dark code?
                found = _finders(gray, invert=True, over=over)
            if len(found) < 2:
                continue
            for attempt in self._retries(work):
                if over(attempt.size * zbar_s_px):
                    return []
                texts = _zbar(attempt)
                if texts:
                    self.stats["retry"] += 1
                    return _dedupe(texts)
            texts = grid_decode(work, found, over, self.stats)
            if texts:
                self.stats["grid"] += 1
                return _dedupe(texts)
        self.stats["none"] += 1
        return []

    def _retries(self, gray: np.ndarray):
        h, w = gray.shape
        yield gray  # (the inverted image gets its plain try here)
        if max(h, w) > 400:
            yield cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        yield cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 31, 5)
        if max(h, w) < 800:
            yield cv2.resize(gray, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
            yield cv2.resize(gray, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
        yield cv2.resize(gray, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
        yield cv2.GaussianBlur(gray, (3, 3), 0)
