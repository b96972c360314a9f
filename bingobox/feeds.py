"""Threads that watch the cameras and the exit reader and put what they see on the control loop's queue.
They decide nothing: the loop does."""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable

import cv2

from .devices.camera import Camera
from .devices.rfid import RfidReader
from .metrics import Histogram
from .vision.motion import MotionGate
from .vision.qr import QrReader

log = logging.getLogger(__name__)


QR_RESCAN_S = 0.5  # an unchanged picture is scanned again this often (a code held still that failed once)


def qr_scanner(cam: Camera, role: str, q: queue.Queue, stop: threading.Event) -> None:
    """New frames → QR texts → ("qr", role, text, frame time). A frame is scanned when the picture changed since
    the last scan that found nothing (``vision.motion``), when the last scan found a code, or every QR_RESCAN_S."""
    reader, seq, gate = QrReader(), 0, MotionGate()
    found, last_scan = False, 0.0
    while not stop.is_set():
        frame = cam.wait_frame(seq, timeout=0.5)
        if frame is None:
            continue
        seq = frame.seq
        now = time.monotonic()
        if not gate.moved(frame.image) and not found and now - last_scan < QR_RESCAN_S:
            continue
        last_scan = now
        texts = reader.decode(frame.image)
        found = bool(texts)
        if not found:
            gate.absorb(frame.image)  # the next scan waits for a change (or the rescan interval)
        for text in texts:
            q.put(("qr", role, text, frame.t))


def face_matcher(cam: Camera, faces, candidates: Callable[[], list[str]], q: queue.Queue, stop: threading.Event,
                 timing: Histogram, agree_frames: int = 1) -> None:
    """The exit camera's newest frames → the face worker, only while someone enrolled is inside → ("face", ...).
    With ``agree_frames`` > 1 the last that many frames go together and must agree on the shopper. Frames are
    skipped while nothing moves and the last look found no face (``vision.motion``)."""
    seq = 0
    recent: collections.deque = collections.deque(maxlen=agree_frames)
    gate = MotionGate()
    nobody = True  # the last look found no face
    while not stop.is_set():
        inside = candidates()
        if not inside:
            stop.wait(0.1)
            continue
        frame = cam.wait_frame(seq, timeout=0.5)
        if frame is None:
            continue
        seq = frame.seq
        if not gate.moved(frame.image) and nobody:
            continue  # an empty, unchanged exit area: no need to look for faces
        recent.append(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
        if len(recent) < recent.maxlen:
            continue
        t0 = time.perf_counter()
        try:
            d = faces.match(list(recent), inside)
        except Exception as e:
            log.warning("face match failed: %s", e)
            stop.wait(0.5)
            continue
        timing.add((time.perf_counter() - t0) * 1000)
        nobody = d.reason == "no_face"
        if nobody:
            gate.absorb(frame.image)  # what changed was not a person (light, a door, a trolley)
        else:
            q.put(("face", d, frame.t))


def enrol(cam: Camera, faces, visit_id: str, frames: int, q: queue.Queue, stop: threading.Event) -> None:
    """Enrol a consenting shopper from the entry camera's next frames (off the entry's critical path)."""
    latest = cam.latest()
    seq = latest.seq if latest else 0
    result: dict = {"ok": False, "reason": "no_frame"}
    for _ in range(frames * 3):
        frame = cam.wait_frame(seq, timeout=1.0)
        if frame is None or stop.is_set():
            break
        seq = frame.seq
        try:
            result = faces.enrol(visit_id, cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
        except Exception as e:
            result = {"ok": False, "reason": f"worker: {e}"}
            break
        if result.get("ok") or result.get("reason") == "several_faces":
            break
    q.put(("enrolled", visit_id, result))


def exit_inventory(reader: RfidReader, visit_id: str, since: float, q: queue.Queue) -> None:
    """What is in the exit area once the reader has looked at it since the shopper was seen → ("basket", ...)."""
    epcs: set[str] | None = None
    if reader.status()["online"] and reader.wait_rounds_since(since, 2, timeout=1.0):
        epcs = set(reader.present())
    else:
        try:
            epcs = reader.bounded_inventory(rounds=30, stable_rounds=5, timeout=3)
        except TimeoutError as e:
            log.warning("exit reader: %s", e)
    q.put(("basket", visit_id, epcs))
