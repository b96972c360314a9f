"""``bingobox fleet-load``: N simulated stores' telemetry against Debian's mosquitto and the fleet service, measured.

It starts a broker (per-store passwords and the chain's ACL, as a pilot would run it) and ``bingobox fleet`` as
processes, then plays N stores from one process (paho clients on one selector loop): each store connects with its
own user and last will, publishes its retained status and state (every ``--state-every-s``, jittered), metrics
every 30 s, and bursts of events (visits ended, charges, sometimes an alarm) at a realistic rate. Measured: messages
per second sent and applied by the fleet, the delay from an event to the fleet service (its histogram) and from an
alarm to the fleet *page* (an operator's live stream, logged in), and CPU and memory of the broker and the fleet
service (from /proc). With ``--hostile`` one compromised store floods and sends malformed, future-dated, oversized and
foreign-topic messages; the run reports the good stores' alarms delivered against those sent."""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import selectors
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests

from bingobox.metrics import Histogram
from bingobox.mqtt import messages as m
from bingobox.screen.auth import hash_password
from bingobox.secretfiles import write_secret

from .broker import Broker, fleet_metrics, start_fleet

PREFIX = "bingobox"
HOSTILE = "store-hostile"


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0



def _on_selector(c: mqtt.Client, sel: selectors.BaseSelector) -> None:
    """Drive client ``c``'s socket from ``sel`` (paho's external-loop hooks), not a thread per client."""
    def opened(cl: mqtt.Client, _u: object, sock: Any) -> None:
        sel.register(sock, selectors.EVENT_READ, cl)

    def closed(_cl: mqtt.Client, _u: object, sock: Any) -> None:
        try:
            sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    def want_write(cl: mqtt.Client, _u: object, sock: Any) -> None:
        sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, cl)

    def done_write(cl: mqtt.Client, _u: object, sock: Any) -> None:
        sel.modify(sock, selectors.EVENT_READ, cl)

    c.on_socket_open, c.on_socket_close = opened, closed
    c.on_socket_register_write, c.on_socket_unregister_write = want_write, done_write

