"""The entry camera's QR feed: a code replaced in place by another (the wallet app refreshing its code on the same
phone, held still) is read as the new code, although the motion gate's small blurred copy of the two pictures is
the same: two codes of one account share most of their text, so most of their modules (a CI run found it: a
shopper whose code was refused as used showed a fresh one, and the store kept reading the old one)."""

import threading
import time

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bingobox import feeds
from bingobox.devices.camera import Frame
from bingobox.domain import tokens
from bingobox_devkit.sim.camera_server import VirtualCamera, qr_image
from bingobox_devkit.sim.config import SimCamera


def frame_of(text: str) -> np.ndarray:
    """The simulated entry camera's frame of a phone showing ``text`` (as the harness shows a code)."""
    cam = VirtualCamera(SimCamera(name="door-cam"), seed=1)
    cam.show(qr_image(text), text, scale=0.6)
    return cam.compose(1)


class Cam:
    """Frames at 15 fps: ``first`` for a second, then ``then`` for a second; the feed stops after the last."""

    def __init__(self, first, then, stop):
        self.frames = [first] * 15 + [then] * 15
        self.stop, self.seq = stop, 0

    def wait_frame(self, after_seq=0, timeout=1.0):
        if self.seq >= len(self.frames):
            self.stop.set()
            return None
        time.sleep(1 / 15)
        self.seq += 1
        return Frame(self.frames[self.seq - 1], time.time(), self.seq)


class Inbox:
    def __init__(self):
        self.texts = []

    def offer(self, key, ev):
        self.texts.append(ev.text)


def test_a_code_replaced_in_place_by_another_is_read_as_the_new_one():
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # (fixed: about one pair in six looks the same)
    a, b = (tokens.issue(key, "k1", "acc_4e1addbf214e1564", "demo-store", "entrance", 1796595286 + 3 * i, 60, True,
                         jti=f"jti-{'ab'[i]}-{3:016d}") for i in (0, 1))
    fa, fb = frame_of(a), frame_of(b)
    from bingobox.vision.motion import MotionGate
    gate = MotionGate()
    gate.moved(fa)
    gate.looked()
    gate.moved(fb)
    assert gate.unchanged_since_look()  # (the gate alone cannot tell them apart: why the feed looks again)
    stop, inbox = threading.Event(), Inbox()
    feeds.qr_scanner(Cam(fa, fb, stop), "entry", inbox, stop)
    assert a in inbox.texts and b in inbox.texts
    assert inbox.texts[-1] == b
