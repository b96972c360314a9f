"""The demo's script: a person is never inside twice at once (unless asked), so a crowd's QR exits measure the face
rule, not the script."""

from pathlib import Path

import pytest

from bingobox_devkit.harness.demo import Demo, Shopper


def face(n):
    return ([Path(f"walk{n}.jpg")], Path(f"exit{n}.jpg"))


def script(tmp_path, repeat=False):
    return Demo(0, 1, set(), tmp_path / "store", tmp_path, verbose=False, repeat_faces=repeat)


def test_a_shopper_whose_face_is_inside_waits_and_others_go_first(tmp_path):
    d = script(tmp_path)
    a, a_again, b, nobody = Shopper(0, "a", face(1)), Shopper(1, "a2", face(1)), Shopper(2, "b", face(2)), \
        Shopper(3, "c", None)
    pending = [a, a_again, b, nobody]
    assert d._next(pending) is a
    assert d._next(pending) is b  # the same face again waits
    assert d._next(pending) is nobody
    assert d._next(pending) is None and pending == [a_again]
    d.shop = lambda s: None  # (a's whole visit)
    d._shop_once(a)
    assert d._next(pending) is a_again and d.most_of_one_face_inside == 1


def test_a_person_without_consent_is_not_inside_twice_either(tmp_path):
    """They show no face to enrol, but the exit camera sees it: the same person inside twice would be two walkers
    with one face."""
    d = script(tmp_path)
    a, a_again = Shopper(0, "a", face(1)), Shopper(1, "a2", None, walker_face=face(1)[1])
    pending = [a, a_again]
    assert d._next(pending) is a and d._next(pending) is None
    d.shop = lambda s: None
    d._shop_once(a)
    assert d._next(pending) is a_again and a_again.person == a.person


def test_a_shopper_without_consent_let_out_by_a_face_fails_the_run(tmp_path):
    from bingobox_devkit.harness.oracle import face_exits
    from bingobox_devkit.harness.report import human, money_ok

    db = _journal(tmp_path, [("v1", "a"), ("v2", "b")], [("v1", True)])
    walker = Shopper(1, "b", None, walker_face=Path("exit2.jpg"))
    f = face_exits(db, [Shopper(0, "a", face(1)), walker])
    assert (f["no_consent_seen_at_exit"], f["no_consent_let_out_by_face"]) == (1, 0)
    assert money_ok({"faces": f})
    walker.let_out_by_face = True
    f = face_exits(db, [Shopper(0, "a", face(1)), walker])
    assert f["no_consent_let_out_by_face"] == 1 and not money_ok({"faces": f})
    assert "let out by it 1" in human({"faces": f}, "demo")


def test_only_an_exit_opened_for_a_shown_face_counts_as_let_out_by_it(tmp_path, monkeypatch):
    """A shopper without consent and without a photo (no faces in the test data) for whom the exit happens to open
    showed no face: nobody took them for anyone (the count once said so, and failed the run)."""
    from bingobox_devkit.harness import demo

    monkeypatch.setattr(demo.time, "sleep", lambda s: None)
    d = script(tmp_path)
    d.act, d.wait_unlocked, d.code = (lambda *a, **k: {}), (lambda *a, **k: True), (lambda *a, **k: "code")
    d.inside = 2
    faceless, walker = Shopper(0, "a", None), Shopper(1, "b", None, walker_face=Path("exit1.jpg"))
    for s in (faceless, walker):
        d.leave(s)
    assert not faceless.let_out_by_face and faceless.error is None
    assert walker.let_out_by_face


def test_asked_to_the_script_repeats_a_face_and_says_so(tmp_path):
    d = script(tmp_path, repeat=True)
    pending = [Shopper(0, "a", face(1)), Shopper(1, "a2", face(1))]
    assert d._next(pending) and d._next(pending) and d.most_of_one_face_inside == 2


