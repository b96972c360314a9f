"""Face work in its own process: dlib holds the GIL while it encodes (a thread beside it gets ~10 % of its
normal progress), so the control loop must not share a process with it.

Frames travel over a pipe (memory only, nothing written anywhere). Templates are created, kept and matched
inside the worker and never leave it; ``forget(visit)`` destroys a visit's templates, and if the worker dies
they are all gone (exits fall back to the QR code).
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


def _serve(conn, engine_kw: dict, rule: Rule, quality: Quality) -> None:
    engine = FaceEngine(quality=quality, **engine_kw)
    templates: dict[str, list[np.ndarray]] = {}
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
            elif op == "match":
                gallery = {v: templates[v] for v in kw["visits"] if templates.get(v)}
                decisions = []
                for frame in kw["frames"]:
                    enc, why, _faces = engine.probe(frame)
                    decisions.append(decide(enc, gallery, rule) if enc is not None
                                     else Decision(None, None, None, why))
                reply = asdict(_agree(decisions, rule))
            elif op == "forget":
                temps = templates.pop(kw["visit"], [])
                for t in temps:
                    t.fill(0.0)  # overwrite before the memory is released
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
    """Client side of the worker process. Calls are serialised; each waits for its answer."""

    def __init__(self, rule: Rule | None = None, quality: Quality | None = None, detect_width: int = 320,
                 upsample: int = 0, timeout_s: float = 10.0) -> None:
        self.rule, self.quality = rule or Rule(), quality or Quality()
        self._engine_kw = {"detect_width": detect_width, "upsample": upsample}
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
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

    def _call(self, op: str, **kw) -> dict:
        if not self.alive:
            raise WorkerDown("face worker is not running")
        with self._lock:
            try:
                self._conn.send((op, kw))
                if not self._conn.poll(self.timeout_s):
                    raise WorkerDown(f"face worker gave no answer to {op} in {self.timeout_s}s")
                status, reply = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as e:
                raise WorkerDown(f"face worker died: {e}") from None
        if status == "error":
            raise ValueError(reply)
        return reply

    def enrol(self, visit: str, frame_rgb: np.ndarray) -> dict:
        return self._call("enrol", visit=visit, frame=frame_rgb)

    def match(self, frames_rgb: list[np.ndarray], visits: list[str]) -> Decision:
        return Decision(**self._call("match", frames=frames_rgb, visits=visits))

    def forget(self, visit: str) -> int:
        return self._call("forget", visit=visit)["forgot"]

    def count(self) -> dict:
        return self._call("count")
