"""The fleet service's MQTT side: subscribes to every store (``<prefix>/+/#``), applies what arrives to the fleet
database in batches from one writer thread (paho's network thread only queues), and publishes signed commands.

Delay from a store's event to the fleet is measured on arrival (``received - event time``) and kept as a histogram
for ``/metrics`` and the page."""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from ..metrics import Histogram
from ..mqtt import messages as m
from ..secretfiles import read_secret
from .db import FleetDB

log = logging.getLogger(__name__)
BATCH = 2000
QUEUE_MAX = 200_000


class CommandKeys:
    """The command-signing key of each store: ``DIR/<store_id>`` files, else one ``default`` file."""

    def __init__(self, directory: Path | None = None, default: Path | None = None) -> None:
        self.directory, self.default = directory, default

    def key(self, store_id: str) -> str | None:
        if self.directory is not None and (self.directory / store_id).is_file():
            return read_secret(self.directory / store_id, f"store {store_id}'s command key")
        return read_secret(self.default, "the command key") if self.default else None


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
        self.counts = {"received": 0, "applied": 0, "dropped": 0, "connects": 0, "commands": 0}
        self.delay_ms = {"event": Histogram(50_000), "state": Histogram(50_000)}
        self._q: queue.Queue = queue.Queue(maxsize=QUEUE_MAX)
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write, name="fleet-writer", daemon=True)
        self.changed = threading.Event()  # something arrived: the page's stream pushes sooner
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311, clean_session=True,
                        client_id=client_id or f"bingobox-fleet-{secrets.token_hex(4)}")
        c.max_queued_messages_set(10_000)
        if username:
            c.username_pw_set(username, password)
        if tls:
            c.tls_set(ca_certs=ca_file)
        c.reconnect_delay_set(1, 15)
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        self.client = c

    def start(self) -> None:
        self._writer.start()
        self.client.connect_async(self.host, self.port, 30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._stop.set()
        self._writer.join(timeout=5)

    def _on_connect(self, client, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            log.warning("fleet: the broker refused the connection: %s", reason_code)
            return
        self.connected = True
        self.counts["connects"] += 1
        client.subscribe(self.subscription, qos=1)
        log.info("fleet: connected to %s:%s, subscribed to %s", self.host, self.port, self.subscription)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        self.connected = False
        log.warning("fleet: disconnected (%s): reconnecting", reason_code)

    def _on_message(self, _client, _userdata, msg) -> None:
        self.counts["received"] += 1
        parts = msg.topic.split("/", 2)  # (a shared subscription delivers the topic without its $share prefix)
        if len(parts) < 3 or parts[0] != self.prefix or (parts[2].startswith("cmd/") and not
                                                          parts[2].endswith("/result")):
            return
        try:
            self._q.put_nowait((parts[1][:64], parts[2], bytes(msg.payload[:65_536]), time.time()))
        except queue.Full:
            self.counts["dropped"] += 1

    def _write(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            # by store (stable: each store's messages keep their order): instances sharing a database then take
            # the stores' rows in the same order and do not deadlock; a conflict that happens anyway is retried
            batch.sort(key=lambda msg: msg[0])
            for attempt in range(5):
                delays: list[tuple[str, float]] = []
                try:
                    self.counts["applied"] += self.db.apply(batch, delays)
                    for kind, ms in delays:
                        self.delay_ms[kind].add(ms)
                    break
                except Exception as e:
                    if attempt == 4:
                        log.error("fleet: %d messages not applied: %s", len(batch), e)
                        self.counts["dropped"] += len(batch)
                    else:
                        time.sleep(0.05 * (attempt + 1))
            self.changed.set()

    def backlog(self) -> int:
        return self._q.qsize()

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
