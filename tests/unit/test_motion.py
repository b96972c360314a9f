"""The exit camera's motion gate: sensor noise and slow light changes are not motion; a person stepping in is, from
the first frame; a change that turned out not to be a person is absorbed."""

import cv2
import numpy as np

from bingobox.vision.motion import MotionGate
from hardware.sim.camera_server import background
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
