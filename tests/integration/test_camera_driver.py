"""The camera driver against the simulator's MJPEG server (the same code path as an IP camera)."""

import time

import cv2
import numpy as np
import pytest
import requests

from bingobox.config import CameraConfig
from bingobox.devices.camera import Camera, _redact
from tests.helpers import Events, wait_until

pytestmark = pytest.mark.integration


def center_mean(img: np.ndarray) -> float:
    h, w = img.shape[:2]
    return float(img[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean())


def test_newest_frame_follows_what_is_shown(fresh_sim, tmp_path):
    white = tmp_path / "white.png"
    cv2.imwrite(str(white), np.full((200, 200, 3), 255, np.uint8))
    ev = Events()
    cam = Camera(CameraConfig(name="door-cam", source=fresh_sim.stream("door-cam")), ev)
    cam.start()
    try:
        f1 = cam.wait_frame(0, timeout=10)
        assert f1 is not None and f1.image.shape == (480, 640, 3)
        before = center_mean(f1.image)
        fresh_sim.act("camera.show", camera="door-cam", image=str(white))
        wait_until(lambda: center_mean(cam.latest().image) > 240, 3, "the white card in the newest frame")
        assert before < 200
        f2 = cam.latest()
        f3 = cam.wait_frame(f2.seq, timeout=2)
        assert f3.seq > f2.seq and f3.t >= f2.t
        st = cam.status()
        assert st["online"] and st["size"] == (640, 480) and st["fps"] and st["fps"] > 5
        assert st["decode_on_demand"] and f3.jpeg is not None and f3.preview().shape == (60, 80)
    finally:
        cam.stop()


def test_decoding_in_the_capture_when_asked_or_when_the_stream_is_not_mjpeg(fresh_sim, tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    cam = Camera(CameraConfig(name="door-cam", source=fresh_sim.stream("door-cam"), decode_on_demand=False),
                 Events())
    cam.start()
    try:
        f = cam.wait_frame(0, timeout=10)
        assert f is not None and f.jpeg is None and f.image.shape == (480, 640, 3) and f.preview() is f.image
        assert not cam.status()["decode_on_demand"]
    finally:
        cam.stop()
    clip = tmp_path / "clip.avi"  # MPEG-4 part 2 over HTTP: its packets are not JPEGs
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(60):
        w.write(np.full((120, 160, 3), i * 4, np.uint8))
    w.release()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler,
                                                                      directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    frames_at: list[int] = []  # frames published before each disconnection

    def on_event(e):
        if e.kind == "disconnected":
            frames_at.append(cam.stats["frames"])

    cam = Camera(CameraConfig(name="ip-cam", source=f"http://127.0.0.1:{httpd.server_address[1]}/clip.avi"),
                 on_event, backoff=(0.05, 0.2))
    cam.start()
    try:
        wait_until(lambda: cam.latest() is not None, 10, "decoded frames after the fallback")
        f = cam.latest()
        assert f.jpeg is None and f.image.shape == (120, 160, 3)
        assert cam._raw_refused and not cam.status()["decode_on_demand"]
        wait_until(lambda: frames_at, 10, "the clip's end (a disconnection)")
        assert frames_at[0] > 0  # the fallback itself opened again without a disconnection
    finally:
        cam.stop()
        httpd.shutdown()
        httpd.server_close()


def test_qr_is_composed_and_snapshot_served(fresh_sim):
    fresh_sim.act("camera.show", camera="door-cam", qr="bingobox:hello")
    time.sleep(0.3)
    r = requests.get(fresh_sim.manifest["devices"]["door-cam"]["snapshot"], timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(img)
    assert text == "bingobox:hello"
    fresh_sim.act("camera.clear", camera="door-cam")


def test_unplugged_camera_reconnects(fresh_sim):
    ev = Events()
    cam = Camera(CameraConfig(name="door-cam", source=fresh_sim.stream("door-cam"), open_timeout_s=1,
                              read_timeout_s=1), ev, backoff=(0.1, 0.5))
    cam.start()
    try:
        ev.wait_for(lambda e: e.kind == "connected", timeout=10)
        fresh_sim.act("fault.unplug", device="door-cam")
        ev.wait_for(lambda e: e.kind == "disconnected", timeout=5)
        assert not cam.status()["online"]
        fresh_sim.act("fault.replug", device="door-cam")
        ev.wait_for(lambda e: e.kind == "connected", after=2, timeout=10)
        seq = cam.latest().seq
        assert cam.wait_frame(seq, timeout=3) is not None
    finally:
        cam.stop()


def test_file_source_loops(tmp_path):
    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (160, 120))
    for i in range(5):
        w.write(np.full((120, 160, 3), i * 40, np.uint8))
    w.release()
    cam = Camera(CameraConfig(name="file", source=str(path), fps=50), Events())
    cam.start()
    try:
        wait_until(lambda: cam.latest() is not None and cam.latest().seq > 12, 5, "looped past the 5 frames")
    finally:
        cam.stop()


def test_missing_source_is_reported_not_raised():
    cam = Camera(CameraConfig(name="none", source="/nonexistent/video.mp4"), Events(), backoff=(0.05, 0.1))
    cam.start()
    try:
        wait_until(lambda: cam.status()["open_failures"] >= 2, 5)
        assert cam.latest() is None and not cam.status()["online"]
    finally:
        cam.stop()


def test_credentials_are_redacted():
    assert _redact("rtsp://admin:secret@10.0.0.5:554/s1") == "rtsp://***@10.0.0.5:554/s1"
    assert _redact("http://127.0.0.1:8481/stream.mjpg") == "http://127.0.0.1:8481/stream.mjpg"
