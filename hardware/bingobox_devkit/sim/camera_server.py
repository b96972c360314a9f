"""A virtual camera: frames composed from an image held up to it (a QR code, a face photo) over a synthetic
store background, served as MJPEG over HTTP (``/stream.mjpg``, ``/snapshot.jpg``) on loopback, the way IP
cameras, mjpg-streamer and ESP32-CAM do. The controller opens it with ``cv2.VideoCapture(url)``."""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from bingobox.simcheck import SIM_HEADER  # on every answer: a controller not set up for the simulator refuses it

from . import SHUTDOWN_POLL_S
from .config import SimCamera

log = logging.getLogger(__name__)
BOUNDARY = "frame"


class ImageError(ValueError):
    """An image to show could not be read."""


def load_image(path: str | Path) -> np.ndarray:
    data = Path(path).read_bytes() if Path(path).is_file() else None
    if data is None:
        raise ImageError(f"no such image file: {path}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError(f"not a readable image (corrupt or unsupported): {path}")
    return img


def qr_image(text: str, scale: int = 8) -> np.ndarray:
    """Render ``text`` as a QR code (with its quiet zone) the way a wallet app shows it."""
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=scale, border=4)
    img = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)
    if img is None:  # pragma: no cover - segno always writes a valid PNG
        raise ImageError("QR rendering failed")
    return img


def finder_squares(width: int = 640, height: int = 480, px: int = 12, seed: int = 3) -> np.ndarray:
    """An adversarial frame for QR decoders: three finder-pattern-like squares in three corners and no code. Their
    spacing suggests a grid of ~230 modules, which no QR version has (it cost 11 s per frame once)."""
    frame = cv2.cvtColor(background(width, height, seed), cv2.COLOR_BGR2GRAY)
    m = px / 7
    sq = np.full((px, px), 255, np.uint8)
    cv2.rectangle(sq, (0, 0), (px - 1, px - 1), 0, -1)
    cv2.rectangle(sq, (int(m), int(m)), (px - 1 - int(m), px - 1 - int(m)), 255, -1)
    cv2.rectangle(sq, (int(2 * m), int(2 * m)), (px - 1 - int(2 * m), px - 1 - int(2 * m)), 0, -1)
    for y, x in ((10, 10), (10, width - 10 - px), (height - 10 - px, 10)):
        frame[y - 3:y + px + 3, x - 3:x + px + 3] = 255
        frame[y:y + px, x:x + px] = sq
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def many_finders(width: int = 640, height: int = 480, px: int = 14, count: int = 24, seed: int = 5) -> np.ndarray:
    """Finder-like squares scattered over the frame: many trios for the grid stage to consider."""
    rng = np.random.default_rng(seed)
    frame = finder_squares(width, height, px, seed)
    one = frame[10:10 + px, 10:10 + px].copy()
    for _ in range(count):
        y, x = int(rng.integers(0, height - px - 6)), int(rng.integers(0, width - px - 6))
        frame[y:y + px + 6, x:x + px + 6] = 255
        frame[y + 3:y + 3 + px, x + 3:x + 3 + px] = one
    return frame


def adversarial_frames() -> list[tuple[str, np.ndarray]]:
    """Frames built to cost a QR decoder the most: three finder-like squares at module sizes of 1 to 3 pixels in
    small to large frames, many finders, noise, a huge and a tiny image (the bound of `bench vision`)."""
    out = []
    for w, h in ((320, 240), (640, 480), (1280, 960), (1920, 1080)):
        for px in (7, 14, 21):
            out.append((f"finders_{w}x{h}_module{px // 7}px", finder_squares(w, h, px)))
    out.append(("many_finders_640x480", many_finders()))
    out.append(("many_finders_1280x960", many_finders(1280, 960, 21, 40)))
    rng = np.random.default_rng(11)
    out.append(("noise_640x480", rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)))
    out.append(("noise_4000x3000", rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)))
    out.append(("tiny_32x24", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)))
    return out


