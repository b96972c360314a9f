"""The exit's face matcher: the picture of someone it matched stays theirs. A crowd demo (33 inside, the ORL faces)
identified a shopper, then looked again at the same frame once they left the candidates and matched a look-alike
among the others (distance 0.52, margin 0.061: inside the rule), whose visit was closed as if they had left."""

import itertools
import threading
import time

import numpy as np

from bingobox.config import VisionConfig
from bingobox.devices.camera import Frame
from bingobox.feeds import FaceSide
from bingobox.vision.faces import Decision
from bingobox.vision.worker import UndecodableFrame


class Cam:
    """15 fps of one picture (a shopper standing at the exit) until stopped."""

    def __init__(self, image):
        self.image, self.seq = image, 0

    def wait_frame(self, after_seq=0, timeout=1.0):
        time.sleep(1 / 15)
        self.seq += 1
        return Frame(self.image, time.time(), self.seq)


class Worker:
    """Matches the picture to the first candidate that is ``who``, else to ``look_alike`` if a candidate."""

    def __init__(self, who, look_alike, unsure_when_open=False):
        self.who, self.look_alike, self.calls, self.opens = who, look_alike, [], []
        self.unsure_when_open = unsure_when_open

    def match(self, frames, inside, roi=None, open_set=False):
        self.calls.append(list(inside))
        self.opens.append(open_set)
        if open_set and self.unsure_when_open:
            return Decision(None, 0.45, 0.1, "unsure_open", self.who)
        for v in (self.who, self.look_alike):
            if v in inside:
                return Decision(v, 0.36 if v == self.who else 0.52, 0.1, "matched", v)
        return Decision(None, 0.7, None, "unsure_distance", None)


class Inbox:
    def __init__(self):
        self.decided, self.events = [], []

    def offer(self, key, ev):
        self.decided.append(ev.decision.match)
        self.events.append(ev)


def run(side, steps):
    t = threading.Thread(target=side._matcher, daemon=True)
    t.start()
    try:
        for step in steps:
            candidates, wait_s, *others = step
            side.set_candidates(candidates, *others)
            time.sleep(wait_s)
    finally:
        side._stop.set()
        t.join(2)


def shopper_at_the_exit():
    img = np.zeros((240, 320, 3), np.uint8)
    img[40:200, 100:220] = 200  # (anything the motion gate sees move in)
    return img


def test_the_same_picture_of_a_matched_shopper_is_not_matched_again_to_someone_else():
    worker, inbox = Worker("v_a", "v_b"), Inbox()
    side = FaceSide(worker, Cam(None), Cam(shopper_at_the_exit()), inbox, VisionConfig())
    # a and b inside; a is identified; a is out (templates forgotten) while their picture is still in front
    run(side, [(["v_a", "v_b"], 0.6), (["v_b"], 0.6)])
    assert inbox.decided and set(inbox.decided) == {"v_a"}
    assert all("v_a" in c for c in worker.calls)  # no look without a at the same picture


def test_a_picture_nobody_matched_is_looked_at_again_when_the_candidates_change():
    # (the shopper's own enrolment finished while they stood there: they are matched then)
    worker, inbox = Worker("v_a", "nobody"), Inbox()
    side = FaceSide(worker, Cam(None), Cam(shopper_at_the_exit()), inbox, VisionConfig())
    run(side, [(["v_c"], 0.6), (["v_c", "v_a"], 0.6)])
    assert inbox.decided[-1] == "v_a" and worker.calls[-1] == ["v_c", "v_a"]


def test_the_open_set_reaches_the_worker_and_a_picture_is_looked_at_again_when_it_closes():
    """Someone inside who is not a candidate (``others``): the worker decides on the open set. The same unsure picture
    is looked at again once everyone inside is a candidate (that someone went out)."""
    worker, inbox = Worker("v_a", "nobody", unsure_when_open=True), Inbox()
    side = FaceSide(worker, Cam(None), Cam(shopper_at_the_exit()), inbox, VisionConfig())
    run(side, [(["v_a"], 0.6, 1), (["v_a"], 0.6, 0)])
    assert worker.opens[0] is True and worker.opens[-1] is False
    assert inbox.decided[0] is None and inbox.decided[-1] == "v_a"
    assert worker.opens.count(True) == 1  # the unchanged picture, the same candidates, still open: no second look