class Stores:
    """N store clients on one selector loop (paho's external-loop API: no thread per client)."""

    def __init__(self, n: int, port: int, passwords: dict[str, str], state_every_s: float, burst_every_s: float,
                 alarm_share: float, seed: int) -> None:
        self.n, self.port = n, port
        self.sel = selectors.DefaultSelector()
        self.rng = random.Random(seed)
        self.state_every_s, self.burst_every_s, self.alarm_share = state_every_s, burst_every_s, alarm_share
        self.sent = {"state": 0, "metrics": 0, "event": 0, "alarm": 0}
        self.alarms_of: dict[str, int] = {}  # alarms sent, per store
        self.clients: list[tuple[str, mqtt.Client]] = []
        self.connected = 0
        self.row = 0
        for i in range(n):
            sid = f"store-{i:05d}"
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bingobox-{sid}", protocol=mqtt.MQTTv311)
            c.username_pw_set(sid, passwords[sid])
            c.will_set(m.topic(PREFIX, sid, "status"), "offline", qos=1, retain=True)
            c.max_inflight_messages_set(100)
            _on_selector(c, self.sel)
            c.on_connect = self._on_connect
            c.user_data_set(sid)
            self.clients.append((sid, c))

    def _on_connect(self, client, sid, _flags, reason_code, _props) -> None:
        if not reason_code.is_failure:
            self.connected += 1
            client.publish(m.topic(PREFIX, sid, "status"), "online", qos=1, retain=True)

    def pump(self, timeout: float) -> None:
        for key, mask in self.sel.select(timeout):
            c = key.data
            if mask & selectors.EVENT_READ:
                c.loop_read()
            if mask & selectors.EVENT_WRITE:
                c.loop_write()

    def connect_all(self, deadline_s: float = 120) -> float:
        t0 = time.monotonic()
        for i, (_, c) in enumerate(self.clients):
            c.connect("127.0.0.1", self.port, keepalive=60)
            if i % 50 == 0:
                self.pump(0)
        while self.connected < self.n and time.monotonic() - t0 < deadline_s:
            self.pump(0.05)
        return time.monotonic() - t0

    def state(self, sid: str, t: float) -> dict:
        return {"store_id": sid, "t": t, "state": "ready", "what_works": "entry, shopping, exit and charging",
                "inside": self.rng.randint(0, 4), "doors": {"entrance": {"open": False, "locked": True,
                                                                         "online": True, "state": "locked"},
                                                            "exit": {"open": False, "locked": True, "online": True,
                                                                     "state": "locked"}},
                "devices": {}, "problems": [], "charges_pending": 0, "gateway_up": True, "open_alarms": 0}

    def run(self, seconds: float, stop: threading.Event, hostile: Hostile | None = None) -> float:
        """Play the stores for ``seconds`` (and the hostile one, 20 rounds a second); the wall time played."""
        now = time.time()
        due_state = {sid: now + self.rng.uniform(0, self.state_every_s) for sid, _ in self.clients}
        due_burst = {sid: now + self.rng.expovariate(1 / self.burst_every_s) for sid, _ in self.clients}
        due_metrics = {sid: now + self.rng.uniform(0, 30) for sid, _ in self.clients}
        t0 = time.monotonic()
        last_misc, last_hostile = 0.0, t0
        while time.monotonic() - t0 < seconds and not stop.is_set():
            now = time.time()
            for sid, c in self.clients:
                if now >= due_state[sid]:
                    due_state[sid] = now + self.state_every_s * self.rng.uniform(0.8, 1.2)
                    c.publish(m.topic(PREFIX, sid, "state"), m.dumps(self.state(sid, now)), qos=1, retain=True)
                    self.sent["state"] += 1
                if now >= due_metrics[sid]:
                    due_metrics[sid] = now + 30
                    c.publish(m.topic(PREFIX, sid, "metrics"), m.dumps({"store_id": sid, "t": now}), qos=0)
                    self.sent["metrics"] += 1
                if now >= due_burst[sid]:
                    due_burst[sid] = now + self.rng.expovariate(1 / self.burst_every_s)
                    for _ in range(self.rng.randint(1, 4)):
                        self.row += 1
                        alarm = self.rng.random() < self.alarm_share
                        kind = "alarm" if alarm else self.rng.choice(["visit_ended", "charge"])
                        data = {"alarm_id": self.row, "alarm": "door_forced", "device": "entrance"} if alarm \
                            else {"visit_id": f"v{self.row}", "outcome": "succeeded", "amount_fen": 700}
                        c.publish(m.topic(PREFIX, sid, "event", kind),
                                  m.dumps(m.event_payload(sid, kind, self.row, now, data, now)), qos=1)
                        self.sent["alarm" if alarm else "event"] += 1
                        if alarm:
                            self.alarms_of[sid] = self.alarms_of.get(sid, 0) + 1
                self.pump(0)
            if hostile is not None and time.monotonic() - last_hostile >= 0.05:
                hostile.round(time.monotonic() - last_hostile, self.clients[0][0])
                last_hostile = time.monotonic()
            if time.monotonic() - last_misc > 1.0:
                last_misc = time.monotonic()
                for _, c in [*self.clients, *([("", hostile.c)] if hostile else [])]:
                    c.loop_misc()
            self.pump(0.01)
        return time.monotonic() - t0

    def close(self) -> None:
        for _, c in self.clients:
            c.disconnect()
        self.pump(0.1)


class Hostile:
    """One compromised store among the good ones (its own user and password, so only the ACL and the fleet's
    checks stand in its way): every round it floods alarms, sends malformed JSON, states dated ten years ahead,
    payloads over the fleet's 64 KiB, and writes to topics that are not its own."""

    def __init__(self, sid: str, port: int, password: str, sel: selectors.BaseSelector, flood_per_s: float) -> None:
        self.sid, self.flood_per_s = sid, flood_per_s
        self.sent = {"flood_alarms": 0, "malformed": 0, "future": 0, "oversized": 0, "foreign": 0}
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=sid, protocol=mqtt.MQTTv311)
        c.username_pw_set(sid, password)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(20_000)
        _on_selector(c, sel)
        c.on_connect = lambda cl, *_a: cl.publish(m.topic(PREFIX, sid, "status"), "online", qos=1, retain=True)
        c.connect("127.0.0.1", port, keepalive=60)
        self.c, self.row, self.debt = c, 0, 0.0

    def round(self, dt: float, victim: str) -> None:
        c, t = self.c, m.topic
        self.debt += self.flood_per_s * dt
        while self.debt >= 1:
            self.debt -= 1
            self.row += 1
            body = m.event_payload(self.sid, "alarm", self.row, time.time(), {"alarm_id": self.row, "alarm": "flood"})
            c.publish(t(PREFIX, self.sid, "event", "alarm"), m.dumps(body), qos=0)
            self.sent["flood_alarms"] += 1
        for payload in (b'{"id": "x", "t": "yesterday", "data": {}}', b"\xff\xfe not json",
                        json.dumps({"id": "y", "t": time.time(), "data": [1, 2]}).encode()):
            c.publish(t(PREFIX, self.sid, "event", "alarm"), payload, qos=0)
            self.sent["malformed"] += 1
        c.publish(t(PREFIX, self.sid, "state"), m.dumps({"t": time.time() + 10 * 365 * 86400, "state": "ready",
                                                          "open_alarms": 10**9}), qos=0, retain=True)
        self.sent["future"] += 1
        c.publish(t(PREFIX, self.sid, "metrics"), b"{" + b" " * 100_000 + b"}", qos=0)
        self.sent["oversized"] += 1
        for topic in (t(PREFIX, victim, "state"), t(PREFIX, victim, "event", "alarm"), t(PREFIX, "phantom", "state"),
                      t(PREFIX, self.sid, "ha", "lockdown", "set"), t(PREFIX, victim, "cmd", "release")):
            c.publish(topic, m.dumps({"t": time.time(), "id": "z", "data": {}}), qos=0)
            self.sent["foreign"] += 1


