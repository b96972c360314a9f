"""Camera driver on OpenCV: any source (V4L2 device, MJPEG/RTSP URL, file, image pattern), a grabber thread
that keeps only the newest frame with its timestamp, open/read timeouts, and reconnect with backoff.
Frames stay in memory; nothing here writes a frame anywhere."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..config import CameraConfig
from ..worker import Backoff, Worker
from .events import DeviceEvent, Listener

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray
    t: float  # wall-clock time the frame was grabbed
    seq: int


def _kind(source: str | int) -> str:
    s = str(source)
    if isinstance(source, int) or s.isdigit() or s.startswith("/dev/"):
        return "device"
    if "://" in s:
        return "stream"
    return "file"


def open_capture(cfg: CameraConfig) -> cv2.VideoCapture:
    """Open the source with an explicit backend (FFmpeg honours the timeouts only when named)."""
    kind = _kind(cfg.source)
    backend = {"v4l2": cv2.CAP_V4L2, "ffmpeg": cv2.CAP_FFMPEG, "images": cv2.CAP_IMAGES}.get(cfg.backend)
    if backend is None:
        backend = {"device": cv2.CAP_V4L2, "stream": cv2.CAP_FFMPEG}.get(kind)
        if backend is None:
            backend = cv2.CAP_IMAGES if "%" in str(cfg.source) else cv2.CAP_FFMPEG
    source = int(cfg.source) if str(cfg.source).isdigit() else cfg.source
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000)]
    cap = cv2.VideoCapture(source, backend, params)
    if cap.isOpened() and backend == cv2.CAP_V4L2:
        if cfg.fourcc:  # ask for MJPG before size/fps, or many UVC cameras fall back to slow YUYV
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*cfg.fourcc))
        if cfg.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        if cfg.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        if cfg.fps:
            cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return cap


class Camera:
    """Grabber: ``latest()`` is always the newest frame; ``wait_frame(after)`` blocks for a newer one."""

    def __init__(self, cfg: CameraConfig, on_event: Listener, opener: Callable[..., Any] = open_capture,
                 backoff: tuple[float, float] = (0.2, 5.0)) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self._emit = on_event
        self._opener = opener
        self._backoff = Backoff(*backoff)
        self._frame: Frame | None = None
        self._cond = threading.Condition()
        self._worker = Worker(f"cam-{cfg.name}", self._run, join_s=cfg.read_timeout_s + 2)
        self._stop = self._worker.stopping
        self.connected = False
        self.last_error: str | None = None
        self.size: tuple[int, int] | None = None
        self.stats = {"frames": 0, "opens": 0, "open_failures": 0, "read_failures": 0, "reconnects": 0}
        self._fps_window: list[float] = []

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._worker.stop()

    def latest(self) -> Frame | None:
        return self._frame

    def wait_frame(self, after_seq: int = 0, timeout: float = 1.0) -> Frame | None:
        """The newest frame with ``seq > after_seq``, waiting up to ``timeout``; None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._frame is None or self._frame.seq <= after_seq:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(left)
            return self._frame

    def status(self) -> dict[str, Any]:
        f = self._frame
        w = self._fps_window
        fps = (len(w) - 1) / (w[-1] - w[0]) if len(w) > 1 and w[-1] > w[0] else None
        return {"kind": "camera", "name": self.name, "source": _redact(self.cfg.source), "online": self.connected,
                "size": self.size, "fps": round(fps, 1) if fps else None,
                "last_frame_age_s": round(time.time() - f.t, 3) if f else None, "last_error": self.last_error,
                **self.stats}

    def _run(self) -> None:
        self._backoff.succeeded()
        file_like = _kind(self.cfg.source) == "file"
        while not self._stop.is_set():
            cap = self._opener(self.cfg)
            if not cap.isOpened():
                cap.release()
                self.stats["open_failures"] += 1
                self.last_error = f"cannot open {_redact(self.cfg.source)}"
                self._stop.wait(self._backoff.failed())
                continue
            self.stats["opens"] += 1
            self.connected = True
            self._emit(DeviceEvent(self.name, "connected", {"source": _redact(self.cfg.source)}))
            self._backoff.succeeded()
            pace = 1.0 / (self.cfg.fps or cap.get(cv2.CAP_PROP_FPS) or 10.0) if file_like else 0.0
            while not self._stop.is_set():
                t0 = time.monotonic()
                ok, image = cap.read()
                if not ok or image is None:
                    if file_like and self.cfg.loop_files and self.stats["frames"] > 0:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        ok, image = cap.read()
                    if not ok or image is None:
                        self.stats["read_failures"] += 1
                        self.last_error = "read failed"
                        break
                self._publish(image)
                if pace:
                    self._stop.wait(max(0.0, pace - (time.monotonic() - t0)))
            cap.release()
            if self.connected:
                self.connected = False
                self.stats["reconnects"] += 1
                if not self._stop.is_set():
                    self._emit(DeviceEvent(self.name, "disconnected", {"error": self.last_error}))
                    log.warning("%s: camera lost (%s), reconnecting", self.name, self.last_error)
            self._stop.wait(self._backoff.first)  # (then each failed open doubles the wait)

    def _publish(self, image: np.ndarray) -> None:
        now = time.time()
        with self._cond:
            seq = self._frame.seq + 1 if self._frame else 1
            self._frame = Frame(image, now, seq)
            self._cond.notify_all()
        self.size = (image.shape[1], image.shape[0])
        self.stats["frames"] += 1
        self._fps_window.append(now)
        if len(self._fps_window) > 30:
            del self._fps_window[0]


def _redact(source: str | int) -> str:
    """Hide credentials in camera URLs (rtsp://user:pass@host → rtsp://***@host)."""
    s = str(source)
    if "://" in s and "@" in s.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = s.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return s
