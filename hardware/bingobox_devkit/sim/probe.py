"""A virtual temperature/humidity probe on an RS-485 line (the common Modbus RTU probes, XY-MD02/SHT20 style):
FC04 (and FC03) reads of input registers — 1: temperature in tenths of a degree (two's complement), 2: relative
humidity in tenths of a percent; anything else answers exception 01 (function) or 02 (address).

The physical world: a fridge holding ``temp_c`` with a little noise; ``fridge.fail`` makes it warm towards the room
as a fridge whose compressor stopped does (exponentially, at ``rate_c_per_min`` at first: about 0.25 °C a minute
for a small display fridge); ``fridge.repair`` cools it back the same way. Faults: the line's (silent = unplugged,
delay, corrupt, garbage) and a value stuck at its last reading (``fault.stuck_value``).
"""

from __future__ import annotations

import math
import random
import threading
import time

from bingobox.protocol import modbus as mb

from .config import SimProbe
from .serial_device import SerialFaults

REGISTERS = 8  # the probe's register map: 0..7 (1: temperature, 2: humidity, the rest 0)


class VirtualProbe:
    kind = "temperature"

    def __init__(self, cfg: SimProbe, line, seed: int = 0) -> None:
        self.cfg, self.name, self.line, self.unit = cfg, cfg.name, line, cfg.unit
        self.faults = SerialFaults()
        self.doors: list = []  # (a unit on the line that drives no door)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.setpoint = cfg.temp_c
        self.ambient = 25.0
        self.rate = 0.0  # °C/min at the start of the current change (0: holding its setpoint)
        self.change = (time.monotonic(), cfg.temp_c, cfg.temp_c)  # (since, from, towards)
        self.stuck: int | None = None  # raw temperature register held (fault.stuck_value)
        self.reads = 0

    # the physical world ----------------------------------------------------------------------------
    def temperature(self) -> float:
        since, start, target = self.change
        if self.rate <= 0 or start == target:
            return target
        tau_min = abs(target - start) / self.rate  # (the initial slope is the rate)
        minutes = (time.monotonic() - since) / 60
        return target + (start - target) * math.exp(-minutes / tau_min)

    def _towards(self, target: float, rate: float) -> None:
        with self.lock:
            now_c = self.temperature()
            self.change, self.rate = (time.monotonic(), now_c, target), rate

    def fail(self, rate_c_per_min: float = 0.25, ambient_c: float = 25.0) -> dict:
        if not 0 < rate_c_per_min <= 600 or not -20 <= ambient_c <= 60:
            raise ValueError("rate_c_per_min: 0-600; ambient_c: -20-60")
        self.ambient = ambient_c
        self._towards(ambient_c, rate_c_per_min)
        return {"temp_c": round(self.temperature(), 2)}

    def repair(self, rate_c_per_min: float = 0.5) -> dict:
        if not 0 < rate_c_per_min <= 600:
            raise ValueError("rate_c_per_min: 0-600")
        self._towards(self.setpoint, rate_c_per_min)
        return {"temp_c": round(self.temperature(), 2)}

    def set(self, temp_c: float) -> dict:
        if not -40 <= temp_c <= 80:
            raise ValueError("temp_c: -40-80")
        with self.lock:
            self.change, self.rate = (time.monotonic(), temp_c, temp_c), 0.0
        return {"temp_c": temp_c}

    def stick(self, on: bool = True) -> None:
        self.stuck = self._raw_temp() if on else None

    def _raw_temp(self) -> int:
        t = self.temperature() + self.rng.gauss(0, self.cfg.noise_c)
        return round(t * 10) & 0xFFFF

    # the wire --------------------------------------------------------------------------------------
    def handle(self, req: mb.Request) -> mb.Response | None:
        if not isinstance(req, mb.ReadRegisters):
            return mb.ExceptionResponse(req.unit, getattr(req, "function", 0), mb.ILLEGAL_FUNCTION)
        if req.address + req.count > REGISTERS:
            return mb.ExceptionResponse(req.unit, req.function, mb.ILLEGAL_DATA_ADDRESS)
        regs = [0] * REGISTERS
        regs[1] = self.stuck if self.stuck is not None else self._raw_temp()
        regs[2] = max(0, min(1000, round((self.cfg.humidity + self.rng.gauss(0, 0.5)) * 10)))
        self.reads += 1
        return mb.RegistersResponse(req.unit, req.function, tuple(regs[req.address:req.address + req.count]))

    # as a device of the simulator --------------------------------------------------------------------
    @property
    def plugged(self) -> bool:
        return self.line.plugged and not self.faults.silent

    def plug(self) -> None:
        self.faults.silent = False

    def unplug(self) -> None:
        self.faults.silent = True

    def endpoints(self) -> dict:
        return {**self.line.endpoints(), "bus": self.line.name, "unit": self.unit}

    def status(self) -> dict:
        return {"kind": self.kind, "name": self.name, "plugged": self.plugged, "faults": vars(self.faults).copy(),
                **self.endpoints(), "temp_c": round(self.temperature(), 2), "stuck": self.stuck is not None,
                "failing": self.change[2] != self.setpoint, "reads": self.reads}
