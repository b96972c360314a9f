"""The store's MQTT payloads and commands, the durable event queue in the journal, and the fleet's database: signed
commands refused when forged, stale, replayed or unknown; events collected once, in order, without shoppers' ids;
the fleet dropping QoS 1 duplicates and tracking since when a store is online."""

from __future__ import annotations

import json
import time

import pytest

from bingobox.fleet.db import FleetDB
from bingobox.journal import Journal
from bingobox.mqtt import messages as m
from bingobox.mqtt import outbox

KEY = "k" * 32


def test_a_signed_command_is_accepted_once_and_forgeries_are_refused():
    now = time.time()
    body = m.sign_command(KEY, "s1", "lock_down", "tx1", "chief", {}, int(now))
    raw = m.dumps(body)
    assert m.check_command(KEY, "s1", "lock_down", raw, now, set())["operator"] == "chief"
    cases = {
        "bad_signature": (KEY, "s1", "release", raw, now, set()),  # signed for another command
        "replayed": (KEY, "s1", "lock_down", raw, now, {"tx1"}),
        "stale": (KEY, "s1", "lock_down", raw, now + 301, set()),
        "unknown_command": (KEY, "s1", "refund", raw, now, set()),  # refunds stay on the screen and the gateway
        "bad_command": (KEY, "s1", "lock_down", b"{not json", now, set()),
        "commands_off": (None, "s1", "lock_down", raw, now, set()),
    }
    for code, call in cases.items():
        with pytest.raises(m.CommandRefused) as e:
            m.check_command(*call)
        assert e.value.code == code
    other = m.dumps(m.sign_command(KEY, "s2", "lock_down", "tx2", "chief", {}, int(now)))
    with pytest.raises(m.CommandRefused, match="signature"):
        m.check_command(KEY, "s1", "lock_down", other, now, set())  # another store's command


def test_state_has_no_personal_data_and_discovery_describes_the_store():
    view = {"state": "ready", "inside": 2, "t": 1.0, "charges": {"pending_count": 1, "gateway_ok": False},
            "devices": {"entrance": {"kind": "door", "door_open": True, "lock_engaged": False, "online": True}},
            "visits": [{"account": "acc_secret"}], "recent_charges": [{"account_id": "acc_secret"}]}
    st = m.state_payload(view, "s1", 3)
    assert "acc_secret" not in json.dumps(st)
    assert st["doors"]["entrance"]["open"] is True and st["gateway_up"] is False and st["open_alarms"] == 3
    conf = m.ha_discovery("homeassistant", "bingobox", "s1", view, lockdown_switch=True)
    assert "homeassistant/binary_sensor/bingobox_s1/door_entrance/config" in conf
    assert conf["homeassistant/switch/bingobox_s1/lockdown/config"]["command_topic"] == "bingobox/s1/ha/lockdown/set"
    assert all(c["availability_topic"] == "bingobox/s1/status" for c in conf.values())
    # stock: a sensor per product of the catalog, one for what to restock, one for expired lots on the shelves
    view["stock_alerts"] = {"counts": {"cola-330": 3}, "products": ["cola-330", "beer-500"],
                            "restock": [{"sku": "beer-500", "count": 0, "minimum": 2}],
                            "expiring": [{"lot": "X", "expired": True}, {"lot": "M", "expired": False}]}
    st = m.state_payload(view, "s1", 3)
    assert st["stock"] == {"cola-330": 3} and st["expired_lots"] == 1 and len(st["restock"]) == 1
    conf = m.ha_discovery("homeassistant", "bingobox", "s1", view, lockdown_switch=False)
    beer = conf["homeassistant/sensor/bingobox_s1/stock_beer_500/config"]
    assert beer["value_template"] == "{{ value_json.stock.get('beer-500', 0) }}" and beer["state_topic"] == \
        "bingobox/s1/state"
    assert "homeassistant/sensor/bingobox_s1/restock/config" in conf


def test_events_are_collected_once_in_order_without_accounts(tmp_path):
    j = Journal(tmp_path / "j.db")
    j.alarm("old_alarm", None, {})
    assert outbox.collect(j) == 0  # the first time: the cursors start now (history is not replayed)
    j.alarm("door_forced", "entrance", {"account": "acc_x", "visit": "v1"})
    now = time.time()
    with j.tx() as c:
        c.execute("INSERT INTO charge_intents (visit_id, account_id, amount_fen, items, idem_key, state, "
                  "next_attempt_at, created_at, updated_at) VALUES ('v1', 'acc_x', 700, '[]', 'k1', 'succeeded', "
                  "0, ?, ?)", (now, now + 1))
    j.clear_alarm(2, "op")
    assert outbox.collect(j) == 3
    assert outbox.collect(j) == 0  # collected once
    got = outbox.due(j, 0)
    assert [e["kind"] for e in got] == ["alarm", "alarm_cleared", "charge"]
    assert "acc_x" not in json.dumps(got) and got[0]["data"]["data"] == {"visit": "v1"}
    outbox.done(j, [got[0]["id"]])
    assert [e["kind"] for e in outbox.due(j, 0)] == ["alarm_cleared", "charge"] and outbox.backlog(j) == 2
    # rows are never numbered again once sent (the link sends rows after the last it sent; the fleet dedups by id)
    outbox.done(j, [e["id"] for e in outbox.due(j, 0)])
    outbox.add(j, "device_fault", now, {"device": "shelf-2"})
    assert outbox.due(j, 0)[0]["id"] > got[-1]["id"] and outbox.epoch(j) > 0
    j.close()


