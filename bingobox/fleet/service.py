"""The fleet service's MQTT side: subscribes to every store (``<prefix>/+/#``), applies what arrives to the fleet
database in batches from one writer thread (paho's network thread only queues), and publishes signed commands.

Delay from a store's event to the fleet is measured on arrival (``received - event time``) and kept as a histogram
for ``/metrics`` and the page."""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import deque
from pathlib import Path

import paho.mqtt.client as mqtt

from ..metrics import Histogram
from ..mqtt import messages as m
from ..secretfiles import read_secret
from ..worker import Worker, backoff_s
from .db import FleetDB
from .schema import MAX_PAYLOAD

PER_STORE_MAX = 5_000  # messages waiting per store (a store's queue after a broker outage fits)
QUEUE_BYTES = 64 * 2**20  # bytes waiting in all


class FairQueue:
    """The messages waiting for the writer, a queue per store taken in turn: a store that floods the fleet fills
    only its own queue (``PER_STORE_MAX``) and gets its turn like every other store, so it can neither push the
    others' messages out nor delay them behind its own. All of it is bounded in bytes (``QUEUE_BYTES``)."""

    def __init__(self, per_store: int = PER_STORE_MAX, max_bytes: int = QUEUE_BYTES) -> None:
        self.per_store, self.max_bytes = per_store, max_bytes
        self._stores: dict[str, deque] = {}
        self._turn: deque[str] = deque()  # stores with something waiting, in turn order
        self._bytes = 0
        self._n = 0
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return self._n

    def put(self, store_id: str, item: tuple) -> bool:
        """False (dropped) when the store's own queue or the whole queue is full."""
        size = len(item[2]) + 200
        with self._cond:
            q = self._stores.get(store_id)
            if (q is not None and len(q) >= self.per_store) or self._bytes + size > self.max_bytes:
                return False
            if q is None:
                q = self._stores[store_id] = deque()
                self._turn.append(store_id)
            q.append(item)
            self._bytes += size
            self._n += 1
            self._cond.notify()
            return True

    def take(self, limit: int, timeout: float) -> list[tuple]:
        """Up to ``limit`` messages, round robin over the stores (each store's in order); waits up to ``timeout``."""
        with self._cond:
            if not self._n:
                self._cond.wait(timeout)
            out: list[tuple] = []
            while self._turn and len(out) < limit:
                sid = self._turn.popleft()
                q = self._stores[sid]
                item = q.popleft()
                out.append(item)
                self._bytes -= len(item[2]) + 200
                self._n -= 1
                if q:
                    self._turn.append(sid)
                else:
                    del self._stores[sid]
            return out

log = logging.getLogger(__name__)
BATCH = 2000


class CommandKeys:
    """The command-signing key of each store: a ``DIR/<store_id>`` file, else derived from the master key
    (``messages.store_command_key``: what ``bingobox command-key`` installs on the store)."""

    def __init__(self, directory: Path | None = None, master: Path | None = None) -> None:
        self.directory, self.master = directory, master

    def key(self, store_id: str) -> str | None:
        if self.directory is not None and (self.directory / store_id).is_file():
            return read_secret(self.directory / store_id, f"store {store_id}'s command key")
        if self.master is None:
            return None
        return m.store_command_key(read_secret(self.master, "the master command key"), store_id)


