"""The live basket: what the core tells each shopper inside they carry (the real core with the store-core test rig),
and the gateway's side of it (the signed route, the checks, what the wallet app reads)."""

import time

import pytest

from tests.unit.test_store_core import CHIPS, COLA, Rig, epc
from tests.unit.test_wallet_app_api import Gw


@pytest.fixture
def rig(tmp_path, monkeypatch):
    told = []
    import bingobox.core.store as store_mod

    real = store_mod.StoreCore.__init__

    def with_baskets(self, *a, **kw):
        real(self, *a, **{**kw, "basket_out": lambda vid, acc, b: told.append((vid, acc, b))})

    monkeypatch.setattr(store_mod.StoreCore, "__init__", with_baskets)
    r = Rig(tmp_path / "store.db")
    r.told = told
    yield r
    r.journal.close()


def last(rig, account):
    return next(b for _, acc, b in reversed(rig.told) if acc == account)


def test_takes_and_put_backs_reach_the_shopper_with_the_running_total_and_nothing_is_told_twice(rig):
    v = rig.enter("acc_1")
    assert last(rig, "acc_1") == {"lines": [], "total_fen": 0, "certain": True, "why": [],
                                  "at": last(rig, "acc_1")["at"]}
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.shelf("tag_gone", epc(COLA, 2))
    rig.shelf("tag_gone", epc(CHIPS, 1))
    rig.at(0.1)
    b = last(rig, "acc_1")
    assert b["lines"] == [{"sku": "cola", "name": "Cola", "qty": 2, "unit_fen": 350, "amount_fen": 700},
                          {"sku": "chips", "name": "Chips", "qty": 1, "unit_fen": 650, "amount_fen": 650}]
    assert b["total_fen"] == 1350 and b["certain"]
    n = len(rig.told)
    rig.at(0.1)
    rig.at(0.1)
    assert len(rig.told) == n  # unchanged: not told again
    rig.shelf("tag_seen", epc(COLA, 2))  # put back
    rig.at(0.1)
    assert last(rig, "acc_1")["total_fen"] == 1000
    assert {vid for vid, _, _ in rig.told} == {v["id"]}


def test_with_others_inside_or_a_blind_shelf_the_basket_says_the_exit_decides(rig):
    rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.at(0.1)
    assert last(rig, "acc_1")["certain"]
    rig.enter("acc_2")
    rig.at(0.1)
    for acc in ("acc_1", "acc_2"):
        assert last(rig, acc)["certain"] is False and "others_inside" in last(rig, acc)["why"]
    rig.shelf("tag_gone", epc(CHIPS, 1))  # several inside: taken by someone, not attributed
    rig.at(0.1)
    assert "takes_unattributed" in last(rig, "acc_2")["why"] and last(rig, "acc_2")["total_fen"] == 0
    assert last(rig, "acc_1")["total_fen"] == 350  # what was certainly theirs stays, marked uncertain


def test_no_listener_no_work(tmp_path):
    r = Rig(tmp_path / "store.db")
    try:
        assert r.core.live_baskets.out is None
        r.enter("acc_1")
        r.shelf("tag_gone", epc(COLA, 1))
        r.at(0.1)
        assert r.core.live_baskets.published == {}
    finally:
        r.journal.close()


# the gateway ------------------------------------------------------------------------------------------------------
@pytest.fixture
def gw(tmp_path):
    g = Gw(tmp_path)
    yield g
    g.db.close()


def basket(total=700, certain=True, at=None, **kw):
    return {"lines": [{"sku": "cola", "name": "Cola", "qty": 2, "unit_fen": 350, "amount_fen": 700}] if total else [],
            "total_fen": total, "certain": certain, "why": [] if certain else ["others_inside"],
            "at": at or time.time(), **kw}