class PageWatcher(threading.Thread):
    """An operator's live fleet page: the delay from each alarm's time to its first appearance in the stream."""

    def __init__(self, url: str, name: str, password: str) -> None:
        super().__init__(daemon=True, name="page")
        self.url, self.cred = url, (name, password)
        self.delay_ms = Histogram(100_000)
        self.seen: set[str] = set()
        self.pushes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        s = requests.Session()
        s.post(self.url + "api/login", json={"name": self.cred[0], "password": self.cred[1]}, timeout=30)
        with s.get(self.url + "api/stream", stream=True, timeout=(5, 60)) as r:
            for line in r.iter_lines():
                if self.stop.is_set():
                    return
                if not line.startswith(b"data: "):
                    continue
                now = time.time()
                self.pushes += 1
                for a in json.loads(line[6:])["alarms"]:
                    if a["event_id"] not in self.seen:
                        self.seen.add(a["event_id"])
                        self.delay_ms.add((now - a["t"]) * 1000)


def _fleet_metrics(url: str, directory: Path) -> dict:
    out = {}
    for line in fleet_metrics(url, directory).splitlines():
        mt = re.match(r'bingobox_fleet_(messages_total\{what="(\w+)"\}|delay_ms\{kind="event",quantile="0\.(\d+)"\}|'
                      r'backlog) (\S+)', line)
        if mt:
            key = mt.group(2) or (f"event_p{mt.group(3)}" if mt.group(3) else "backlog")
            out[key] = float(mt.group(4))
    return out