class FleetService:
    def __init__(self, url: str, db: FleetDB, keys: CommandKeys, prefix: str = "bingobox",
                 username: str | None = None, password: str | None = None, ca_file: str | None = None,
                 client_id: str | None = None, share: str | None = None) -> None:
        """``share``: a shared-subscription group — several fleet instances on one database (PostgreSQL) each get
        a share of the messages (``$share/<group>/<prefix>/+/#``)."""
        self.db, self.keys, self.prefix = db, keys, prefix
        self.subscription = f"$share/{share}/{prefix}/+/#" if share else f"{prefix}/+/#"
        self.host, self.port, tls = m.broker_address(url)
        self.connected = False
        self.counts = {"received": 0, "applied": 0, "dropped": 0, "refused": 0, "clamped": 0, "connects": 0,
                       "commands": 0}
        self.refused: dict[str, int] = {}  # reason → messages refused for it
        self.delay_ms = {"event": Histogram(50_000), "state": Histogram(50_000)}
        self._q = FairQueue()
        self._writer = Worker("fleet-writer", self._write, join_s=5)
        self._stop = self._writer.stopping
        self.beat = time.monotonic()  # the writer's last sign of progress (the watchdog's)
        self.changed = threading.Event()  # something arrived: the page's stream pushes sooner
        # a persistent session: while this instance is away the broker keeps its subscription and queues the stores'
        # QoS 1 messages for it (a broker with persistence keeps them across its own restarts)
        self.instance = (client_id or username or "fleet")[:64]
        # (one of several instances sharing the stores' messages keeps a clean session: the others take its share)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311, clean_session=share is not None,
                        client_id=client_id or f"bingobox-fleet-{username or 'fleet'}")
        self.presence = m.fleet_status_topic(prefix, re.sub(r"[^A-Za-z0-9_.-]", "_", self.instance))
        c.will_set(self.presence, "offline", qos=1, retain=True)
        c.max_queued_messages_set(10_000)
        if username:
            c.username_pw_set(username, password)
        if tls:
            c.tls_set(ca_certs=ca_file)
        c.reconnect_delay_set(1, 15)
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c

    def start(self) -> None:
        self._writer.start()
        self.client.connect_async(self.host, self.port, 30)
        self.client.loop_start()

    def stop(self) -> None:
        if self.connected:  # (a clean goodbye: the stores hold their events from now)
            self.client.publish(self.presence, "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        self._writer.stop()

    def _on_connect(self, client, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            log.warning("fleet: the broker refused the connection: %s", reason_code)
            return
        self.connected = True
        self.counts["connects"] += 1
        client.subscribe(self.subscription, qos=1)
        log.info("fleet: connected to %s:%s, subscribed to %s", self.host, self.port, self.subscription)

    def _on_subscribe(self, client, _userdata, _mid, reason_codes, _props) -> None:
        """Subscribed: tell the stores this instance listens (they hold their events until one does)."""
        if all(not rc.is_failure for rc in reason_codes):
            client.publish(self.presence, "online", qos=1, retain=True)
        else:
            log.error("fleet: the broker refused the subscription to %s: %s", self.subscription, reason_codes)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        self.connected = False
        log.warning("fleet: disconnected (%s): reconnecting", reason_code)

    def _on_message(self, _client, _userdata, msg) -> None:
        """paho's thread: queue the message under its store (checked later, by the writer)."""
        parts = msg.topic.split("/", 2)  # (a shared subscription delivers the topic without its $share prefix)
        if len(parts) >= 2 and parts[1] == m.FLEET:
            return  # (fleet instances' presence: for the stores)
        self.counts["received"] += 1
        if len(parts) < 3 or parts[0] != self.prefix or parts[2].startswith("ha/") or (
                parts[2].startswith("cmd/") and not parts[2].endswith("/result")):
            return  # (commands, HA's switch and fleet presence are for the stores, not news for the fleet)
        if len(msg.payload) > MAX_PAYLOAD:
            self._refuse(parts[1][:64], "too_large")
            return
        if not self._q.put(parts[1], (parts[1], parts[2], bytes(msg.payload), time.time())):
            self.counts["dropped"] += 1

    def _refuse(self, store_id: str, reason: str) -> None:
        self.counts["refused"] += 1
        n = self.refused[reason] = self.refused.get(reason, 0) + 1
        if n in (1, 10, 100) or n % 1000 == 0:
            log.warning("fleet: refused a message of %r: %s (%d refused for that reason so far)", store_id, reason, n)

    def _write(self) -> None:
        while not self._stop.is_set():
            self.beat = time.monotonic()
            batch = self._q.take(BATCH, timeout=0.2)
            if not batch:
                continue
            # by store (stable: each store's messages keep their order): instances sharing a database then take
            # the stores' rows in the same order and do not deadlock; a conflict that happens anyway is retried
            batch.sort(key=lambda msg: msg[0])
            attempt = 0
            while not self._stop.is_set():  # a batch is never dropped: a bad message is refused alone (apply)
                self.beat = time.monotonic()
                delays: list[tuple[str, float]] = []
                try:
                    got = self.db.apply(batch, delays)
                except Exception as e:  # the database itself (locked, gone): the whole batch again, later
                    attempt += 1
                    if attempt in (1, 5) or attempt % 50 == 0:
                        log.error("fleet: %d messages wait: the database failed (%d in a row): %s", len(batch),
                                  attempt, e)
                    self._stop.wait(backoff_s(attempt + 1, 0.05, 5.0))
                    continue
                self.counts["applied"] += got.applied
                self.counts["clamped"] += got.clamped
                for store_id, reason in got.refused:
                    self._refuse(store_id, reason)
                for kind, ms in delays:
                    self.delay_ms[kind].add(ms)
                break
            self.changed.set()

    def backlog(self) -> int:
        return len(self._q)

    def stuck(self, within_s: float = 10.0) -> str | None:
        """What is wrong with the writer (None: it runs and has made progress within ``within_s``): a writer that
        died or hangs in the database stops the watchdog's pings. A database that refuses is not a hang (the
        writer goes on retrying, and says so in the log)."""
        if not self._writer.alive():
            return "the writer thread is not running"
        idle = time.monotonic() - self.beat
        return f"the writer has made no progress for {idle:.0f} s" if idle > within_s else None

    # commands --------------------------------------------------------------------------------------------
    def send_command(self, store_id: str, name: str, args: dict, operator: str, timeout: float = 10.0) -> dict:
        """Publish a signed command and wait for the store's result (ok True/False, or None: no answer in time)."""
        key = self.keys.key(store_id)
        if key is None:
            return {"ok": False, "error": "no_key", "detail": f"no command key for store {store_id}"}
        if not self.connected:
            return {"ok": False, "error": "broker_down", "detail": "the fleet service is not connected to the broker"}
        tx = "tx_" + secrets.token_hex(8)
        self.db.command_sent(tx, store_id, name, args, operator)
        body = m.sign_command(key, store_id, name, tx, operator, args)
        self.client.publish(m.topic(self.prefix, store_id, "cmd", name), m.dumps(body), qos=1)
        self.counts["commands"] += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.db.command_result(tx)
            if got is not None:
                return {**got, "tx": tx}
            time.sleep(0.1)
        return {"ok": None, "tx": tx, "error": "no_answer",
                "detail": f"no answer from {store_id} in {timeout:g} s: an offline store never gets it (commands "
                          "are not queued), a slow one may still carry it out — look at its state"}
