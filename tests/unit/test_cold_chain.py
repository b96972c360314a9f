"""The cold chain: the zone rule (pure) and the store core's use of it — the warm alarm, the budget spent that puts a
zone's goods off sale (kept across a restart), a silent probe, and an off-sale item taken anyway: not charged, listed,
reviewed."""

import json

import pytest

from bingobox.config import ZoneConfig
from bingobox.core.events import FaceDecided
from bingobox.devices.events import DeviceEvent
from bingobox.domain import cold_chain as cc
from bingobox.domain.faces import FaceDecision
from tests.unit.test_store_core import CHIPS, COLA, Rig, epc

RULE = cc.ZoneRule(max_c=8.0, alarm_after_s=600, budget_s=1800, silent_after_s=60)


def feed(st, temps, t0=0.0, every=30.0):
    out = []
    for i, temp in enumerate(temps):
        out += [(t0 + i * every, w) for w in cc.reading(RULE, st, t0 + i * every, temp)]
    return out


def test_a_warm_spell_raises_one_alarm_and_the_budget_spent_puts_the_goods_off_sale():
    st = cc.ZoneState()
    got = feed(st, [4.0] * 5 + [9.0] * 25 + [5.0] * 5)  # 12.5 min above 8 °C
    assert [w for _, w in got] == ["warm", "back"] and got[0][0] == 150 + 600
    assert st.above_s == 25 * 30 and not st.off_sale
    got = feed(st, [9.5] * 40, t0=2000)  # another 20 min: 32.5 min in all, past the 30 min budget
    assert "off_sale" in [w for _, w in got] and st.off_sale
    feed(st, [4.0] * 5, t0=4000)
    assert st.off_sale  # cooling down again does not make spoiled food safe
    cc.cleared(st)
    assert not st.off_sale and st.above_s == 0


def test_a_gap_in_the_readings_counts_at_most_the_silence_limit_and_silence_is_said_once():
    st = cc.ZoneState()
    cc.reading(RULE, st, 0, 9.0)
    cc.reading(RULE, st, 3600, 9.0)  # an hour without a reading: counted as 60 s, not 3600
    assert st.above_s == 60
    assert cc.silence(RULE, st, 3700) and not cc.silence(RULE, st, 3800)
    assert cc.reading(RULE, st, 3900, 4.0)[0] == "heard"


class ZoneRig(Rig):
    def start(self):
        self.cfg.zones = [ZoneConfig(name="chilled", max_c=8, alarm_after_s=60, budget_s=300, silent_after_s=30,
                                     skus=["cola"])]
        super().start()

    def probe(self, temp):
        self.core.handle(DeviceEvent("fridge-1", "reading", {"zone": "chilled", "temp_c": temp, "rh": 60.0},
                                     self.clock.t))
        self.run()


@pytest.fixture
def rig(tmp_path):
    r = ZoneRig(tmp_path / "store.db")
    yield r
    r.journal.close()


def test_the_store_alarms_then_takes_the_zone_off_sale_and_remembers_it_across_a_restart(rig):
    for _ in range(4):
        rig.probe(4.0)
        rig.at(10)
    for _ in range(8):  # 70 s above the limit: the warm alarm
        rig.probe(10.5)
        rig.at(10)
    assert rig.alarms() == ["cold_chain_warm"]
    z = rig.core.snapshot()["zones"]["chilled"]
    assert z["warm"] and not z["off_sale"] and z["temp_c"] == 10.5 and len(z["history"]) >= 2
    for _ in range(25):  # past 300 s in all
        rig.probe(11.0)
        rig.at(10)
    assert "cold_chain_off_sale" in rig.alarms() and rig.core.cold_chain.off_sale_skus() == {"cola"}
    rig.restart()
    assert rig.core.cold_chain.off_sale_skus() == {"cola"}  # a restart does not make the goods safe
    rig.core.cold_chain.clear("chilled")
    assert rig.core.cold_chain.off_sale_skus() == set()
    rig.restart()
    assert rig.core.cold_chain.off_sale_skus() == set()


def test_a_probe_gone_quiet_is_an_alarm_never_a_normal_reading(rig):
    rig.probe(4.0)
    rig.at(31)
    assert rig.alarms() == ["probe_silent"]
    rig.at(60)
    assert rig.alarms() == ["probe_silent"]  # (said once)
    assert rig.core.snapshot()["zones"]["chilled"]["silent"]


def test_an_off_sale_item_taken_anyway_is_not_charged_and_goes_to_an_operator(rig):
    for _ in range(40):
        rig.probe(12.0)
        rig.at(10)
    assert rig.core.cold_chain.off_sale_skus() == {"cola"}
    v = rig.enter("acc_1")
    rig.shelf("tag_gone", epc(COLA, 1))
    rig.shelf("tag_gone", epc(CHIPS, 1))
    rig.at(5)
    rig.reader.read(rig.clock.t - 0.3, epc(COLA, 1), epc(CHIPS, 1), n=20)
    rig.core.handle(FaceDecided(FaceDecision(v["id"], 0.4, 0.2, "matched", v["id"]), rig.clock.t - 0.1, {}))
    rig.send()
    rig.door("exit", "door_opened")
    v = rig.visit_of("acc_1")
    assert [c["amount_fen"] for c in rig.client.charges] == [650]  # the chips only
    assert "off_sale_taken" in json.loads(v["flags"])
    off = [d for k, d in rig.events(v["id"]) if k == "off_sale_taken"]
    assert off and off[0]["lines"][0]["sku"] == "cola"
    assert rig.journal.review_of(v["id"])["causes"] == ["off_sale"]


def test_an_operator_puts_a_zone_back_on_sale_only_once_it_is_cold_again(rig):
    import queue

    from bingobox.actions import ClearZone
    from bingobox.core.events import OperatorCommand

    def act(zone):
        reply = queue.Queue()
        rig.core.handle(OperatorCommand("staff", "clear_zone", ClearZone(zone=zone), reply))
        return reply.get(timeout=1)

    for _ in range(40):
        rig.probe(12.0)
        rig.at(10)
    assert act("chilled")["error"] == "still_warm" and act("freezer")["error"] == "no_such_zone"
    rig.probe(4.0)
    assert act("chilled")["ok"] and rig.core.cold_chain.off_sale_skus() == set()
