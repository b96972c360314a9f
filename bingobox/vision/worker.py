"""Face work in processes of its own: dlib holds the GIL while it encodes (a thread beside it gets ~10 % of its
normal progress), so the control loop must not share a process with it.

Two processes, so an enrolment at the entrance never holds up an exit: the *matcher* keeps the templates and
answers the exit camera's ``match``; the *enroller* assesses the frames of shoppers walking in (``assess``:
detection, quality gates, an encoding kept as a candidate with its quality score) and, on ``commit_enrolment``,
hands the best few to the matcher over a pipe of their own — the templates go from one worker to the other and
never through the controller. Frames travel over pipes (memory only, nothing written anywhere). ``forget(visit)``
destroys a visit's templates and candidates; if a worker dies, what it held is gone (exits fall back to the code).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .faces import Decision, FaceEngine, ImpostorScale, Quality, Rule, decide

if TYPE_CHECKING:
    from ..config import VisionConfig

log = logging.getLogger(__name__)
KEEP_CANDIDATES = 12  # while more frames come, the best dozen are kept
SAME_POSE = 0.1  # two candidates nearer than this are one pose seen twice (photos of one person: 0.2–0.6 apart)


def face_worker_for(vc: VisionConfig) -> FaceWorker | None:
    """The face processes a store's ``[vision]`` asks for (None with face billing off), not launched yet."""
    if not vc.faces:
        return None
    return FaceWorker(Rule(vc.face_threshold, vc.face_margin, vc.agree_frames), detect_width=vc.detect_width)


class WorkerDown(RuntimeError):
    pass


class UndecodableFrame(ValueError):
    """A JPEG sent to a face process that does not decode: that frame is skipped, nothing else."""


Picture = np.ndarray  # a frame for a face process: RGB (h, w, 3), or a camera's JPEG as it came (1-D bytes)


def _rgb(picture: Picture) -> np.ndarray:
    """An RGB frame from what the store sent: a JPEG is decoded here, in the face process (the controller then
    neither decodes it in colour nor pipes 0.9 MB for a 640x480 frame: 30-60 KB)."""
    if picture.ndim != 1:
        return picture
    bgr = cv2.imdecode(picture, cv2.IMREAD_COLOR)
    if bgr is None:
        raise UndecodableFrame("the frame does not decode")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _wipe(arrays: list[np.ndarray]) -> None:
    for a in arrays:
        a.fill(0.0)  # overwrite before the memory is released


def distinct_best(best_first: list[np.ndarray], keep: int, apart: float = SAME_POSE) -> list[np.ndarray]:
    """Up to ``keep`` templates from candidates ordered best first: the best, then the next best that differ from
    those chosen by at least ``apart``; if too few differ, the best of the rest fill up."""
    chosen: list[np.ndarray] = []
    for enc in best_first:
        if len(chosen) < keep and all(float(np.linalg.norm(enc - c)) >= apart for c in chosen):
            chosen.append(enc)
    for enc in best_first:
        if len(chosen) < keep and not any(enc is c for c in chosen):
            chosen.append(enc)
    return chosen


def _serve_matcher(conn: Any, from_enroller: Any, engine_kw: dict[str, Any], rule: Rule) -> None:
    engine = FaceEngine(**engine_kw)
    templates: dict[str, list[np.ndarray]] = {}
    scale = ImpostorScale()
    conn.send(("ready", None))
    sources: list[Any] = [conn, from_enroller]
    while True:
        ready: list[Any] = wait(sources)
        for c in ready:
            try:
                op, kw = c.recv()
            except (EOFError, OSError):
                if c is conn:
                    return
                sources.remove(c)  # the enroller died: matching goes on with what is here
                continue
            if c is from_enroller:  # ("templates", {visit, encodings, append, keep})
                old = templates.get(kw["visit"], [])
                scale.enrolled(kw["encodings"], [t for v, t in templates.items() if v != kw["visit"]])
                if kw.get("append"):
                    new = [*old, *kw["encodings"]]
                    _wipe(new[: -kw["keep"]])
                    templates[kw["visit"]] = new[-kw["keep"]:]
                else:
                    _wipe(old)
                    templates[kw["visit"]] = kw["encodings"]
                c.send(("ok", {"templates": len(templates[kw["visit"]])}))
                continue
            try:
                if op == "match":
                    gallery = {v: templates[v] for v in kw["visits"] if templates.get(v)}
                    open_set = bool(kw.get("open"))
                    cohort_pad = scale.median() if open_set else scale.prior
                    decisions = []
                    for frame in kw["frames"]:
                        enc, why, _faces = engine.probe(_rgb(frame), kw.get("roi"))
                        decisions.append(decide(enc, gallery, rule, open_set, cohort_pad) if enc is not None
                                         else Decision(None, None, None, why))
                    reply = asdict(_agree(decisions, rule))
                elif op == "forget":
                    temps = templates.pop(kw["visit"], [])
                    _wipe(temps)
                    reply = {"forgot": len(temps)}
                elif op == "count":
                    reply = {"visits": len(templates), "templates": sum(len(t) for t in templates.values()),
                             "impostor_pairs": len(scale.pairs), "impostor_median": round(scale.median(), 4)}
                elif op == "stop":
                    conn.send(("ok", None))
                    return
                else:
                    reply = {"error": f"unknown op {op}"}
                conn.send(("ok", reply))
            except UndecodableFrame as e:
                conn.send(("undecodable", str(e)))
            except Exception as e:  # a bad frame must not kill the worker
                conn.send(("error", f"{type(e).__name__}: {e}"))


