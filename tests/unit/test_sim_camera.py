"""The simulated camera: a picture held up, or walking towards it (growing, from the side to the centre)."""

import numpy as np
import pytest

from bingobox_devkit.sim.camera_server import VirtualCamera
from bingobox_devkit.sim.config import SimCamera


def _shown(frame: np.ndarray) -> tuple[int, int, int]:
    """(height, left, bottom) of the pure red picture in the frame."""
    ys, xs = np.nonzero(np.all(frame == (0, 0, 255), axis=2))
    return int(ys.max() - ys.min() + 1), int(xs.min()), int(ys.max())


def test_a_picture_walking_towards_the_camera_grows_to_the_centre_and_each_frame_differs():
    now = [100.0]
    cam = VirtualCamera(SimCamera(name="cam"), seed=1, clock=lambda: now[0])
    red = np.zeros((200, 160, 3), np.uint8)
    red[:] = (0, 0, 255)
    cam.show(red, "red", scale=0.8)
    held = _shown(cam.compose(1))
    assert abs(held[0] - 0.8 * 480) <= 2 and abs(held[1] - (640 - 0.8 * 480 * 0.8) / 2) <= 2
    cam.show(red, "red", scale=0.8, walk_from=0.5, walk_s=0.3)
    first = _shown(cam.compose(1))
    now[0] += 0.12
    middle = _shown(cam.compose(2))
    now[0] += 0.25
    last = _shown(cam.compose(3))
    size = 0.5 * 480
    assert abs(first[0] - size) <= 2  # far: half the size
    assert abs(first[1] - (640 - 0.8 * size) / 4) <= 8  # to the left: half as far from the edge as centred
    assert first[2] > (480 + size) / 2 + 40  # and lower
    assert first[0] < middle[0] < last[0] and first[1] < middle[1] < last[1]
    assert last == held  # at the door: as held up there


@pytest.mark.parametrize("kw", [{"walk_from": 0.01, "walk_s": 0.4}, {"walk_from": 0.5, "walk_s": 0},
                                {"walk_from": 0.5, "walk_s": 60}, {"scale": 1.5}])
def test_a_walk_out_of_range_is_refused(kw):
    cam = VirtualCamera(SimCamera(name="cam"), seed=1)
    with pytest.raises(ValueError):
        cam.show(np.zeros((10, 10, 3), np.uint8), "x", **{"scale": 0.8, **kw})
