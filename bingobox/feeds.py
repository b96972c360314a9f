"""Threads that watch the cameras and put typed events in the control loop's inbox. They decide nothing: the loop
does. Each sheds load instead of queueing it: it only ever looks at a camera's newest frame, drops frames older
than ``vision.max_frame_age_s``, and offers its result newest-wins (``loop.Inbox.offer``).

``FaceSide`` is the store core's face port (``core.ports.Faces``) over the face worker process: enrolment at the
entrance (several frames of the shopper walking in, best first), the exit matcher, and forgetting templates.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import cv2
import numpy as np

from .config import VisionConfig
from .core.events import CodeSeen, Enrolled, FaceDecided
from .devices.camera import Camera, Frame
from .loop import Inbox
from .metrics import Histogram
from .vision.motion import MotionGate
from .vision.qr import QrReader
from .vision.worker import UndecodableFrame
from .worker import Worker

log = logging.getLogger(__name__)

QR_RESCAN_S = 0.5  # an unchanged picture holding a code, or something like one, is scanned again this often
MAX_CODES_PER_FRAME = 4  # a frame full of codes is not a shopper: the first few are enough


class _Stale:
    """A frame too old to act on (the thread fell behind): skipped, its sequence number consumed."""

    def __init__(self, frame: Frame) -> None:
        self.seq = frame.seq


def _fresh(cam: Camera, seq: int, max_age_s: float, timeout: float = 0.5) -> Frame | _Stale | None:
    """The camera's newest frame after ``seq`` if it is not older than ``max_age_s`` (None otherwise)."""
    frame = cam.wait_frame(seq, timeout=timeout)
    if frame is None:
        return None
    if time.time() - frame.t > max_age_s:
        return _Stale(frame)  # the caller skips it but moves past its seq
    return frame


def qr_scanner(cam: Camera, role: str, inbox: Inbox, stop: threading.Event, max_age_s: float = 1.0,
               timing: Histogram | None = None, budget_ms: float = 80.0) -> None:
    """New frames → QR texts → CodeSeen. A frame is scanned when the picture changed since the last scan, or every
    QR_RESCAN_S while the picture holds a code (it may have been replaced by one the gate cannot tell from it) or
    something code-like (finder patterns) that did not decode yet."""
    reader, seq, gate = QrReader(budget_ms=budget_ms), 0, MotionGate()
    found, last_scan, codelike = False, 0.0, False
    texts: list[str] = []
    stats = {"stale": 0, "undecodable": 0}
    while not stop.is_set():
        frame = _fresh(cam, seq, max_age_s)
        if frame is None:
            continue
        seq = frame.seq
        if isinstance(frame, _Stale):
            stats["stale"] += 1
            continue
        preview = frame.preview()
        if preview is None:
            stats["undecodable"] += 1
            continue
        now = time.monotonic()
        moved, same = gate.moved(preview, frame.size), gate.unchanged_since_look()
        if same and found and now - last_scan < QR_RESCAN_S:  # the same code still held up: it is still there
            # (decoded again every QR_RESCAN_S all the same: two codes of one account share most of their modules,
            # so a fresh code shown in place of a refused one looks "unchanged" to the gate, and was never read)
            for text in texts[:MAX_CODES_PER_FRAME]:
                inbox.offer(f"qr:{role}:{text}", CodeSeen(role, text, frame.t, {"decoded": time.time()}))
            continue
        if (same or not moved) and not found and (not codelike or now - last_scan < QR_RESCAN_S):
            continue  # nothing changed, and the last look found nothing like a code in it
        last_scan = now
        gray = frame.gray()
        if gray is None:  # (not looked at: the gate must not take it for seen)
            stats["undecodable"] += 1
            continue
        gate.looked()
        t0 = time.perf_counter()
        gated = reader.stats["gated_out"]
        texts = reader.decode(gray)
        codelike = reader.stats["gated_out"] == gated  # finder-like shapes were there: worth another look
        decoded = time.time()
        if timing is not None:
            timing.add((time.perf_counter() - t0) * 1000)
        found = bool(texts)
        if not found:
            gate.absorb(preview)  # the next scan waits for a change (or the rescan interval)
        for text in texts[:MAX_CODES_PER_FRAME]:
            inbox.offer(f"qr:{role}:{text}", CodeSeen(role, text, frame.t, {"decoded": decoded}))


