"""The face detector's passes (``FaceEngine.locate``): what each pass looks at and at what scale, with a recording
stand-in for dlib's HOG detector."""

import numpy as np

from bingobox.vision.faces import FaceEngine


class _Hog:
    """Records the size of each image the detector is given; finds a face in the pass ``finds_at`` (0: none)."""

    def __init__(self, finds_at: int = 0) -> None:
        self.sizes: list[tuple[int, int]] = []
        self.channels: set[int] = set()
        self.finds_at = finds_at

    def face_locations(self, img, number_of_times_to_upsample=0, model="hog"):
        self.sizes.append((img.shape[1], img.shape[0]))
        self.channels.add(img.shape[2] if img.ndim == 3 else 1)
        if len(self.sizes) == self.finds_at:
            h, w = img.shape[:2]
            return [(h // 4, 3 * w // 4, 3 * h // 4, w // 4)]  # (top, right, bottom, left) in the image given
        return []


def _engine(hog: _Hog) -> FaceEngine:
    e = FaceEngine.__new__(FaceEngine)  # (no dlib: the passes alone)
    e.fr, e.detect_width, e.upsample = hog, 320, 0
    return e


FRAME = np.zeros((480, 640, 3), np.uint8)


def test_without_a_region_the_first_pass_is_the_whole_frame_at_detect_width():
    hog = _Hog()
    assert _engine(hog).locate(FRAME) == []
    assert hog.sizes == [(320, 240), (640, 480), (800, 600)]  # and the finer passes when it finds nobody
    assert hog.channels == {1}  # on the grey picture (HOG takes the strongest gradient of three channels otherwise)


def test_a_second_pass_near_the_first_is_skipped_for_the_finest():
    hog = _Hog()
    _engine(hog).locate(FRAME, (0, 45, 640, 435))  # 0.81 of the frame: the first pass at 1.11 x the whole frame's
    assert [w for w, _ in hog.sizes] == [355, 640, 800]  # twice the whole frame's scale is 1.8 times finer: made
    hog = _Hog()
    _engine(hog).locate(FRAME, (160, 0, 480, 480))  # half: the first at 1.41 x; twice would be only 1.41 times finer
    assert [w for w, _ in hog.sizes][1:] == [400]  # (a face it missed mostly needs more): straight to the finest


def test_a_face_a_pass_finds_ends_the_passes():
    hog = _Hog(finds_at=2)
    (box,) = _engine(hog).locate(FRAME, (0, 45, 640, 435))
    assert len(hog.sizes) == 2
    got, want = (box.left, box.top, box.right, box.bottom), (160, 45 + 97, 480, 45 + 292)  # placed in the frame
    assert all(abs(a - b) <= 2 for a, b in zip(got, want, strict=True)), got


def test_the_first_pass_spends_the_whole_frame_s_pixels_on_the_region_that_changed():
    hog = _Hog()
    _engine(hog).locate(FRAME, (160, 0, 480, 480))  # half the frame changed
    (w, h), *finer = hog.sizes
    assert 320 * 240 * 0.97 <= w * h <= 320 * 240  # the same cost as the whole frame's first pass...
    assert w / 320 > 0.5 * 1.4 and h / 480 > 0.5 * 1.4  # ...on the region (320x480) at a finer scale than the
    # whole frame's 0.5 (√2 finer for half the area): smaller faces are found in it
    assert finer == [(400, 600)]  # then the finest pass on the region


def test_a_small_region_is_not_looked_at_twice_at_one_scale():
    hog = _Hog()
    _engine(hog).locate(FRAME, (200, 150, 360, 310))  # 160x160: the budget would be finer than the second pass
    assert hog.sizes == [(160, 160), (200, 200)]  # the first at the second pass's scale (capped), then the third


def test_a_face_found_in_the_region_is_placed_in_the_frame():
    hog = _Hog(finds_at=1)
    (box,) = _engine(hog).locate(FRAME, (160, 0, 480, 480))
    got, want = (box.left, box.top, box.right, box.bottom), (160 + 80, 120, 160 + 240, 360)
    assert all(abs(a - b) <= 2 for a, b in zip(got, want, strict=True)), got  # (rounding of the scaled image)


def test_a_region_outside_the_frame_or_too_small_to_hold_a_face_is_not_trusted():
    hog = _Hog()
    _engine(hog).locate(FRAME, (600, -50, 900, 700))  # clipped to the frame: 40 x 480
    assert hog.sizes[0][1] > 240 and hog.sizes[0][0] < 320
    hog = _Hog()
    _engine(hog).locate(FRAME, (10, 10, 30, 400))  # 20 px wide: the whole frame
    assert hog.sizes[0] == (320, 240)
    hog = _Hog()
    _engine(hog).locate(FRAME, (160.7, 0.2, 480.9, 480.0))  # (it comes from another process: whole pixels)
    assert hog.sizes[1] == (400, 600)
