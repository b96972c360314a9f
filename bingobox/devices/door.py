"""Door board driver: Modbus RTU relay/input board. Polls the inputs, drives the lock relay, runs the door
machine (grant window, relock, forced/held-open alarms, fire) and reports events and a status snapshot.

One poll thread owns the bus: commands from other threads are queued and written at once (the queue wakes
the thread), so the unlock command leaves within microseconds of ``grant()``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from ..config import DoorConfig
from ..domain.door import DoorMachine, DoorTiming
from ..protocol import modbus as mb
from ..transport import LinkDown, SerialLink
from .events import DeviceEvent, Listener

log = logging.getLogger(__name__)


class NoReply(TimeoutError):
    pass


class DoorBoard:
    """One door on one board."""

    def __init__(self, cfg: DoorConfig, on_event: Listener, link_factory=SerialLink) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self._emit = on_event
        self.machine = DoorMachine(cfg.name, DoorTiming(cfg.unlock_s, cfg.held_open_s, cfg.relock_on,
                                                         cfg.rex_unlocks, cfg.rex_shunt_s),
                                   initial="fault")  # until the board has answered, the door is unknown
        self._decoder = mb.ResponseDecoder(units=frozenset({cfg.unit}), max_byte_count=(cfg.inputs + 7) // 8 + 8)
        self._replies: queue.Queue = queue.Queue()
        self._commands: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.link = link_factory(cfg.port, baudrate=cfg.baudrate, name=cfg.name, on_data=self._on_data,
                                 on_state=self._on_link_state)
        self.inputs: tuple[bool, ...] | None = None
        self.relay_on: bool | None = None  # last read-back of the lock relay
        self._relay_cmd: bool | None = None  # last relay state we wrote
        self.online = False
        self._rex_was = False
        self.misses = 0
        self.last_poll: float | None = None
        self.stats = {"polls": 0, "no_reply": 0, "exceptions": 0, "mismatched": 0, "relay_writes": 0,
                      "relay_mismatch": 0}
        self._quiet_until = 0.0
        self._last_write: tuple[float, float] | None = None  # the last relay write: sent, acknowledged (wall clock)
        self.heartbeat = time.monotonic()  # the poll loop's last turn
        self.failure: str | None = None  # why the poll thread died, if it did
        self.on_failure: Callable[[str], None] | None = None  # set by the app: a dead door driver ends the process
        self.watchdog_armed: bool | None = None  # the board's communication watchdog (None: not configured)
        self._lock = threading.Lock()

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.link.start()
        self._thread = threading.Thread(target=self._run, name=f"door-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._commands.put(("wake", None))
        if self._thread:
            self._thread.join(timeout=2)
        self.link.stop()

    # commands (any thread) -------------------------------------------------------------------------
    def grant(self, seconds: float | None = None, tag: str | None = None,
              done: Callable[[str, str], None] | None = None) -> None:
        """Access granted: unlock for the grant window (relock on close/open or at the end of the window). With a
        ``tag``, an ``unlock_written`` event says when the unlock went on the wire and when the board answered.
        ``done(outcome, detail)`` (from the driver's thread): ``unlocked`` (the board acknowledged the relay),
        ``refused`` (the door is in no state to open, or its board is not answering) or ``unknown`` (the write
        went out and no answer came: the door may be open)."""
        self._commands.put(("grant", (seconds, tag, done)))

    @property
    def state(self) -> str:
        return self.machine.state

    def status(self) -> dict:
        with self._lock:
            inputs = self.inputs
            return {
                "kind": "door", "name": self.name, "state": self.machine.state, "online": self.online,
                "door_open": self.machine.door_open, "fire": self.machine.fire,
                "lock_engaged": self._lock_engaged(), "relay_on": self.relay_on,
                "inputs": [int(b) for b in inputs[: self.cfg.inputs]] if inputs else None,
                "last_poll": self.last_poll, "link": self.link.status(), "decoder": dict(self._decoder.stats),
                "board_watchdog": self.watchdog_armed, "failure": self.failure,
                **self.stats,
            }

    # wire ------------------------------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        for frame in self._decoder.feed(data):
            self._replies.put(frame)

    def _on_link_state(self, up: bool) -> None:
        self._emit(DeviceEvent(self.name, "connected" if up else "disconnected", {"url": self.cfg.port}))
        if up:
            self._commands.put(("wake", None))

    def _transact(self, req: mb.Request) -> mb.Response:
        """One request, its reply. After a timeout the line gets a guard interval and late frames are thrown
        away, so a slow board's late reply is never taken for the answer to the next request."""
        wait = self._quiet_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        while not self._replies.empty():
            self._replies.get_nowait()
        rx_before = self.link.stats["rx_bytes"]
        self.link.write(mb.encode_request(req))
        deadline = time.monotonic() + self.cfg.response_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._decoder.reset()  # silence ends any partial frame (RTU 3.5-char rule)
                if self.link.stats["rx_bytes"] == rx_before:
                    # nothing came back: a late reply may still be on its way, let it pass before asking again
                    self._quiet_until = time.monotonic() + self.cfg.response_timeout_s
                raise NoReply(f"no reply to {type(req).__name__} within {self.cfg.response_timeout_s}s")
            try:
                resp = self._replies.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(resp, mb.ExceptionResponse):
                self.stats["exceptions"] += 1
                raise mb.ProtocolError(f"board answered {resp.description} to {req}")
            if not _answers(req, resp):
                self.stats["mismatched"] += 1
                continue
            return resp

    def _write_relay(self, on: bool) -> None:
        req = mb.WriteCoil(self.cfg.unit, self.cfg.lock_coil, mb.COIL_ON if on else mb.COIL_OFF)
        written = time.time()
        resp = self._transact(req)
        if not isinstance(resp, mb.WriteCoil) or resp.on != on:
            raise mb.ProtocolError(f"unexpected reply to coil write: {resp}")
        self._last_write = (written, time.time())
        self._relay_cmd = on
        self.stats["relay_writes"] += 1

    def _relay_for(self, lock: bool) -> bool:
        return (not lock) == self.cfg.energize_to_unlock

    def _lock_engaged(self) -> bool | None:
        if self.relay_on is None:
            return None
        return self.relay_on != self.cfg.energize_to_unlock

    # the poll thread -------------------------------------------------------------------------------
    def healthy(self, within_s: float = 5.0) -> bool:
        """The poll thread is alive and went round its loop lately (the watchdog ping depends on it)."""
        return (self._thread is not None and self._thread.is_alive() and self.failure is None
                and time.monotonic() - self.heartbeat < within_s)

    def _run(self) -> None:
        """The poll loop. It must not die silently with the relay frozen: an unexpected error puts the door in
        ``fault``, says so (an event, the log) and calls ``on_failure`` (the app exits so systemd restarts it)."""
        try:
            self._loop()
        except Exception as e:
            self.failure = f"{type(e).__name__}: {e}"
            log.exception("%s: the door driver failed", self.name)
            self.online = False
            try:
                self.machine.on_link(time.monotonic(), False)
            finally:
                self._emit(DeviceEvent(self.name, "fault", {"fault": "driver_failed", "error": self.failure}))
                if self.on_failure is not None:
                    self.on_failure(f"door {self.name}: {self.failure}")

    def _loop(self) -> None:
        period = 1.0 / self.cfg.poll_hz
        next_poll = time.monotonic()
        readback_every = max(1, int(self.cfg.poll_hz))  # coil read-back about once a second
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                cmd, arg = self._commands.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                cmd, arg = "poll", None
            now = time.monotonic()
            if cmd == "grant":
                self._grant(now, *arg)
            if now >= next_poll:
                next_poll = now + period
                self._poll(now, self.stats["polls"] % readback_every == 0)
            self._sync_outputs(time.monotonic())

    def _grant(self, now: float, seconds: float | None, tag: str | None,
               done: Callable[[str, str], None] | None) -> None:
        granted = self.machine.on_grant(now, seconds)
        if not granted:
            self._emit(DeviceEvent(self.name, "grant_refused", {"state": self.machine.state, "tag": tag}))
        self._last_write = None
        self._sync_outputs(now)  # the unlock leaves before anything else touches the bus
        unlocked = self.online and self._relay_cmd == self._relay_for(False)
        if tag is not None and unlocked:
            written, acked = self._last_write or (time.time(), time.time())  # (already unlocked: now)
            self._emit(DeviceEvent(self.name, "unlock_written", {"tag": tag, "written": written, "acked": acked}))
        if done is None:
            return
        if not granted:
            done("refused", f"{self.name} refused: the door is {self.machine.state}"
                 + ("" if self.online else " (its board is not answering)"))
        elif unlocked:
            done("unlocked", f"{self.name} unlocked")  # (the board acknowledged the relay)
        else:
            done("unknown", f"{self.name}: the unlock was sent and not acknowledged: the door may or may not be open")

    def _poll(self, now: float, readback: bool) -> None:
        cfg = self.cfg
        try:
            resp = self._transact(mb.ReadBits(cfg.unit, mb.READ_DISCRETE_INPUTS, 0, cfg.inputs))
            if readback:
                coils = self._transact(mb.ReadBits(cfg.unit, mb.READ_COILS, cfg.lock_coil, 1))
                with self._lock:
                    self.relay_on = coils.bits[0]
                if self._relay_cmd is not None and coils.bits[0] != self._relay_cmd:
                    self.stats["relay_mismatch"] += 1
                    self._emit(DeviceEvent(self.name, "fault", {"fault": "relay_mismatch",
                                                                "commanded": self._relay_cmd,
                                                                "read_back": coils.bits[0]}))
                    self._relay_cmd = None  # write again on the next sync
        except (NoReply, LinkDown, mb.ProtocolError) as e:
            self.stats["no_reply"] += isinstance(e, NoReply)
            self.misses += 1
            if self.online and self.misses >= cfg.failures_before_fault:
                self.online = False
                self.link.dump(f"door board not answering: {e}")
                self.machine.on_link(now, False)
                self._emit(DeviceEvent(self.name, "fault", {"fault": "board_unreachable", "error": str(e)}))
            self._flush_events()
            return
        self.misses = 0
        self.stats["polls"] += 1
        self.last_poll = time.time()
        bits = resp.bits
        with self._lock:
            self.inputs = bits
        door_open = bits[cfg.contact_input] != cfg.contact_closed_level
        fire = cfg.fire_input is not None and bits[cfg.fire_input] == cfg.fire_active_level
        rex = cfg.rex_input is not None and bits[cfg.rex_input]
        m = self.machine
        if not self.online:
            self.online = True
            m.door_open, m.fire = door_open, fire
            m.on_link(now, True)
            self._relay_cmd = None
            self._arm_board_watchdog()
        m.on_fire(now, fire)
        if rex and not self._rex_was:
            m.on_rex(now)
        self._rex_was = rex
        m.on_contact(now, door_open)
        m.on_tick(now)

    def _arm_board_watchdog(self) -> None:
        """Tell a board that has a communication watchdog how long to wait for us before it drops its relays
        (written at every (re)connection: a board that restarted forgot it)."""
        cfg = self.cfg
        if cfg.comm_watchdog_register is None or cfg.comm_watchdog_s is None:
            return
        counts = round(cfg.comm_watchdog_s / cfg.comm_watchdog_unit_s)
        req = mb.WriteRegister(cfg.unit, cfg.comm_watchdog_register, counts)
        try:
            if self._transact(req) != req:
                raise mb.ProtocolError("unexpected reply to the watchdog register write")
            self.watchdog_armed = True
        except (NoReply, LinkDown, mb.ProtocolError) as e:
            self.watchdog_armed = False
            log.error("%s: the board's communication watchdog could not be set: %s", self.name, e)
            self._emit(DeviceEvent(self.name, "fault", {"fault": "comm_watchdog_not_set", "error": str(e)}))

    def _sync_outputs(self, now: float) -> None:
        """Drive the relay to what the machine wants (if it differs from what we last wrote), emit events."""
        if self.online:
            want = self._relay_for(self.machine.lock_wanted)
            if want != self._relay_cmd:
                try:
                    self._write_relay(want)
                    with self._lock:
                        self.relay_on = want
                except (NoReply, LinkDown, mb.ProtocolError) as e:
                    log.warning("%s: relay write failed: %s", self.name, e)
                    self._relay_cmd = None
        self._flush_events()

    def _flush_events(self) -> None:
        for kind, data in self.machine.drain():
            self._emit(DeviceEvent(self.name, kind, data))


def _answers(req: mb.Request, resp: mb.Response) -> bool:
    """Whether ``resp`` is a well-formed answer to ``req`` (function, address and size agree)."""
    if isinstance(req, mb.ReadBits):
        return (isinstance(resp, mb.BitsResponse) and resp.function == req.function
                and len(resp.bits) == (req.count + 7) // 8 * 8)
    if isinstance(req, mb.WriteCoil | mb.WriteRegister):
        return resp == req
    if isinstance(req, mb.WriteCoils):
        return isinstance(resp, mb.WriteCoilsResponse) and (resp.address, resp.count) == (req.address, len(req.values))
    return False
