"""The published snapshot's schema (bingobox.view): a view built from a real store core has it exactly, and a view
that drifts from it — a key gone, a key nobody declared, a value of another type — is caught."""

import pytest
from pydantic import ValidationError

from bingobox.status import build_view
from bingobox.view import check_view
from tests.unit.test_store_core import CATALOG, Rig


class Shelf:
    def present(self):
        return {"E2801170000000000000AAAA": 1.0}

    def read_rates(self):
        return {"E2801170000000000000AAAA": 1.0}


def view_of(tmp_path):
    rig = Rig(tmp_path / "j.db")
    rig.enter("acc_1")  # someone inside: the visits list has a row
    snap = rig.core.snapshot()
    snap["latency"] = {**snap["latency"], "qr_entry_ms": {"count": 0}}
    return build_view(snap, rig.outbox.status(), {"entrance": {"kind": "door", "online": True}},
                      {"shelf-1": Shelf()}, CATALOG,
                      {"loop": {"lag_ms": 0.4, "inbox": 0, "put": 3, "offered": 0, "superseded": 0, "dropped": 0,
                                "max_depth": 1},
                       "faces": None, "buses": {}, "shopper_sync": None,
                       "reviews": rig.journal.review_stats(0.0)})


def test_a_view_from_a_real_store_core_has_the_schema(tmp_path):
    v = view_of(tmp_path)
    assert v["visits"] and check_view(dict(v))


@pytest.mark.parametrize("drift", ["missing", "extra", "wrong_type"])
def test_a_view_that_drifts_from_the_schema_is_refused(tmp_path, drift):
    v = dict(view_of(tmp_path))
    if drift == "missing":
        del v["inside"]
    elif drift == "extra":
        v["undeclared"] = 1
    else:
        v["inside"] = "three"
    with pytest.raises((ValueError, ValidationError)):
        check_view(v)