def test_the_fleet_drops_duplicates_and_knows_since_when_a_store_is_online(tmp_path):
    db = FleetDB(tmp_path / "f.db")
    ev = m.dumps(m.event_payload("s1", "alarm", 7, 100.0, {"alarm_id": 7, "alarm": "door_forced", "device": "e"}))
    db.apply([("s1", "status", b"online", 10.0), ("s1", "event/alarm", ev, 11.0), ("s1", "event/alarm", ev, 12.0),
              ("s1", "state", m.dumps({"state": "ready", "t": 11.0}), 11.0), ("s1", "status", b"online", 13.0)])
    assert len(db.alarms()) == 1 and db.alarms()[0]["kind"] == "door_forced"
    assert db.store("s1")["since"] == 10.0 and db.store("s1")["online"]
    db.apply([("s1", "status", b"offline", 20.0), ("s2", "status", b"online", 21.0)])
    assert db.summary(22.0)["offline"] == 1 and db.store("s1")["since"] == 20.0
    assert [s["id"] for s in db.stores()] == ["s1", "s2"]  # its open alarm puts it first
    db.apply([("s1", "event/alarm_cleared", m.dumps(m.event_payload("s1", "alarm_cleared", 8, 30.0,
                                                                     {"alarm_id": 7, "by": "op"})), 30.0)])
    assert db.alarms() == [] and db.summary(31.0)["open_alarms"] == 0
    assert [s["id"] for s in db.stores(status="online")] == ["s2"]
    db.close()


def test_an_idle_store_costs_no_commit(tmp_path):
    """The link collects five times a second: with nothing new it only reads (a commit is an fsync on the box the
    exit's charges are committed on)."""
    j = Journal(tmp_path / "j.db")
    outbox.collect(j)
    before = j.commits
    for _ in range(20):
        assert outbox.collect(j) == 0
    assert j.commits == before
    j.alarm("door_forced", "entrance", {})
    assert outbox.collect(j) == 1 and j.commits == before + 2  # the alarm's own commit, and one to queue it
    j.close()


def test_a_command_is_carried_out_once_even_across_a_restart(tmp_path):
    """The transaction ids seen are in memory and, for the minutes a signed command lives, in the audit log: a
    replay after the store restarted is refused."""
    from types import SimpleNamespace

    from bingobox.config import MqttConfig
    from bingobox.mqtt.link import MqttLink
    from bingobox.secretfiles import write_secret

    j = Journal(tmp_path / "j.db")
    acts = []
    store = SimpleNamespace(view={}, journal=j, act=lambda op, action, args: acts.append(action) or
                            {"ok": True, "detail": "done"})
    cfg = MqttConfig(url="mqtt://127.0.0.1:9", command_secret_file=write_secret(tmp_path / "k", KEY))
    raw = m.dumps(m.sign_command(KEY, "s1", "lock_down", "tx-1", "chief", {}))
    topic = "bingobox/s1/cmd/lock_down"
    assert MqttLink(cfg, "s1", store).command(topic, raw)["ok"] is True
    again = MqttLink(cfg, "s1", store).command(topic, raw)  # a new process: nothing in memory
    assert again["ok"] is False and again["error"] == "replayed" and acts == ["lock_down"]
    j.close()


def test_a_store_s_discovery_names_only_its_own_topics(monkeypatch):
    """M6 (second audit): a discovery config whose command topic is another store's would have Home Assistant act
    on that store; the configs are checked where they are built."""
    got = m.ha_discovery("homeassistant", "bingobox", "s1", {"devices": {"door-1": {"kind": "door"}}}, True)
    assert all(v.startswith("bingobox/s1/") for p in got.values() for k, v in p.items() if k.endswith("_topic"))
    original = m.topic
    monkeypatch.setattr(m, "topic", lambda prefix, store, *parts: original(prefix, "s2" if parts[:1] == ("ha",)
                                                                            else store, *parts))
    with pytest.raises(ValueError, match="not under"):
        m.ha_discovery("homeassistant", "bingobox", "s1", {}, True)


