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
