"""Faces on the real photographs: the exit decision rule with 10 shoppers inside and people who are not enrolled
walking out (0 wrong-person decisions, ≤ 3 % genuine shoppers sent to the QR fallback), quality gates, bad files,
and the worker process that keeps templates in its own memory."""

import collections
import csv
import json
import random
import subprocess
import sys

import cv2
import numpy as np
import pytest

from bingobox.vision.faces import FaceEngine, ImageReadError, Rule, decide, read_rgb
from bingobox.vision.worker import FaceWorker, WorkerDown
from hardware.sim.camera_server import background
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def engine():
    return FaceEngine()


@pytest.fixture(scope="module")
def photos(testdata, engine):
    """identity → [(file, enrolable?, encoding)] computed with the exit's own detection and encoding path."""
    out = collections.defaultdict(list)
    with open(testdata / "faces/manifest.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] == "identity"]
    for r in rows:
        rgb = read_rgb(str(testdata / "faces" / r["file"]))
        enc, _why, _ = engine.probe(rgb)
        if enc is None:
            continue
        out[r["identity"]].append((r["file"], engine.enrol(rgb).ok, enc))
    return out


def simulate(photos, rule, draws, seed):
    rng = random.Random(seed)
    ids = sorted(photos)
    can_enrol = [i for i in ids if len(photos[i]) >= 2 and any(ok for _, ok, _ in photos[i])]
    wrong = fallback = genuine = outsiders = 0
    for _ in range(draws):
        inside = rng.sample(can_enrol, 10)
        gallery, held = {}, {}
        for who in inside:
            enrolable = [p for p in photos[who] if p[1]]
            first = rng.choice(enrolable)
            gallery[who] = [first[2]]
            held[who] = rng.choice([p for p in photos[who] if p is not first])[2]
        who = rng.choice(inside)  # a shopper leaves
        d = decide(held[who], gallery, rule)
        genuine += 1
        fallback += d.match is None
        wrong += d.match is not None and d.match != who
        stranger = rng.choice([i for i in ids if i not in inside])  # someone not enrolled leaves
        d = decide(rng.choice(photos[stranger])[2], gallery, rule)
        outsiders += 1
        wrong += d.match is not None
    return wrong, fallback / genuine, genuine + outsiders


def test_exit_rule_on_the_photographs(photos):
    n_photos = sum(len(v) for v in photos.values())
    wrong, fallback, decisions = simulate(photos, Rule(), draws=2000, seed=1)
    lib_wrong, lib_fallback, _ = simulate(photos, Rule(threshold=0.6, margin=0.0), draws=2000, seed=1)
    print(f"\nfaces: {n_photos} photos, {len(photos)} identities; {decisions} exit decisions with 10 inside: "
          f"wrong-person {wrong}, genuine sent to QR fallback {100 * fallback:.1f} % "
          f"(library rule 'nearest within 0.6': wrong {lib_wrong}, fallback {100 * lib_fallback:.1f} %)")
    assert wrong == 0
    assert fallback <= 0.03


def test_no_face_and_several_faces_give_clear_answers(testdata, engine):
    for f in sorted((testdata / "faces/no_face").iterdir()):
        rgb = read_rgb(str(f))
        assert engine.probe(rgb)[1] == "no_face"
        assert engine.enrol(rgb).reason == "no_face"
    answers = {f.name: engine.probe(read_rgb(str(f)))[1:] for f in sorted((testdata / "faces/multi_face").iterdir())}
    # measured with the 320-px detector: two comparable faces are refused; a far-away second face (kit_with_rose) is
    # ignored, so the near one is matched; a crowd of small faces (multiface_friends) is not found at all
    assert answers == {"obama_and_biden.jpg": ("several_faces", 2), "two_people.jpg": ("several_faces", 2),
                       "kit_with_rose.jpg": ("ok", 1), "multiface_friends.jpg": ("no_face", 0)}
    assert engine.enrol(read_rgb(str(testdata / "faces/multi_face/obama_and_biden.jpg"))).reason == "several_faces"


def test_enrolment_quality_gates(testdata, engine):
    rgb = read_rgb(str(testdata / "faces/obama/1.jpg"))
    ok = engine.enrol(rgb)
    assert ok.ok and ok.encoding.shape == (128,) and ok.detail["face_px"] > 80
    tiny = cv2.resize(rgb, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)
    assert engine.enrol(tiny).reason in ("too_small", "no_face")
    blurred = cv2.GaussianBlur(rgb, (0, 0), 6)
    assert engine.enrol(blurred).reason in ("blurred", "no_face")


def test_corrupt_and_truncated_files(testdata, tmp_path):
    trunc = tmp_path / "t.jpg"
    trunc.write_bytes((testdata / "faces/obama/1.jpg").read_bytes()[:2000])
    junk = tmp_path / "j.jpg"
    junk.write_bytes(b"\xff\xd8 not really a jpeg")
    for p in (trunc, junk, tmp_path / "missing.jpg"):
        with pytest.raises(ImageReadError):
            read_rgb(str(p))


def test_cli_faces(testdata, tmp_path):
    gallery = tmp_path / "gallery"
    for who, f in (("obama", "obama/1.jpg"), ("biden", "biden/1.jpg")):
        (gallery / who).mkdir(parents=True)
        (gallery / who / "1.jpg").write_bytes((testdata / "faces" / f).read_bytes())
    r = subprocess.run([sys.executable, "-m", "bingobox", "vision", "faces", "--gallery", str(gallery),
                        str(testdata / "faces/obama/2.jpg"), str(testdata / "faces/Tony_Blair/1.jpg"),
                        str(testdata / "faces/no_face/brick.png")], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["match"] == "obama" and lines[0]["reason"] == "matched" and lines[0]["distance"] < 0.56
    assert lines[1]["match"] is None and lines[1]["reason"].startswith("unsure")
    assert lines[2]["reason"] == "no_face" and set(lines[0]) >= {"file", "match", "distance", "margin", "reason"}


def frame_with(testdata, rel: str) -> np.ndarray:
    """A 640x480 exit-camera frame with the photo held up, as the simulator composes it (RGB)."""
    bg = background(640, 480, 5)
    img = cv2.imread(str(testdata / "faces" / rel))
    f = 380 / img.shape[0]
    small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)[:, :600]
    y0, x0 = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    bg[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return cv2.cvtColor(bg, cv2.COLOR_BGR2RGB)


def test_worker_process_enrols_matches_and_forgets(testdata):
    w = FaceWorker()
    w.start()
    try:
        assert w.enrol("visit-a", frame_with(testdata, "obama/1.jpg"))["ok"]
        assert w.enrol("visit-b", frame_with(testdata, "biden/2.jpg"))["ok"]
        assert w.enrol("visit-c", frame_with(testdata, "no_face/brick.png"))["reason"] == "no_face"
        d = w.match([frame_with(testdata, "obama/2.jpg")], ["visit-a", "visit-b"])
        assert (d.match, d.reason) == ("visit-a", "matched")
        d = w.match([frame_with(testdata, "obama/2.jpg")], ["visit-b"])  # only those inside are searched
        assert d.match is None
        d = w.match([frame_with(testdata, "Tony_Blair/1.jpg")], ["visit-a", "visit-b"])
        assert d.match is None and d.reason.startswith("unsure")
        assert w.count() == {"visits": 2, "templates": 2}
        assert w.forget("visit-a") == 1 and w.count()["visits"] == 1
        assert w.match([frame_with(testdata, "obama/2.jpg")], ["visit-a"]).reason == "nobody_inside"
        assert w.proc.pid != __import__("os").getpid()
        w.proc.kill()
        w.proc.join()
        with pytest.raises(WorkerDown):
            w.match([frame_with(testdata, "obama/2.jpg")], ["visit-b"])
    finally:
        w.stop()