def background(width: int, height: int, seed: int) -> np.ndarray:
    """A plain, deterministic 'store' scene: floor gradient, shelves, a door frame."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    base = (90 + 80 * y) * np.ones((1, width), np.float32)
    img = np.dstack([base * 0.9, base, base * 1.05]).clip(0, 255).astype(np.uint8)
    for _ in range(4):
        x0 = int(rng.integers(0, width - 60))
        cv2.rectangle(img, (x0, height // 5), (x0 + 50, height - height // 5),
                      tuple(int(c) for c in rng.integers(60, 200, 3)), -1)
    cv2.rectangle(img, (width // 4, height // 8), (3 * width // 4, height - 1), (70, 60, 50), 6)
    img += rng.integers(0, 6, img.shape, dtype=np.uint8)
    return img


class VirtualCamera:
    """Produces frames at ``fps`` and serves them to any number of HTTP clients."""

    kind = "camera"

    def __init__(self, cfg: SimCamera, seed: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock  # (a walk's progress: the tests set it)
        self.name = cfg.name
        self.port = cfg.port
        self._bg = background(cfg.width, cfg.height, seed)
        self._shown: np.ndarray | None = None
        self._shown_what: str | None = None
        self._scale = 0.6
        self._walk: tuple[float, float, float] | None = None  # (from scale, over seconds, since: the clock)
        self._jpeg: bytes = b""
        self._seq = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._producer: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None
        self.plugged = False
        self.stats = {"frames": 0, "clients": 0, "served_frames": 0}

    # the physical world ----------------------------------------------------------------------------
    def show(self, image: np.ndarray, what: str, scale: float = 0.6, walk_from: float | None = None,
             walk_s: float = 0.0) -> None:
        """``image`` at ``scale`` of the frame's height, centred; with ``walk_from``: someone walking towards the
        camera, first at that scale and low in the frame's left half, growing to ``scale`` at the centre over
        ``walk_s`` seconds (each frame of the walk differs, as a camera's would)."""
        for x in (scale, walk_from if walk_from is not None else scale):
            if not 0.05 <= x <= 1.0:
                raise ValueError("scale must be within 0.05..1.0 of the frame height")
        if walk_from is not None and not 0 < walk_s <= 10:
            raise ValueError("walk_s must be within 0..10 s")
        walk = (walk_from, walk_s, self._clock()) if walk_from is not None else None
        self._shown, self._shown_what, self._scale, self._walk = image, what, scale, walk

    def clear(self) -> None:
        self._shown, self._shown_what = None, None

    def _where(self) -> tuple[float, float]:
        """(scale, how far along the walk: 0 at its start, 1 at the end or without a walk)."""
        walk = self._walk
        if walk is None:
            return self._scale, 1.0
        start, over, since = walk
        done = min(1.0, (self._clock() - since) / over)
        return start + (self._scale - start) * done, done

    def compose(self, seq: int) -> np.ndarray:
        frame = self._bg.copy()
        img = self._shown
        if img is not None:
            h, w = frame.shape[:2]
            scale, done = self._where()
            target_h = int(h * scale)
            f = min(target_h / img.shape[0], (w * 0.9) / img.shape[1])
            small = cv2.resize(img, (max(1, int(img.shape[1] * f)), max(1, int(img.shape[0] * f))),
                               interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
            y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
            x0 = int(x0 * (0.5 + 0.5 * done))  # (walking in from the left: the centre at the door)
            y0 = int(y0 + (h - small.shape[0] - y0) * 0.5 * (1 - done))
            frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
        cv2.putText(frame, f"{self.name} #{seq}", (8, frame.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        return frame

    # lifecycle -------------------------------------------------------------------------------------
    def plug(self) -> None:
        if self.plugged:
            return
        self._stop.clear()
        self._server = _server(self, self.port)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), name=f"{self.name}-http",
                         daemon=True).start()
        self._producer = threading.Thread(target=self._produce, name=f"{self.name}-frames", daemon=True)
        self._producer.start()
        self.plugged = True

    def unplug(self) -> None:
        if not self.plugged:
            return
        self.plugged = False
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._producer:
            self._producer.join(timeout=2)

    def endpoints(self) -> dict:
        base = f"http://127.0.0.1:{self.port}"
        return {"stream": f"{base}/stream.mjpg", "snapshot": f"{base}/snapshot.jpg", "port": self.port}

    def status(self) -> dict:
        return {"kind": self.kind, "name": self.name, "plugged": self.plugged, "showing": self._shown_what,
                **self.endpoints(), **self.stats}

    def _produce(self) -> None:
        period = 1.0 / self.cfg.fps
        next_t = time.monotonic()
        params = [cv2.IMWRITE_JPEG_QUALITY, self.cfg.quality]
        while not self._stop.is_set():
            seq = self._seq + 1
            ok, jpg = cv2.imencode(".jpg", self.compose(seq), params)
            if ok:
                with self._cond:
                    self._jpeg, self._seq = jpg.tobytes(), seq
                    self._cond.notify_all()
                self.stats["frames"] += 1
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def next_jpeg(self, after: int, timeout: float = 2.0) -> tuple[int, bytes] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq <= after and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return (self._seq, self._jpeg) if self._seq > after else None


def _server(cam: VirtualCamera, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt: str, *args) -> None:  # quiet: clients reconnect often
            log.debug("%s: " + fmt, cam.name, *args)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/snapshot.jpg":
                got = cam.next_jpeg(0)
                if got is None:
                    self.send_error(503, "no frame yet")
                    return
                body = got[1]
                head = (f"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n"
                        f"Cache-Control: no-store\r\n{SIM_HEADER}: 1\r\n\r\n").encode()
                self.wfile.write(head + body)
            elif path == "/stream.mjpg":
                self._stream()
            else:
                self.send_error(404, "try /stream.mjpg or /snapshot.jpg")

        def _stream(self) -> None:
            cam.stats["clients"] += 1
            self.wfile.write((f"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n"
                              f"Cache-Control: no-store\r\nConnection: close\r\n{SIM_HEADER}: 1\r\n\r\n").encode())
            seq = 0
            with contextlib.suppress(OSError):
                while cam.plugged:
                    got = cam.next_jpeg(seq)
                    if got is None:
                        continue
                    seq, jpg = got
                    part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
                            ).encode() + jpg + b"\r\n"
                    self.wfile.write(part)
                    cam.stats["served_frames"] += 1

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    return srv
