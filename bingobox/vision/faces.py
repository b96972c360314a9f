"""Faces with face_recognition's models and calls (``dlib_models``: only the three it uses are loaded): detection on a
reduced frame, encoding of the face crop only, quality gates for enrolment, and the exit decision rule.

The decision rule (exit): match only against the shoppers currently inside; accept the nearest shopper only if
its distance is at most ``threshold`` AND the second-nearest is at least ``margin`` farther; otherwise the answer
is "unsure" and the shopper re-scans the QR code. A shopper's distance is the minimum over their templates.

Defaults, measured on tests/data/faces (96 single-face photos, 16 identities; dlib 20.0.1, the same
figures with the dlib-bin wheel and with the OpenBLAS source build):
  same person:      323 pairs, median 0.413, p95 0.550, p99 0.602, max 0.653
  different people: 4237 pairs, min 0.583, p0.1 0.616, p1 0.663, median 0.862
  simulated exits with 10 shoppers inside (one enrolment photo each), 3000 genuine + 3000 not-enrolled walkers:
    nearest within 0.60 (the library's examples): 2 wrong-person decisions, 0.8 % genuine rejected
    flat 0.50:                                     0 wrong,                 13.0 % rejected
    threshold 0.56, margin 0.06 (chosen):          0 wrong,                  2.2 % rejected
    (a second draw of 6000 exits: 0 wrong, 2.5 % rejected)
  0.56 keeps 0.023 below the closest different-person pair seen; the margin guards look-alikes inside together.

The open set (``decide(..., open_set=True)``): someone inside, or at the exit, is not a candidate (no consent, an
enrolment that failed, a companion, a stranger), so the face at the exit may be none of the candidates'. A camera
that shows faces softly (the 40 ORL people of faces/more.csv: grey, 92x112) brings different people as close as
0.455, and such a walker passed the rule above for a look-alike inside in 4-11 % of walks (10-40 inside). The
distance alone cannot tell them apart; how much nearer the face is to the best candidate than to the others can:
the distance must also be at most ``open_ratio`` times the median of its distances to the other candidates (the
cohort; padded to ``cohort_min`` with the store's median distance between different enrolled shoppers, learnt by
``ImpostorScale``). Measured on the two sets (docs/performance.md): genuine exits' distance / cohort median p50 0.45,
p90 0.59 (store photographs), 0.28 / 0.41 (ORL); the not-enrolled walkers that passed the rule above, at least 0.56.
0.55 turns them all to the code; it costs the store photographs' genuine exits about one in ten to the code, and
only while someone who is not a candidate is inside.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..domain.faces import FaceDecision

THRESHOLD = 0.56
MARGIN = 0.06
OPEN_RATIO = 0.55
COHORT_MIN = 3
MIN_STEP = 1.7  # a finer detection pass is made only this much finer than the one before, or else the finest: the
# faces the first pass missed on 210 held-up photographs needed 1.2-1.67 times its scale (each just below HOG's 80 px
# window); of the three whose second pass was less than 1.7 times finer than the first (a region's first pass is
# finer than the whole frame's), it found one, and the other two cost a third pass
IMPOSTOR_MEDIAN = 0.86  # different people on tests/data/faces (median of 4237 pairs): the prior of ImpostorScale


class ImageReadError(ValueError):
    """An image file that cannot be read (missing, corrupt, truncated, not an image)."""


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as RGB, with a clear error for anything unreadable."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read: {e.strerror or e}") from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt, truncated or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class Rule:
    threshold: float = THRESHOLD
    margin: float = MARGIN
    agree_frames: int = 1  # exit: the same shopper must win this many frames in a row
    open_ratio: float = OPEN_RATIO  # open set: distance ≤ this × the median distance to the other candidates
    cohort_min: int = COHORT_MIN  # open set: fewer other candidates than this are padded with the store's median


@dataclass(frozen=True)
class Quality:
    """Enrolment gates."""

    min_face_px: int = 64  # face box height in the full frame
    min_sharpness: float = 12.0  # variance of the Laplacian of the face crop
    max_yaw: float = 0.35  # |nose offset from the eyes' midpoint| / eye distance


Decision = FaceDecision  # (the type the store core reads: bingobox.domain.faces)


@dataclass
class FaceBox:
    top: int
    right: int
    bottom: int
    left: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.top, self.right, self.bottom, self.left)


@dataclass
class Enrolment:
    ok: bool
    reason: str  # enrolled | no_face | several_faces | too_small | blurred | not_frontal
    encoding: np.ndarray | None = field(default=None, repr=False)
    detail: dict = field(default_factory=dict)


class ImpostorScale:
    """How far apart different people's faces are in this store's cameras: the distance between each newly enrolled
    shopper's templates and each other enrolled shopper's (their nearest pair), the last ``keep`` of them. Only
    anonymous distances are kept, no template; until ``min_pairs`` are seen, ``prior`` stands for their median."""

    def __init__(self, keep: int = 1000, min_pairs: int = 30, prior: float = IMPOSTOR_MEDIAN) -> None:
        self.pairs: collections.deque[float] = collections.deque(maxlen=keep)
        self.min_pairs, self.prior = min_pairs, prior

    def enrolled(self, new: list[np.ndarray], others: list[list[np.ndarray]]) -> None:
        for temps in others:
            if new and temps:
                self.pairs.append(min(float(np.linalg.norm(a - b)) for a in new for b in temps))

    def median(self) -> float:
        return float(np.median(self.pairs)) if len(self.pairs) >= self.min_pairs else self.prior


def decide(encoding: np.ndarray, gallery: dict[str, list[np.ndarray]], rule: Rule | None = None,
           open_set: bool = False, scale: float = IMPOSTOR_MEDIAN) -> Decision:
    """The exit decision for one face against the templates of those inside. ``open_set``: someone inside is not a
    candidate (the module's docstring); ``scale``: the store's median distance between different shoppers."""
    rule = rule or Rule()
    if not gallery:
        return Decision(None, None, None, "nobody_inside")
    dists = sorted((min(float(np.linalg.norm(encoding - t)) for t in temps), who)
                   for who, temps in gallery.items() if temps)
    if not dists:
        return Decision(None, None, None, "nobody_inside")
    best, who = dists[0]
    margin = dists[1][0] - best if len(dists) > 1 else None
    m = None if margin is None else round(margin, 4)
    if best > rule.threshold:
        return Decision(None, round(best, 4), m, "unsure_distance", who)
    if margin is not None and margin < rule.margin:
        return Decision(None, round(best, 4), m, "unsure_margin", who)
    if open_set:
        cohort = [d for d, _ in dists[1:]]
        cohort += [scale] * (rule.cohort_min - len(cohort))
        if best > rule.open_ratio * float(np.median(cohort)):
            return Decision(None, round(best, 4), m, "unsure_open", who)
    return Decision(who, round(best, 4), m, "matched", who)


class FaceEngine:
    """Detection on a reduced frame (HOG, no upsampling) and encoding of the face crop in the full frame."""

    def __init__(self, detect_width: int = 320, upsample: int = 0, quality: Quality | None = None) -> None:
        from .dlib_models import DlibFaces  # heavy: loaded where faces are actually used

        self.fr = DlibFaces()  # (face_recognition's calls, without the models the store never uses)
        self.detect_width = detect_width
        self.upsample = upsample
        self.quality = quality or Quality()

    def locate(self, rgb: np.ndarray, roi: tuple[int, int, int, int] | None = None) -> list[FaceBox]:
        """Faces, largest first. A first HOG pass with the pixels of the whole frame reduced to ``detect_width``,
        spent where the picture changed (``roi``: x0, y0, x1, y1, from the motion gate) when that is given: the smaller
        the region, the finer the pass; if it finds none, the region at twice ``detect_width``'s scale (if that is
        ``MIN_STEP`` finer) and last at 2.5 times, the finest (HOG misses faces too small for a pass: below its window).
        Measured on 210 photographs held up to the simulator's 640x480 camera, the first pass over the whole frame
        missed 8 (each then cost 39-98 ms of passes), over the changed region at the same pixel cost 5."""
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = (0, 0, w, h) if roi is None else (max(0, int(roi[0])), max(0, int(roi[1])),
                                                             min(w, int(roi[2])), min(h, int(roi[3])))
        if x1 - x0 < 32 or y1 - y0 < 32:
            x0, y0, x1, y1 = 0, 0, w, h  # (too small to hold a face HOG can find: the whole frame)
        base = self.detect_width / w  # the whole frame's first pass
        first = min(2.0 * base, base * ((w * h) / ((x1 - x0) * (y1 - y0))) ** 0.5)  # the same pixels on the region
        part = rgb[y0:y1, x0:x1]
        part = cv2.cvtColor(part, cv2.COLOR_RGB2GRAY) if part.ndim == 3 else part  # (HOG on one channel, not three:
        # 12 % less time, the same 210 of 210 faces found)
        boxes: list = []
        tried = 0.0
        finest = 2.5 * base
        for k, f in enumerate((first, 2.0 * base, finest)):
            if k and (f <= tried * 1.001 or (f < finest and f < MIN_STEP * tried)):
                continue  # (looked at already, or too near the pass before to find what it missed: the finest)
            if k and (f > 1.6 or min(h, w) * f > 800):
                break  # large enough already: the face is not there to be found by size
            tried = f
            ph, pw = part.shape[:2]
            img = cv2.resize(part, (max(1, int(pw * f)), max(1, int(ph * f))), interpolation=cv2.INTER_AREA if f < 1
                             else cv2.INTER_LINEAR) if abs(f - 1.0) > 1e-3 else part
            boxes = [(t / f + y0, r / f + x0, b / f + y0, lft / f + x0) for t, r, b, lft in
                     self.fr.face_locations(img, number_of_times_to_upsample=self.upsample, model="hog")]
            if boxes:
                break
        out = [FaceBox(max(0, int(t)), min(w, int(r)), min(h, int(b)), max(0, int(lft))) for t, r, b, lft in boxes]
        return sorted(out, key=lambda b: -b.height)

    def encode(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        return self.fr.face_encodings(rgb, [box.as_tuple()], num_jitters=1, model="small")[0]

    def enrol(self, rgb: np.ndarray, roi: tuple[int, int, int, int] | None = None) -> Enrolment:
        """Quality-gated template from one frame: exactly one usable face, sharp and frontal enough."""
        boxes = self.locate(rgb, roi)
        if not boxes:
            return Enrolment(False, "no_face")
        if len(boxes) > 1 and boxes[1].height > 0.5 * boxes[0].height:
            return Enrolment(False, "several_faces", detail={"faces": len(boxes)})
        box = boxes[0]
        q = self.quality
        if box.height < q.min_face_px:
            return Enrolment(False, "too_small", detail={"face_px": box.height})
        crop = cv2.cvtColor(rgb[box.top:box.bottom, box.left:box.right], cv2.COLOR_RGB2GRAY)
        sharp = float(cv2.Laplacian(crop, cv2.CV_64F).var()) if crop.size else 0.0
        if sharp < q.min_sharpness:
            return Enrolment(False, "blurred", detail={"sharpness": round(sharp, 1)})
        marks = self.fr.face_landmarks(rgb, [box.as_tuple()], model="small")
        yaw = _yaw(marks[0]) if marks else None
        if yaw is None or yaw > q.max_yaw:
            return Enrolment(False, "not_frontal", detail={"yaw": yaw})
        return Enrolment(True, "enrolled", self.encode(rgb, box),
                         {"face_px": box.height, "sharpness": round(sharp, 1), "yaw": round(yaw, 3),
                          "score": quality_score(box.height, sharp, yaw, q)})

    def probe(self, rgb: np.ndarray, roi: tuple[int, int, int, int] | None = None
              ) -> tuple[np.ndarray | None, str, int]:
        """The encoding of the main face at the exit: (encoding, reason, faces found)."""
        boxes = self.locate(rgb, roi)
        if not boxes:
            return None, "no_face", 0
        if len(boxes) > 1 and boxes[1].height > 0.6 * boxes[0].height:
            return None, "several_faces", len(boxes)  # two people at the exit: don't guess who pays
        return self.encode(rgb, boxes[0]), "ok", len(boxes)


def quality_score(face_px: int, sharpness: float, yaw: float, q: Quality) -> float:
    """How good a frame is for a template (0..1): a larger, sharper, more frontal face scores higher. Used to pick
    the best of the frames a shopper gives while walking in."""
    size = min(face_px / (2.5 * q.min_face_px), 1.0)
    sharp = min(sharpness / (10 * q.min_sharpness), 1.0)
    frontal = max(0.0, 1.0 - yaw / q.max_yaw)
    return round(0.4 * size + 0.3 * sharp + 0.3 * frontal, 4)


def _yaw(marks: dict) -> float | None:
    """How far the nose is from the eyes' midpoint, relative to the eye distance (5-point landmarks)."""
    try:
        le = np.mean(marks["left_eye"], axis=0)
        re = np.mean(marks["right_eye"], axis=0)
        nose = np.mean(marks["nose_tip"], axis=0)
    except (KeyError, ValueError):
        return None
    eye = np.linalg.norm(re - le)
    if eye < 1:
        return None
    axis = (re - le) / eye
    return float(abs((nose - (le + re) / 2) @ axis) / eye)