def _for_faces(frame: Frame) -> np.ndarray | None:
    """What a face process is sent of a frame: the camera's JPEG as it came (decoded there, in colour), or the
    decoded frame in RGB; None if it does not decode."""
    if frame.jpeg is not None:
        return frame.jpeg
    image = frame.image
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FaceSide:
    """The face worker seen from the store: ``enrol`` / ``forget`` / ``set_candidates`` (the core's port), and the
    exit matcher, which looks only while an enrolled shopper is inside and something moves at the exit."""

    def __init__(self, worker, entry_cam: Camera, exit_cam: Camera, inbox: Inbox, cfg: VisionConfig,
                 enrol_frames: int = 6, enrol_window_s: float = 2.0) -> None:
        self.worker = worker
        self.entry_cam, self.exit_cam = entry_cam, exit_cam
        self.inbox = inbox
        self.cfg = cfg
        self.enrol_frames, self.enrol_window_s = enrol_frames, enrol_window_s
        self._candidates: list[str] = []
        self._open = False  # someone inside is not a candidate: the exit's face may be none of theirs
        self._jobs: collections.deque[tuple[str, str]] = collections.deque()
        self._jobs_cv = threading.Condition()
        self._stop = threading.Event()
        self._workers = [Worker(f"faces-{fn.__name__.strip('_')}", fn, join_s=5, stopping=self._stop)
                         for fn in (self._matcher, self._enroller)]
        self.match_ms = Histogram()
        self.stats = {"matches": 0, "stale": 0, "undecodable": 0, "enrolments": 0, "enrol_dropped": 0,
                      "forgotten": 0}

    # the port ------------------------------------------------------------------------------------------
    def enrol(self, visit_id: str) -> None:
        with self._jobs_cv:
            enrols = [j for j in self._jobs if j[0] == "enrol"]
            if len(enrols) >= 8:  # a rush at the entrance: the oldest waiting enrolment gives way
                self._jobs.remove(enrols[0])
                self.stats["enrol_dropped"] += 1
                self.inbox.put(Enrolled(enrols[0][1], {"ok": False, "reason": "busy"}))
            self._jobs.append(("enrol", visit_id))
            self._jobs_cv.notify()

    def forget(self, visit_id: str) -> None:
        with self._jobs_cv:
            self._jobs.appendleft(("forget", visit_id))  # templates go before anything else is done
            self._jobs_cv.notify()

    def set_candidates(self, visit_ids: list[str], others: int = 0) -> None:
        self._candidates, self._open = list(visit_ids), others > 0

    # lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.worker.start()
        for w in self._workers:
            w.start()

    def stop(self) -> None:
        self._stop.set()
        with self._jobs_cv:
            self._jobs_cv.notify_all()
        for w in self._workers:
            w.stop()
        self.worker.stop()

    @property
    def alive(self) -> bool:
        return self.worker.alive

    # threads ---------------------------------------------------------------------------------------------
    def _matcher(self) -> None:
        seq = 0
        recent: collections.deque[tuple[float, Any]] = collections.deque(maxlen=self.cfg.agree_frames)
        gate = MotionGate()
        nobody = True  # the last look found no face
        matched = False  # the last look matched someone
        looked_for: tuple[list[str], bool] = ([], False)  # whom the last look compared the picture with, open set
        # looks at a face since the last look that found none, that decided nothing: (picked, the nearest shopper or
        # None, why: unsure_open, several_faces …)
        undecided: collections.deque[tuple[float, str | None, str]] = collections.deque(maxlen=64)
        while not self._stop.is_set():
            inside, open_set = self._candidates, self._open
            if not inside:
                recent.clear()
                self._stop.wait(0.1)
                continue
            frame = _fresh(self.exit_cam, seq, self.cfg.max_frame_age_s)
            if frame is None:
                continue
            seq = frame.seq
            if isinstance(frame, _Stale):
                self.stats["stale"] += 1
                continue
            preview = frame.preview()
            if preview is None:
                self.stats["undecodable"] += 1
                continue
            if not gate.moved(preview, frame.size):
                if nobody:
                    continue  # an empty, unchanged exit area: no need to look for faces
                if gate.background_empty:  # the exit area as a look found it empty: whoever was here has left
                    nobody, matched = True, False
                    recent.clear()
                    undecided.clear()
                    gate.looked()  # (decided on: nobody; the next shopper's picture is a change from it)
                    continue
            if gate.unchanged_since_look() and ((inside, open_set) == looked_for or matched):
                # the same picture, the same shoppers inside: the same answer as last time. The same picture of
                # someone it matched is still them whoever else is inside now: once they are out of the candidates
                # (gone through the door, templates forgotten), it must not be matched to the nearest of the others
                continue
            picked = time.time()
            picture = _for_faces(frame)
            if picture is None:
                self.stats["undecodable"] += 1
                continue
            recent.append((frame.t, picture))
            if len(recent) < (recent.maxlen or 1):
                continue
            t0 = time.perf_counter()
            try:
                d = self.worker.match([img for _, img in recent], inside, roi=gate.box, open_set=open_set)
            except UndecodableFrame:  # (its preview decoded, its colour did not: that frame alone is skipped)
                self.stats["undecodable"] += 1
                recent.clear()
                continue
            except Exception as e:
                log.warning("face match failed: %s", e)
                self._stop.wait(0.5)
                continue
            decided = time.time()
            gate.looked()
            looked_for = (inside, open_set)
            self.match_ms.add((time.perf_counter() - t0) * 1000)
            self.stats["matches"] += 1
            self.stats[f"decided_{d.reason}"] = self.stats.get(f"decided_{d.reason}", 0) + 1
            nobody = d.reason == "no_face"
            matched = d.reason == "matched"
            if nobody:  # what changed was not a person (light, a door, a trolley), or not one seen yet: a look
                gate.absorb(preview)  # that found no face may be at the empty area before them, not counted
                undecided.clear()
            else:
                before = [(t, why) for t, near, why in undecided if matched and near in (d.match, None)]
                self.inbox.offer("face", FaceDecided(d, recent[0][0], {"picked": picked, "decided": decided},
                                                     dict(collections.Counter(why for _, why in before)),
                                                     before[0][0] if before else None))
            if matched:  # (their looks are told; the next shopper's count afresh)
                undecided = collections.deque((u for u in undecided if u[1] not in (d.match, None)), maxlen=64)
            elif not nobody:
                undecided.append((picked, d.nearest, d.reason))

    def _enroller(self) -> None:
        while not self._stop.is_set():
            with self._jobs_cv:
                while not self._jobs and not self._stop.is_set():
                    self._jobs_cv.wait(0.5)
                if self._stop.is_set():
                    return
                op, visit_id = self._jobs.popleft()
            try:
                if op == "forget":
                    self.worker.forget(visit_id)
                    self.stats["forgotten"] += 1
                else:
                    self.inbox.put(Enrolled(visit_id, self._enrol(visit_id)))
            except Exception as e:
                log.warning("face worker: %s of %s failed: %s", op, visit_id, e)
                if op == "enrol":
                    self.inbox.put(Enrolled(visit_id, {"ok": False, "reason": f"worker: {e}"}))

    def _enrol(self, visit_id: str) -> dict:
        """Frames of the shopper walking in, one every ``enrol_window_s / (2 * enrol_frames)`` (within
        ``enrol_window_s``), each assessed in the worker until ``enrol_frames`` + 1 pass the gates; the best ones that
        differ become the templates. (The first frames in a row were taken before: three near-copies of one pose, so
        a shopper whose first pose was their least typical fell back to the code at every exit.)"""
        latest = self.entry_cam.latest()
        seq = latest.seq if latest else 0
        deadline = time.monotonic() + self.enrol_window_s
        step = self.enrol_window_s / (2 * self.enrol_frames)
        looked, next_at = 0, 0.0
        while looked < self.enrol_frames * 3 and time.monotonic() < deadline and not self._stop.is_set():
            wait = min(next_at, deadline) - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
                continue
            frame = _fresh(self.entry_cam, seq, self.cfg.max_frame_age_s, timeout=0.3)
            if frame is None or isinstance(frame, _Stale):
                seq = frame.seq if frame is not None else seq
                continue
            seq = frame.seq
            picture = _for_faces(frame)
            if picture is None:
                continue
            looked += 1
            next_at = time.monotonic() + step
            try:
                r = self.worker.assess(visit_id, picture)
            except UndecodableFrame:  # (the walk-in's other frames are still assessed)
                continue
            if r.get("reason") == "several_faces":
                self.worker.discard(visit_id)
                return {**r, "ok": False, "frames": looked}
            if r.get("candidates", 0) > self.enrol_frames:  # one spare: a pose seen twice still leaves three
                break
        self.stats["enrolments"] += 1
        return {**self.worker.commit_enrolment(visit_id, keep=3), "frames": looked}