ENROLLER_NICE = 10  # the enroller yields the cores to the exit's matcher (an exit is waited for; an enrolment has
# the shopper's walk-in, about a second, and no one waits at the door for it)


def _serve_enroller(conn, to_matcher, engine_kw: dict, quality: Quality) -> None:
    engine = FaceEngine(quality=quality, **engine_kw)
    try:  # (once its models are loaded: at nice 10 on a busy box its start took ten times as long, and the store
        # waits for it)
        os.nice(ENROLLER_NICE)
    except OSError:  # (not allowed here: it runs at the controller's priority)
        pass
    candidates: dict[str, list[tuple[float, np.ndarray]]] = {}  # visit → (quality, encoding) being enrolled

    def hand_over(visit: str, encodings: list[np.ndarray], append: bool, keep: int) -> int:
        to_matcher.send(("templates", {"visit": visit, "encodings": encodings, "append": append, "keep": keep}))
        _wipe(encodings)  # (the matcher has its own copy now)
        return to_matcher.recv()[1]["templates"]  # acknowledged: a match from now on sees them

    conn.send(("ready", None))
    while True:
        try:
            op, kw = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "enrol":  # one frame, at once: a template if it passes the gates
                e = engine.enrol(_rgb(kw["frame"]))
                n = hand_over(kw["visit"], [e.encoding], True, kw.get("keep", 3)) \
                    if e.ok and e.encoding is not None else 0
                reply = {"ok": e.ok, "reason": e.reason, "templates": n,
                         **{k: v for k, v in e.detail.items() if k != "score"}}
            elif op == "assess":
                e = engine.enrol(_rgb(kw["frame"]), kw.get("roi"))
                if e.ok and e.encoding is not None:
                    cands = candidates.setdefault(kw["visit"], [])
                    cands.append((e.detail["score"], e.encoding))
                    if len(cands) > KEEP_CANDIDATES:
                        cands.sort(key=lambda c: -c[0])
                        _wipe([c[1] for c in cands[KEEP_CANDIDATES:]])
                        del cands[KEEP_CANDIDATES:]
                reply = {"ok": e.ok, "reason": e.reason, "candidates": len(candidates.get(kw["visit"], [])),
                         **{k: v for k, v in e.detail.items() if k != "score"}}
            elif op == "commit_enrolment":
                cands = sorted(candidates.pop(kw["visit"], []), key=lambda c: -c[0])
                keep = distinct_best([enc for _, enc in cands], kw.get("keep", 3))
                _wipe([enc for _, enc in cands if not any(enc is k for k in keep)])
                best = cands[0][0] if cands else None
                n = hand_over(kw["visit"], keep, False, len(keep)) if keep else 0
                reply = {"ok": bool(keep), "reason": "enrolled" if keep else kw.get("why", "no_usable_frame"),
                         "templates": n, "best_score": round(best, 3) if best is not None else None}
            elif op in ("discard", "forget"):
                _wipe([enc for _, enc in candidates.pop(kw["visit"], [])])
                reply = {}
            elif op == "stop":
                conn.send(("ok", None))
                return
            else:
                reply = {"error": f"unknown op {op}"}
            conn.send(("ok", reply))
        except UndecodableFrame as e:
            conn.send(("undecodable", str(e)))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}"))


def _agree(decisions: list[Decision], rule: Rule) -> Decision:
    """Frames must agree: the same shopper matched in ``agree_frames`` frames, and no frame for anyone else."""
    matched = [d for d in decisions if d.reason == "matched"]
    if not matched:
        return decisions[-1] if decisions else Decision(None, None, None, "no_face")
    who = {d.match for d in matched}
    if len(who) > 1:
        return Decision(None, None, None, "frames_disagree")
    if len(matched) < min(rule.agree_frames, len(decisions)):
        return Decision(None, matched[-1].distance, matched[-1].margin, "frames_disagree")
    return min(matched, key=lambda d: d.distance if d.distance is not None else float("inf"))