def test_a_match_tells_the_looks_at_them_that_decided_nothing_before_it():
    """Why a door opened late: the looks at the shopper that were unsure (a stranger inside) come with the match, and
    when the first of them was made; the next match starts counting afresh."""
    worker, inbox = Worker("v_a", "nobody", unsure_when_open=True), Inbox()
    side = FaceSide(worker, Cam(None), Cam(shopper_at_the_exit()), inbox, VisionConfig())
    t0 = time.time()
    run(side, [(["v_a"], 0.5, 1), (["v_a", "v_c"], 0.5, 1), (["v_a", "v_c"], 0.5, 0)])
    unsure, _, match = inbox.events
    assert [e.decision.reason for e in inbox.events] == ["unsure_open", "unsure_open", "matched"]
    assert unsure.undecided == {} and unsure.first_look is None  # (told with a match only)
    assert match.undecided == {"unsure_open": 2}
    assert t0 < match.first_look <= unsure.stages["picked"] < match.stages["picked"] - 0.5


class Walking:
    """The shopper walking up: a new picture every frame (the face growing); no face found in the first."""

    def __init__(self):
        self.seq = 0

    def wait_frame(self, after_seq=0, timeout=1.0):
        time.sleep(1 / 15)
        self.seq += 1
        img = np.zeros((240, 320, 3), np.uint8)
        img[40:200, 100 + 10 * min(self.seq, 8) : 220] = 200
        return Frame(img, time.time(), self.seq)


class FoundLate:
    def __init__(self, who):
        self.who, self.looks = who, []

    def match(self, frames, inside, roi=None, open_set=False):
        self.looks.append("shopper")
        if len(self.looks) == 1:
            return Decision(None, None, None, "no_face")
        return Decision(self.who, 0.36, 0.1, "matched", self.who)


def test_looks_that_found_no_face_are_not_told_with_the_match():
    """A look that found no face may have been at the empty exit area just before the shopper stepped in (a demo's
    exits were told of a look at the area the previous shopper had just left): only looks at a face are told."""
    worker, inbox = FoundLate("v_a"), Inbox()
    side = FaceSide(worker, Cam(None), Walking(), inbox, VisionConfig())
    run(side, [(["v_a"], 0.6)])
    assert worker.looks[:2] == ["shopper", "shopper"]  # (the first found no face)
    assert inbox.events[0].decision.reason == "matched" and all(e.undecided == {} for e in inbox.events)


class Seen:
    """Finds no face in an empty picture (all black), else matches ``who`` if a candidate; counts its looks."""

    def __init__(self, who):
        self.who, self.looks = who, []

    def match(self, frames, inside, roi=None, open_set=False):
        empty = not frames[-1].any()
        self.looks.append("empty" if empty else "shopper")
        if empty:
            return Decision(None, None, None, "no_face")
        if self.who not in inside:
            return Decision(None, 0.7, None, "unsure_distance", None)
        return Decision(self.who, 0.36, 0.1, "matched", self.who)


def test_once_the_exit_was_seen_empty_the_empty_picture_is_not_looked_at_after_a_shopper_leaves():
    """Looking at the empty exit area after each shopper left cost up to three detection passes (~180 ms) that the
    next shopper's frames waited behind: the picture the gate learnt empty is not looked at again."""
    worker, inbox = Seen("v_a"), Inbox()
    empty = np.zeros((240, 320, 3), np.uint8)
    cam = Cam(empty)
    side = FaceSide(worker, Cam(None), cam, inbox, VisionConfig())
    t = threading.Thread(target=side._matcher, daemon=True)
    side.set_candidates(["v_a", "v_b"])
    t.start()
    try:
        for image in (empty, shopper_at_the_exit(), empty, shopper_at_the_exit(), empty):
            cam.image = image
            time.sleep(0.5)
    finally:
        side._stop.set()
        t.join(2)
    assert worker.looks == ["empty", "shopper", "shopper"]  # (the first frame: the gate did not know it was empty)
    assert inbox.decided == ["v_a", "v_a"]


def test_a_first_picture_with_someone_in_it_is_not_taken_for_the_empty_exit():
    """The gate's first background is whatever the camera showed first, a shopper maybe: until a look finds the exit
    empty, a picture like it is still looked at when the candidates change."""
    worker, inbox = Seen("v_a"), Inbox()
    side = FaceSide(worker, Cam(None), Cam(shopper_at_the_exit()), inbox, VisionConfig())
    run(side, [(["v_c"], 0.5), (["v_c", "v_a"], 0.5)])
    assert worker.looks == ["shopper", "shopper"]  # looked at again with a among the candidates
    assert inbox.decided == [None, "v_a"]


