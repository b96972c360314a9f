"""The fleet's state in PostgreSQL (Debian's, a throwaway cluster): the same database behaviour as with SQLite, and
the fleet service run with ``--db postgresql://…`` taking a store's messages published by mosquitto_pub."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time

import pytest
import requests

from bingobox.fleet.db import FleetDB
from bingobox.mqtt import messages as m
from bingobox.screen.auth import hash_password
from bingobox.secretfiles import write_secret
from bingobox_devkit.harness.broker import Broker, fleet_metrics, start_fleet
from bingobox_devkit.harness.postgres import Postgres
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    yield p
    p.stop()


def fresh_database(pg) -> str:
    """A new database in the cluster (each test its own): its DSN."""
    import psycopg

    name = "t" + secrets.token_hex(4)
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return pg.dsn.rsplit("/", 1)[0] + "/" + name


def broker_for(tmp_path, store: str) -> tuple[Broker, dict[str, str]]:
    """A broker with one store's user and the fleet's; the fleet's password, a command key and an operator (chief,
    may command) written for ``start_fleet``."""
    pw = {store: secrets.token_urlsafe(16), "fleet": secrets.token_urlsafe(16), "fleet-2": secrets.token_urlsafe(16)}
    broker = Broker(tmp_path / "broker", pw)
    write_secret(tmp_path / "fleet.pw", pw["fleet"])
    write_secret(tmp_path / "fleet-2.pw", pw["fleet-2"])
    write_secret(tmp_path / "key", secrets.token_urlsafe(24))
    (tmp_path / "ops.toml").write_text(f'[[operators]]\nname = "chief"\npassword_hash = '
                                       f'"{hash_password("chief-password-1")}"\nmay_command = true\n')
    return broker, pw


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_fleet_database_behaves_the_same_on_both(backend, pg, tmp_path):
    target = fresh_database(pg) if backend == "postgresql" else str(tmp_path / "f.db")
    db = FleetDB(target)
    ev = m.dumps(m.event_payload("s1", "alarm", 7, 100.0, {"alarm_id": 7, "alarm": "door_forced", "device": "e"}))
    db.apply([("s1", "status", b"online", 10.0), ("s1", "event/alarm", ev, 11.0), ("s1", "event/alarm", ev, 12.0),
              ("s1", "state", m.dumps({"state": "lockdown", "t": 11.0}), 11.0), ("s2", "status", b"online", 13.0),
              ("s2", "state", m.dumps({"state": "ready", "t": 13.0}), 13.0), ("s1", "state", b"not json", 14.0)])
    assert [a["kind"] for a in db.alarms()] == ["door_forced"]  # the QoS 1 duplicate dropped
    assert [s["id"] for s in db.stores()] == ["s1", "s2"]  # open alarms first
    assert [s["id"] for s in db.stores(state="ready")] == ["s2"]
    db.apply([("s1", "status", b"offline", 20.0)])
    assert db.store("s1")["since"] == 20.0 and db.summary(21.0) == {"stores": 2, "online": 1, "offline": 1,
                                                                      "open_alarms": 1, "t": 21.0}
    a = db.audit("chief", "lock_down@s1", {}, "started")
    db.set_audit_outcome(a, "ok", "done")
    assert db.recent_audit()[0]["outcome"] == "ok" and db.audit("chief", "x", {}, "ok") == a + 1
    db.command_sent("tx1", "s1", "lock_down", {}, "chief")
    db.apply([("s1", "cmd/lock_down/result", m.dumps({"tx": "tx1", "ok": True}), 30.0)])
    assert db.command_result("tx1") == {"tx": "tx1", "ok": True}
    db.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_one_bad_message_costs_only_itself_on_both(backend, pg, tmp_path):
    """The audit's H2 batch on both databases: each message in its savepoint; and a database of the first schema
    (events keyed by id alone) migrated with its rows."""
    import psycopg

    target = fresh_database(pg) if backend == "postgresql" else str(tmp_path / "f.db")
    old = ("CREATE TABLE stores (id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, since FLOAT8 NOT NULL, "
           "last_seen FLOAT8 NOT NULL, state TEXT, state_t FLOAT8, metrics TEXT, open_alarms INTEGER NOT NULL "
           "DEFAULT 0); CREATE TABLE alarms (event_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, alarm_id INTEGER, "
           "kind TEXT NOT NULL, device TEXT, t FLOAT8 NOT NULL, data TEXT NOT NULL, received_at FLOAT8 NOT NULL, "
           "late INTEGER NOT NULL, cleared_at FLOAT8, cleared_by TEXT); CREATE TABLE events (event_id TEXT PRIMARY "
           "KEY, store_id TEXT NOT NULL, kind TEXT NOT NULL, t FLOAT8 NOT NULL, data TEXT NOT NULL, received_at "
           "FLOAT8 NOT NULL, late INTEGER NOT NULL); INSERT INTO stores VALUES ('a', 1, 1.0, 2.0, NULL, NULL, NULL, "
           "0); INSERT INTO alarms VALUES ('a:0:1', 'a', 1, 'door_forced', 'e', 5.0, '{}', 5.0, 0, NULL, NULL)")
    if backend == "postgresql":
        with psycopg.connect(target, autocommit=True) as c:
            for stmt in old.split(";"):
                c.execute(stmt)
    else:
        import sqlite3

        with sqlite3.connect(target) as c:
            c.executescript(old)
    db = FleetDB(target)
    now = time.time()

    def alarm(store: str, k: int) -> tuple:
        return (store, "event/alarm", m.dumps(m.event_payload(store, "alarm", k, now, {"alarm_id": k})), now)

    got = db.apply([("b", "status", b"online", now), ("evil", "status", b"online", now), alarm("a", 2),
                    ("evil", "event/alarm", json.dumps({"id": "e1", "t": "soon", "data": {}}).encode(), now),
                    ("evil", "state", json.dumps({"t": now, "open_alarms": 1e30}).encode(), now),
                    ("evil", "event/alarm", json.dumps({"id": "a:0:1", "t": now, "data": {"alarm_id": 1}}).encode(),
                     now), alarm("b", 1)])
    assert len(got.refused) == 2 and got.applied == 5
    assert sorted((a["store_id"], a["event_id"]) for a in db.alarms()) == [
        ("a", "a:0:1"), ("a", "a:0:2"), ("b", "b:0:1"), ("evil", "a:0:1")]
    db.close()
    assert FleetDB(target).one("SELECT version FROM schema_version")["version"] == 2


def test_the_fleet_service_on_postgresql_takes_a_stores_messages(pg, tmp_path):
    broker, pw = broker_for(tmp_path, "s-pg")
    fleet = None
    try:
        fleet, url = start_fleet(tmp_path, broker.url, pg.dsn, tmp_path / "key", tmp_path / "ops.toml",
                                 tmp_path / "fleet.pw")
        time.sleep(1.0)  # subscribed

        def pub(topic: str, payload: str, retain: bool = False) -> None:
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "s-pg", "-P",
                            pw["s-pg"], "-q", "1", "-t", topic, "-m", payload, *(["-r"] if retain else [])],
                           check=True, timeout=10)

        pub("bingobox/s-pg/status", "online", retain=True)
        pub("bingobox/s-pg/state", json.dumps({"state": "ready", "t": time.time(), "inside": 2}), retain=True)
        pub("bingobox/s-pg/event/alarm", m.dumps(m.event_payload("s-pg", "alarm", 1, time.time(),
                                                                 {"alarm_id": 1, "alarm": "tailgating"})).decode())
        pub("bingobox/other/state", json.dumps({"state": "ready", "t": time.time()}))  # the ACL drops it
        s = requests.Session()
        s.post(url + "api/login", json={"name": "chief", "password": "chief-password-1"}, timeout=10)
        wait_until(lambda: s.get(url + "api/state", timeout=10).json()["alarms"], 10, "the alarm at the fleet")
        st = s.get(url + "api/state", timeout=10).json()
        assert [x["id"] for x in st["stores_shown"]] == ["s-pg"] and st["stores_shown"][0]["inside"] == 2
        assert st["alarms"][0]["kind"] == "tailgating"
    finally:
        if fleet is not None:
            fleet.stop()
        broker.stop()


def test_two_fleet_instances_share_the_stores_messages_and_one_database(pg, tmp_path):
    """A shared subscription ($share/fleet/…): each instance takes a share; PostgreSQL holds every event once; a
    command sent by one instance is answered whichever instance receives the result."""
    import psycopg

    dsn = fresh_database(pg)
    broker, pw = broker_for(tmp_path, "s-a")
    fleets, urls = [], []
    try:
        for i in range(2):
            user = ["fleet", "fleet-2"][i]  # (each instance its own broker user: client ids are user names)
            proc, url = start_fleet(tmp_path, broker.url, dsn, tmp_path / "key", tmp_path / "ops.toml",
                                    tmp_path / f"{user}.pw", "--share", "fleet", name=f"fleet{i}", user=user)
            fleets.append(proc)
            urls.append(url)
        time.sleep(1.0)
        # a store is known to the fleet by its own status first (the ACL lets only the store write it)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "s-a", "-P", pw["s-a"],
                        "-q", "1", "-r", "-t", "bingobox/s-a/status", "-m", "online"], check=True, timeout=10)
        with psycopg.connect(dsn) as c:
            wait_until(lambda: c.execute("SELECT count(*) FROM stores").fetchone()[0] == 1, 10, "the store known")
        n = 200
        lines = "\n".join(m.dumps(m.event_payload("s-a", "alarm", k, time.time(), {"alarm_id": k, "alarm": "x"}))
                          .decode() for k in range(1, n + 1))
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "s-a", "-P", pw["s-a"],
                        "-q", "1", "-t", "bingobox/s-a/event/alarm", "-l"], input=lines, text=True, check=True,
                       timeout=30)

        def received(url: str, what: str = "received") -> float:
            text = fleet_metrics(url, tmp_path)
            return float(re.search(rf'bingobox_fleet_messages_total\{{what="{what}"\}} (\S+)', text).group(1))

        with psycopg.connect(dsn) as c:
            wait_until(lambda: c.execute("SELECT count(*) FROM alarms").fetchone()[0] == n, 20, "every alarm once")
        shares = [received(u) for u in urls]
        assert sum(shares) == n + 1 and min(shares) > 0, shares  # each instance took a share, none twice
        # commands from instance 0; each result is published once and lands at either instance: answered anyway
        s = requests.Session()
        csrf = s.post(urls[0] + "api/login", json={"name": "chief", "password": "chief-password-1"},
                      timeout=10).json()["csrf"]
        import threading

        before = [received(u, "applied") for u in urls]
        for k in range(6):
            store = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "s-a", "-P",
                                      pw["s-a"], "-t", "bingobox/s-a/cmd/+", "-C", "1", "-W", "15"],
                                     stdout=subprocess.PIPE, text=True)
            time.sleep(0.3)
            answer: dict = {}
            t = threading.Thread(target=lambda a=answer: a.update(s.post(
                urls[0] + "api/commands/s-a/lock_down", json={}, headers={"X-CSRF-Token": csrf}, timeout=30).json()))
            t.start()
            cmd = json.loads(store.communicate(timeout=20)[0])
            if k % 2:  # (the broker deals messages round-robin: a state between shifts which instance gets the result)
                subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "s-a", "-P",
                                pw["s-a"], "-q", "1", "-t", "bingobox/s-a/state", "-m", json.dumps({"t": time.time()})],
                               check=True, timeout=10)
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", "s-a", "-P", pw["s-a"],
                            "-q", "1", "-t", "bingobox/s-a/cmd/lock_down/result",
                            "-m", json.dumps({"tx": cmd["tx"], "ok": True, "detail": "ready → lockdown"})],
                           check=True, timeout=10)
            t.join(timeout=30)
            assert answer.get("ok") is True and answer.get("tx") == cmd["tx"], answer
        got = [received(u, "applied") - b for u, b in zip(urls, before, strict=True)]
        assert sum(got) == 9 and min(got) > 0, got  # results reached both instances: answered through the database
    finally:
        for f in fleets:
            f.stop()
        broker.stop()
