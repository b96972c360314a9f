"""The exit camera's motion gate: sensor noise and slow light changes are not motion; a person stepping in is, from
the first frame; a change that turned out not to be a person is absorbed."""

import cv2
import numpy as np

from bingobox.vision.motion import MotionGate
from bingobox_devkit.sim.camera_server import background
from tests.helpers import ROOT


def noisy(frame, rng, sigma=4.0, offset=0.0):
    return np.clip(frame.astype(np.float32) + offset + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def test_noise_and_drifting_light_are_not_motion_but_a_person_is():
    rng = np.random.default_rng(1)
    scene = background(640, 480, 2)
    gate = MotionGate()
    assert gate.moved(noisy(scene, rng))  # the first frame has nothing to compare with: look
    quiet = [gate.moved(noisy(scene, rng, offset=0.3 * i)) for i in range(60)]  # dusk: +18 levels over 4 s
    assert not any(quiet)
    face = cv2.imread(str(ROOT / "tests/data/faces/obama/1.jpg"))
    face = cv2.resize(face, (200, int(200 * face.shape[0] / face.shape[1])))
    person = scene.copy()
    person[100:100 + face.shape[0], 220:420] = face
    assert gate.moved(noisy(person, rng, offset=18))  # the first frame that shows them
    assert gate.moved(noisy(person, rng, offset=18))  # still there: not blended into the background
    gate.absorb(noisy(person, rng, offset=18))  # (had the look found no face)
    assert not gate.moved(noisy(person, rng, offset=18))
    assert gate.frames == 64 and gate.moving == 3


def test_a_person_standing_still_is_looked_at_once_and_where_they_are():
    rng = np.random.default_rng(2)
    scene = background(640, 480, 3)
    gate = MotionGate()
    gate.moved(noisy(scene, rng))
    face = cv2.resize(cv2.imread(str(ROOT / "tests/data/faces/obama/1.jpg")), (200, 250))
    person = scene.copy()
    person[100:350, 220:420] = face
    assert gate.moved(noisy(person, rng)) and not gate.unchanged_since_look()  # never looked at yet
    x0, y0, x1, y1 = gate.box  # where the picture changed: around the face
    assert x0 <= 220 and x1 >= 420 and y0 <= 100 and y1 >= 350 and (x1 - x0) * (y1 - y0) < 0.5 * 640 * 480
    gate.looked()
    for _ in range(5):  # the same person standing there: moved (not the background), but nothing new to look at
        assert gate.moved(noisy(person, rng)) and gate.unchanged_since_look()
    stepped = scene.copy()
    stepped[100:350, 300:500] = face  # they step aside
    assert gate.moved(noisy(stepped, rng)) and not gate.unchanged_since_look()


def test_the_gate_decides_the_same_on_the_cameras_small_grey_decode_of_its_jpegs():
    """An MJPEG camera's frames reach the gate as 1/8-scale grey decodes (``Frame.preview``): the same answers."""
    from bingobox.devices.camera import Frame

    def as_jpeg(img, seq):
        _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return Frame(None, 0.0, seq, jpeg=buf, size=(img.shape[1], img.shape[0]))

    rng = np.random.default_rng(3)
    scene = background(640, 480, 4)
    face = cv2.resize(cv2.imread(str(ROOT / "tests/data/faces/obama/1.jpg")), (200, 250))
    person = scene.copy()
    person[100:350, 220:420] = face
    frames = [noisy(scene, rng, offset=0.3 * i) for i in range(30)] + [noisy(person, rng, offset=9)] * 3
    full, small = MotionGate(), MotionGate()
    for i, img in enumerate(frames):
        f = as_jpeg(img, i + 1)
        assert full.moved(img) == small.moved(f.preview(), f.size), i
        assert f._image is None  # the gate never decoded the whole frame
    x0, y0, x1, y1 = small.box
    assert x0 <= 220 and x1 >= 420 and y0 <= 100 and y1 >= 350 and (x1 - x0) * (y1 - y0) < 0.5 * 640 * 480
    assert full.moving == small.moving == 4


def test_the_background_is_known_empty_only_once_absorbed():
    gate = MotionGate()
    img = np.full((240, 320), 90, np.uint8)
    gate.moved(img)
    assert not gate.background_empty  # a first frame: someone may be in it
    gate.absorb(img)
    assert gate.background_empty
    gate.moved(np.full((100, 320), 90, np.uint8))  # another shape: a new background, unknown again
    assert not gate.background_empty