def test_each_store_has_its_own_command_key():
    """L4 (second audit): one key served every store, so one compromised box could sign commands for all. A store's
    key is derived from the fleet's master: it signs for that store only."""
    master = "the fleet's master key, long enough"
    k1, k2 = m.store_command_key(master, "s1"), m.store_command_key(master, "s2")
    assert k1 != k2 and len(k1) == 64
    forged = m.dumps(m.sign_command(k1, "s2", "release", "tx-9", "mallory", {}))  # s1's key, for s2
    with pytest.raises(m.CommandRefused, match="signature"):
        m.check_command(k2, "s2", "release", forged, time.time(), set())
    ok = m.dumps(m.sign_command(k2, "s2", "release", "tx-9", "chief", {}))
    assert m.check_command(k2, "s2", "release", ok, time.time(), set())["tx"] == "tx-9"


def test_a_flood_of_forged_commands_costs_the_journal_a_few_rows(tmp_path):
    """L6 (second audit): each forged command wrote a durable audit row, unthrottled."""
    from types import SimpleNamespace

    from bingobox.config import MqttConfig
    from bingobox.mqtt.link import MqttLink
    from bingobox.secretfiles import write_secret

    j = Journal(tmp_path / "j.db")
    store = SimpleNamespace(view={}, journal=j, act=lambda *a: {"ok": True})
    cfg = MqttConfig(url="mqtt://127.0.0.1:9", command_secret_file=write_secret(tmp_path / "k", KEY))
    clock = [1000.0]
    link = MqttLink(cfg, "s1", store, clock=lambda: clock[0])
    link.client.publish = lambda *a, **k: None
    for i in range(500):
        link.command("bingobox/s1/cmd/lock_down", m.dumps(m.sign_command("wrong" * 8, "s1", "lock_down", f"t{i}",
                                                                          "x", {}, ts=int(clock[0]))))
    clock[0] += 61
    link.command("bingobox/s1/cmd/lock_down", b"{}")
    rows = j.all("SELECT action, args, outcome FROM audit")
    assert len(rows) == 12 and link.counts["commands_refused"] == 501
    assert json.loads(rows[-2]["args"])["count"] == 490  # the rest of that minute, counted in one row
    j.close()



def test_the_event_queue_is_bounded_and_keeps_alarms_longest(tmp_path):
    """L3 (second audit): the store's MQTT queue was never pruned or capped."""
    j = Journal(tmp_path / "j.db")
    now = 1_000_000.0
    for i in range(30):
        outbox.add(j, "alarm" if i % 3 == 0 else "charge", now - 100 + i, {"n": i})
    outbox.add(j, "charge", now - 40 * 86_400, {"n": "ancient"})
    assert outbox.prune(j, now, max_rows=100) == 1  # too old: the fleet would refuse it
    before = j.commits
    assert outbox.prune(j, now, max_rows=100) == 0 and j.commits == before  # nothing over: not even a write
    assert outbox.prune(j, now, max_rows=12) == 18
    left = [e["kind"] for e in outbox.due(j, 0, 100)]
    assert left == ["alarm"] * 10 + ["charge"] * 2  # the twenty charges went first, the oldest of them
    j.close()


def test_the_store_sends_events_only_while_a_fleet_service_listens(tmp_path):
    """The fleet's retained presence decides: nothing before it says online, nothing after its last will says
    offline, and a reconnect forgets what a restarted broker no longer holds."""
    from types import SimpleNamespace

    from bingobox.config import MqttConfig
    from bingobox.journal import Journal
    from bingobox.mqtt.link import MqttLink

    journal = Journal(tmp_path / "j.db")
    store = SimpleNamespace(view={}, journal=journal, act=lambda *a, **k: {"ok": True})
    link = MqttLink(MqttConfig(url="mqtt://127.0.0.1:1"), "s1", store)
    say = lambda instance, what: link._on_message(None, None, SimpleNamespace(  # noqa: E731
        topic=m.fleet_status_topic("bingobox", instance), payload=what))
    assert not link.fleet_listening
    say("fleet", b"online")
    assert link.fleet_listening
    say("fleet-2", b"online")
    say("fleet", b"offline")
    assert link.fleet_listening  # (another instance still listens)
    say("fleet-2", b"offline")
    assert not link.fleet_listening
    say("fleet", b"online")
    link._on_connect(SimpleNamespace(publish=lambda *a, **k: None, subscribe=lambda *a, **k: None), None, None,
                     SimpleNamespace(is_failure=False), None)
    assert not link.fleet_listening  # a new connection: only what the broker says now counts
    assert MqttLink(MqttConfig(url="mqtt://127.0.0.1:1", events_wait_for_fleet=False), "s1", store).fleet_listening
    journal.close()
