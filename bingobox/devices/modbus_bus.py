"""One serial line (an RS-485 bus, or a board on its own port) shared by Modbus RTU units, each with its doors. The
bus owns the port and runs every transaction on it from one thread.

- Door commands go before polling: a grant wakes the thread, and its coil write leaves before the next poll.
- Between frames the line stays silent at least t3.5 (3.5 characters at the line's speed; 1.75 ms above 19200 baud,
  as the Modbus spec fixes it) and at least ``min_gap_ms`` (USB adapters that batch bytes). Input is flushed
  before every request, so nothing left from an earlier exchange is taken for its answer.
- Each unit has its own timeout, retry budget (``failures_before_fault`` missed replies in a row) and circuit
  breaker: once a unit is down its doors are in ``fault`` and it is asked again only every ``breaker_retry_s``, with
  one request that waits at most ``probe_timeout_s``. So a dead board costs the others one short probe per retry
  interval, never a timeout per poll (the way one dead slave stalls a whole pymodbus bus).
- A unit's poll reads the inputs of all its doors in one request; about once a second one more request reads back
  all its lock coils.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import BusConfig
from ..metrics import percentiles
from ..protocol import modbus as mb
from ..transport import LinkDown, SerialLink
from ..worker import Worker

if TYPE_CHECKING:
    from .door import Door
    from .probe import Probe

log = logging.getLogger(__name__)


class NoReply(TimeoutError):
    pass


def t35_s(baudrate: int) -> float:
    """The RTU inter-frame silence: 3.5 characters of 11 bits, fixed at 1.75 ms above 19200 baud."""
    return 0.00175 if baudrate > 19200 else 3.5 * 11 / baudrate


@dataclass
class BusTiming:
    """The line's timing: the config's ``[[buses]]`` values (its defaults are the defaults here too)."""

    poll_hz: float = BusConfig.model_fields["poll_hz"].default
    min_gap_s: float = BusConfig.model_fields["min_gap_ms"].default / 1000
    breaker_retry_s: float = BusConfig.model_fields["breaker_retry_s"].default
    probe_timeout_s: float = BusConfig.model_fields["probe_timeout_s"].default

    @classmethod
    def of(cls, b: BusConfig) -> BusTiming:
        return cls(b.poll_hz, b.min_gap_ms / 1000, b.breaker_retry_s, b.probe_timeout_s)


@dataclass
class Unit:
    """One Modbus slave on the bus (a relay/input board) and the doors wired to it."""

    unit: int
    timeout_s: float
    failures_before_fault: int
    doors: list[Door] = field(default_factory=list)
    online: bool = False
    misses: int = 0
    next_poll: float = 0.0
    retry_at: float = 0.0  # while down: when it is asked again (the breaker)
    quiet_until: float = 0.0
    watchdog_armed: bool | None = None
    rtts_ms: deque[Any] = field(default_factory=lambda: deque(maxlen=1000))
    stats: dict[str, Any] = field(default_factory=lambda: {"polls": 0, "no_reply": 0, "exceptions": 0, "mismatched": 0,
                                                 "relay_writes": 0, "lamp_writes": 0, "probes": 0,
                                                 "breaker_opened": 0})

    @property
    def inputs(self) -> int:
        return max(d.cfg.inputs for d in self.doors)

    @property
    def coils(self) -> tuple[int, int]:
        """(first, count) of the read-back that covers every lock coil of the unit."""
        lo = min(d.cfg.lock_coil for d in self.doors)
        return lo, max(d.cfg.lock_coil for d in self.doors) - lo + 1

    def breaker(self) -> str:
        return "closed" if self.online else "open"

    def rtt(self) -> dict[str, Any]:
        got = percentiles(list(self.rtts_ms))  # (the one percentile every figure uses)
        return {"n": got.pop("count"), "p50": None, "p99": None, "max": None, **got}

    def status(self) -> dict[str, Any]:
        return {"unit": self.unit, "doors": [d.name for d in self.doors], "online": self.online,
                "breaker": self.breaker(), "misses": self.misses, "rtt_ms": self.rtt(),
                "timeout_s": self.timeout_s, "board_watchdog": self.watchdog_armed, **self.stats}


class ModbusBus:
    """A serial port, the units on it and their doors; one thread does every transaction."""

    def __init__(self, name: str, port: str, baudrate: int, timing: BusTiming,
                 link_factory: Callable[..., SerialLink] = SerialLink) -> None:
        self.name = name
        self.port = port
        self.baudrate = baudrate
        self.timing = timing
        self.gap_s = max(t35_s(baudrate), timing.min_gap_s)
        self.units: dict[int, Unit] = {}
        self.doors: list[Door] = []
        self.probes: list[Probe] = []  # temperature probes: units of their own, read between the doors' rounds
        self._decoder = mb.ResponseDecoder()  # (made again, with the units' addresses, when it starts)
        self._replies: queue.Queue[mb.Response] = queue.Queue()
        self._commands: queue.Queue[tuple[str, Door | None, Any]] = queue.Queue()
        self._worker = Worker(f"bus-{name}", self._run, join_s=2)
        self._stop = self._worker.stopping
        self._idle_from = 0.0  # when the line last went quiet (our frame sent, or a reply received)
        self.link = link_factory(port, baudrate=baudrate, name=name, on_data=self._on_data,
                                 on_state=self._on_link_state)
        self.heartbeat = time.monotonic()
        self.failure: str | None = None
        self.on_failure: Callable[[str], None] | None = None  # set by the app: a dead bus ends the process

    def add(self, door: Door) -> None:
        c = door.cfg
        u = self.units.get(c.unit)
        if u is None:
            u = self.units[c.unit] = Unit(c.unit, c.response_timeout_s, c.failures_before_fault)
        u.doors.append(door)
        self.doors.append(door)
        door.bus, door.unit = self, u
        self._new_decoder()

    def add_probe(self, probe: Probe) -> None:
        c = probe.cfg
        if c.unit in self.units or any(p.cfg.unit == c.unit for p in self.probes):
            raise ValueError(f"bus {self.name}: unit {c.unit} is another device's")
        probe.bus, probe.unit = self, Unit(c.unit, c.response_timeout_s, c.failures_before_fault)
        self.probes.append(probe)
        self._new_decoder()

    def _new_decoder(self) -> None:
        units = frozenset([*self.units, *(p.cfg.unit for p in self.probes)])
        most = max([(x.inputs + 7) // 8 for x in self.units.values()] + [2 * p.registers[1] for p in self.probes])
        self._decoder = mb.ResponseDecoder(units=units, max_byte_count=most + 8)

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.link.start()
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._commands.put(("wake", None, None))
        self._worker.stop()
        self.link.stop()

    def command(self, door: Door, cmd: str, arg: Any) -> None:
        self._commands.put((cmd, door, arg))

    def commands_waiting(self) -> bool:
        return not self._commands.empty()

    def healthy(self, within_s: float = 5.0) -> bool:
        """The bus thread is alive and went round its loop lately (the watchdog ping depends on it)."""
        return (self._worker.alive() and self.failure is None
                and time.monotonic() - self.heartbeat < within_s)

    def status(self) -> dict[str, Any]:
        return {"kind": "bus", "name": self.name, "port": self.port, "baudrate": self.baudrate,
                "gap_ms": round(self.gap_s * 1000, 2), "link": self.link.status(),
                "decoder": dict(self._decoder.stats), "failure": self.failure,
                "units": [u.status() for u in self.units.values()]
                + [{**p.unit.status(), "doors": [p.name]} for p in self.probes]}

    # wire ------------------------------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        self._idle_from = time.monotonic()
        for frame in self._decoder.feed(data):
            self._replies.put(frame)

    def _on_link_state(self, up: bool) -> None:
        for d in self.doors:
            d.link_event(up)
        if up:  # the port is (back) open: ask every unit now, not at its breaker's next retry
            for u in self.units.values():
                u.retry_at = 0.0
            self._commands.put(("wake", None, None))

    def transact(self, u: Unit, req: mb.Request, timeout: float | None = None) -> mb.Response:
        """One request to ``u``, its reply. After a timeout with nothing received from a unit that is up, that unit
        gets a guard interval (its late reply must pass before it is asked again, or it would be taken for the next
        answer). Other units may be asked meanwhile — a reply is told apart by its unit address — so a slow board
        does not slow the line for them."""
        timeout = u.timeout_s if timeout is None else timeout
        now = time.monotonic()
        wait = max(u.quiet_until, self._idle_from + self.gap_s) - now
        if wait > 0:
            time.sleep(wait)
        while not self._replies.empty():  # flush: nothing received before this request answers it
            self._replies.get_nowait()
        self._decoder.reset()
        rx_before = self.link.stats["rx_bytes"]
        frame = mb.encode_request(req)
        sent = time.monotonic()
        self.link.write(frame)
        self._idle_from = sent + len(frame) * 11 / self.baudrate
        deadline = sent + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._decoder.reset()  # silence ends any partial frame (RTU 3.5-char rule)
                u.stats["no_reply"] += 1
                if self.link.stats["rx_bytes"] == rx_before and u.online:
                    u.quiet_until = time.monotonic() + timeout
                raise NoReply(f"no reply from unit {u.unit} to {type(req).__name__} within {timeout}s")
            try:
                resp = self._replies.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(resp, mb.ExceptionResponse) and resp.unit == req.unit:
                u.stats["exceptions"] += 1
                raise mb.ProtocolError(f"unit {u.unit} answered {resp.description} to {req}")
            if not answers(req, resp):
                u.stats["mismatched"] += 1
                continue
            u.rtts_ms.append((time.monotonic() - sent) * 1000)
            return resp

    # the thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        """The bus loop. It must not die silently with relays frozen: an unexpected error puts every door on the
        bus in ``fault``, says so and calls ``on_failure`` (the app exits so systemd restarts it)."""
        try:
            self._loop()
        except Exception as e:
            self.failure = f"{type(e).__name__}: {e}"
            log.exception("bus %s: the door driver failed", self.name)
            for d in self.doors:
                d.driver_failed(self.failure)
            if self.on_failure is not None:
                self.on_failure(f"door {', '.join(d.name for d in self.doors)}: {self.failure}")

    def _loop(self) -> None:
        period = 1.0 / self.timing.poll_hz
        readback_every = max(1, int(self.timing.poll_hz))  # coil read-back about once a second
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            due = min([u.next_poll for u in self.units.values()] + [p.next_poll for p in self.probes])
            try:
                first = self._commands.get(timeout=min(1.0, max(0.0, due - time.monotonic())))  # (alive: 1 s)
            except queue.Empty:
                first = None
            self._commands_now(first)
            for u in self.units.values():
                now = time.monotonic()
                if now < u.next_poll:
                    continue
                u.next_poll = now + period
                self._poll(u, now, u.stats["polls"] % readback_every == 0)
                self._commands_now(None)  # door commands go before the next unit's poll
            for d in self.doors:
                d.sync(time.monotonic())
            for d in self.doors:  # last, and only while no grant waits (``Door.sync_lamps``)
                d.sync_lamps()
            for p in self.probes:  # (likewise: a probe's reading never goes ahead of a grant)
                if time.monotonic() >= p.next_poll and not self.commands_waiting():
                    self._read_probe(p)

    def _commands_now(self, first: tuple[str, Door | None, Any] | None) -> None:
        item = first
        while True:
            if item is not None and item[0] == "grant":
                _, door, arg = item
                if door is not None:
                    door.do_grant(time.monotonic(), *arg)
            try:
                item = self._commands.get_nowait()
            except queue.Empty:
                return

    def _poll(self, u: Unit, now: float, readback: bool) -> None:
        probe = not u.online  # (the breaker is open: one short request every breaker_retry_s)
        if (probe and now < u.retry_at) or now < u.quiet_until:  # (its guard: ask the others, do not wait here)
            for d in u.doors:
                d.tick(now)
            return
        try:
            if probe:
                u.stats["probes"] += 1
            inputs = self._bits(u, mb.ReadBits(u.unit, mb.READ_DISCRETE_INPUTS, 0, u.inputs),
                                min(self.timing.probe_timeout_s, u.timeout_s) if probe else None)
            coils = None
            if readback:
                lo, n = u.coils
                coils = self._bits(u, mb.ReadBits(u.unit, mb.READ_COILS, lo, n))
        except (NoReply, LinkDown, mb.ProtocolError) as e:
            self.failed(u, now, e)
            for d in u.doors:
                d.flush_events()
            return
        u.misses = 0
        u.stats["polls"] += 1
        if not u.online:
            u.online = True
            self._arm_watchdog(u)
            for d in u.doors:
                d.came_online(now, inputs)
        for d in u.doors:
            if coils is not None:
                d.relay_read(coils[d.cfg.lock_coil - u.coils[0]])
            d.inputs_read(now, inputs)

    def _read_probe(self, p: Probe) -> None:
        u, now = p.unit, time.monotonic()
        p.next_poll = now + p.cfg.poll_s
        if not u.online and now < u.retry_at:
            return
        lo, n = p.registers
        req = mb.ReadRegisters(u.unit, p.cfg.function, lo, n)
        try:
            resp = self.transact(u, req, None if u.online else min(self.timing.probe_timeout_s, u.timeout_s))
            assert isinstance(resp, mb.RegistersResponse)  # (``answers`` took nothing else)
        except (NoReply, LinkDown, mb.ProtocolError) as e:
            self.failed(u, now, e)
            p.failed(str(e), down=u.misses >= u.failures_before_fault)
            return
        u.misses = 0
        u.stats["polls"] += 1
        u.online = True
        p.read(resp.values)

    def _bits(self, u: Unit, req: mb.ReadBits, timeout: float | None = None) -> tuple[bool, ...]:
        resp = self.transact(u, req, timeout)
        if not isinstance(resp, mb.BitsResponse):
            raise mb.ProtocolError(f"unit {u.unit} answered {type(resp).__name__} to {type(req).__name__}")
        return resp.bits

    def failed(self, u: Unit, now: float, e: Exception) -> None:
        """A request to ``u`` got no (usable) answer: one more miss; at ``failures_before_fault`` in a row its doors
        go to ``fault`` and its breaker opens (asked again only every ``breaker_retry_s``)."""
        u.misses += 1
        if u.online and u.misses >= u.failures_before_fault:
            u.online = False
            u.stats["breaker_opened"] += 1
            self.link.dump(f"unit {u.unit} not answering: {e}")
            for d in u.doors:
                d.went_offline(now, str(e))
        if not u.online:
            u.retry_at = now + self.timing.breaker_retry_s

    def write_coil(self, door: Door, on: bool, coil: int | None = None,
                   count: str = "relay_writes") -> tuple[float, float]:
        """Drive ``door``'s lock relay (or another of its coils: a lamp); (sent, acknowledged) wall-clock times."""
        u = door.unit
        req = mb.WriteCoil(u.unit, door.cfg.lock_coil if coil is None else coil, mb.COIL_ON if on else mb.COIL_OFF)
        written = time.time()
        try:
            resp = self.transact(u, req)
            if not isinstance(resp, mb.WriteCoil) or resp.on != on:
                raise mb.ProtocolError(f"unexpected reply to coil write: {resp}")
        except (NoReply, LinkDown, mb.ProtocolError) as e:
            self.failed(u, time.monotonic(), e)  # (a write that fails counts like a poll that fails)
            raise
        u.misses = 0
        u.stats[count] += 1
        return written, time.time()

    def _arm_watchdog(self, u: Unit) -> None:
        """Tell a board that has a communication watchdog how long to wait for us before it drops its relays
        (written at every (re)connection: a board that restarted forgot it)."""
        cfg = u.doors[0].cfg
        if cfg.comm_watchdog_register is None or cfg.comm_watchdog_s is None:
            return
        counts = round(cfg.comm_watchdog_s / cfg.comm_watchdog_unit_s)
        req = mb.WriteRegister(u.unit, cfg.comm_watchdog_register, counts)
        try:
            if self.transact(u, req) != req:
                raise mb.ProtocolError("unexpected reply to the watchdog register write")
            u.watchdog_armed = True
        except (NoReply, LinkDown, mb.ProtocolError) as e:
            u.watchdog_armed = False
            log.error("bus %s unit %d: the board's communication watchdog could not be set: %s", self.name, u.unit, e)
            for d in u.doors:
                d.emit("fault", {"fault": "comm_watchdog_not_set", "error": str(e)})


def answers(req: mb.Request, resp: mb.Response) -> bool:
    """Whether ``resp`` is a well-formed answer to ``req`` (unit, function, address and size agree)."""
    if resp.unit != req.unit:
        return False
    if isinstance(req, mb.ReadBits):
        return (isinstance(resp, mb.BitsResponse) and resp.function == req.function
                and len(resp.bits) == (req.count + 7) // 8 * 8)
    if isinstance(req, mb.ReadRegisters):
        return (isinstance(resp, mb.RegistersResponse) and resp.function == req.function
                and len(resp.values) == req.count)
    if isinstance(req, mb.WriteCoil | mb.WriteRegister):
        return resp == req
    if isinstance(req, mb.WriteCoils):
        return isinstance(resp, mb.WriteCoilsResponse) and (resp.address, resp.count) == (req.address, len(req.values))
    return False