class _Side:
    """One worker process and the pipe to it (calls on it are serialised; each waits for its answer)."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self.name, self.timeout_s = name, timeout_s
        self.lock = threading.Lock()
        self.conn: Any = None  # (a multiprocessing Connection once started)
        self.proc: Any = None  # (a multiprocessing Process once started)

    def launch(self, ctx: Any, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        """Start the process (``ready`` waits until it has loaded its models)."""
        self.conn, child = ctx.Pipe()
        proc = ctx.Process(target=target, args=(child, *args), name=f"bingobox-{self.name}", daemon=True)
        try:
            proc.start()
        except BaseException:
            self.conn.close()
            raise
        finally:
            child.close()
        self.proc = proc

    def ready(self, timeout_s: float) -> None:
        try:
            if not self.conn.poll(timeout_s):
                raise WorkerDown(f"face {self.name} did not start")
            self.conn.recv()
        except (EOFError, OSError) as e:
            raise WorkerDown(f"face {self.name} died as it started: {e}") from None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def call(self, op: str, **kw: Any) -> dict[str, Any]:
        if not self.alive:
            raise WorkerDown(f"face {self.name} is not running")
        with self.lock:
            try:
                self.conn.send((op, kw))
                if not self.conn.poll(self.timeout_s):
                    raise WorkerDown(f"face {self.name} gave no answer to {op} in {self.timeout_s}s")
                status, reply = self.conn.recv()
            except (EOFError, OSError, BrokenPipeError) as e:
                raise WorkerDown(f"face {self.name} died: {e}") from None
        if status == "undecodable":
            raise UndecodableFrame(reply)
        if status == "error":
            raise ValueError(reply)
        return reply

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            with self.lock:
                self.conn.send(("stop", {}))
                self.conn.poll(2)
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2)
        self.proc = None


class FaceWorker:
    """Client side of the two face processes (the matcher and the enroller)."""

    def __init__(self, rule: Rule | None = None, quality: Quality | None = None, detect_width: int = 320,
                 upsample: int = 0, timeout_s: float = 10.0) -> None:
        self.rule, self.quality = rule or Rule(), quality or Quality()
        self._engine_kw = {"detect_width": detect_width, "upsample": upsample}
        self.matcher = _Side("matcher", timeout_s)
        self.enroller = _Side("enroller", timeout_s)
        self._unlaunchable: WorkerDown | None = None  # (why the processes could not be started)

    def launch(self) -> None:
        """Start both processes without waiting for them (``start`` waits): they load their models at once, and
        while the rest of the store starts (``bingobox run`` launches them before it imports the app)."""
        if self.matcher.proc is not None or self._unlaunchable:
            return  # (launched already, or they cannot be)
        ctx = mp.get_context("spawn")  # no fork of a threaded controller
        a, b = ctx.Pipe()  # enroller → matcher: templates, and the matcher's acknowledgement
        try:  # (each child has its end once started: the parent's copies are closed below)
            self.matcher.launch(ctx, _serve_matcher, (a, self._engine_kw, self.rule))
            self.enroller.launch(ctx, _serve_enroller, (b, self._engine_kw, self.quality))
        except (OSError, ValueError, RuntimeError) as e:  # (no processes to be had: said by ``start``)
            self.stop()
            self._unlaunchable = WorkerDown(f"face processes could not be started: {e}")
        finally:
            a.close()
            b.close()

    def start(self, timeout_s: float = 60.0) -> None:
        """Launched (if not yet) and both ready, or ``WorkerDown`` with neither left running."""
        self.launch()
        if self._unlaunchable:
            raise self._unlaunchable
        deadline = time.monotonic() + timeout_s
        try:
            self.matcher.ready(timeout_s)
            self.enroller.ready(max(0.0, deadline - time.monotonic()))
        except WorkerDown:
            self.stop()
            raise

    def stop(self) -> None:
        self.enroller.stop()
        self.matcher.stop()  # (``start`` launches them again)

    @property
    def alive(self) -> bool:
        return self.matcher.alive and self.enroller.alive

    @property
    def proc(self) -> mp.Process | None:
        """The matcher's process (it holds the templates)."""
        return self.matcher.proc

    def enrol(self, visit: str, frame_rgb: np.ndarray) -> dict:
        """Enrol from one frame at once (a template if it passes the gates)."""
        return self.enroller.call("enrol", visit=visit, frame=frame_rgb)

    def assess(self, visit: str, frame: Picture, roi: tuple[int, int, int, int] | None = None) -> dict:
        """One frame of a shopper being enrolled (RGB, or the camera's JPEG): a candidate template if it passes the
        quality gates."""
        return self.enroller.call("assess", visit=visit, frame=frame, roi=roi)

    def commit_enrolment(self, visit: str, keep: int = 3) -> dict:
        """The best ``keep`` candidates become the visit's templates (in the matcher); the rest are wiped."""
        return self.enroller.call("commit_enrolment", visit=visit, keep=keep)

    def discard(self, visit: str) -> None:
        self.enroller.call("discard", visit=visit)

    def match(self, frames: list[Picture], visits: list[str],
              roi: tuple[int, int, int, int] | None = None, open_set: bool = False) -> Decision:
        """The exit's decision on these frames (RGB, or the camera's JPEGs) against ``visits``' templates; ``roi``:
        where the picture changed; ``open_set``: someone inside is not among ``visits`` (``faces.decide``)."""
        return Decision(**self.matcher.call("match", frames=frames, visits=visits, roi=roi, open=open_set))

    def forget(self, visit: str) -> int:
        if self.enroller.alive:
            try:
                self.enroller.call("forget", visit=visit)
            except WorkerDown as e:
                log.warning("%s", e)
        return self.matcher.call("forget", visit=visit)["forgot"]

    def count(self) -> dict:
        return self.matcher.call("count")
