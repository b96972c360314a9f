"""Simulator configuration (TOML, validated like the store's: unknown keys rejected)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bingobox.config import Name, Strict, check_unique_names, load_model

from ..paths import testdata

Port = int  # 0 = any free port (the actual one is printed and written to the manifest)


class SimSerial(Strict):
    """Where a virtual serial device is served besides its pty."""

    name: Name
    tcp_port: Port = Field(0, ge=0, le=65535)
    tcp_protocol: Literal["raw", "rfc2217"] = Field("raw", description="raw bytes (socket://) or RFC 2217 (rfc2217://)")


class SimBus(SimSerial):
    """An RS-485 line with several boards on it (doors with ``bus = NAME``), served on one pty and TCP port."""

    baudrate: int = Field(9600, ge=0, le=921600, description="pace replies like this line speed; 0 = no pacing")


class SimDoor(SimSerial):
    """A door wired to a relay board: on a line of its own (its own pty/TCP port), or on a bus (``bus``)."""

    bus: Name | None = Field(None, description="the [[buses]] line its board is on (doors of one unit share it)")
    unit: int = Field(1, ge=1, le=247)
    baudrate: int = Field(9600, ge=0, le=921600, description="pace replies like this line speed; 0 = no pacing")
    energize_to_unlock: bool = True
    lock_coil: int = Field(0, ge=0, le=7)
    green_lamp_coil: int | None = Field(None, ge=0, le=63, description="a green lamp on this coil (optional)")
    red_lamp_coil: int | None = Field(None, ge=0, le=63, description="a red lamp on this coil (optional)")
    contact_input: int = Field(0, ge=0, le=7)
    rex_input: int = Field(1, ge=0, le=7)
    fire_input: int = Field(2, ge=0, le=7)
    coils: int = Field(8, ge=1, le=64)
    inputs: int = Field(8, ge=1, le=64)
    rex_press_s: float = Field(0.4, ge=0.05, le=10, description="how long a REX press holds the input")
    passage_input: int | None = Field(None, ge=0, le=7, description="a people counter across the doorway: one "
                                      "pulse on this input per person through (``door.pass``)")
    passage_pulse_s: float = Field(0.2, ge=0.05, le=2, description="how long each person's pulse lasts")
    comm_watchdog_s: float | None = Field(None, ge=0.1, le=60, description="a communication watchdog, as many "
                                          "relay boards have: no request for this long drops every coil (the "
                                          "safe state: a strike locks, a maglock frees the door)")
    comm_watchdog_register: int | None = Field(None, ge=0, le=0xFFFF, description="a holding register (FC06) "
                                               "that sets that watchdog, in comm_watchdog_unit_s counts (0: off)")
    comm_watchdog_unit_s: float = Field(0.1, gt=0, le=10)


class SimReader(SimSerial):
    framing: Literal["BB", "AA"] = "BB"
    baudrate: int = Field(115200, ge=0, le=921600, description="pace output like this line speed; 0 = none")
    round_s: float = Field(0.03, ge=0.0, le=5, description="time one inventory round takes besides the link")
    rssi: int = Field(-55, ge=-100, le=0)
    rssi_noise: int = Field(3, ge=0, le=20)
    tags: list[str] = Field(default_factory=list, description="EPCs (hex) on this shelf at start")

    @field_validator("tags")
    @classmethod
    def _hex_epcs(cls, v: list[str]) -> list[str]:
        return [check_epc(e) for e in v]


class SimCardReader(SimSerial):
    """A PN532 NFC module on a UART by a door: cards are tapped on it (``card.tap``)."""

    baudrate: int = Field(115200, ge=0, le=921600, description="pace replies like this line speed; 0 = none")


class SimProbe(Strict):
    """A temperature/humidity probe on a [[buses]] line (Modbus RTU, FC04: register 1 tenths of a degree, register 2
    tenths of %RH)."""

    name: Name
    bus: Name
    unit: int = Field(10, ge=1, le=247)
    temp_c: float = Field(4.0, ge=-40, le=60, description="what the fridge holds")
    noise_c: float = Field(0.05, ge=0, le=5)
    humidity: float = Field(60.0, ge=0, le=100)


class SimLlrpReader(Strict):
    """A fixed UHF reader on the network, speaking LLRP over TCP, with several antennas (one per shelf or zone)."""

    name: Name
    tcp_port: Port = Field(0, ge=0, le=65535, description="LLRP's own is 5084; 0 = any free port")
    antennas: int = Field(4, ge=1, le=32)
    round_s: float = Field(0.1, ge=0.01, le=5, description="one inventory round (a report) this often")
    rssi: int = Field(-55, ge=-100, le=0)
    rssi_noise: int = Field(3, ge=0, le=20)
    bleed: float = Field(0.0, ge=0, le=1, description="chance that a neighbouring antenna reads a tag too")
    bleed_db: int = Field(15, ge=0, le=60, description="… that much weaker")
    tags: dict[str, list[str]] = Field(default_factory=dict, description="antenna number → EPCs at start")

    @model_validator(mode="after")
    def _antenna_tags(self) -> SimLlrpReader:
        for ant, epcs in self.tags.items():
            if not ant.isdigit() or not 1 <= int(ant) <= self.antennas:
                raise ValueError(f"tags: antenna {ant!r} is not one of 1..{self.antennas}")
            self.tags[ant] = [check_epc(e) for e in epcs]
        return self


class SimCamera(Strict):
    name: Name
    port: Port = Field(0, ge=0, le=65535)
    width: int = Field(640, ge=64, le=3840)
    height: int = Field(480, ge=64, le=2160)
    fps: float = Field(10, gt=0, le=60)
    quality: int = Field(85, ge=10, le=100)


class SimSection(Strict):
    control_port: Port = Field(8470, ge=0, le=65535)
    seed: int = 0
    image_dirs: list[Path] = Field(default_factory=lambda: [Path(testdata())],
                                   description="folders camera.show may read pictures from (nothing else on the box)")


class SimConfig(Strict):
    sim: SimSection = Field(default_factory=SimSection)
    buses: list[SimBus] = Field(default_factory=list)
    doors: list[SimDoor] = Field(default_factory=list)
    readers: list[SimReader] = Field(default_factory=list)
    llrp_readers: list[SimLlrpReader] = Field(default_factory=list)
    cameras: list[SimCamera] = Field(default_factory=list)
    card_readers: list[SimCardReader] = Field(default_factory=list)
    probes: list[SimProbe] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SimConfig:
        check_unique_names(self.buses, self.doors, self.readers, self.llrp_readers, self.cameras, self.card_readers,
                           self.probes)
        names = {b.name for b in self.buses}
        units = {(d.bus, d.unit) for d in self.doors if d.bus is not None}
        for pr in self.probes:
            if pr.bus not in names:
                raise ValueError(f"probes.{pr.name}.bus: no [[buses]] entry named {pr.bus!r}")
            if (pr.bus, pr.unit) in units:
                raise ValueError(f"probes.{pr.name}.unit: unit {pr.unit} on bus {pr.bus} is another device's")
            units.add((pr.bus, pr.unit))
        boards: dict[tuple[str, int], SimDoor] = {}
        used: dict[tuple[str, int], set[tuple[str, int]]] = {}
        for d in self.doors:
            if d.bus is None:
                continue
            if d.bus not in names:
                raise ValueError(f"doors.{d.name}.bus: no [[buses]] entry named {d.bus!r}")
            first = boards.setdefault((d.bus, d.unit), d)
            for key in ("coils", "inputs", "comm_watchdog_s", "comm_watchdog_register", "comm_watchdog_unit_s"):
                if getattr(d, key) != getattr(first, key):
                    raise ValueError(f"doors.{d.name}.{key}: differs from {first.name}'s on the same board")
            mine = {("coil", d.lock_coil), ("input", d.contact_input), ("input", d.rex_input),
                    *([("input", d.passage_input)] if d.passage_input is not None else []),
                    *[("coil", c) for c in (d.green_lamp_coil, d.red_lamp_coil) if c is not None]}
            taken = used.setdefault((d.bus, d.unit), set())
            if mine & taken:
                raise ValueError(f"doors.{d.name}: a coil or input already wired to another door of unit {d.unit}")
            taken |= mine
        return self


def check_epc(epc: str) -> str:
    e = epc.strip().replace(" ", "").upper()
    try:
        raw = bytes.fromhex(e)
    except ValueError:
        raise ValueError(f"EPC {epc!r} is not hex") from None
    if not raw or len(raw) % 2 or len(raw) > 62:
        raise ValueError(f"EPC {epc!r} must be 2..62 bytes, an even count")
    return e


def load_sim_config(path) -> SimConfig:
    return load_model(path, SimConfig)
