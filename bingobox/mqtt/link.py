"""The store's MQTT link (paho-mqtt): connects out to the chain's broker, says who it is, publishes its state,
events and metrics, and carries out signed commands through the same path as the status screen's actions.

    connect:   last will ``status`` = offline (retained); on every (re)connect ``status`` = online, ``state`` and the
               Home Assistant discovery configs (retained) again, and the subscriptions again
    events:    from the journal's durable queue (``outbox``), QoS 1, deleted when the broker acknowledged them — sent
               only while a fleet service says it listens (``_fleet/<instance>/status``): after a broker restart
               the fleet must subscribe again before anything is published that only it would read
    commands:  ``cmd/<name>`` → checked (signature, age, replay) → ``StoreApp.act`` → audited → ``cmd/<name>/result``
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from ..actions import ACTIONS
from ..config import MqttConfig
from ..domain.budget import MinuteBudget
from ..view import View
from ..worker import Worker
from . import messages as m
from . import outbox

log = logging.getLogger(__name__)
WINDOW = 50  # events in flight (published, not yet acknowledged)
REFUSALS_AUDITED = 10  # refused commands written to the audit log one by one, per minute


class MqttLink:
    def __init__(self, cfg: MqttConfig, store_id: str, store: Any, clock=time.time) -> None:
        """``store``: what the screen uses too — ``view``, ``journal``, ``act(operator, action, args)``."""
        self.cfg, self.store_id, self.store, self.clock = cfg, store_id, store, clock
        self.journal = store.journal
        self.prefix = cfg.topic_prefix
        self.epoch = 0
        self.secret = cfg.command_secret()
        self.connected = False
        self.connected_at = float("inf")  # events before this waited for a connection: late
        self.counts = {"connects": 0, "disconnects": 0, "events_sent": 0, "events_acked": 0, "events_dropped": 0,
                       "states": 0, "commands": 0, "commands_refused": 0}
        self._last_prune = float("-inf")
        self._lock = threading.RLock()
        self._inflight: dict[int, int] = {}  # mid → outbox row
        self._early: set[int] = set()  # mids acknowledged before the sender noted them (see ``_send_events``)
        self._acked: list[int] = []
        self._sent_upto = 0
        self._pending = True  # the queue may hold rows not yet sent (set whenever rows are added or a connection made)
        self._fresh = threading.Event()  # (re)connected: retained things again
        self._last_state: tuple[float, dict] | None = None
        self._last_metrics = 0.0
        self._devices: dict[str, bool] = {}
        self._seen_tx: deque[str] = deque(maxlen=1000)
        self._refusals = MinuteBudget(REFUSALS_AUDITED)
        self.fleets: dict[str, bool] = {}  # fleet instance → listening (its retained status; reset on reconnect)
        self._commands: queue.Queue = queue.Queue(maxsize=100)
        self._stop = threading.Event()
        self._workers = [Worker("mqtt", self._run, join_s=5, stopping=self._stop),
                         Worker("mqtt-commands", self._run_commands, join_s=5, stopping=self._stop)]
        self.host, self.port, self.tls = m.broker_address(cfg.url)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id or f"bingobox-{store_id}",
                        protocol=mqtt.MQTTv311, clean_session=True)
        if cfg.username:
            c.username_pw_set(cfg.username, cfg.password())
        if self.tls:
            c.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                      certfile=str(cfg.cert_file) if cfg.cert_file else None,
                      keyfile=str(cfg.key_file) if cfg.key_file else None)
        c.will_set(self.t("status"), "offline", qos=1, retain=True)
        c.reconnect_delay_set(1, 30)
        c.on_connect, c.on_disconnect = self._on_connect, self._on_disconnect
        c.on_publish, c.on_message = self._on_publish, self._on_message
        self.client = c

    def t(self, *parts: str) -> str:
        return m.topic(self.prefix, self.store_id, *parts)

    # lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        outbox.collect(self.journal, self.clock())  # (the first time: the cursors start now)
        self.epoch = outbox.epoch(self.journal)
        self.client.connect_async(self.host, self.port, self.cfg.keepalive_s)
        self.client.loop_start()
        for w in self._workers:
            w.start()

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.stop()
        if self.connected:  # a clean goodbye: offline now, not after the keepalive runs out
            self.client.publish(self.t("status"), "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def status(self) -> dict:
        return {"broker": f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}", "connected": self.connected,
                "fleet_listening": self.fleet_listening, "backlog": outbox.backlog(self.journal), **self.counts}

    # paho callbacks (its network thread: no journal writes here) ---------------------------------
    def _on_connect(self, client, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            log.warning("mqtt: %s:%s refused the connection: %s", self.host, self.port, reason_code)
            return
        self.connected = True
        self.connected_at = time.time()
        log.info("mqtt: connected to %s:%s", self.host, self.port)
        client.publish(self.t("status"), "online", qos=1, retain=True)
        client.subscribe([(self.t("cmd", "+"), 1), (f"{self.cfg.ha_prefix}/status", 1),
                          (m.fleet_status_topic(self.prefix, "+"), 1)]
                         + ([(self.t("ha", "lockdown", "set"), 1)] if self.cfg.ha_lockdown_switch else []))
        with self._lock:
            self.fleets = {}  # (a broker that restarted kept no presence: wait for the fleet to say it listens)
            self._inflight.clear()
            self._early.clear()
            self._sent_upto = 0  # whatever was not acknowledged goes again (the fleet drops duplicates by id)
            self._pending = True
            self.counts["connects"] += 1  # (under the lock: the sender tells a reconnect by it)
        self._fresh.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:
        if self.connected:
            self.counts["disconnects"] += 1
            log.warning("mqtt: disconnected (%s): reconnecting", reason_code)
        self.connected = False

    def _on_publish(self, _client, _userdata, mid, _reason_code, _props) -> None:
        """(paho calls this holding its own message lock: whoever holds ``_lock`` must never call into paho.)"""
        with self._lock:
            row = self._inflight.pop(mid, None)
            if row is not None:
                self._acked.append(row)
            elif len(self._early) < 10_000:  # (the status, the state… or an event not noted yet)
                self._early.add(mid)

    def _on_message(self, _client, _userdata, msg) -> None:
        parts = msg.topic.split("/")
        if len(parts) == 4 and parts[0] == self.prefix and parts[1] == m.FLEET and parts[3] == "status":
            with self._lock:
                listening = msg.payload == b"online"
                if listening and not any(self.fleets.values()):
                    self._pending = True  # what waited for a listener goes now
                self.fleets[parts[2][:64]] = listening
            return
        if msg.topic == f"{self.cfg.ha_prefix}/status":
            if msg.payload == b"online":  # Home Assistant (re)started: it wants the discovery configs again
                self._fresh.set()
            return
        try:
            self._commands.put_nowait((msg.topic, msg.payload))
        except queue.Full:
            log.warning("mqtt: command queue full: %s dropped", msg.topic)

    # the link's own thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step(self.clock())
            except Exception as e:  # a disk fault: the next round (never a tight loop)
                log.error("mqtt: %s", e)
                self._stop.wait(2.0)
            self._stop.wait(0.2)

    def step(self, now: float) -> None:
        view = self.store.view
        self._device_faults(view, now)
        if outbox.collect(self.journal, now):
            self._pending = True
        if now - self._last_prune >= 60:
            self._last_prune = now
            dropped = outbox.prune(self.journal, now)
            if dropped:
                self.counts["events_dropped"] += dropped
                log.error("mqtt: %d events dropped from the queue (too old, or over %d waiting)", dropped,
                          outbox.MAX_ROWS)
        with self._lock:
            acked, self._acked = self._acked, []
        outbox.done(self.journal, acked)
        self.counts["events_acked"] += len(acked)
        if not self.connected:
            return
        fresh = self._fresh.is_set()
        if fresh:
            self._fresh.clear()
            self._retained(view)
        self._publish_state(view, now, force=fresh)
        if now - self._last_metrics >= self.cfg.metrics_every_s:
            self._last_metrics = now
            self.client.publish(self.t("metrics"), m.dumps(m.metrics_payload(view, self.store_id)), qos=0)
        self._send_events(now)

    def _retained(self, view: View) -> None:
        if self.cfg.ha_discovery:
            for topic, payload in m.ha_discovery(self.cfg.ha_prefix, self.prefix, self.store_id, view,
                                                 self.cfg.ha_lockdown_switch).items():
                self.client.publish(topic, m.dumps(payload), qos=1, retain=True)

    def _publish_state(self, view: View, now: float, force: bool = False) -> None:
        if not view or (not force and self._last_state is not None
                        and now - self._last_state[0] < self.cfg.state_every_s):
            return  # (too soon to publish: not even the alarm count is read)
        open_alarms = int(self.journal.one("SELECT count(*) FROM alarms WHERE cleared_at IS NULL")[0])
        state = m.state_payload(view, self.store_id, open_alarms)
        same = {k: v for k, v in state.items() if k != "t"}
        if not force and self._last_state is not None:
            t, before = self._last_state
            if before == same and now - t < 12 * self.cfg.state_every_s:
                return
        self.client.publish(self.t("state"), m.dumps(state), qos=1, retain=True)
        self._last_state = (now, same)
        self.counts["states"] += 1

    def _device_faults(self, view: View, now: float) -> None:
        online = {n: bool(d.get("online")) for n, d in (view.get("devices") or {}).items()}
        for name, up in online.items():
            was = self._devices.get(name)
            if was is not None and was != up:
                kind = (view["devices"][name] or {}).get("kind")
                outbox.add(self.journal, "device_back" if up else "device_fault", now,
                           {"device": name, "device_kind": kind, "online": up})
                self._pending = True
        if online:
            self._devices = online

    @property
    def fleet_listening(self) -> bool:
        """A fleet service has said it listens (or the store does not wait for one)."""
        return not self.cfg.events_wait_for_fleet or any(self.fleets.values())

    def _send_events(self, now: float) -> None:
        with self._lock:
            room, after, gen = WINDOW - len(self._inflight), self._sent_upto, self.counts["connects"]
            listening = self.fleet_listening
        if room <= 0 or not self._pending or not listening:  # (nothing queued since last found empty: no read)
            return
        due = outbox.due(self.journal, after, room)
        if len(due) < room:
            with self._lock:
                if gen == self.counts["connects"]:  # (a reconnect meanwhile means: everything again)
                    self._pending = False  # all of it goes now
        for ev in due:
            payload = m.event_payload(self.store_id, ev["kind"], ev["id"], ev["t"], ev["data"], now,
                                      waited=ev["t"] < self.connected_at - 1.0, epoch=self.epoch)
            # never under ``_lock``: paho calls ``_on_publish`` holding its message lock, which publish() takes too
            # (publishing under ``_lock`` deadlocked the sender with paho's thread when an ack came in meanwhile)
            info = self.client.publish(self.t("event", ev["kind"]), m.dumps(payload), qos=1)
            with self._lock:
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    self._pending = True
                    return  # not connected after all: next round
                if gen != self.counts["connects"]:
                    return  # a reconnect meanwhile: everything goes again from the start
                if info.mid in self._early:  # acknowledged before it was noted here
                    self._early.discard(info.mid)
                    self._acked.append(ev["id"])
                else:
                    self._inflight[info.mid] = ev["id"]
                self._sent_upto = ev["id"]
            self.counts["events_sent"] += 1

    # commands --------------------------------------------------------------------------------------
    def _run_commands(self) -> None:
        while not self._stop.is_set():
            try:
                topic, payload = self._commands.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.command(topic, payload)
            except Exception:
                log.exception("mqtt: command %s", topic)

    def command(self, topic: str, payload: bytes) -> dict | None:
        """Carry out one command message; returns the result published (None for Home Assistant's switch)."""
        now = self.clock()
        if topic == self.t("ha", "lockdown", "set"):
            action = {b"ON": "lock_down", b"OFF": "release"}.get(payload.strip())
            if action == "lock_down":
                self._apply("home-assistant", action, {}, "ha")
            elif action == "release":  # (its topic is unsigned: it may lock a store down, never open it up)
                self._refused(now, "home-assistant", "release", None, "ha", "ha_release_refused: Home Assistant's "
                              "switch only locks down; release on the store's screen or by a signed fleet command")
            return None
        name = topic.rsplit("/", 1)[-1]
        tx = None
        try:
            cmd = m.check_command(self.secret, self.store_id, name, payload, now, set(self._seen_tx))
            tx = cmd["tx"]
            # (after a restart the memory is gone: the audit of the last minutes, all a signed command may be old)
            if self.journal.one("SELECT 1 FROM audit WHERE t >= ? AND source='mqtt' AND instr(args, ?) > 0",
                                (now - 2 * m.MAX_SKEW_S, f'"tx": {json.dumps(tx)}')):
                raise m.CommandRefused("replayed", f"transaction {tx} was carried out already")
            self._seen_tx.append(tx)
            result = self._apply(f"fleet:{cmd['operator']}", name, cmd["args"], "mqtt", tx)
        except m.CommandRefused as e:
            self._refused(now, "(mqtt)", name, tx, "mqtt", f"{e.code}: {e}")
            result = {"ok": False, "error": e.code, "detail": str(e)}
        out = {"tx": tx, "t": self.clock(), **result,
               "outcome": {True: "ok", False: "failed", None: "unknown"}[result["ok"]]}
        self.client.publish(self.t("cmd", name, "result"), m.dumps(out), qos=1)
        return out

    def _refused(self, now: float, operator: str, action: str, tx: str | None, source: str, detail: str) -> None:
        """A refused command, audited — at most ``REFUSALS_AUDITED`` rows a minute (a flood of forged commands
        costs the journal one row a minute more, the count of the rest)."""
        self.counts["commands_refused"] += 1
        write, left_out = self._refusals.take(now)
        if left_out is not None:
            self.journal.audit("(mqtt)", "commands_refused", {"count": left_out[0], "since": left_out[1]},
                               "rejected", "more refused commands in that minute, not written one by one", source)
        if not write:
            return
        log.warning("mqtt: command %s refused: %s", action, detail)
        self.journal.audit(operator, action, {"tx": tx}, "rejected", detail, source)

    def _apply(self, operator: str, action: str, raw_args: dict, source: str, tx: str | None = None) -> dict:
        try:
            args = ACTIONS[action].model_validate(raw_args)
        except ValidationError as e:
            detail = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            self.journal.audit(operator, action, {"tx": tx, "args": raw_args}, "rejected", detail, source)
            return {"ok": False, "error": "bad_args", "detail": detail}
        audit_id = self.journal.audit(operator, action, {"tx": tx, **args.model_dump()}, "started", "", source)
        self.counts["commands"] += 1
        result = self.store.act(operator, action, args)
        outcome = {True: "ok", False: "failed", None: "unknown"}[result["ok"]]
        self.journal.set_audit_outcome(audit_id, outcome, result.get("detail", ""))
        return {"ok": result["ok"], "detail": result.get("detail", ""), **({"error": result["error"]}
                                                                             if result.get("error") else {})}