def test_the_face_is_free_again_even_when_the_visit_failed(tmp_path):
    d = script(tmp_path)
    a = Shopper(0, "a", face(1))
    assert d._next([a]) is a

    def fails(s):
        raise RuntimeError("the entrance stayed locked")
    d.shop = fails
    with pytest.raises(RuntimeError):
        d._shop_once(a)
    assert d._next([Shopper(1, "a2", face(1))]) is not None


def _journal(tmp_path, visits, enrolled):
    import json
    import sqlite3

    db = tmp_path / "store.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE visits (id TEXT, account_id TEXT)")
        c.execute("CREATE TABLE visit_events (id INTEGER PRIMARY KEY, visit_id TEXT, t REAL, kind TEXT, data TEXT)")
        c.executemany("INSERT INTO visits VALUES (?, ?)", visits)
        c.executemany("INSERT INTO visit_events (visit_id, t, kind, data) VALUES (?, 0, 'face_enrolment', ?)",
                      [(v, json.dumps({"ok": ok})) for v, ok in enrolled])
    return db


def test_face_exits_count_only_enrolled_shoppers_and_bucket_them_by_who_was_inside(tmp_path):
    from bingobox_devkit.harness.oracle import face_exits

    db = _journal(tmp_path, [("v1", "a"), ("v2", "b"), ("v3", "c"), ("v4", "d"), ("v5", "e")],
                  [("v1", True), ("v2", True), ("v3", False), ("v4", True)])
    shoppers = [Shopper(0, "a", face(1), inside_at_exit=3), Shopper(1, "b", face(2), inside_at_exit=18),
                Shopper(2, "c", face(3), inside_at_exit=2), Shopper(3, "d", face(4), inside_at_exit=25),
                Shopper(4, "e", None, inside_at_exit=1), Shopper(5, "never-entered", face(5))]
    shoppers[1].used_qr_at_exit = True  # b was not recognised; c (not enrolled) and e (no face) do not count
    shoppers[2].used_qr_at_exit = shoppers[4].used_qr_at_exit = True
    f = face_exits(db, shoppers)
    assert (f["consented"], f["enrolled"], f["by_face"]) == (4, 3, 2)
    assert f["enrolled_share"] == 0.75 and f["by_face_share"] == round(2 / 3, 4)
    assert f["by_inside_at_exit"] == {"1-5": {"enrolled": 1, "by_face": 1, "by_face_share": 1.0},
                                      "11-20": {"enrolled": 1, "by_face": 0, "by_face_share": 0.0},
                                      "21-40": {"enrolled": 1, "by_face": 1, "by_face_share": 1.0}}
    assert f["most_inside_at_exit"] == 25


def test_more_faces_adds_the_crowds_people_after_the_stores_own(tmp_path):
    from bingobox_devkit.harness.demo import _identities

    (tmp_path / "faces").mkdir()
    head = "file,category,identity,faces_detected_hog,width,height\n"
    (tmp_path / "faces/manifest.csv").write_text(head + "z/1.jpg,identity,z,1,1,1\nz/2.jpg,identity,z,1,1,1\n"
                                                 "y/1.jpg,identity,y,0,1,1\ny/2.jpg,identity,y,1,1,1\n")
    with pytest.raises(FileNotFoundError):
        _identities(tmp_path, more=True)
    (tmp_path / "faces/more.csv").write_text(head + "a/1.png,identity,a,1,1,1\na/2.png,identity,a,1,1,1\n"
                                             "a/3.png,identity,a,1,1,1\n")
    assert [e.name for _, e in _identities(tmp_path)] == ["1.jpg"]  # y has one usable photo: not a shopper
    ids = _identities(tmp_path, more=True)
    assert [(str(e.parent.name), [w.name for w in walk]) for walk, e in ids] == [("z", ["2.jpg"]),
                                                                                ("a", ["2.png", "3.png"])]


def test_more_faces_without_their_manifest_is_a_clear_error(tmp_path, capsys):
    import argparse

    from bingobox_devkit.harness.demo import main

    (tmp_path / "faces").mkdir()
    args = argparse.Namespace(faults="", wiring="own", more_faces=True, testdata=str(tmp_path))
    assert main(args) == 2 and "faces/more.csv is missing" in capsys.readouterr().err
