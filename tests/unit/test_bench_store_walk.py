"""``bench store``'s figures from the shopper's side (``_from_zone``) over a store journal written the way the store
writes it: the waits at the door, when the identifying frame was taken, and which waits came after undecided looks."""

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

from bingobox.journal import Journal
from bingobox_devkit.bench import _from_zone
from bingobox_devkit.harness.demo import Shopper


def _exit(c, vid, account, zone, frame_after, acked_after, undecided=None):
    c.execute("INSERT INTO visits (id, account_id, state, face_consent, created_at, updated_at) "
              "VALUES (?, ?, 'left', 1, 0, 0)", (vid, account))
    how = {"by": "face", "distance": 0.4, "margin": 0.2, "frame_t": zone + frame_after / 1000}
    if undecided:
        how |= {"undecided_looks": undecided, "first_look": zone}
    for kind, data in (("identified", how), ("stages", {"path": "exit", "acked": zone + acked_after / 1000})):
        c.execute("INSERT INTO visit_events (visit_id, t, kind, data) VALUES (?, 0, ?, ?)",
                  (vid, kind, json.dumps(data)))


def test_waits_at_the_door_say_when_the_face_was_identified_and_after_what(tmp_path: Path):
    Journal(tmp_path / "store.db").close()  # (the store's own schema)
    shoppers = []
    with sqlite3.connect(tmp_path / "store.db") as c:
        for i, (frame_after, acked_after, undecided) in enumerate([(40, 310, None), (300, 590, None),
                                                                    (60, 1400, {"unsure_open": 3})]):
            s = Shopper(i, f"acc_{i}", ([], Path("x.jpg")))
            s.exit_zone_at, s.at_door_at = 1000.0 + 10 * i, 1000.4 + 10 * i
            _exit(c, f"v_{i}", s.account, s.exit_zone_at, frame_after, acked_after, undecided)
            shoppers.append(s)
        qr = Shopper(9, "acc_qr", ([], Path("y.jpg")), used_qr_at_exit=True)  # by code: not a face exit
        qr.exit_zone_at, qr.at_door_at = 2000.0, 2000.4
        _exit(c, "v_qr", qr.account, 2000.0, 10, 20)
    got = _from_zone(SimpleNamespace(dir=tmp_path, shoppers=[*shoppers, qr]))
    assert got["door_wait_ms"]["count"] == 3 and got["door_open_before_arrival"] == 1
    assert got["identifying_frame_after_zone_ms"]["max"] == 300.0
    assert got["after_undecided_looks"] == {"exits": 1, "looks": {"unsure_open": 3},
                                            "door_wait_ms": got["after_undecided_looks"]["door_wait_ms"]}
    assert [(w["door_wait_ms"], w["undecided_looks"], w["frame_after_zone_ms"]) for w in got["longest_door_waits"]] \
        == [(1000.0, {"unsure_open": 3}, 60.0), (190.0, {}, 300.0)]
