"""A cheap motion gate for the exit camera (as Frigate gates object detection on motion).

Face detection costs ~25 ms of a core per frame; at 15 fps that is most of a core for as long as an enrolled
shopper is inside, while the exit area is empty most of that time. The gate compares a small blurred grayscale
copy of each frame (64 px wide, < 0.2 ms) with a slowly adapting background and says whether enough of it changed.
The face matcher skips frames while nothing moves and its last look found no face, so a shopper who walks up is
seen in the first frame that shows them, and one who stands still keeps being looked at. Once a look has found the
exit area empty (``background_empty``), a frame that does not differ from that background is skipped whatever the
last look found: whoever was looked at has left (looking at the empty area cost the matcher up to three detection
passes, ~180 ms, after every exit). ``box`` says where the frame changed: the face detector's finer (costlier)
passes look only there.
"""

from __future__ import annotations

import cv2
import numpy as np

WIDTH = 64  # px of the comparison image
DIFF = 18  # grey levels a pixel must change by (sensor noise on the blurred image stays under ~6)
AREA = 0.01  # share of the image that must change: a face at the exit covers ~30 %, a camera's OSD clock < 1 %
ALPHA = 0.05  # background adaptation per quiet frame (lighting drifts; a parked trolley becomes background)


class MotionGate:
    def __init__(self, diff: int = DIFF, area: float = AREA, alpha: float = ALPHA) -> None:
        self.diff, self.area, self.alpha = diff, area, alpha
        self._bg: np.ndarray | None = None
        self.frames = self.moving = 0
        self.box: tuple[int, int, int, int] | None = None  # where the last moving frame changed (x0, y0, x1, y1)
        self._last: np.ndarray | None = None  # the last frame given to moved() (small)
        self._look: np.ndarray | None = None  # the frame the caller last looked at (decoded, matched)
        self.background_empty = False  # the background was taken from a frame a look found nobody in (absorb)

    def _small(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        gray = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(gray, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)

    def moved(self, bgr: np.ndarray, size: tuple[int, int] | None = None) -> bool:
        """Whether this frame differs from the background; quiet frames are blended into it. ``bgr`` may be a
        smaller copy of the frame (colour or grey, e.g. ``Frame.preview()``); ``size``: the frame's (width, height)
        then, for ``box``."""
        small = self._small(bgr)
        width, height = size or (bgr.shape[1], bgr.shape[0])
        self._last = small
        self.frames += 1
        if self._bg is None or self._bg.shape != small.shape:
            self._bg, self.background_empty = small, False  # (a first frame: someone may be in it)
            self.moving += 1
            self.box = None  # (no background yet: anywhere)
            return True
        mask = np.abs(small - self._bg) > self.diff
        changed = float(mask.mean())
        if changed >= self.area:
            self.moving += 1
            self.box = _box(mask, width, height)
            return True
        cv2.accumulateWeighted(small, self._bg, self.alpha)
        return False

    def looked(self) -> None:
        """The caller looked (decoded, matched) at the last frame given to ``moved``."""
        self._look = self._last

    def unchanged_since_look(self) -> bool:
        """Whether the last frame given to ``moved`` is the picture the caller last looked at (the same person
        standing still in front of the camera): looking again would give the same answer."""
        if self._look is None or self._last is None or self._look.shape != self._last.shape:
            return False
        return float((np.abs(self._last - self._look) > self.diff).mean()) < self.area

    def absorb(self, bgr: np.ndarray) -> None:
        """Take this frame as the background now (after a look that found nobody: the change was not a person)."""
        self._bg, self.background_empty = self._small(bgr), True


def _box(mask: np.ndarray, width: int, height: int, grow: float = 0.15) -> tuple[int, int, int, int]:
    """The bounding box of the changed cells, in frame pixels, grown by ``grow`` of its size on each side."""
    ys, xs = np.nonzero(mask)
    f = width / mask.shape[1]
    x0, x1, y0, y1 = xs.min() * f, (xs.max() + 1) * f, ys.min() * f, (ys.max() + 1) * f
    gx, gy = (x1 - x0) * grow, (y1 - y0) * grow
    return (max(0, int(x0 - gx)), max(0, int(y0 - gy)), min(width, int(x1 + gx)), min(height, int(y1 + gy)))