def run(args) -> int:
    k = args.instances
    if k > 1 and not args.db:
        raise SystemExit("--instances needs --db postgresql://… (the instances' shared database)")
    d = Path(args.run_dir).resolve()
    subprocess.run(["rm", "-rf", str(d)], check=True)
    d.mkdir(parents=True)
    passwords = {f"store-{i:05d}": secrets.token_urlsafe(12) for i in range(args.stores)}
    passwords[HOSTILE] = secrets.token_urlsafe(12)
    fleet_users = ["fleet", *[f"fleet-{i + 1}" for i in range(1, k)]]  # (client ids are user names: one each)
    for user in fleet_users:
        passwords[user] = secrets.token_urlsafe(18)
        write_secret(d / f"{user}.pw", passwords[user])
    broker = Broker(d / "broker", passwords)
    write_secret(d / "command.key", secrets.token_urlsafe(24))
    op = ("load", secrets.token_urlsafe(12))
    (d / "operators.toml").write_text(f'[[operators]]\nname = "{op[0]}"\npassword_hash = "{hash_password(op[1])}"\n')
    fleets, urls, stores = [], [], None
    try:
        for i in range(k):
            proc, url = start_fleet(d, broker.url, args.db or str(d / "fleet.db"), d / "command.key",
                                    d / "operators.toml", d / f"{fleet_users[i]}.pw",
                                    *(["--share", "fleet"] if k > 1 else []), name=f"fleet{i}", user=fleet_users[i])
            fleets.append(proc)
            urls.append(url)

        def metrics() -> dict:
            got = [_fleet_metrics(u, d) for u in urls]
            out = {key: sum(g.get(key, 0) for g in got) for key in ("applied", "dropped", "refused", "backlog")}
            out.update({q: max(g.get(q) or 0 for g in got) for q in ("event_p50", "event_p99")})  # the worst one
            return out

        stores = Stores(args.stores, broker.port, passwords, args.state_every_s, args.burst_every_s,
                        args.alarm_share, args.seed)
        t_start = time.time()
        connect_s = stores.connect_all()
        hostile = Hostile(HOSTILE, broker.port, passwords[HOSTILE], stores.sel, args.hostile_flood) \
            if args.hostile else None
        page = PageWatcher(urls[0], *op)
        page.start()
        stores.run(args.warmup_s, threading.Event(), hostile)  # (retained states arrive, the page's first pushes)
        before = metrics()
        fleet_cpu = lambda: sum(_cpu_s(f.p.pid) for f in fleets)  # noqa: E731
        broker_pid = broker.pid()
        assert broker_pid is not None, "the broker is not running"
        cpu0 = {"broker": _cpu_s(broker_pid), "fleet": fleet_cpu(), "load": time.process_time()}
        sent0 = sum(stores.sent.values())
        t_play = stores.run(args.seconds, threading.Event(), hostile)
        cpu = {"broker": _cpu_s(broker_pid) - cpu0["broker"], "fleet": fleet_cpu() - cpu0["fleet"],
               "load": time.process_time() - cpu0["load"]}
        settle0 = time.monotonic()
        while time.monotonic() - settle0 < 30 and metrics().get("backlog", 0) > 0:
            stores.pump(0.1)
        after = metrics()
        page.stop.set()
        from bingobox.fleet.db import FleetDB

        fdb = FleetDB(args.db or str(d / "fleet.db"))
        got = {r["store_id"]: r["n"] for r in fdb.all(
            "SELECT store_id, count(*) AS n FROM alarms WHERE received_at >= ? GROUP BY store_id", (t_start,))}
        fdb.close()
        good_sent = sum(stores.alarms_of.values())
        good_got = sum(n for sid, n in got.items() if sid in stores.alarms_of)
        short = sorted(sid for sid, n in stores.alarms_of.items() if got.get(sid, 0) != n)
        sent = sum(stores.sent.values()) - sent0
        summary = {
            "db": "postgresql" if args.db else "sqlite", "fleet_instances": k, "stores": args.stores,
            "connected": stores.connected, "connect_s": round(connect_s, 1),
            "seconds": round(t_play, 1), "sent_per_s": round(sent / t_play, 1),
            "sent": dict(stores.sent),
            "fleet_applied_per_s": round((after["applied"] - before["applied"]) / t_play, 1),
            "fleet_dropped": after["dropped"], "fleet_backlog_end": after["backlog"],
            "good_alarms": {"sent": good_sent, "delivered": good_got, "stores_short": short[:20]},
            "hostile": ({"sent": hostile.sent, "alarms_stored": got.get(HOSTILE, 0),
                         "refused_by_fleet": after.get("refused", 0)} if hostile else None),
            "event_to_fleet_ms": {"p50": after["event_p50"], "p99": after["event_p99"]},
            "alarm_to_page_ms": page.delay_ms.summary(), "page_pushes": page.pushes,
            "cpu_percent_of_one_core": {key: round(100 * v / t_play, 1) for key, v in cpu.items()},
            "rss_mb": {"broker": round(_rss_mb(broker_pid), 1),
                       "fleet": round(sum(_rss_mb(f.p.pid) for f in fleets), 1)},
        }
        print(json.dumps(summary, indent=None if args.json else 2), flush=True)
    finally:
        if stores is not None:
            stores.close()
        for fleet in fleets:
            fleet.stop()
        broker.stop()
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("fleet-load", help="N simulated stores against mosquitto and the fleet service, measured")
    p.add_argument("--stores", type=int, default=100)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--warmup-s", type=float, default=10)
    p.add_argument("--state-every-s", type=float, default=5.0, help="each store's state (retained, QoS 1)")
    p.add_argument("--burst-every-s", type=float, default=60.0, help="mean time between a store's bursts of 1-4 "
                   "events (visits ended, charges, alarms)")
    p.add_argument("--alarm-share", type=float, default=0.1, help="share of events that are alarms")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--run-dir", default="run/fleet-load")
    p.add_argument("--instances", type=int, default=1, help="fleet service instances sharing the subscription "
                   "($share) and the database (needs --db postgresql://…)")
    p.add_argument("--db", help="the fleet service's database: default a SQLite file in the run dir; or a "
                   "PostgreSQL DSN")
    p.add_argument("--hostile", action="store_true", help="one compromised store among them: floods alarms, "
                   "malformed, future-dated and oversized messages, other stores' topics")
    p.add_argument("--hostile-flood", type=float, default=2000, help="its flood: alarms per second")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=lambda a: run(a))
