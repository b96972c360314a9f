"""A virtual Modbus RTU relay/input board wired to a door: lock relay, door contact, REX button, fire input.

Like a real slave it answers only its own unit, silently drops requests with a bad CRC, and answers
exceptions 01/02/03. The door can only be pushed open while the lock is released, unless forced.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bingobox.protocol import modbus as mb

from .config import SimDoor
from .serial_device import SerialDevice
from .serial_endpoints import Endpoint


class DoorLocked(RuntimeError):
    """The door cannot be pushed open: the lock is engaged."""


class VirtualDoorBoard(SerialDevice):
    kind = "door"

    def __init__(self, cfg: SimDoor, run_dir: Path, seed: int = 0) -> None:
        super().__init__(cfg.name, run_dir, cfg.tcp_port, cfg.baudrate, seed, cfg.tcp_protocol)
        self.cfg = cfg
        self.coils = [False] * cfg.coils
        self.relay = [False] * cfg.coils  # the physical contacts: follow the coils unless stuck
        self.stuck_relay = False
        self.door_open = False
        self.fire = False
        self.rex_until = 0.0
        self._decoder = mb.RequestDecoder()
        # re-entrant: a door opened under the lock asks lock_engaged, whose watchdog check may drop the coils
        self._lock = threading.RLock()
        self._last_request = time.monotonic()
        self.watchdog_s = cfg.comm_watchdog_s  # (a controller may set it through comm_watchdog_register)
        self.history: list[tuple[float, str]] = []

    # physics ---------------------------------------------------------------------------------------
    @property
    def lock_engaged(self) -> bool:
        self._watchdog()
        return self.relay[self.cfg.lock_coil] != self.cfg.energize_to_unlock

    def _watchdog(self) -> None:
        """The board's communication watchdog: the controller stopped talking, every coil drops."""
        wd = self.watchdog_s
        if wd and any(self.coils) and time.monotonic() - self._last_request > wd:
            with self._lock:
                self._log(f"communication watchdog: no request for {wd:g} s, coils off")
                self.coils = [False] * len(self.coils)
                if not self.stuck_relay:
                    self.relay = list(self.coils)

    def inputs(self) -> list[bool]:
        bits = [False] * self.cfg.inputs
        bits[self.cfg.contact_input] = not self.door_open  # reed switch: active while the door is shut
        bits[self.cfg.rex_input] = time.monotonic() < self.rex_until
        bits[self.cfg.fire_input] = self.fire
        return bits

    def open_door(self, force: bool = False) -> None:
        with self._lock:
            if self.lock_engaged and not force:
                raise DoorLocked(f"door {self.name} is locked")
            self.door_open = True
            self._log("forced open" if force and self.lock_engaged else "opened")

    def close_door(self) -> None:
        with self._lock:
            self.door_open = False
            self._log("closed")

    def press_rex(self) -> None:
        self.rex_until = time.monotonic() + self.cfg.rex_press_s
        self._log("rex pressed")

    def set_fire(self, active: bool) -> None:
        self.fire = active
        self._log("fire alarm on" if active else "fire alarm off")

    def set_stuck(self, stuck: bool) -> None:
        with self._lock:
            self.stuck_relay = stuck
            if not stuck:
                self.relay = list(self.coils)

    def _log(self, what: str) -> None:
        self.history.append((time.time(), what))
        del self.history[:-100]

    def status(self) -> dict:
        return {**super().status(), "door_open": self.door_open, "lock_engaged": self.lock_engaged,
                "coils": [int(c) for c in self.coils], "relay": [int(r) for r in self.relay],
                "inputs": [int(b) for b in self.inputs()], "fire": self.fire, "stuck_relay": self.stuck_relay,
                "comm_watchdog_s": self.watchdog_s}

    # Modbus slave ----------------------------------------------------------------------------------
    def on_bytes(self, data: bytes, endpoint: Endpoint) -> None:
        for req in self._decoder.feed(data):
            if req.unit not in (self.cfg.unit, 0):
                continue  # another slave on the bus
            self._watchdog()  # (a request that comes too late finds the coils already dropped)
            self._last_request = time.monotonic()
            self.stats["requests"] += 1
            resp = self._handle(req)
            if resp is not None and req.unit != 0:  # broadcasts are never answered
                self.send(mb.encode_response(resp), endpoint)
        self.stats["dropped_requests"] = self._decoder.stats["bad_crc"]

    def _handle(self, req: mb.Request) -> mb.Response | None:
        u = self.cfg.unit
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
            self._log(f"communication watchdog set to {self.watchdog_s:g} s")
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
        with self._lock:
            for i, v in enumerate(values):
                if self.coils[address + i] != v:
                    self._log(f"coil {address + i} {'on' if v else 'off'}")
                self.coils[address + i] = v
                if not self.stuck_relay:
                    self.relay[address + i] = v
