"""Virtual Modbus RTU relay/input boards wired to doors (lock relay, door contact, REX button, fire input), on a
serial line of their own or several on one RS-485 line (a multi-drop bus: one pty/TCP endpoint, many units).

Like a real slave each board answers only its own unit, silently drops requests with a bad CRC, and answers
exceptions 01/02/03. A board may carry several doors (each its own coil and inputs; a fire contact may be shared).
A door can only be pushed open while its lock is released, unless forced. Faults are per board (silent, delayed,
corrupted or garbled replies, a stuck relay), so one bad board on a shared bus can be rehearsed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bingobox.protocol import modbus as mb

from .config import SimBus, SimDoor
from .serial_device import SerialDevice, SerialFaults
from .serial_endpoints import Endpoint


class DoorLocked(RuntimeError):
    """The door cannot be pushed open: the lock is engaged."""


class Board:
    """One relay/input board (a Modbus unit): coils, relay contacts, discrete inputs from its doors, a
    communication watchdog, and its own faults."""

    def __init__(self, unit: int, first: SimDoor) -> None:
        self.unit = unit
        self.cfg = first  # coils/inputs counts and watchdog settings (doors on one board agree: checked at load)
        self.coils = [False] * first.coils
        self.relay = [False] * first.coils  # the physical contacts: follow the coils unless stuck
        self.stuck_relay = False
        self.faults = SerialFaults()
        self.doors: list[VirtualDoor] = []
        # re-entrant: a door opened under the lock asks lock_engaged, whose watchdog check may drop the coils
        self.lock = threading.RLock()
        self._last_request = time.monotonic()
        self.watchdog_s = first.comm_watchdog_s  # (a controller may set it through comm_watchdog_register)
        self.history: list[tuple[float, str]] = []

    def watchdog(self) -> None:
        """The board's communication watchdog: the controller stopped talking, every coil drops."""
        wd = self.watchdog_s
        if wd and any(self.coils) and time.monotonic() - self._last_request > wd:
            with self.lock:
                self.log(f"communication watchdog: no request for {wd:g} s, coils off")
                self.coils = [False] * len(self.coils)
                if not self.stuck_relay:
                    self.relay = list(self.coils)

    def inputs(self) -> list[bool]:
        bits = [False] * self.cfg.inputs
        for d in self.doors:
            bits[d.cfg.contact_input] = not d.door_open  # reed switch: active while the door is shut
            bits[d.cfg.rex_input] = time.monotonic() < d.rex_until
            if d.cfg.passage_input is not None:
                bits[d.cfg.passage_input] = d.passage_now()
            bits[d.cfg.fire_input] = bits[d.cfg.fire_input] or d.fire
        return bits

    def set_stuck(self, stuck: bool) -> None:
        with self.lock:
            self.stuck_relay = stuck
            if not stuck:
                self.relay = list(self.coils)

    def log(self, what: str) -> None:
        self.history.append((time.time(), what))
        del self.history[:-100]

    def handle(self, req: mb.Request) -> mb.Response | None:
        self.watchdog()  # (a request that comes too late finds the coils already dropped)
        self._last_request = time.monotonic()
        u = self.unit
        if isinstance(req, mb.ReadBits):
            # coils read back the relay contacts (boards with feedback), so a stuck relay shows
            table = self.relay if req.function == mb.READ_COILS else self.inputs()
            if not 1 <= req.count <= 2000:
                return mb.ExceptionResponse(u, req.function, mb.ILLEGAL_DATA_VALUE)
            if req.address + req.count > len(table):
                return mb.ExceptionResponse(u, req.function, mb.ILLEGAL_DATA_ADDRESS)
            bits = tuple(table[req.address : req.address + req.count])
            return mb.BitsResponse(u, req.function, bits + (False,) * (-len(bits) % 8))
        if isinstance(req, mb.WriteCoil):
            if req.address >= len(self.coils):
                return mb.ExceptionResponse(u, mb.WRITE_SINGLE_COIL, mb.ILLEGAL_DATA_ADDRESS)
            if req.value not in (mb.COIL_ON, mb.COIL_OFF):
                return mb.ExceptionResponse(u, mb.WRITE_SINGLE_COIL, mb.ILLEGAL_DATA_VALUE)
            self._set_coils(req.address, [req.on])
            return mb.WriteCoil(u, req.address, req.value)
        if isinstance(req, mb.WriteRegister):
            if self.cfg.comm_watchdog_register is None:
                return mb.ExceptionResponse(u, mb.WRITE_SINGLE_REGISTER, mb.ILLEGAL_FUNCTION)
            if req.address != self.cfg.comm_watchdog_register:
                return mb.ExceptionResponse(u, mb.WRITE_SINGLE_REGISTER, mb.ILLEGAL_DATA_ADDRESS)
            self.watchdog_s = req.value * self.cfg.comm_watchdog_unit_s
            self.log(f"communication watchdog set to {self.watchdog_s:g} s")
            return mb.WriteRegister(u, req.address, req.value)
        if isinstance(req, mb.WriteCoils):
            if req.address + len(req.values) > len(self.coils):
                return mb.ExceptionResponse(u, mb.WRITE_MULTIPLE_COILS, mb.ILLEGAL_DATA_ADDRESS)
            self._set_coils(req.address, list(req.values))
            return mb.WriteCoilsResponse(u, req.address, len(req.values))
        if isinstance(req, mb.OtherRequest) and req.function == mb.WRITE_MULTIPLE_COILS:
            return mb.ExceptionResponse(u, req.function, mb.ILLEGAL_DATA_VALUE)
        return mb.ExceptionResponse(u, req.function, mb.ILLEGAL_FUNCTION)

    def _set_coils(self, address: int, values: list[bool]) -> None:
        with self.lock:
            for i, v in enumerate(values):
                if self.coils[address + i] != v:
                    self.log(f"coil {address + i} {'on' if v else 'off'}")
                self.coils[address + i] = v
                if not self.stuck_relay:
                    self.relay[address + i] = v


