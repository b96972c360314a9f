"""Camera driver on OpenCV: any source (V4L2 device, MJPEG/RTSP URL, file, image pattern), a grabber thread
that keeps only the newest frame with its timestamp, open/read timeouts, and reconnect with backoff.
From an MJPEG stream it keeps each frame's JPEG as it came (FFmpeg's raw packets) and decodes it when first looked
at: a store's cameras mostly watch an empty doorway, and their motion gates look at a 1/8-scale grey decode
(libjpeg's own scaling, about a third of a full decode). Frames stay in memory; nothing here writes one anywhere."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..config import CameraConfig
from ..protocol import jpeg
from ..worker import Backoff, Worker
from .events import DeviceEvent, Listener

log = logging.getLogger(__name__)


class Frame:
    """One grabbed frame: ``t`` the wall-clock time it was grabbed, ``seq`` its number. Either decoded already
    (``image`` given) or a JPEG decoded on first use; ``image``, ``gray()`` and ``preview()`` are None for a JPEG
    that does not decode (counted by the camera's consumers, never passed on)."""

    __slots__ = ("_gray", "_image", "_lock", "_preview", "jpeg", "seq", "size", "t")

    def __init__(self, image: np.ndarray | None, t: float, seq: int, jpeg: np.ndarray | None = None,
                 size: tuple[int, int] | None = None) -> None:
        self.t, self.seq, self.jpeg = t, seq, jpeg
        self._image: np.ndarray | None = image
        self._gray: np.ndarray | None = None
        self._preview: np.ndarray | None = None
        self.size = size or ((image.shape[1], image.shape[0]) if image is not None else None)
        self._lock = threading.Lock() if jpeg is not None else None

    @property
    def image(self) -> np.ndarray | None:
        """The frame in BGR (decoded once, whichever consumer asks first)."""
        if self._image is None and self._lock is not None:
            with self._lock:
                if self._image is None:
                    self._image = _decode(self.jpeg, cv2.IMREAD_COLOR)
        return self._image

    def gray(self) -> np.ndarray | None:
        """The frame in grey at full size (what the QR reader wants): from a JPEG, its luminance alone is decoded
        (half the cost of colour and a conversion)."""
        if self._gray is None:
            if self._lock is None or self._image is not None:
                image = self.image
                self._gray = None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            else:
                self._gray = _decode(self.jpeg, cv2.IMREAD_GRAYSCALE)
        return self._gray

    def preview(self) -> np.ndarray | None:
        """A small copy for motion gates: grey at 1/8 scale from a JPEG (decoded at that scale, ~0.3 ms), else the
        decoded frame itself (the gate shrinks it)."""
        if self._lock is None:
            return self._image
        if self._preview is None:  # (from the JPEG even once decoded in full: a gate compares like with like)
            self._preview = _decode(self.jpeg, cv2.IMREAD_REDUCED_GRAYSCALE_8)
        return self._preview


def _decode(jpeg: np.ndarray | None, flags: int) -> np.ndarray | None:
    if jpeg is None:
        return None
    try:
        return cv2.imdecode(jpeg, flags)
    except cv2.error:
        return None


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
        self.stats = {"frames": 0, "opens": 0, "open_failures": 0, "read_failures": 0, "reconnects": 0,
                      "bad_frames": 0}
        self.raw = False  # the current connection keeps JPEGs (decode on demand)
        self._raw_refused = False  # this source's packets were not JPEGs: decode in the capture from now on
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
                "size": self.size, "fps": round(fps, 1) if fps else None, "decode_on_demand": self.raw,
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
            self.raw = self._want_raw(cap)
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
                if self.raw:
                    if not self._publish_jpeg(image):  # not an MJPEG stream after all: opened again at once,
                        cap.release()  # decoded by the capture (not a disconnection: nothing was lost)
                        cap, self.raw = self._opener(self.cfg), False
                        if not cap.isOpened():
                            self.last_error = f"cannot open {_redact(self.cfg.source)}"
                            break
                        continue
                else:
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

    def _want_raw(self, cap: Any) -> bool:
        """Ask FFmpeg for the stream's packets as they are (an MJPEG stream's are JPEGs); must precede the first
        read. Streams only: files loop by seeking, and V4L2 devices are decoded by the capture."""
        if not self.cfg.decode_on_demand or self._raw_refused or _kind(self.cfg.source) != "stream":
            return False
        try:
            return cap.getBackendName() == "FFMPEG" and bool(cap.set(cv2.CAP_PROP_FORMAT, -1))
        except (cv2.error, AttributeError):  # (a capture without backends: decoded as it gives them)
            return False

    def _publish_jpeg(self, packet: np.ndarray) -> bool:
        """Keep a packet that is a JPEG of an allowed size; False if the stream's packets are not JPEGs (an H.264
        stream: the caller opens it again, decoded by the capture). A bad or oversized JPEG is dropped: one that
        says it is larger than ``max_pixels``, or whose bytes outnumber those of its pixels undecoded."""
        data = packet.reshape(-1)
        if data.size > 3 * self.cfg.max_pixels:  # (no JPEG of an allowed size is that long: not copied, not kept)
            self.stats["bad_frames"] += 1
            self.last_error = f"bad frame ({data.size} bytes)"
            return True
        if data.dtype != np.uint8 or bytes(data[:2]) != jpeg.SOI:
            if self.stats["frames"] == 0:
                self._raw_refused = True
                self.last_error = "not an MJPEG stream: decoding in the capture"
                log.info("%s: %s", self.name, self.last_error)
                return False
            self.stats["bad_frames"] += 1
            return True
        size = jpeg.size(data[:65536].data)
        if size is None or size[0] * size[1] > self.cfg.max_pixels:
            self.stats["bad_frames"] += 1
            self.last_error = f"bad frame (size {size})"
            return True
        self._publish(None, data.copy(), size)
        return True

    def _publish(self, image: np.ndarray | None, data: np.ndarray | None = None,
                 size: tuple[int, int] | None = None) -> None:
        now = time.time()
        with self._cond:
            seq = self._frame.seq + 1 if self._frame else 1
            self._frame = Frame(image, now, seq, jpeg=data, size=size)
            self._cond.notify_all()
        self.size = self._frame.size
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
