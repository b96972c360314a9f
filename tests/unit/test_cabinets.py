"""Locked cabinets: a fridge's opens to its button while its zone's goods are on sale and stays shut (its panel
says why) once they are off sale; an age-restricted one opens only to a code shown by an adult inside, within its
sale hours — each refusal with its words; restricted goods charged without that check go to an operator."""

import json
from datetime import date

import pytest

from bingobox.config import StoreConfig
from bingobox.core.events import CodeSeen, FaceDecided
from bingobox.devices.events import DeviceEvent
from bingobox.domain import cabinet, tokens
from bingobox.domain.faces import FaceDecision as Decision
from tests.unit.test_store_core import CHIPS, COLA, KEY, Rig, epc

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC (the rig's clock)
ADULT, MINOR = date(2020, 1, 1), date(2031, 6, 1)  # (the days they are 18)


def test_the_rule_decides_each_request_in_order():
    base = dict(restricted=True, off_sale=False, inside=True, adult_from=ADULT, today=date(2027, 1, 15),
                in_hours=True)
    assert cabinet.refusal(cabinet.Ask("code", **base)) is None
    for change, why in [({"off_sale": True}, "off_sale"), ({"inside": False}, "not_inside"),
                        ({"adult_from": None}, "age_unknown"), ({"adult_from": MINOR}, "not_adult"),
                        ({"adult_from": date(2027, 1, 16)}, "not_adult"), ({"in_hours": False}, "sale_hours")]:
        assert cabinet.refusal(cabinet.Ask("code", **{**base, **change})) == why
    assert cabinet.refusal(cabinet.Ask("code", **{**base, "adult_from": date(2027, 1, 15)})) is None  # (18 today)
    assert cabinet.refusal(cabinet.Ask("button", **base)) == "code_needed"
    fridge = {**base, "restricted": False, "inside": False, "adult_from": None}
    assert cabinet.refusal(cabinet.Ask("button", **fridge)) is None
    assert cabinet.refusal(cabinet.Ask("button", **{**fridge, "off_sale": True})) == "off_sale"


def test_the_adult_date_travels_signed_in_the_code_and_a_bad_one_is_refused():
    code = tokens.issue(KEY, "k1", "acc_1", "s1", "*", int(T0), 60, adult_from=ADULT)
    assert tokens.verify(code, {"k1": KEY.public_key()}, "s1", "bar-door", T0).adult_from == ADULT
    plain = tokens.issue(KEY, "k1", "acc_1", "s1", "*", int(T0), 60)
    assert tokens.verify(plain, {"k1": KEY.public_key()}, "s1", "bar-door", T0).adult_from is None
    import jwt

    forged = jwt.encode({**tokens.claims_of(plain), "adf": "2000-02-30"}, KEY, algorithm="EdDSA",
                        headers={"kid": "k1", "typ": tokens.TYP})
    with pytest.raises(tokens.CodeRejected, match="adult-from"):
        tokens.verify(forged, {"k1": KEY.public_key()}, "s1", "bar-door", T0)


def _config(**bar):
    door = {"energize_to_unlock": True, "rex_unlocks": False, "fire_input": None}
    return {
        "store": {"id": "s1"}, "catalog": "unused.csv",
        "doors": [{"name": n, "port": f"x://{n}", "energize_to_unlock": True} for n in ("entrance", "exit")] + [
            {"name": n, "port": f"x://{n}", **door} for n in ("fridge-door", "bar-door")],
        "readers": [{"name": n, "port": f"x://{n}"} for n in ("shelf-1", "exit-area")],
        "cameras": [{"name": n, "source": f"x://{n}"} for n in ("door-cam", "exit-cam", "bar-cam")],
        "layout": {"entry_door": "entrance", "exit_door": "exit", "entry_camera": "door-cam",
                   "exit_camera": "exit-cam", "exit_reader": "exit-area"},
        "visits": {"exit_charge_wait_s": 3, "enter_within_s": 15, "max_inside_s": 600},
        "zones": [{"name": "chilled", "max_c": 8, "alarm_after_s": 60, "budget_s": 300, "skus": ["cola"]}],
        "cabinets": [{"name": "fridge", "door": "fridge-door", "zone": "chilled"},
                     {"name": "bar", "door": "bar-door", "restricted": True, "skus": ["chips"], "camera": "bar-cam",
                      **bar}]}


class CabinetRig(Rig):
    extra_doors = ("fridge-door", "bar-door")

    def start(self):
        self.cfg = StoreConfig.model_validate(_config(**getattr(self, "bar", {})))
        super().start()

    def press(self, door):
        self.core.handle(DeviceEvent(door, "rex_pressed", {}, self.clock.t))
        self.run()

    def show_at(self, cabinet_name, code):
        self.core.handle(CodeSeen(f"cabinet:{cabinet_name}", code, self.clock.t, {}))
        self.run()

    def adult_code(self, account="acc_1", adult_from=ADULT):
        return tokens.issue(KEY, "k1", account, "s1", "*", int(self.clock.t), 60, adult_from=adult_from)

    def panel(self, door):
        return self.core.panels.shown[door][0].key


@pytest.fixture
def rig(tmp_path):
    r = CabinetRig(tmp_path / "store.db", acks=True)
    yield r
    r.journal.close()


def test_a_fridge_opens_to_its_button_until_its_goods_go_off_sale_and_its_panel_says_why(rig):
    rig.at(1)
    assert rig.panel("fridge-door") == "cabinet.ready"
    rig.press("fridge-door")
    assert len(rig.doors["fridge-door"].grants) == 1 and rig.panel("fridge-door") == "cabinet.open"
    for _ in range(40):  # the fridge fails: 400 s above 8 °C, past the zone's budget
        rig.core.handle(DeviceEvent("probe", "reading", {"zone": "chilled", "temp_c": 12.0}, rig.clock.t))
        rig.at(10)
    assert rig.core.cold_chain.states["chilled"].off_sale
    assert rig.panel("fridge-door") == "cabinet.off_sale"  # said at rest, before anyone asks
    rig.press("fridge-door")
    assert len(rig.doors["fridge-door"].grants) == 1 and rig.panel("fridge-door") == "cabinet.refused.off_sale"
    assert rig.doors["fridge-door"].lit == (False, True)  # its red lamp
    assert rig.core.snapshot()["cabinets"]["fridge"]["off_sale"] is True


def test_the_restricted_cabinet_opens_only_for_an_adult_inside_and_records_it_with_the_visit(rig):
    rig.at(1)
    assert rig.panel("bar-door") == "cabinet.restricted_anytime"
    rig.press("bar-door")  # its button opens nothing by itself
    assert rig.panel("bar-door") == "cabinet.refused.code_needed"
    rig.show_at("bar", rig.adult_code())  # not inside yet
    assert rig.panel("bar-door") == "cabinet.refused.not_inside"
    v = rig.enter("acc_1")
    rig.at(2)
    rig.show_at("bar", rig.adult_code(adult_from=None))
    assert rig.panel("bar-door") == "cabinet.refused.age_unknown"
    rig.at(2)
    rig.show_at("bar", rig.adult_code(adult_from=MINOR))
    assert rig.panel("bar-door") == "cabinet.refused.not_adult" and not rig.doors["bar-door"].grants
    rig.at(2)
    rig.show_at("bar", rig.adult_code())
    assert len(rig.doors["bar-door"].grants) == 1 and rig.panel("bar-door") == "cabinet.open"
    assert "age_checked" in json.loads(rig.visit_of("acc_1")["flags"])
    opened = [d for k, d in rig.events(v["id"]) if k == "cabinet_opened"]
    assert opened and opened[0]["by"] == "code"
    refused = [json.loads(r["data"])["refused"] for r in rig.journal.all(
        "SELECT data FROM visit_events WHERE kind='cabinet_refused' ORDER BY id")]
    assert refused == ["code_needed", "not_inside", "age_unknown", "not_adult"]
    rig.shelf("tag_gone", epc(CHIPS, 1))  # (chips are the restricted goods here)
    _leave(rig, v, epc(CHIPS, 1))
    assert [c["amount_fen"] for c in rig.client.charges] == [650] and "restricted_taken" not in rig.alarms()


def test_restricted_goods_taken_without_the_check_are_charged_alarmed_and_reviewed(rig):
    v = rig.enter("acc_2")
    rig.shelf("tag_gone", epc(CHIPS, 2))  # (from a cabinet left open, or put out on a shelf by mistake)
    rig.shelf("tag_gone", epc(COLA, 2))
    _leave(rig, v, epc(CHIPS, 2), epc(COLA, 2))
    assert [c["amount_fen"] for c in rig.client.charges] == [1000]
    assert "restricted_taken" in rig.alarms() and "restricted_unchecked" in json.loads(rig.visit_of("acc_2")["flags"])
    (review,) = rig.journal.all("SELECT causes FROM reviews")
    assert json.loads(review["causes"]) == ["age_check"]


def test_outside_its_sale_hours_the_restricted_cabinet_says_when_it_sells(tmp_path):
    class Late(CabinetRig):
        bar = {"sale_hours": "08:05-22:00"}  # the rig's clock says 08:00 UTC

    rig = Late(tmp_path / "store.db", acks=True)
    try:
        rig.at(1)
        assert rig.panel("bar-door") == "cabinet.restricted"
        rig.enter("acc_1")
        rig.at(2)
        rig.show_at("bar", rig.adult_code())
        msg = rig.core.panels.shown["bar-door"][0]
        assert msg.key == "cabinet.refused.sale_hours" and msg.params == {"hours": "08:05-22:00"}
        rig.clock.t += 300
        rig.at(1)
        rig.show_at("bar", rig.adult_code())
        assert len(rig.doors["bar-door"].grants) == 1
    finally:
        rig.journal.close()


def test_a_cabinet_is_configured_so_that_nothing_but_the_store_opens_it():
    from pydantic import ValidationError

    cfg = _config()
    cfg["doors"][3]["rex_unlocks"] = True
    with pytest.raises(ValidationError, match="its button would open the cabinet"):
        StoreConfig.model_validate(cfg)
    cfg = _config(camera=None)
    with pytest.raises(ValidationError, match="opens for a code shown to its camera"):
        StoreConfig.model_validate(cfg)
    cfg = _config()
    cfg["cabinets"][0]["door"] = "entrance"
    with pytest.raises(ValidationError, match="is the store's entrance or exit"):
        StoreConfig.model_validate(cfg)


def _leave(rig, v, *epcs):
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, *epcs, n=20)
    rig.core.handle(FaceDecided(Decision(v["id"], 0.4, 0.2, "matched", v["id"]), rig.clock.t - 0.1, {}))
    rig.run()
    rig.send()
    rig.door("exit", "door_opened")


