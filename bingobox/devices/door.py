"""Door driver: one door wired to a Modbus RTU relay/input board (its lock coil, its contact, REX and fire inputs).
It runs the door machine (grant window, relock, forced/held-open alarms, fire) and reports events and a status
snapshot. The wire belongs to the door's ``ModbusBus`` (``modbus_bus.py``): several doors may share one board, and
several boards one RS-485 line. ``DoorBoard`` is a door on a board of its own, on a port of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..config import DoorConfig
from ..domain.door import DoorMachine, DoorTiming
from ..protocol import modbus as mb
from ..transport import LinkDown, SerialLink
from .events import DeviceEvent, Listener
from .modbus_bus import BusTiming, ModbusBus, NoReply, Unit

log = logging.getLogger(__name__)
__all__ = ["Door", "DoorBoard", "NoReply"]


class Door:
    """One door on a unit of a bus (``ModbusBus.add`` wires it). Commands from any thread are queued on the bus,
    whose thread writes them before its next poll."""

    bus: ModbusBus
    unit: Unit

    def __init__(self, cfg: DoorConfig, on_event: Listener) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self._emit = on_event
        self.machine = DoorMachine(cfg.name, DoorTiming(cfg.unlock_s, cfg.held_open_s, cfg.relock_on,
                                                         cfg.rex_unlocks, cfg.rex_shunt_s),
                                   initial="fault")  # until the board has answered, the door is unknown
        self.inputs: tuple[bool, ...] | None = None
        self.relay_on: bool | None = None  # last read-back of the lock relay
        self._relay_cmd: bool | None = None  # last relay state we wrote
        self._rex_was = False
        self._passing_was = False
        self.passages = 0  # people the doorway's counter saw (passage_input)
        self.last_poll: float | None = None
        self.relay_mismatch = 0
        self._last_write: tuple[float, float] | None = None  # the last relay write: sent, acknowledged (wall clock)
        self._lamp_coils = (cfg.green_lamp_coil, cfg.red_lamp_coil)
        self._lamps_want = (False, False)  # (green, red): what the panel says (set from any thread)
        self._lamps_written: list[bool | None] = [None, None]  # what the board was last told (None: unknown)

    # commands (any thread) -------------------------------------------------------------------------
    def grant(self, seconds: float | None = None, tag: str | None = None,
              done: Callable[[str, str], None] | None = None) -> None:
        """Access granted: unlock for the grant window (relock on close/open or at the end of the window). With a
        ``tag``, an ``unlock_written`` event says when the unlock went on the wire and when the board answered.
        ``done(outcome, detail)`` (from the bus thread): ``unlocked`` (the board acknowledged the relay),
        ``refused`` (the door is in no state to open, or its board is not answering) or ``unknown`` (the write
        went out and no answer came: the door may be open)."""
        self.bus.command(self, "grant", (seconds, tag, done))

    def lamps(self, green: bool, red: bool) -> None:
        """Mirror the door's panel on its lamps (nothing without lamp coils). The bus thread writes them only when
        no command waits: a lamp never goes on the wire ahead of a grant."""
        self._lamps_want = (green, red)

    @property
    def state(self) -> str:
        return self.machine.state

    @property
    def online(self) -> bool:
        return self.unit.online

    def healthy(self, within_s: float = 5.0) -> bool:
        return self.bus.healthy(within_s)

    def status(self) -> dict[str, Any]:
        u, inputs = self.unit, self.inputs
        return {
            "kind": "door", "name": self.name, "state": self.machine.state, "online": u.online,
            "door_open": self.machine.door_open, "fire": self.machine.fire,
            "lock_engaged": self._lock_engaged(), "relay_on": self.relay_on,
            "inputs": [int(b) for b in inputs[: self.cfg.inputs]] if inputs else None,
            "last_poll": self.last_poll, "bus": self.bus.name, "unit": u.unit, "breaker": u.breaker(),
            "rtt_ms": u.rtt(), "link": self.bus.link.status(), "decoder": dict(self.bus._decoder.stats),
            "board_watchdog": u.watchdog_armed, "failure": self.bus.failure,
            "polls": u.stats["polls"], "no_reply": u.stats["no_reply"], "exceptions": u.stats["exceptions"],
            "mismatched": u.stats["mismatched"], "relay_writes": u.stats["relay_writes"],
            "relay_mismatch": self.relay_mismatch,
            "passages": self.passages if self.cfg.passage_input is not None else None,
            "lamps": {"green": self._lamps_written[0], "red": self._lamps_written[1]}
            if any(c is not None for c in self._lamp_coils) else None,
        }

    # from the bus thread ---------------------------------------------------------------------------
    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self._emit(DeviceEvent(self.name, kind, data))

    def link_event(self, up: bool) -> None:
        self.emit("connected" if up else "disconnected", {"url": self.bus.port})

    def driver_failed(self, failure: str) -> None:
        try:
            self.machine.on_link(time.monotonic(), False)
        finally:
            self.emit("fault", {"fault": "driver_failed", "error": failure})

    def went_offline(self, now: float, error: str) -> None:
        self.machine.on_link(now, False)
        self.emit("fault", {"fault": "board_unreachable", "error": error})

    def came_online(self, now: float, bits: tuple[bool, ...]) -> None:
        m = self.machine
        m.door_open, m.fire = self._contact(bits), self._fire(bits)
        m.on_link(now, True)
        self._relay_cmd = None
        self._lamps_written = [None, None]  # (a board that restarted, or whose watchdog fired, dropped them)

    def relay_read(self, on: bool) -> None:
        self.relay_on = on
        if self._relay_cmd is not None and on != self._relay_cmd:
            self.relay_mismatch += 1
            self.emit("fault", {"fault": "relay_mismatch", "commanded": self._relay_cmd, "read_back": on})
            self._relay_cmd = None  # write again on the next sync

    def _contact(self, bits: tuple[bool, ...]) -> bool:
        return bits[self.cfg.contact_input] != self.cfg.contact_closed_level

    def _fire(self, bits: tuple[bool, ...]) -> bool:
        return self.cfg.fire_input is not None and bits[self.cfg.fire_input] == self.cfg.fire_active_level

    def inputs_read(self, now: float, bits: tuple[bool, ...]) -> None:
        cfg, m = self.cfg, self.machine
        self.last_poll = time.time()
        self.inputs = bits
        rex = cfg.rex_input is not None and bits[cfg.rex_input]
        m.on_fire(now, self._fire(bits))
        if rex and not self._rex_was:
            m.on_rex(now)
        self._rex_was = rex
        m.on_contact(now, self._contact(bits))
        if cfg.passage_input is not None:  # a people counter's pulse: one person through the doorway
            passing = bits[cfg.passage_input]
            if passing and not self._passing_was:
                self.passages += 1
                m.on_passage(self.passages)
            self._passing_was = passing
        m.on_tick(now)

    def tick(self, now: float) -> None:
        self.machine.on_tick(now)

    def do_grant(self, now: float, seconds: float | None, tag: str | None,
                 done: Callable[[str, str], None] | None) -> None:
        granted = self.machine.on_grant(now, seconds)
        if not granted:
            self.emit("grant_refused", {"state": self.machine.state, "tag": tag})
        self._last_write = None
        self.sync(now)  # the unlock leaves before anything else touches the bus
        unlocked = self.online and self._relay_cmd == self._relay_for(False)
        if tag is not None and unlocked:
            written, acked = self._last_write or (time.time(), time.time())  # (already unlocked: now)
            self.emit("unlock_written", {"tag": tag, "written": written, "acked": acked})
        if done is None:
            return
        if not granted:
            done("refused", f"{self.name} refused: the door is {self.machine.state}"
                 + ("" if self.online else " (its board is not answering)"))
        elif unlocked:
            done("unlocked", f"{self.name} unlocked")  # (the board acknowledged the relay)
        else:
            done("unknown", f"{self.name}: the unlock was sent and not acknowledged: the door may or may not be open")

    def sync(self, now: float) -> None:
        """Drive the relay to what the machine wants (if it differs from what we last wrote), emit events."""
        if self.online:
            want = self._relay_for(self.machine.lock_wanted)
            if want != self._relay_cmd:
                try:
                    self._last_write = self.bus.write_coil(self, want)
                    self._relay_cmd = want
                    self.relay_on = want
                except (NoReply, LinkDown, mb.ProtocolError) as e:
                    log.warning("%s: relay write failed: %s", self.name, e)
                    self._relay_cmd = None
        self.flush_events()

    def sync_lamps(self) -> None:
        """Write a lamp that differs from what the panel says — one coil at a time, and only while no command
        (a grant) waits for the bus."""
        if not self.online:
            return
        for i, coil in enumerate(self._lamp_coils):
            want = self._lamps_want[i]
            if coil is None or self._lamps_written[i] == want:
                continue
            if self.bus.commands_waiting():
                return
            try:
                self.bus.write_coil(self, want, coil, "lamp_writes")
                self._lamps_written[i] = want
            except (NoReply, LinkDown, mb.ProtocolError) as e:
                log.warning("%s: lamp write failed: %s", self.name, e)
                self._lamps_written[i] = None
                return

    def flush_events(self) -> None:
        for kind, data in self.machine.drain():
            self.emit(kind, data)

    def _relay_for(self, lock: bool) -> bool:
        return (not lock) == self.cfg.energize_to_unlock

    def _lock_engaged(self) -> bool | None:
        if self.relay_on is None:
            return None
        return self.relay_on != self.cfg.energize_to_unlock


class DoorBoard(Door):
    """A door on a board of its own, on a serial port of its own (``[[doors]]`` with ``port``)."""

    def __init__(self, cfg: DoorConfig, on_event: Listener, link_factory: Callable[..., Any] = SerialLink) -> None:
        super().__init__(cfg, on_event)
        assert cfg.port is not None, "a door on a bus is built by build_buses()"
        ModbusBus(cfg.name, cfg.port, cfg.baudrate or 9600, BusTiming(poll_hz=cfg.poll_hz),
                  link_factory).add(self)

    @property
    def on_failure(self) -> Callable[[str], None] | None:
        return self.bus.on_failure

    @on_failure.setter
    def on_failure(self, fn: Callable[[str], None] | None) -> None:
        self.bus.on_failure = fn

    @property
    def link(self) -> SerialLink:
        return self.bus.link

    def start(self) -> None:
        self.bus.start()

    def stop(self) -> None:
        self.bus.stop()


def build_doors(doors: list[DoorConfig], buses: list[Any], on_event: Listener,
                link_factory: Callable[..., Any] = SerialLink) -> tuple[dict[str, ModbusBus], dict[str, Door]]:
    """Every bus of the config with its doors: a ``[[buses]]`` entry's doors share its port; a door with a port of
    its own gets a bus of its own (named after the door)."""
    out: dict[str, ModbusBus] = {}
    for b in buses:
        out[b.name] = ModbusBus(b.name, b.port, b.baudrate, BusTiming.of(b), link_factory)
    made: dict[str, Door] = {}
    for d in doors:
        door: Door
        if d.bus is None:
            board = DoorBoard(d, on_event, link_factory)
            out[d.name] = board.bus
            door = board
        else:
            door = Door(d, on_event)
            out[d.bus].add(door)
        made[d.name] = door
    return out, made
