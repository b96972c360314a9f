"""``bingobox bench faces`` counts what the exit rule does with a crowd inside (the face engine replaced by one whose
encodings are fixed per photo, so the counts are known)."""

import numpy as np
import pytest

from bingobox_devkit import bench, bench_crowd


def manifest(path, rows):
    path.write_text("file,category,identity,faces_detected_hog,width,height\n"
                    + "".join(f"{f},identity,{who},{n},1,1\n" for f, who, n in rows))


@pytest.fixture
def data(tmp_path, monkeypatch):
    """12 store people and 30 more, 4 photos each. The more are seen by a softer camera: 0.6 apart (the store's are
    1.41), and more/p02 is 0.4 from p01: a walker whom the distance alone takes for p01."""
    (tmp_path / "faces").mkdir()
    manifest(tmp_path / "faces/manifest.csv", [(f"s{i:02d}/{k}.jpg", f"s{i:02d}", 1) for i in range(12)
                                               for k in range(4)] + [("blank/1.jpg", "blank", 0)])
    manifest(tmp_path / "faces/more.csv", [(f"orl/p{i:02d}/{k}.png", f"p{i:02d}", 1) for i in range(30)
                                           for k in range(4)])
    ids = [f"s{i:02d}" for i in range(12)] + [f"p{i:02d}" for i in range(30)]

    def vec(path, probe=False):
        v = np.zeros(128)
        v[101] = 0.25 if probe else 0.0  # an exit photo is 0.25 from its person's templates
        who = path.parent.name
        more = who.startswith("p")
        v[110] = 1.0 if more else 0.0
        v[ids.index("p01" if who == "p02" else who)] = 0.424 if more else 1.0
        if who == "p02":  # near p01
            v[100] = 0.4
        return v

    class Engine:
        def enrol(self, photo):
            return type("E", (), {"ok": True, "encoding": vec(photo)})()

        def probe(self, photo):
            return vec(photo, probe=True), "ok", 1

    monkeypatch.setattr("bingobox.vision.faces.FaceEngine", Engine)
    monkeypatch.setattr(bench, "_held_up", lambda p: p)
    return tmp_path


def test_genuine_exits_are_recognised_and_a_look_alike_walker_goes_to_the_code_on_the_open_set(data):
    out = bench_crowd.bench_faces(data, seed=3, trials=400)
    assert out["people"] == {"store": 12, "more": 30} and out["exit_photos"] == {"store": 12, "more": 30}
    assert "inside_40" in out  # (41 enrolled: a crowd of 40 leaves one outside)
    for n in (3, 10, 20, 40):
        row = out[f"inside_{n}"]
        assert row["store"]["wrong"] == row["more"]["wrong"] == 0
        assert row["store"]["walkers_matched"] == row["store"]["walkers_matched_by_the_closed_rule"] == 0
        assert row["more"]["walkers_matched"] == 0  # the open set turns the look-alike walker to the code …
        assert row["store"]["fallback"] == row["store"]["fallback_open"] == 0  # … and costs genuine exits nothing
        gen = row["more"]["genuine"] + row["store"]["genuine"]
        assert gen == 400
    # p02 outside and p01 inside: the walker passes the distance and the margin alone — the weakness the open set
    # is there for
    assert out["inside_40"]["more"]["walkers_matched_by_the_closed_rule"] > 0
    assert 0.5 < out["rule"]["impostor_median"] < 1.5