class VirtualDoor:
    """A door wired to a board: its lock is the board's relay contact ``lock_coil``."""

    kind = "door"

    def __init__(self, cfg: SimDoor, board: Board, line: ModbusLine) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.board = board
        self.line = line
        self.door_open = False
        self.fire = False
        self.rex_until = 0.0
        self.pulses: list[tuple[float, float]] = []  # the people counter's pulses to come: (from, until)
        board.doors.append(self)

    @property
    def faults(self) -> SerialFaults:
        return self.board.faults

    @property
    def lock_engaged(self) -> bool:
        self.board.watchdog()
        return self.board.relay[self.cfg.lock_coil] != self.cfg.energize_to_unlock

    def open_door(self, force: bool = False) -> None:
        with self.board.lock:
            if self.lock_engaged and not force:
                raise DoorLocked(f"door {self.name} is locked")
            self.door_open = True
            self.board.log(f"{self.name}: " + ("forced open" if force and self.lock_engaged else "opened"))

    def close_door(self) -> None:
        with self.board.lock:
            self.door_open = False
            self.board.log(f"{self.name}: closed")

    def press_rex(self) -> None:
        self.rex_until = time.monotonic() + self.cfg.rex_press_s
        self.board.log(f"{self.name}: rex pressed")

    def walk_through(self, people: int, gap_s: float) -> None:
        """``people`` pass the doorway's people counter, ``gap_s`` apart (one pulse each)."""
        if self.cfg.passage_input is None:
            raise ValueError(f"door {self.name} has no people counter (passage_input)")
        now, pulse = time.monotonic(), self.cfg.passage_pulse_s
        if not 1 <= people <= 20 or not pulse + 0.05 <= gap_s <= 10:
            raise ValueError(f"people: 1-20; gap_s: {pulse + 0.05:g}-10 s")
        with self.board.lock:
            self.pulses = [p for p in self.pulses if p[1] > now] + [(now + i * gap_s, now + i * gap_s + pulse)
                                                                   for i in range(people)]
        self.board.log(f"{self.name}: {people} through the doorway")

    def passage_now(self) -> bool:
        now = time.monotonic()
        return any(a <= now < b for a, b in self.pulses)

    def set_fire(self, active: bool) -> None:
        self.fire = active
        self.board.log(f"{self.name}: fire alarm " + ("on" if active else "off"))

    def set_stuck(self, stuck: bool) -> None:
        self.board.set_stuck(stuck)

    # a board on a shared line is plugged in and out by itself (its power, its stub of the cable)
    @property
    def plugged(self) -> bool:
        return self.line.plugged and not (self.line.shared and self.board.faults.silent)

    def plug(self) -> None:
        if self.line.shared:
            self.board.faults.silent = False
        else:
            self.line.plug()

    def unplug(self) -> None:
        if self.line.shared:
            self.board.faults.silent = True
        else:
            self.line.unplug()

    def endpoints(self) -> dict:
        return {**self.line.endpoints(), "bus": self.line.name if self.line.shared else None, "unit": self.board.unit}

    def status(self) -> dict:
        b = self.board
        return {"kind": "door", "name": self.name, "plugged": self.plugged, "faults": vars(b.faults).copy(),
                **self.endpoints(), **self.line.stats, "door_open": self.door_open,
                "lock_engaged": self.lock_engaged, "coils": [int(c) for c in b.coils],
                "relay": [int(r) for r in b.relay], "inputs": [int(x) for x in b.inputs()], "fire": self.fire,
                "stuck_relay": b.stuck_relay, "comm_watchdog_s": b.watchdog_s, "lamps": self.lamps}

    @property
    def lamps(self) -> dict[str, bool] | None:
        """What the door's lamps show (None: it has none)."""
        got = {k: bool(self.board.relay[c]) for k, c in (("green", self.cfg.green_lamp_coil),
                                                          ("red", self.cfg.red_lamp_coil))
               if c is not None and c < len(self.board.relay)}
        return got or None