def test_the_gateway_keeps_a_live_basket_of_a_reported_open_visit_of_that_account_only(gw):
    acc = gw.signup()
    other = gw.db.create_account("Li Lei", "110105199001010011", 0, False)
    put = lambda vid, body: gw.signed("PUT", f"/v1/visits/{vid}/basket", body)  # noqa: E731
    assert put("v1", {"account_id": acc["id"], **basket()}).status_code == 404  # not reported yet
    gw.visit(acc["id"], state="inside", final=False)
    assert gw.app("GET", "me").json()["visit"]["basket"] is None
    assert put("v1", {"account_id": acc["id"], **basket()}).status_code == 200
    got = gw.app("GET", "me").json()["visit"]["basket"]
    assert got["total_fen"] == 700 and got["certain"] is True and got["lines"][0]["qty"] == 2
    assert put("v1", {"account_id": other["id"], **basket()}).status_code == 409  # not that account's visit
    assert put("v1", {"account_id": acc["id"], **basket(total=800)}).status_code == 422  # does not add up
    assert put("v1", {"account_id": acc["id"], **basket(certain=False, why=[])}).status_code == 422
    assert put("v1", {"account_id": acc["id"], **basket(account="x")}).status_code == 400  # unknown field
    assert put("v1", {"account_id": acc["id"], **basket(total=0, at=1.0)}).status_code == 200  # older: not kept
    assert gw.app("GET", "me").json()["visit"]["basket"]["total_fen"] == 700
    assert put("v1", {"account_id": acc["id"], **basket(total=0, certain=False)}).status_code == 200
    assert gw.app("GET", "me").json()["visit"]["basket"]["why"] == ["others_inside"]
    gw.visit(acc["id"], state="left", final=True)
    assert gw.app("GET", "me").json()["visit"] is None
    assert put("v1", {"account_id": acc["id"], **basket()}).status_code == 409  # over: the receipt is the record


# the store's sender -------------------------------------------------------------------------------------------------
class Client:
    store_id = "s1"

    def __init__(self):
        self.answers, self.sent = {}, []

    def call(self, method, path, body=None):
        self.sent.append((path, body))
        return self.answers.get(path, (200, {"ok": True}, None))


def test_the_sync_sends_the_latest_basket_waits_for_an_unknown_visit_and_drops_a_refused_one(tmp_path):
    from bingobox.domain.catalog import Catalog
    from bingobox.journal import Journal
    from bingobox.wallet import sync as sync_mod

    j = Journal(tmp_path / "store.db")
    c = Client()
    s = sync_mod.ShopperSync(j, c, Catalog({}), lambda a: None)
    try:
        s.live("v1", "acc_1", basket(total=0))
        s.live("v1", "acc_1", basket())  # replaces the one not yet sent
        c.answers["/v1/visits/v2/basket"] = (404, {"error": {"code": "no_such_visit"}}, None)
        s.live("v2", "acc_2", basket())
        c.answers["/v1/visits/v3/basket"] = (409, {"error": {"code": "visit_over"}}, None)
        s.live("v3", "acc_3", basket())
        assert s.push_baskets()
        assert [(p, b["total_fen"]) for p, b in c.sent] == [("/v1/visits/v1/basket", 700),
                                                            ("/v1/visits/v2/basket", 700),
                                                            ("/v1/visits/v3/basket", 700)]
        assert c.sent[0][1]["account_id"] == "acc_1" and s.counts["baskets"] == 1
        assert set(s._baskets) == {"v2"}  # its visit's report is not at the gateway yet: next round
        c.answers["/v1/visits/v2/basket"] = (None, None, "connection refused")  # the gateway down: kept, in order
        assert not s.push_baskets() and set(s._baskets) == {"v2"}
        del c.answers["/v1/visits/v2/basket"]
        assert s.push_baskets() and s._baskets == {} and s.counts["baskets"] == 2
        c.answers["/v1/visits/v4/basket"] = (404, None, None)
        s.live("v4", "acc_4", basket())
        for _ in range(sync_mod.BASKET_TRIES):  # a visit the gateway never learns of is given up
            s.push_baskets()
        assert s._baskets == {} and sum(p.endswith("v4/basket") for p, _ in c.sent) == sync_mod.BASKET_TRIES
    finally:
        j.close()
