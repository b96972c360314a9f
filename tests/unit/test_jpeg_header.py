"""The JPEG frame header read without decoding (an MJPEG camera's frames are decoded only when looked at, and one
that claims to be huge is dropped before a decoder allocates for it)."""

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bingobox.config import CameraConfig
from bingobox.devices.camera import Camera, Frame
from bingobox.protocol import jpeg
from tests.helpers import Events


def encoded(w: int, h: int, **params) -> bytes:
    img = np.random.default_rng(w * h).integers(0, 255, (h, w, 3), dtype=np.uint8)
    flags = [v for kv in params.items() for v in (getattr(cv2, kv[0]), kv[1])]
    ok, buf = cv2.imencode(".jpg", img, flags)
    assert ok
    return buf.tobytes()


def with_size(data: bytes, w: int, h: int) -> bytes:
    """The same JPEG with its SOF0 header saying ``w`` × ``h``."""
    i = data.index(b"\xff\xc0")
    return data[: i + 5] + h.to_bytes(2, "big") + w.to_bytes(2, "big") + data[i + 9 :]


def test_the_size_is_read_from_baseline_and_progressive_headers():
    assert jpeg.size(encoded(640, 480)) == (640, 480)
    assert jpeg.size(encoded(17, 3000)) == (17, 3000)
    assert jpeg.size(encoded(320, 240, IMWRITE_JPEG_PROGRESSIVE=1)) == (320, 240)
    assert jpeg.size(memoryview(encoded(64, 48))) == (64, 48)


def test_cut_short_or_not_a_jpeg_is_none_never_an_error():
    data = encoded(64, 48)
    sof = data.index(b"\xff\xc0") + 9
    assert all(jpeg.size(data[:n]) is None for n in range(sof))  # every prefix that ends before the size
    assert jpeg.size(b"") is None and jpeg.size(b"\xff\xd8") is None and jpeg.size(b"GIF89a....") is None
    assert jpeg.size(b"\xff\xd8\xff\xda\x00\x08" + data[20:]) is None  # scan data before any frame header
    assert jpeg.size(with_size(data, 0, 48)) is None  # "height given later": no camera frame does that


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 200))
def test_any_bytes_give_a_size_or_none(tail, cut):
    data = encoded(32, 24)
    for buf in (tail, b"\xff\xd8" + tail, data[:cut] + tail):
        r = jpeg.size(buf)
        assert r is None or (isinstance(r, tuple) and 0 < r[0] <= 0xFFFF and 0 < r[1] <= 0xFFFF)


def test_the_camera_keeps_jpegs_decodes_on_first_look_and_drops_huge_or_broken_ones():
    cam = Camera(CameraConfig(name="c", source="http://127.0.0.1:9/x.mjpg", max_pixels=1920 * 1080), Events())
    data = encoded(640, 480)
    assert cam._publish_jpeg(np.frombuffer(data, np.uint8).reshape(1, -1))
    f = cam.latest()
    assert f.size == (640, 480) and cam.size == (640, 480) and f._image is None  # not decoded yet
    assert f.preview().shape == (60, 80) and f._image is None  # the motion gates' copy: 1/8, grey
    assert f.gray().shape == (480, 640) and f._image is None  # the QR reader's: the luminance alone
    assert f.image.shape == (480, 640, 3) and f.image is f.image  # decoded once
    assert cam._publish_jpeg(np.frombuffer(with_size(data, 8000, 8000), np.uint8))  # 64 MP: dropped undecoded
    assert cam._publish_jpeg(np.frombuffer(b"\xff\xd8\xff\xe0\x00", np.uint8))  # cut short
    padded = data + bytes(3 * 1920 * 1080)  # a right header, more bytes than its allowed pixels could need
    assert cam._publish_jpeg(np.frombuffer(padded, np.uint8))
    assert cam.latest() is f and cam.stats["bad_frames"] == 3
    broken = Frame(None, 0.0, 9, jpeg=np.frombuffer(data[:200], np.uint8), size=(640, 480))
    assert broken.image is None and broken.preview() is None and broken.gray() is None  # counted, skipped


def test_a_stream_whose_first_packet_is_not_a_jpeg_is_decoded_by_the_capture_from_then_on():
    cam = Camera(CameraConfig(name="c", source="http://127.0.0.1:9/x.mp4"), Events())
    assert not cam._publish_jpeg(np.frombuffer(b"\x00\x00\x00\x01\x67" + bytes(50), np.uint8))  # H.264
    assert cam._raw_refused and cam.latest() is None
