"""QR decoding on the 86 photographed codes (exact text), synthetic frames from the simulator's camera, several
codes, inverted codes and frames without a code."""

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
from pyzbar import pyzbar

from bingobox.vision.qr import QrReader
from bingobox_devkit.sim.camera_server import background, qr_image
from tests.helpers import ROOT


def expected(testdata):
    with open(testdata / "qr/expected.csv", newline="", encoding="utf-8") as f:
        return {r["file"]: r["text"] for r in csv.DictReader(f)}


def test_read_rate_on_photographs(testdata):
    exp = expected(testdata)
    reader = QrReader(budget_ms=None)  # what it can read, not what a busy machine allows
    ours = plain = 0
    missed = []
    for name, text in exp.items():
        img = cv2.imread(str(testdata / "qr" / name))
        got = reader.decode(img)
        ours += text in got
        if text not in got:
            missed.append(name)
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        plain += text in [s.data.decode("utf-8", "replace") for s in pyzbar.decode(gray)]
    print(f"\nQR photographs: read {ours}/{len(exp)} ({100 * ours / len(exp):.1f} %) exactly; plain pyzbar "
          f"{plain}/{len(exp)} ({100 * plain / len(exp):.1f} %); missed: {missed}; stages: {reader.stats}")
    assert len(exp) == 86
    assert ours >= 84 and ours > plain  # the goal: ≥ 97 % (measured: 86/86)
    assert reader.stats["gated_out"] == 0  # every photo holds a code: none may be dropped by the cheap gate


def test_codes_on_a_wrinkled_shirt(testdata):
    """The 20 zxing 't-shirt' photos: low light, a code printed on fabric with folds. Plain zbar reads 14, zxing-cpp
    15; the last four need the module grid bent to follow the fabric (``qr_grid.refine``)."""
    exp = expected(testdata)
    reader = QrReader(budget_ms=None)  # what it can read, not what a busy machine allows
    names = [f"zxing_qrcode-4_{i}.png" for i in range(15, 35)]
    read = [n for n in names if exp[n] in reader.decode(cv2.imread(str(testdata / "qr" / n)))]
    print(f"\nt-shirt photos: {len(read)}/{len(names)}; stages: {reader.stats}")
    assert read == names


def test_codes_in_simulated_camera_frames():
    reader = QrReader(budget_ms=None)  # what it can read, not what a busy machine allows
    bg = background(640, 480, 3)
    for text, scale in (("bbx entry code 1", 0.3), ("https://example.com/" + "x" * 200, 0.7)):
        code = qr_image(text)
        f = min(480 * scale / code.shape[0], 1e9)
        small = cv2.resize(code, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        frame = bg.copy()
        frame[20 : 20 + small.shape[0], 30 : 30 + small.shape[1]] = small
        assert reader.decode(frame) == [text]


def test_several_codes_and_an_inverted_code():
    reader = QrReader(budget_ms=None)  # what it can read, not what a busy machine allows
    frame = np.full((480, 900, 3), 255, np.uint8)
    a, b = qr_image("first", scale=5), qr_image("second", scale=5)
    frame[10 : 10 + a.shape[0], 10 : 10 + a.shape[1]] = a
    frame[10 : 10 + b.shape[0], 450 : 450 + b.shape[1]] = b
    assert sorted(reader.decode(frame)) == ["first", "second"]
    inverted = 255 - qr_image("dark mode wallet", scale=6)
    canvas = np.zeros((400, 400, 3), np.uint8)
    canvas[20 : 20 + inverted.shape[0], 20 : 20 + inverted.shape[1]] = inverted
    assert reader.decode(canvas) == ["dark mode wallet"]


def test_frames_without_a_code_stop_at_the_gate(testdata):
    reader = QrReader(budget_ms=None)  # what it can read, not what a busy machine allows
    frames = [background(640, 480, s) for s in range(5)]
    frames.append(cv2.resize(cv2.imread(str(testdata / "faces/obama/1.jpg")), (640, 480)))
    for f in frames:
        assert reader.decode(f) == []
    assert reader.stats["gated_out"] == len(frames)


def test_cli_prints_one_json_line_per_image(testdata, tmp_path):
    bad = tmp_path / "truncated.png"
    bad.write_bytes((testdata / "qr/zxing_qrcode-1_1.png").read_bytes()[:500])
    r = subprocess.run([sys.executable, "-m", "bingobox", "vision", "qr", str(testdata / "qr/zxing_qrcode-1_1.png"),
                        str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["texts"] == ["MEBKM:URL:http\\://en.wikipedia.org/wiki/Main_Page;;"] and lines[0]["ms"] > 0
    assert "error" in lines[1] and r.returncode == 1


def test_finder_like_squares_cost_a_bounded_number_of_decoder_calls(monkeypatch):
    """The adversarial frame (three small squares in the corners) once sent the grid stage to n ≈ 230 modules
    and 11 s per frame. Counted, not timed: no grid is tried and pyzbar is called a bounded number of times."""
    from bingobox.vision import qr
    from bingobox_devkit.sim.camera_server import finder_squares

    frame = finder_squares()
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert len(qr._finders(gray)) >= 3 and list(qr.candidate_grids(qr._finders(gray))) == []
    calls = []
    real = qr.pyzbar.decode
    monkeypatch.setattr(qr.pyzbar, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    reader = QrReader(budget_ms=None)  # what it can read, not what a busy machine allows
    assert reader.decode(frame) == [] and reader.stats["grids"] == 0 and len(calls) <= 16
    calls.clear()
    spent = QrReader(budget_ms=0)  # a frame past its budget stops at the next stage
    assert spent.decode(frame) == [] and spent.stats["over_budget"] == 1 and len(calls) == 1


def test_a_frame_larger_than_max_side_is_scaled_down_first():
    big = cv2.resize(np.dstack([background(640, 480, 1)] * 1)[..., :3], (2560, 1920))
    code = cv2.resize(qr_image("bbx-big-frame"), (800, 800), interpolation=cv2.INTER_NEAREST)
    big[500:1300, 800:1600] = code
    reader = QrReader(max_side=1280, budget_ms=None)
    assert reader.decode(big) == ["bbx-big-frame"] and reader.stats["scaled"] == 1
