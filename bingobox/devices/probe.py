"""A temperature/humidity probe on an RS-485 line: read by the line's own thread (``ModbusBus``) every ``poll_s``,
between the doors' rounds and only while no door command waits, with the same breaker as a door board (a probe that
stops answering is asked again only every ``breaker_retry_s``: it never slows the doors).

Each reading is a ``reading`` event (degrees Celsius, relative humidity); a probe that stops answering is a ``fault``
(never a last value carried on), and ``connected`` once it answers again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..config import ProbeConfig
from .events import DeviceEvent, Listener

if TYPE_CHECKING:
    from .modbus_bus import ModbusBus, Unit


class Probe:
    def __init__(self, cfg: ProbeConfig, on_event: Listener) -> None:
        self.cfg, self.name, self._emit = cfg, cfg.name, on_event
        self.bus: ModbusBus
        self.unit: Unit
        self.next_poll = 0.0
        self.last: dict[str, Any] | None = None  # the last reading (temp_c, rh, t)
        self.down: bool | None = None  # said to be down (None: not answered yet, nor said to be down)
        self.stats = {"readings": 0, "failures": 0}

    @property
    def registers(self) -> tuple[int, int]:
        """(first, count) of the registers read in one request (temperature, and humidity if it has one)."""
        regs = [self.cfg.temperature_register] + ([self.cfg.humidity_register]
                                                 if self.cfg.humidity_register is not None else [])
        lo = min(regs)
        return lo, max(regs) - lo + 1

    def decode(self, values: tuple[int, ...]) -> dict[str, float | None]:
        """Raw registers → degrees and %RH (the temperature two's-complement if ``signed``)."""
        lo = self.registers[0]
        raw = values[self.cfg.temperature_register - lo]
        if self.cfg.signed and raw >= 0x8000:
            raw -= 0x10000
        rh = None
        if self.cfg.humidity_register is not None:
            rh = round(values[self.cfg.humidity_register - lo] * self.cfg.scale, 2)
        return {"temp_c": round(raw * self.cfg.scale, 2), "rh": rh}

    # from the bus thread ---------------------------------------------------------------------------
    def read(self, values: tuple[int, ...]) -> None:
        got = self.decode(values)
        self.last = {**got, "t": time.time()}
        self.stats["readings"] += 1
        if self.down is not False:
            self.down = False
            self._emit(DeviceEvent(self.name, "connected", {"zone": self.cfg.zone}))
        self._emit(DeviceEvent(self.name, "reading", {"zone": self.cfg.zone, **got}))

    def failed(self, error: str, down: bool) -> None:
        """A read failed (``down``: ``failures_before_fault`` in a row): said once, until it answers again."""
        self.stats["failures"] += 1
        if down and self.down is not True:
            self.down, self.last = True, None
            self._emit(DeviceEvent(self.name, "fault", {"fault": "probe_unreachable", "zone": self.cfg.zone,
                                                         "error": error}))

    def status(self) -> dict[str, Any]:
        u = getattr(self, "unit", None)
        return {"kind": "temperature", "name": self.name, "zone": self.cfg.zone, "bus": self.cfg.bus,
                "unit": self.cfg.unit, "online": bool(u and u.online), "last": self.last, **self.stats}


def build_probes(probes: list[ProbeConfig], buses: dict[str, ModbusBus], on_event: Listener) -> dict[str, Probe]:
    """Every probe of the config, each on its line (``[[buses]]``: checked when the config was read)."""
    out = {}
    for c in probes:
        p = out[c.name] = Probe(c, on_event)
        buses[c.bus].add_probe(p)
    return out