class ModbusLine(SerialDevice):
    """A serial line with Modbus boards on it: one board (a door's own port) or several (an RS-485 bus)."""

    kind = "bus"

    def __init__(self, name: str, run_dir: Path, tcp_port: int, baudrate: int, seed: int, tcp_protocol: str,
                 shared: bool) -> None:
        super().__init__(name, run_dir, tcp_port, baudrate, seed, tcp_protocol)
        self.shared = shared
        self.boards: dict[int, Board] = {}
        self._decoder = mb.RequestDecoder()

    def door(self, cfg: SimDoor) -> VirtualDoor:
        board = self.boards.get(cfg.unit)
        if board is None:
            board = self.boards[cfg.unit] = Board(cfg.unit, cfg)
        return VirtualDoor(cfg, board, self)

    def status(self) -> dict:
        return {**super().status(), "units": {u: [d.name for d in b.doors] or [getattr(b, "name", "")]
                                              for u, b in self.boards.items()}}

    def on_bytes(self, data: bytes, endpoint: Endpoint) -> None:
        for req in self._decoder.feed(data):
            if self.baudrate:  # (the request took its 8 characters' time to arrive)
                time.sleep(8 * 10 / self.baudrate)
            targets = list(self.boards.values()) if req.unit == 0 else [self.boards.get(req.unit)]
            for board in targets:
                if board is None or board.faults.silent:
                    continue  # no such slave on the line (or it is dead): nobody answers
                self.stats["requests"] += 1
                resp = board.handle(req)
                if resp is not None and req.unit != 0:  # broadcasts are never answered
                    self.send(mb.encode_response(resp), endpoint, board.faults)
        self.stats["dropped_requests"] = self._decoder.stats["bad_crc"]


def build_lines(buses: list[SimBus], doors: list[SimDoor], run_dir: Path, seed: int
                ) -> tuple[dict[str, ModbusLine], dict[str, VirtualDoor]]:
    """Every line of the simulator with its boards and doors: a bus's doors share its endpoint; a door without a bus
    has a line (and board) of its own, named after it."""
    lines = {b.name: ModbusLine(b.name, run_dir, b.tcp_port, b.baudrate, seed + 50 + i, b.tcp_protocol, True)
             for i, b in enumerate(buses)}
    out: dict[str, VirtualDoor] = {}
    for i, d in enumerate(doors):
        if d.bus is None:
            line = ModbusLine(d.name, run_dir, d.tcp_port, d.baudrate, seed + i, d.tcp_protocol, False)
            out[d.name] = line.door(d)
        else:
            out[d.name] = lines[d.bus].door(d)
    return lines, out
