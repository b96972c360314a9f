"""Face work in its own process: dlib holds the GIL while it encodes (a thread beside it gets ~10 % of its
normal progress), so the control loop must not share a process with it.

Frames travel over a pipe (memory only, nothing written anywhere). Templates are created, kept and matched
inside the worker and never leave it; ``forget(visit)`` destroys a visit's templates, and if the worker dies
they are all gone (exits fall back to the QR code).

Enrolment takes several frames: each is assessed (``assess``: detection, quality gates, an encoding kept as a
candidate with its quality score) and ``commit_enrolment`` keeps the best few as the visit's templates. Calls are
serialised; the exit's ``match`` goes first whenever it is waiting (``priority``), so an enrolment at the
entrance delays an exit by at most one frame's work.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from dataclasses import asdict

import numpy as np

from .faces import Decision, FaceEngine, Quality, Rule, decide

log = logging.getLogger(__name__)


class WorkerDown(RuntimeError):
    pass


def _wipe(arrays: list[np.ndarray]) -> None:
    for a in arrays:
        a.fill(0.0)  # overwrite before the memory is released


def _serve(conn, engine_kw: dict, rule: Rule, quality: Quality) -> None:
    engine = FaceEngine(quality=quality, **engine_kw)
    templates: dict[str, list[np.ndarray]] = {}
    candidates: dict[str, list[tuple[float, np.ndarray]]] = {}  # visit → (quality, encoding) being enrolled
    conn.send(("ready", None))
    while True:
        try:
            op, kw = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "enrol":
                e = engine.enrol(kw["frame"])
                if e.ok:
                    temps = templates.setdefault(kw["visit"], [])
                    temps.append(e.encoding)
                    del temps[:-kw.get("keep", 3)]
                reply = {"ok": e.ok, "reason": e.reason, "templates": len(templates.get(kw["visit"], [])),
                         **e.detail}
            elif op == "assess":
                e = engine.enrol(kw["frame"])
                if e.ok:
                    cands = candidates.setdefault(kw["visit"], [])
                    cands.append((e.detail["score"], e.encoding))
                    if len(cands) > 12:  # keep the best dozen while more frames come
                        cands.sort(key=lambda c: -c[0])
                        _wipe([c[1] for c in cands[12:]])
                        del cands[12:]
                reply = {"ok": e.ok, "reason": e.reason, "candidates": len(candidates.get(kw["visit"], [])),
                         **{k: v for k, v in e.detail.items() if k != "score"}}
            elif op == "commit_enrolment":
                cands = sorted(candidates.pop(kw["visit"], []), key=lambda c: -c[0])
                keep = [enc for _, enc in cands[: kw.get("keep", 3)]]
                _wipe([enc for _, enc in cands[kw.get("keep", 3):]])
                if keep:
                    old = templates.pop(kw["visit"], [])
                    _wipe(old)
                    templates[kw["visit"]] = keep
                best = cands[0][0] if cands else None
                reply = {"ok": bool(keep), "reason": "enrolled" if keep else kw.get("why", "no_usable_frame"),
                         "templates": len(keep), "best_score": round(best, 3) if best is not None else None}
            elif op == "discard":
                _wipe([enc for _, enc in candidates.pop(kw["visit"], [])])
                reply = {}
            elif op == "match":
                gallery = {v: templates[v] for v in kw["visits"] if templates.get(v)}
                decisions = []
                for frame in kw["frames"]:
                    enc, why, _faces = engine.probe(frame, kw.get("roi"))
                    decisions.append(decide(enc, gallery, rule) if enc is not None
                                     else Decision(None, None, None, why))
                reply = asdict(_agree(decisions, rule))
            elif op == "forget":
                temps = templates.pop(kw["visit"], [])
                _wipe(temps)
                _wipe([enc for _, enc in candidates.pop(kw["visit"], [])])
                reply = {"forgot": len(temps)}
            elif op == "count":
                reply = {"visits": len(templates), "templates": sum(len(t) for t in templates.values())}
            elif op == "stop":
                conn.send(("ok", None))
                return
            else:
                reply = {"error": f"unknown op {op}"}
            conn.send(("ok", reply))
        except Exception as e:  # a bad frame must not kill the worker
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
    return min(matched, key=lambda d: d.distance)


class FaceWorker:
    """Client side of the worker process. Calls are serialised (the exit's matches first); each waits for its
    answer."""

    def __init__(self, rule: Rule | None = None, quality: Quality | None = None, detect_width: int = 320,
                 upsample: int = 0, timeout_s: float = 10.0) -> None:
        self.rule, self.quality = rule or Rule(), quality or Quality()
        self._engine_kw = {"detect_width": detect_width, "upsample": upsample}
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._busy = False
        self._urgent = 0  # priority callers waiting
        self._conn = None
        self.proc: mp.Process | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        ctx = mp.get_context("spawn")  # no fork of a threaded controller
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self._engine_kw, self.rule, self.quality),
                                name="bingobox-faces", daemon=True)
        self.proc.start()
        child.close()
        if not self._conn.poll(timeout_s):
            self.stop()
            raise WorkerDown("face worker did not start")
        self._conn.recv()

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            with self._lock:
                self._conn.send(("stop", {}))
                self._conn.poll(2)
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2)
        self.proc = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def _call(self, op: str, priority: bool = False, **kw) -> dict:
        if not self.alive:
            raise WorkerDown("face worker is not running")
        with self._turn:
            self._urgent += priority
            while self._busy or (not priority and self._urgent):
                self._turn.wait()
            self._urgent -= priority
            self._busy = True
        try:
            with self._lock:
                try:
                    self._conn.send((op, kw))
                    if not self._conn.poll(self.timeout_s):
                        raise WorkerDown(f"face worker gave no answer to {op} in {self.timeout_s}s")
                    status, reply = self._conn.recv()
                except (EOFError, OSError, BrokenPipeError) as e:
                    raise WorkerDown(f"face worker died: {e}") from None
        finally:
            with self._turn:
                self._busy = False
                self._turn.notify_all()
        if status == "error":
            raise ValueError(reply)
        return reply

    def enrol(self, visit: str, frame_rgb: np.ndarray) -> dict:
        """Enrol from one frame at once (a template if it passes the gates)."""
        return self._call("enrol", visit=visit, frame=frame_rgb)

    def assess(self, visit: str, frame_rgb: np.ndarray) -> dict:
        """One frame of a shopper being enrolled: a candidate template if it passes the quality gates."""
        return self._call("assess", visit=visit, frame=frame_rgb)

    def commit_enrolment(self, visit: str, keep: int = 3) -> dict:
        """The best ``keep`` candidates become the visit's templates; the rest are wiped."""
        return self._call("commit_enrolment", visit=visit, keep=keep)

    def discard(self, visit: str) -> None:
        self._call("discard", visit=visit)

    def match(self, frames_rgb: list[np.ndarray], visits: list[str], priority: bool = False,
              roi: tuple[int, int, int, int] | None = None) -> Decision:
        """The exit's decision on these frames against ``visits``' templates; ``roi``: where the picture changed."""
        return Decision(**self._call("match", priority=priority, frames=frames_rgb, visits=visits, roi=roi))

    def forget(self, visit: str) -> int:
        return self._call("forget", visit=visit)["forgot"]

    def count(self) -> dict:
        return self._call("count")