class Enroller:
    """Every frame passes the gates; records when each assessed frame was taken."""

    def __init__(self):
        self.taken, self.kept = [], None

    def assess(self, visit, frame):
        self.taken.append(time.monotonic())
        return {"ok": True, "candidates": len(self.taken)}

    def commit_enrolment(self, visit, keep=3):
        self.kept = keep
        return {"ok": True, "templates": keep}


class Walk:
    """An entry camera at 15 fps: a new pose every 0.4 s (the demo shows three photos so)."""

    def __init__(self):
        self.seq = 0

    def latest(self):
        return None

    def wait_frame(self, after_seq=0, timeout=1.0):
        time.sleep(1 / 15)
        self.seq += 1
        return Frame(np.zeros((8, 8, 3), np.uint8), time.time(), self.seq)


def test_enrolment_frames_are_spread_over_the_walk_in_not_its_first_frames():
    worker = Enroller()
    side = FaceSide(worker, Walk(), Cam(None), Inbox(), VisionConfig(), enrol_frames=3, enrol_window_s=2.0)
    r = side._enrol("v_a")
    assert r["ok"] and worker.kept == 3
    gaps = [b - a for a, b in itertools.pairwise(worker.taken)]
    assert len(worker.taken) >= 4 and min(gaps) >= 0.3  # one frame every 2.0 / (2 * 3) s
    assert worker.taken[-1] - worker.taken[0] >= 0.9  # (the first three in a row spanned 0.13 s: one pose)


def test_the_templates_kept_are_the_best_that_differ():
    from bingobox.vision.worker import distinct_best

    a, b, c = (np.eye(4)[i] for i in range(3))
    near_a = a + np.array([0, 0, 0, 0.05])
    assert [x.tolist() for x in distinct_best([a, near_a, a * 1.0, b, c], 3)] == [a.tolist(), b.tolist(), c.tolist()]
    kept = distinct_best([a, near_a, b], 3)  # too few that differ: the best of the rest fill up
    assert len(kept) == 3 and kept[2] is near_a


class Garbled(Seen):
    """``Seen``, except that the first ``bad`` pictures do not decode in the face process."""

    def __init__(self, who, bad=1):
        super().__init__(who)
        self.bad = bad

    def match(self, frames, inside, roi=None, open_set=False):
        if self.bad and frames[-1].any():
            self.bad -= 1
            self.looks.append("garbled")
            raise UndecodableFrame("the frame does not decode")
        return super().match(frames, inside, roi, open_set)

    def assess(self, visit, frame):
        self.looks.append("assessed")
        self.match([np.ones((8, 8, 3), np.uint8)], [visit])
        return {"ok": True, "candidates": self.looks.count("shopper")}

    def commit_enrolment(self, visit, keep=3):
        return {"ok": True, "templates": keep}


def test_a_frame_the_face_process_cannot_decode_costs_only_itself(caplog):
    """At the exit the next frame is looked at at once (a worker's failure is logged and pauses the matcher 0.5 s); a
    walk-in goes on being assessed (an error there failed the enrolment)."""
    worker, inbox = Garbled("v_a"), Inbox()
    cam = Cam(np.zeros((240, 320, 3), np.uint8))
    side = FaceSide(worker, Cam(None), cam, inbox, VisionConfig())
    side.set_candidates(["v_a"])
    t = threading.Thread(target=side._matcher, daemon=True)
    t.start()
    try:
        time.sleep(0.3)
        cam.image = shopper_at_the_exit()
        shown = time.monotonic()
        while not inbox.decided and time.monotonic() - shown < 2:
            time.sleep(0.01)
    finally:
        side._stop.set()
        t.join(2)
    assert worker.looks[:3] == ["empty", "garbled", "shopper"] and inbox.decided == ["v_a"]
    assert side.stats["undecodable"] == 1 and "face match failed" not in caplog.text
    entry = Garbled("v_a", bad=2)
    side = FaceSide(entry, Walk(), Cam(None), Inbox(), VisionConfig(), enrol_frames=2, enrol_window_s=1.0)
    r = side._enrol("v_a")
    assert r["ok"] and entry.looks[:3] == ["assessed", "garbled", "assessed"]
