"""Store configuration: TOML validated into pydantic models. Unknown keys and out-of-range values are
rejected with the file, the key and the reason (``bingobox check-config FILE``)."""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from .domain.hours import DAYS, Hours, parse_span

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="lower-case slug")]
STANDARD_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 256000, 460800, 921600)


class Strict(BaseModel):
    """Base for every config model: unknown keys are an error, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class SerialPort(Strict):
    port: str = Field(min_length=1, description="device path (/dev/serial/by-id/...), pty path or pyserial URL "
                      "(socket://, rfc2217://, loop://)")
    baudrate: int = 9600

    @field_validator("baudrate")
    @classmethod
    def _standard_baud(cls, v: int) -> int:
        if v not in STANDARD_BAUDS:
            raise ValueError(f"{v} is not a standard baud rate ({', '.join(map(str, STANDARD_BAUDS))})")
        return v


class BusConfig(SerialPort):
    """One serial line (RS-485) shared by several Modbus units (relay boards), each with one or more doors
    (``[[doors]]`` with ``bus = NAME``). Every transaction on it is serialised by one thread."""

    name: Name
    poll_hz: float = Field(20.0, ge=1, le=50, description="polls per second of each unit on the bus")
    min_gap_ms: float = Field(0.0, ge=0, le=100, description="silence between frames beyond the Modbus t3.5 "
                              "(for USB adapters that batch bytes)")
    breaker_retry_s: float = Field(2.0, ge=0.1, le=60, description="a unit that stopped answering is asked again "
                                   "this often (not at every poll), so it never stalls the others")
    probe_timeout_s: float = Field(0.05, ge=0.01, le=2, description="how long that one request waits (a live "
                                   "board answers a poll in a few ms even at 9600 baud)")


class DoorConfig(Strict):
    """A door on a Modbus RTU relay/input board: on a port of its own (``port``), or on a shared bus (``bus``)."""

    name: Name
    port: str | None = Field(None, min_length=1, description="device path, pty path or pyserial URL of the "
                             "door's own board (or bus = NAME for a shared line)")
    bus: Name | None = Field(None, description="a [[buses]] entry: the line this door's board is on")
    baudrate: int | None = Field(None, description="with port (default 9600); a bus sets its own")
    unit: int = Field(1, ge=1, le=247, description="Modbus slave address")
    energize_to_unlock: bool = Field(description="true for a fail-secure strike, false for a maglock; no default")
    lock_coil: int = Field(0, ge=0, le=255)
    green_lamp_coil: int | None = Field(None, ge=0, le=255, description="a green lamp beside the door (optional): "
                                        "on while the door's panel says yes (welcome, goodbye)")
    red_lamp_coil: int | None = Field(None, ge=0, le=255, description="a red lamp (optional): on while the panel "
                                      "says no or asks for the code, and while the entrance admits nobody")
    contact_input: int = Field(0, ge=0, le=255, description="door position switch (DPS)")
    contact_closed_level: bool = Field(True, description="input level that means 'door closed'")
    rex_input: int | None = Field(1, ge=0, le=255, description="request-to-exit button")
    fire_input: int | None = Field(2, ge=0, le=255, description="fire-alarm relay contact")
    fire_active_level: bool = True
    passage_input: int | None = Field(None, ge=0, le=255, description="a people counter across the doorway (an IR "
                                      "beam's pulse output): one pulse per person through, at least two polls "
                                      "long (100 ms at 20 Hz); more people through an opening than it was granted "
                                      "for is tailgating")
    inputs: int = Field(8, ge=1, le=64, description="discrete inputs read per poll")
    poll_hz: float = Field(20.0, ge=1, le=50)
    response_timeout_s: float = Field(0.2, ge=0.02, le=2)
    failures_before_fault: int = Field(3, ge=1, le=50, description="missed replies in a row before 'fault'")
    unlock_s: float = Field(5.0, ge=1, le=60, description="grant window: relock if not opened by then")
    held_open_s: float = Field(20.0, ge=3, le=600, description="door-held-open alarm after this long open")
    relock_on: Literal["open", "close"] = "close"
    rex_unlocks: bool = True
    rex_shunt_s: float = Field(3.0, ge=0, le=30, description="REX suppresses the forced-door alarm this long")
    comm_watchdog_register: int | None = Field(None, ge=0, le=0xFFFF, description="the board's communication-"
                                               "watchdog holding register (FC06), if it has one")
    comm_watchdog_s: float | None = Field(None, ge=0.5, le=600, description="no request from the controller for "
                                          "this long and the board drops its relays (its safe state)")
    comm_watchdog_unit_s: float = Field(0.1, gt=0, le=10, description="what one count in that register means")
    rex_cuts_power: bool | None = Field(None, description="maglocks: the installer states that the request-to-exit "
                                        "button also cuts the lock's power in hardware")
    fire_cuts_power: bool | None = Field(None, description="maglocks: the installer states that the fire panel "
                                         "cuts the lock's power in hardware")
    egress_waiver: str | None = Field(None, min_length=10, max_length=300, description="maglocks only: run "
                                      "without those two declarations — who allowed it and why (a door that is not "
                                      "an escape route, a staffed key-switch door); logged at every start")

    @property
    def own_coils(self) -> dict[int, str]:
        """Coil → what it drives (the lock and any lamps)."""
        got = {self.lock_coil: "lock"}
        for key in ("green_lamp_coil", "red_lamp_coil"):
            c = getattr(self, key)
            if c is not None:
                got.setdefault(c, key)
        return got

    @model_validator(mode="after")
    def _port_or_bus(self) -> DoorConfig:
        lamps = [c for c in (self.green_lamp_coil, self.red_lamp_coil) if c is not None]
        if len({self.lock_coil, *lamps}) != 1 + len(lamps):
            raise ValueError("green_lamp_coil, red_lamp_coil and lock_coil must be three different coils")
        if (self.port is None) == (self.bus is None):
            raise ValueError("a door needs exactly one of port (its own board) and bus (a shared line)")
        if self.bus is not None:
            for key in ("baudrate", "poll_hz"):
                if key in self.model_fields_set:
                    raise ValueError(f"{key}: set on the bus {self.bus!r}, not on a door on it")
        return self

    @field_validator("baudrate")
    @classmethod
    def _standard_baud(cls, v: int | None) -> int | None:
        return v if v is None else SerialPort._standard_baud(v)

    @model_validator(mode="after")
    def _watchdog_pair(self) -> DoorConfig:
        if (self.comm_watchdog_register is None) != (self.comm_watchdog_s is None):
            raise ValueError("comm_watchdog_register and comm_watchdog_s go together")
        if self.comm_watchdog_s is not None and round(self.comm_watchdog_s / self.comm_watchdog_unit_s) > 0xFFFF:
            raise ValueError("comm_watchdog_s does not fit the register in comm_watchdog_unit_s counts")
        return self

    @model_validator(mode="after")
    def _maglock_egress(self) -> DoorConfig:
        """A maglock holds the door shut while powered: if the controller dies or hangs with the lock powered, only
        hardware lets people out. Refused unless the installer declares both releases wired (or waives it by
        name)."""
        if self.energize_to_unlock:
            if self.egress_waiver is not None:
                raise ValueError("egress_waiver: only for maglocks (energize_to_unlock = false)")
            return self
        missing = [k for k in ("rex_cuts_power", "fire_cuts_power") if getattr(self, k) is not True]
        if missing and self.egress_waiver is None:
            needs = " and ".join(f"{k} = true" for k in missing)
            raise ValueError(
                f"a maglock (energize_to_unlock = false) needs {needs}: wire the request-to-exit button and the "
                "fire panel's relay to cut the lock's power directly (software must never be the only way out); or, "
                "for a door that is not an escape route, egress_waiver = \"who allowed it and why\"")
        return self

    def hardware_warnings(self) -> list[str]:
        """What the installer must still do or know about, though the config is acceptable."""
        if self.energize_to_unlock:
            return []  # a strike: power off locks; egress is by the handle (mechanical), not by power
        out = []
        if self.egress_waiver is not None:
            out.append(f"doors.{self.name}: maglock running under a waiver ({self.egress_waiver}): the controller "
                       "dying with the lock powered leaves this door shut")
        if self.comm_watchdog_register is None:
            out.append(f"doors.{self.name}: maglock without the board's communication watchdog "
                       "(comm_watchdog_register): if the controller dies the relay stays as it was")
        return out

    @model_validator(mode="after")
    def _distinct_inputs(self) -> DoorConfig:
        used = [i for i in (self.contact_input, self.rex_input, self.fire_input, self.passage_input) if i is not None]
        if len(used) != len(set(used)):
            raise ValueError("contact_input, rex_input, fire_input and passage_input must be different inputs")
        if max(used) >= self.inputs:
            raise ValueError(f"input {max(used)} is not among the {self.inputs} inputs read")
        return self


class ReaderConfig(SerialPort):
    """An M100/R200 UHF RFID reader on a shelf or in the exit area."""

    name: Name
    baudrate: int = 115200
    framing: Literal["BB", "AA"] = "BB"
    role: Literal["shelf", "exit"] = "shelf"
    mode: Literal["multi", "poll"] = Field("multi", description="continuous multi-poll stream, or single "
                                           "inventory rounds every poll_interval_s")
    poll_interval_s: float = Field(0.1, ge=0.02, le=5)
    multi_poll_rounds: int = Field(65535, ge=1, le=65535)
    gone_after_s: float = Field(1.5, ge=0.2, le=60, description="multi mode: unseen this long → tag_gone")
    gone_after_rounds: int = Field(3, ge=1, le=100, description="poll mode: missed rounds → tag_gone")
    silence_timeout_s: float = Field(1.0, ge=0.1, le=10, description="no frame this long → restart inventory")


class CardReaderConfig(SerialPort):
    """A PN532 NFC module on a UART (HSU) beside a door: a bound card tapped on it works like that door's code."""

    name: Name
    baudrate: int = 115200
    door: Name = Field(description="the door it stands by (the layout's entry or exit door)")
    poll_interval_s: float = Field(0.15, ge=0.05, le=2, description="look for a card this often")
    gone_after_s: float = Field(0.6, ge=0.1, le=10, description="a card out of the field this long taps anew")
    answer_timeout_s: float = Field(0.5, ge=0.05, le=5, description="no answer this long: the module is not "
                                    "answering (woken and configured again)")


class ProbeConfig(Strict):
    """A temperature/humidity probe on an RS-485 line (the common Modbus RTU probes that answer FC04 input
    registers in tenths of a degree), polled by the line's own thread between the doors' rounds."""

    name: Name
    bus: Name = Field(description="the [[buses]] line it is on")
    unit: int = Field(1, ge=1, le=247, description="its Modbus address (not a door board's)")
    zone: Name = Field(description="the [[zones]] entry it watches")
    function: Literal[3, 4] = Field(4, description="FC04 input registers (most probes), or FC03 holding registers")
    temperature_register: int = Field(1, ge=0, le=0xFFFF)
    humidity_register: int | None = Field(2, ge=0, le=0xFFFF, description="relative humidity (none: not read)")
    scale: float = Field(0.1, gt=0, le=1, description="what one count is (0.1: tenths of a degree)")
    signed: bool = Field(True, description="the temperature is a two's-complement 16-bit value (below 0 °C)")
    poll_s: float = Field(5.0, ge=1, le=600, description="read it this often")
    response_timeout_s: float = Field(0.2, ge=0.02, le=2)
    failures_before_fault: int = Field(3, ge=1, le=50)


class ZoneConfig(Strict):
    """A chilled zone (a fridge, a cabinet) and its cold-chain rule: above ``max_c`` for ``alarm_after_s`` raises an
    alarm; ``budget_s`` above it in all (since staff last cleared it) puts its products off sale."""

    name: Name
    max_c: float = Field(8.0, ge=-40, le=40, description="the warmest its goods may be (chilled: 8 °C)")
    alarm_after_s: float = Field(600, ge=10, le=86_400)
    budget_s: float = Field(7200, ge=60, le=7 * 86_400, description="time above max_c, cumulated, that spoils them")
    skus: list[str] = Field(default_factory=list, max_length=500, description="the products kept in it")
    silent_after_s: float = Field(60, ge=5, le=3600, description="no reading for this long: the probe is down "
                                  "(an alarm: a silent probe is never a normal reading)")


class CabinetConfig(Strict):
    """A locked cabinet in the store: a door on a board (its lock coil and contact; its button wired as the door's
    request input, which opens nothing by itself — ``rex_unlocks = false``) that the store opens on request. The
    cabinet of a cold zone stays shut while its goods are off sale; an age-restricted one opens only for an adult
    inside who shows their code to its camera, within its sale hours."""

    name: Name
    door: Name = Field(description="its [[doors]] entry (not the entrance or the exit)")
    zone: Name | None = Field(None, description="the [[zones]] entry it holds: shut while that zone is off sale")
    restricted: bool = Field(False, description="age-restricted goods (alcohol, tobacco): opens only for an adult")
    skus: list[str] = Field(default_factory=list, max_length=500, description="the products kept in it (those of a "
                            "restricted cabinet are age-restricted wherever they are taken from)")
    camera: Name | None = Field(None, description="the camera that reads the codes shown at it (needed if restricted)")
    sale_hours: str | None = Field(None, description="'HH:MM-HH:MM' in the store's zone: a restricted cabinet opens "
                                   "only then (default: whenever the store is open)")
    open_s: float = Field(10.0, ge=2, le=120, description="how long it stays unlocked for one request")

    @field_validator("sale_hours")
    @classmethod
    def _span(cls, v: str | None) -> str | None:
        if v is not None and parse_span(v) is None:
            raise ValueError("'closed' is not sale hours (leave the cabinet out instead)")
        return v


class LlrpZoneConfig(Strict):
    """One antenna of an LLRP reader and what it covers: a shelf, or the exit area. The store sees each zone as a
    reader of its own (its name is the one the layout and the screen use)."""

    antenna: int = Field(ge=1, le=32)
    name: Name
    role: Literal["shelf", "exit"] = "shelf"


class LlrpReaderConfig(Strict):
    """A fixed UHF reader on the network speaking LLRP (Impinj Speedway/R700, Zebra FX7500/FX9600), through sllurp;
    each antenna a zone."""

    name: Name
    host: str = Field(min_length=1, description="the reader's address")
    port: int = Field(5084, ge=1, le=65535, description="LLRP's port")
    zones: list[LlrpZoneConfig] = Field(min_length=1)
    tx_power_dbm: float | None = Field(None, ge=0, le=33, description="every antenna's power (default: the reader's "
                                       "highest)")
    round_s: float = Field(0.1, ge=0.02, le=5, description="the zones' rounds (the exit window counts them)")
    gone_after_s: float = Field(1.5, ge=0.2, le=60, description="unseen this long at its zone → tag_gone")
    keepalive_s: float = Field(1.0, ge=0.1, le=60, description="the reader sends a keepalive this often")
    silence_timeout_s: float = Field(3.5, ge=0.3, le=300, description="no report nor keepalive this long: the "
                                     "connection is dead, connect again")
    reconnect_max_s: float = Field(10.0, ge=0.5, le=600, description="back-off ceiling between connection attempts")
    place_margin_db: float = Field(6.0, ge=0, le=40, description="a tag read at two antennas moves to another zone "
                                   "only if read this much stronger there (or no longer read at its zone) …")
    place_reads: int = Field(2, ge=2, le=50, description="… in this many reads in a row: never on one read")

    @model_validator(mode="after")
    def _zones(self) -> LlrpReaderConfig:
        ants = [z.antenna for z in self.zones]
        if len(ants) != len(set(ants)):
            raise ValueError("zones: an antenna is given twice")
        if self.silence_timeout_s <= 2 * self.keepalive_s:
            raise ValueError("silence_timeout_s must be more than two keepalive_s (one lost keepalive is no outage)")
        if self.gone_after_s <= self.keepalive_s + 2 * self.round_s:
            raise ValueError("gone_after_s must be more than keepalive_s + 2 round_s (a tag is gone only after the "
                             "reader was heard without reading it)")
        return self


class CameraConfig(Strict):
    """A camera: V4L2 device, MJPEG/RTSP URL, video file or image pattern."""

    name: Name
    source: str | int = Field(description="/dev/v4l/by-id/..., index, http(s)://, rtsp://, file or pattern")
    backend: Literal["auto", "v4l2", "ffmpeg", "images"] = "auto"
    width: int | None = Field(None, ge=16, le=7680)
    height: int | None = Field(None, ge=16, le=4320)
    fps: float | None = Field(None, gt=0, le=240)
    fourcc: str | None = Field("MJPG", min_length=4, max_length=4)
    open_timeout_s: float = Field(3.0, ge=0.1, le=60)
    read_timeout_s: float = Field(3.0, ge=0.1, le=60)
    loop_files: bool = True
    decode_on_demand: bool = Field(True, description="MJPEG streams: keep each frame's JPEG and decode it only when "
                                   "something looks at it (the motion gates look at a 1/8-scale grey decode)")
    max_pixels: int = Field(3840 * 2160, ge=16 * 16, le=7680 * 4320,
                            description="frames that say they are larger are dropped before decoding")


class WalletLimits(Strict):
    """Offline exposure bounds (integer fen). Reaching one stops new entries, never anyone leaving."""

    max_visit_fen: int = Field(50_000, ge=1, le=10_000_000)
    max_pending_count: int = Field(50, ge=1, le=100_000)
    max_pending_fen: int = Field(500_000, ge=1, le=1_000_000_000)
    max_pending_age_s: float = Field(86_400, ge=60, le=7 * 86_400)

    @model_validator(mode="after")
    def _visit_fits(self) -> WalletLimits:
        if self.max_visit_fen > self.max_pending_fen:
            raise ValueError("max_visit_fen cannot exceed max_pending_fen")
        return self


def https_unless_loopback(url: str) -> str:
    """``url`` if it is https://, or plain http:// to this box's loopback; else ValueError saying why."""
    from urllib.parse import urlsplit

    if not url.startswith("https://"):
        host = (urlsplit(url).hostname or "").lower()
        if not url.startswith("http://") or not (host == "localhost" or host == "::1" or host.startswith("127.")):
            raise ValueError(f"must be https:// (plain http:// only on loopback): {host or url!r} is a network "
                             "host, where anyone on the path could read or change what is sent")
    return url


class WalletConfig(Strict):
    """The wallet gateway and how the terminal charges it."""

    gateway_url: str = Field(pattern=r"^https?://", description="base URL of the wallet gateway (https://; plain "
                             "http:// only to a gateway on this box's loopback)")
    store_secret: SecretStr | None = Field(None, min_length=16, description="request-signing secret (or secret_file)")
    secret_file: Path | None = Field(None, description="file holding the signing secret (kept out of the config)")
    keys_file: Path = Field(description="pinned entry-code public keys (JSON from GET /v1/public-keys)")
    connect_timeout_s: float = Field(1.0, ge=0.05, le=30)
    read_timeout_s: float = Field(3.0, ge=0.1, le=60)
    retry_base_s: float = Field(0.2, ge=0.01, le=60)
    retry_max_s: float = Field(30, ge=0.1, le=3600)
    poll_interval_s: float = Field(3.0, ge=0.1, le=60)
    paying_window_s: float = Field(60, ge=1, le=600, description="cancel a charge still pending after this")
    debt_retry_s: float = Field(3600, ge=0, le=7 * 86_400, description="retry declined charges (0 = never)")
    max_rejections: int = Field(5, ge=1, le=100, description="a charge the gateway refuses as malformed (a 4xx that "
                                "is not a decline) is tried this often, then failed with an alarm")
    limits: WalletLimits = Field(default_factory=WalletLimits)
    shopper_sync: bool = Field(True, description="send each visit's record to the wallet (the shopper's receipt) "
                               "and take disputes, data requests and withdrawn consents from its inbox")
    inbox_every_s: float = Field(3.0, ge=0.5, le=600, description="how often the wallet's inbox is asked")

    @field_validator("gateway_url")
    @classmethod
    def _https_unless_loopback(cls, url: str) -> str:
        return https_unless_loopback(url)

    @model_validator(mode="after")
    def _one_secret(self) -> WalletConfig:
        if (self.store_secret is None) == (self.secret_file is None):
            raise ValueError("give exactly one of store_secret or secret_file")
        return self

    def secret(self) -> str:
        if self.store_secret is not None:
            return self.store_secret.get_secret_value()
        from .secretfiles import read_secret

        try:  # (the same rules as every secret file: readable, not by everyone, 16 characters at least)
            return read_secret(Path(str(self.secret_file)), "store secret")
        except ValueError as e:
            raise ConfigError([f"wallet.secret_file: {e}"]) from None


class JournalConfig(Strict):
    path: Path = Field(Path("run/store.db"), description="the store's SQLite database")
    keep_visits_days: float = Field(90, ge=0.01, le=3650, description="ended visits and their evidence are pruned "
                                    "after this (charges stay with the gateway, the ledger); under a day only to "
                                    "see the journal bounded in a soak")
    keep_refusals_days: float = Field(7, ge=0.01, le=365, description="refused codes and other evidence of no visit")
    keep_audit_days: float = Field(365, ge=30, le=3650, description="the operators' audit log")
    min_free_mb: int = Field(256, ge=16, le=1_000_000, description="below this much free disk, entry stops (the "
                             "exit and its charges keep working on the reserve) and an alarm is raised")


class LayoutConfig(Strict):
    """Which device does what in the store."""

    entry_door: Name
    exit_door: Name
    entry_camera: Name = Field(description="reads entry codes; enrols consenting shoppers' faces")
    exit_camera: Name = Field(description="recognises shoppers leaving; reads a QR code as fallback")
    exit_reader: Name | None = Field(None, description="RFID reader of the exit area (bounded inventory)")


class VisitsConfig(Strict):
    enter_within_s: float = Field(20, ge=2, le=300, description="a code not followed by a door cycle: abandoned")
    max_inside_s: float = Field(7200, ge=60, le=86_400)
    exit_charge_wait_s: float = Field(3.0, ge=0, le=30, description="wait for the charge's answer, then open anyway")
    enrol_frames: int = Field(3, ge=1, le=10)
    rescan_debounce_s: float = Field(1.0, ge=0.2, le=60, description="a code out of sight this long scans anew")
    exit_window_s: float = Field(3.0, ge=0.2, le=30, description="the exit reader's reads this long before an "
                                 "identification count as what the shopper carries (never before the exit door last "
                                 "closed)")
    exit_min_rounds: int = Field(8, ge=1, le=100, description="the exit window holds at least this many of the exit "
                                 "reader's rounds (a round misses a tag now and then: at 10 % a round, 5 rounds miss "
                                 "it once in 10^5 windows, 8 once in 10^8; only a window cut short by the exit "
                                 "closing just before, or by a restart, waits for more rounds after the frame)")
    exit_settle_s: float = Field(0.0, ge=0, le=3, description="the exit window also holds the exit reader's rounds "
                                 "until this long after the identifying frame. 0 suits a camera that sees shoppers "
                                 "at the door, when their goods have been in the reader's field for a while. A camera "
                                 "that identifies them as they step into the exit area needs the time their goods "
                                 "take to be read (0.25 s for the simulated store); the walk to the door hides it")
    exit_inventory_timeout_s: float = Field(1.5, ge=0.1, le=10, description="wait this long for the exit reader to "
                                            "look after an identification, then charge the basket as it is")
    exit_unseen_close_s: float = Field(60, ge=5, le=3600, description="a granted exit whose door cycle was not seen "
                                       "closes the visit after this long")
    recent_exit_s: float = Field(300, ge=10, le=86_400, description="items carried out this recently are never "
                                 "added to another basket")
    max_companions: int = Field(3, ge=0, le=8, description="a shopper may bring this many people on their code (a "
                                "group: one door passage each, everything the group takes paid by the shopper)")
    group_enter_within_s: float = Field(120, ge=10, le=600, description="a group's companions come in within this "
                                        "long of the first of them (the code shown again for each)")
    card_visit_limit_fen: int = Field(20_000, ge=0, le=10_000_000, description="a visit opened by a card tap (a "
                                      "card can be cloned) is charged automatically up to this much; a basket above "
                                      "it (or above the gateway's own limit in the card list) waits for an operator")
    card_list_every_s: float = Field(60, ge=5, le=3600, description="fetch the gateway's signed list of bound cards "
                                     "this often (a card removed in the app stops working within one fetch)")

    @model_validator(mode="after")
    def _settle_within_timeout(self) -> VisitsConfig:
        if self.exit_settle_s + 0.5 > self.exit_inventory_timeout_s:
            raise ValueError(f"exit_settle_s ({self.exit_settle_s}) must end at least 0.5 s before "
                             f"exit_inventory_timeout_s ({self.exit_inventory_timeout_s}): the window would never "
                             "close before the store gives up waiting for it")
        return self


class VisionConfig(Strict):
    face_threshold: float = Field(0.56, ge=0.3, le=0.7)
    face_margin: float = Field(0.06, ge=0, le=0.3)
    detect_width: int = Field(320, ge=160, le=1920)
    agree_frames: int = Field(1, ge=1, le=5)
    faces: bool = Field(True, description="face billing on/off (off: every exit is a QR scan)")
    max_frame_age_s: float = Field(1.0, ge=0.1, le=10, description="a camera frame older than this is dropped, "
                                   "not decoded or matched")
    qr_budget_ms: float = Field(80, ge=5, le=2000, description="one frame's QR decoding stops after this long (the "
                                "next frame comes soon)")


class HoursConfig(Strict):
    """Opening hours (entry only; the exit always works). Without [store.hours] the store never closes."""

    timezone: str = Field("UTC", description="IANA zone, e.g. Asia/Shanghai")
    daily: str | None = Field(None, description="'HH:MM-HH:MM' (past midnight allowed) or 'closed'")
    mon: str | None = None
    tue: str | None = None
    wed: str | None = None
    thu: str | None = None
    fri: str | None = None
    sat: str | None = None
    sun: str | None = None
    closed_dates: list[date] = Field(default_factory=list, description="holidays: closed all day")

    @model_validator(mode="after")
    def _valid(self) -> HoursConfig:
        self.build()
        return self

    def build(self) -> Hours:
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown zone {self.timezone!r}") from None
        spans = {}
        for day in DAYS:
            text = getattr(self, day) or self.daily
            if text is not None:
                try:
                    spans[day] = parse_span(text)
                except ValueError as e:
                    raise ValueError(f"{day if getattr(self, day) else 'daily'}: {e}") from None
        return Hours(tz, spans, frozenset(self.closed_dates))


class StoreInfo(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    name: str = Field("", max_length=100)
    hours: HoursConfig | None = None
    sim: bool = Field(False, description="this store drives the hardware simulator (devices that say they are "
                      "simulated are refused without it)")
    timezone: str | None = Field(None, description="IANA zone of the store's dates (batches' expiry); default: "
                                 "[store.hours]' zone, else UTC")

    @model_validator(mode="after")
    def _one_zone(self) -> StoreInfo:
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: unknown zone {self.timezone!r}") from None
            if self.hours is not None and self.hours.timezone != self.timezone:
                raise ValueError(f"timezone: {self.timezone!r} differs from hours.timezone "
                                 f"{self.hours.timezone!r} (a store has one)")
        return self

    def tz(self) -> ZoneInfo:
        """The store's time zone."""
        return ZoneInfo(self.timezone or (self.hours.timezone if self.hours else "UTC"))


class OperatorConfig(Strict):
    name: Name
    password_hash: str = Field(pattern=r"^scrypt\$\d+\$\d+\$\d+\$[0-9a-f]{32}\$[0-9a-f]{64}$",
                               description="from `bingobox hash-password` (never the password itself)")
    may_refund: bool = Field(False, description="may give money back (refunds); the other actions need no grant")


class ScreenConfig(Strict):
    """The operator status screen (a web page served by the controller)."""

    host: str = Field("127.0.0.1", description="bind address (loopback: a browser on the box)")
    port: int = Field(8080, ge=0, le=65535, description="0: any free port (written to the status file)")
    operators: list[OperatorConfig] = Field(default_factory=list, description="who may act; none: view only")
    operators_file: Path | None = Field(None, description="TOML with [[operators]], kept out of the config")
    session_ttl_s: float = Field(3600, ge=60, le=86400)
    login_failures_per_minute: int = Field(5, ge=1, le=100, description="per (name, source address)")
    login_failures_per_source_per_minute: int = Field(10, ge=1, le=1000)
    login_failures_per_name_per_minute: int = Field(20, ge=1, le=10000, description="per operator name, from all "
                                                    "sources but the box itself: a guesser spread over many "
                                                    "addresses locks out only that name, for a minute")
    push_interval_s: float = Field(1.0, ge=0.2, le=10)
    language: PanelLanguage = Field("en", description="the words the screen shows for counters, flags, alarms and "
                                    "review causes (the identifiers stay in /metrics and the JSON); ?lang= overrides")
    max_streams: int = Field(20, ge=1, le=1000, description="live views (server-sent event streams) at once")
    max_connections: int = Field(64, ge=4, le=10000, description="HTTP connections at once; beyond: 503")
    allowed_hosts: list[str] | None = Field(None, description="Host header values accepted (DNS-rebinding guard); "
                                            "default: the bind address, localhost, 127.0.0.1 and this box's name")
    tls_cert: Path | None = Field(None, description="serve https (PEM); then the session cookie is Secure")
    tls_key: Path | None = None
    view_requires_login: bool = Field(False, description="true: nothing is shown until an operator logs in (for a "
                                      "screen bound to a LAN address), /metrics included but for the token below")
    metrics_token_file: Path | None = Field(None, description="with view_requires_login: the token a Prometheus "
                                            "scraper sends (Authorization: Bearer), in a file (mode 600)")

    @model_validator(mode="after")
    def _tls_pair(self) -> ScreenConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    def hosts(self) -> list[str]:
        """The Host header values the screen answers to."""
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        import socket

        names = {"127.0.0.1", "localhost", socket.gethostname()}
        if self.host not in ("0.0.0.0", "::", ""):
            names.add(self.host)
        return sorted(names)

    def all_operators(self) -> list[OperatorConfig]:
        extra: list[OperatorConfig] = []
        if self.operators_file is not None:
            data = tomllib.loads(self.operators_file.read_text(encoding="utf-8"))
            unknown = set(data) - {"operators"}
            if unknown:
                raise ValueError(f"{self.operators_file}: unknown keys {sorted(unknown)}")
            extra = [OperatorConfig.model_validate(o) for o in data.get("operators", [])]
        return [*self.operators, *extra]


class MqttConfig(Strict):
    """The chain's MQTT broker: the store connects out, publishes its state and events, takes signed commands."""

    url: str = Field(pattern=r"^mqtts?://[A-Za-z0-9_.:\[\]-]+(:[0-9]{1,5})?/?$",
                     description="mqtts://host:8883 (plain mqtt:// only to a broker on this box's loopback)")
    client_id: str | None = Field(None, max_length=64, description="default bingobox-<store id> (unique per store)")
    username: str | None = Field(None, max_length=64)
    password_file: Path | None = Field(None, description="the broker password, in a file (mode 600)")
    ca_file: Path | None = Field(None, description="mqtts: the broker's CA (default: the system's)")
    cert_file: Path | None = Field(None, description="mqtts: a client certificate (PEM), with key_file")
    key_file: Path | None = None
    topic_prefix: str = Field("bingobox", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    command_secret_file: Path | None = Field(None, description="the key the fleet service signs commands with; "
                                             "without it the store refuses every command")
    keepalive_s: int = Field(30, ge=5, le=600)
    state_every_s: float = Field(5.0, ge=0.5, le=300, description="state re-published (retained) at most this "
                                 "often when it changes, and at least every 12 times this")
    metrics_every_s: float = Field(30.0, ge=1, le=3600)
    ha_discovery: bool = Field(True, description="Home Assistant MQTT discovery configs (retained)")
    ha_prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    ha_lockdown_switch: bool = Field(False, description="a Lockdown switch in Home Assistant: its unsigned "
                                     "…/ha/lockdown/set is trusted, so the broker's ACL must keep it to HA")
    events_wait_for_fleet: bool = Field(True, description="events (alarms, charges, visits) are sent only while a "
                                        "fleet service says it listens (<prefix>/_fleet/<instance>/status): the "
                                        "broker keeps no event for nobody. false: a broker without a fleet (Home "
                                        "Assistant alone)")

    @field_validator("url")
    @classmethod
    def _tls_unless_loopback(cls, url: str) -> str:
        from urllib.parse import urlsplit

        host = (urlsplit(url).hostname or "").lower()
        if url.startswith("mqtt://") and not (host in ("localhost", "::1") or host.startswith("127.")):
            raise ValueError(f"must be mqtts:// (plain mqtt:// only on loopback): {host!r} is a network host")
        return url

    @model_validator(mode="after")
    def _cert_and_key(self) -> MqttConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give cert_file and key_file together")
        if self.cert_file is not None and not self.url.startswith("mqtts://"):
            raise ValueError("a client certificate needs mqtts://")
        return self

    def password(self) -> str | None:
        from .secretfiles import read_secret

        return read_secret(self.password_file, "the MQTT password") if self.password_file else None

    def command_secret(self) -> str | None:
        from .secretfiles import read_secret

        return read_secret(self.command_secret_file, "the MQTT command secret") if self.command_secret_file else None


PanelLanguage = Literal["en", "zh_Hans"]  # the shipped message catalogs (bingobox.i18n.LANGUAGES)


class StockConfig(Strict):
    """What the shelves should hold: a restock alarm when a product's count in the store falls below its minimum, and
    (for a shelf that says what it carries) the items found on the wrong shelf."""

    minimum: dict[str, int] = Field(default_factory=dict, description="SKU → the fewest on the shelves before a "
                                    "restock alarm")
    carries: dict[Name, list[str]] = Field(default_factory=dict, description="shelf reader → the SKUs it carries "
                                           "(a shelf not listed carries anything)")

    @field_validator("minimum")
    @classmethod
    def _counts(cls, v: dict[str, int]) -> dict[str, int]:
        for sku, n in v.items():
            if not 0 <= n <= 10_000:
                raise ValueError(f"minimum of {sku!r}: 0-10000")
        return v


class PanelsConfig(Strict):
    """The door panels: a page per door (``/panel/DOOR`` on the status screen's server) for a small screen next to
    the door, in a browser in kiosk mode. No login: a panel shows only its own door's latest message."""

    language: PanelLanguage = Field("zh_Hans", description="every door's panel language, unless `languages` says")
    languages: dict[Name, PanelLanguage] = Field(default_factory=dict, description="door → language")
    max_streams_per_door: int = Field(4, ge=1, le=64, description="live panel pages per door (a screen or two; "
                                      "more are refused, so that nobody can tie up the server with panels)")

    def language_of(self, door: str) -> str:
        return self.languages.get(door, self.language)


class StoreConfig(Strict):
    """The whole controller configuration."""

    store: StoreInfo
    buses: list[BusConfig] = Field(default_factory=list)
    doors: list[DoorConfig] = Field(default_factory=list)
    readers: list[ReaderConfig] = Field(default_factory=list)
    llrp_readers: list[LlrpReaderConfig] = Field(default_factory=list)
    card_readers: list[CardReaderConfig] = Field(default_factory=list)
    probes: list[ProbeConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    cabinets: list[CabinetConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    wallet: WalletConfig | None = None
    journal: JournalConfig = Field(default_factory=JournalConfig)
    layout: LayoutConfig | None = None
    catalog: Path | None = Field(None, description="CSV: sku,name,price_fen with epc_prefix and/or gtin; markdowns")
    batches: Path | None = Field(None, description="CSV: gtin,serial_from,serial_to,lot,expires (of the catalog's "
                                 "GTINs; tags are SGTIN-96)")
    visits: VisitsConfig = Field(default_factory=VisitsConfig)
    vision: VisionConfig = Field(default_factory=VisionConfig)
    screen: ScreenConfig | None = None
    panels: PanelsConfig = Field(default_factory=PanelsConfig)
    stock: StockConfig = Field(default_factory=StockConfig)
    mqtt: MqttConfig | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> StoreConfig:
        check_unique_names(self.buses, self.doors, self.readers, self.llrp_readers,
                           [z for r in self.llrp_readers for z in r.zones], self.cameras, self.card_readers)
        check_one_device_per_port([*self.buses, *[d for d in self.doors if d.port is not None], *self.readers,
                                   *self.card_readers])
        check_buses(self.buses, self.doors)
        check_unique_names(self.probes)
        check_unique_names(self.zones)
        boards = {(d.bus, d.unit) for d in self.doors if d.bus is not None}
        zones = {z.name for z in self.zones}
        seen: dict[tuple[str, int], str] = {}
        for pr in self.probes:
            if pr.bus not in {b.name for b in self.buses}:
                raise ValueError(f"probes.{pr.name}.bus: no [[buses]] entry named {pr.bus!r}")
            if (pr.bus, pr.unit) in boards or (pr.bus, pr.unit) in seen:
                raise ValueError(f"probes.{pr.name}.unit: unit {pr.unit} on bus {pr.bus} is another device's")
            seen[pr.bus, pr.unit] = pr.name
            if pr.zone not in zones:
                raise ValueError(f"probes.{pr.name}.zone: no [[zones]] entry named {pr.zone!r}")
        if self.layout is not None:
            lay = self.layout
            doors, cams = {d.name for d in self.doors}, {c.name for c in self.cameras}
            readers = set(self.reader_names())
            for key, name, known in (("entry_door", lay.entry_door, doors), ("exit_door", lay.exit_door, doors),
                                     ("entry_camera", lay.entry_camera, cams), ("exit_camera", lay.exit_camera, cams),
                                     ("exit_reader", lay.exit_reader, readers)):
                if name is not None and name not in known:
                    raise ValueError(f"layout.{key}: no such device {name!r}")
        for shelf in self.stock.carries:
            if shelf not in self.reader_names():
                raise ValueError(f"stock.carries: {shelf!r} is not a reader")
        for cr in self.card_readers:
            by = {self.layout.entry_door, self.layout.exit_door} if self.layout else {d.name for d in self.doors}
            if cr.door not in by:
                raise ValueError(f"card_readers.{cr.name}.door: {cr.door!r} is not the layout's entry or exit door")
        self._check_cabinets(zones)
        cabinet_doors = {c.door for c in self.cabinets}
        for door in self.panels.languages:
            if door not in cabinet_doors and (self.layout is None
                                              or door not in (self.layout.entry_door, self.layout.exit_door)):
                raise ValueError(f"panels.languages: {door!r} is not the layout's entry or exit door or a cabinet's")
        return self

    def _check_cabinets(self, zones: set[str]) -> None:
        check_unique_names(self.cabinets)
        doors, cams = {d.name: d for d in self.doors}, {c.name for c in self.cameras}
        lay = self.layout
        used: dict[str, str] = {}
        for c in self.cabinets:
            where = f"cabinets.{c.name}"
            d = doors.get(c.door)
            if d is None:
                raise ValueError(f"{where}.door: no [[doors]] entry named {c.door!r}")
            if lay is not None and c.door in (lay.entry_door, lay.exit_door):
                raise ValueError(f"{where}.door: {c.door!r} is the store's entrance or exit")
            if c.door in used:
                raise ValueError(f"{where}.door: {c.door!r} is cabinet {used[c.door]}'s already")
            used[c.door] = c.name
            if d.rex_unlocks:
                raise ValueError(f"{where}.door: door {c.door!r} has rex_unlocks = true: its button would open the "
                                 "cabinet by itself (set rex_unlocks = false: the store decides)")
            if c.zone is not None and c.zone not in zones:
                raise ValueError(f"{where}.zone: no [[zones]] entry named {c.zone!r}")
            if c.camera is not None and c.camera not in cams:
                raise ValueError(f"{where}.camera: no such camera {c.camera!r}")
            if c.restricted and c.camera is None:
                raise ValueError(f"{where}.camera: a restricted cabinet opens for a code shown to its camera")
            if c.restricted and not c.skus:
                raise ValueError(f"{where}.skus: which products are age-restricted?")
            if lay is not None and c.camera in (lay.entry_camera, lay.exit_camera):
                raise ValueError(f"{where}.camera: {c.camera!r} is the entrance's or the exit's camera")

    def reader_names(self) -> list[str]:
        """Every reader the store sees: M100 readers and LLRP antenna zones."""
        return [r.name for r in self.readers] + [z.name for r in self.llrp_readers for z in r.zones]


def check_one_device_per_port(devices: list) -> None:
    """Each serial port (device path, or socket/rfc2217 address) is opened by one driver. Doors that share a board
    or an RS-485 line say so explicitly: a ``[[buses]]`` entry with the port, and ``bus = NAME`` on each door."""
    seen: dict[str, str] = {}
    for d in devices:
        key = os.path.realpath(d.port) if d.port.startswith("/") and os.path.exists(d.port) else d.port
        if key in seen:
            raise ValueError(f"{seen[key]} and {d.name} use the same port {d.port!r}: one driver per serial port "
                             "(doors on one board or one RS-485 line: declare the line once under [[buses]] and "
                             "set bus = NAME on each door)")
        seen[key] = d.name


def check_buses(buses: list[BusConfig], doors: list[DoorConfig]) -> None:
    """Doors on one unit of a bus must not share a coil or an input (a fire contact may be shared: one panel relay
    wired once), and must agree on what is the unit's (its timeout, retries, watchdog)."""
    names = {b.name for b in buses}
    units: dict[tuple[str, int], list[DoorConfig]] = {}
    for d in doors:
        if d.bus is not None:
            if d.bus not in names:
                raise ValueError(f"doors.{d.name}.bus: no [[buses]] entry named {d.bus!r}")
            units.setdefault((d.bus, d.unit), []).append(d)
    for (bus, unit), ds in units.items():
        coils: dict[int, str] = {}
        inputs: dict[int, str] = {}
        fire: dict[int, DoorConfig] = {}
        for d in ds:
            for coil, what in d.own_coils.items():
                if coil in coils:
                    raise ValueError(f"doors.{d.name}.{what if what != 'lock' else 'lock_coil'}: coil {coil} of unit "
                                     f"{unit} on bus {bus} is also {coils[coil]}")
                coils[coil] = f"{d.name}'s {what}"
            for key in ("contact_input", "rex_input"):
                i = getattr(d, key)
                if i is None:
                    continue
                if i in inputs or i in fire:
                    raise ValueError(f"doors.{d.name}.{key}: input {i} of unit {unit} on bus {bus} is also "
                                     f"{inputs.get(i) or fire[i].name}'s")
                inputs[i] = f"{d.name}'s {key}"
            if d.fire_input is not None:
                if d.fire_input in inputs:
                    raise ValueError(f"doors.{d.name}.fire_input: input {d.fire_input} of unit {unit} on bus {bus} "
                                     f"is {inputs[d.fire_input]}")
                other = fire.setdefault(d.fire_input, d)
                if other.fire_active_level != d.fire_active_level:
                    raise ValueError(f"doors.{d.name}.fire_active_level: the fire input {d.fire_input} is shared "
                                     f"with {other.name}, which reads it the other way")
        first = ds[0]
        for d in ds[1:]:
            for key in ("response_timeout_s", "failures_before_fault", "comm_watchdog_register", "comm_watchdog_s",
                        "comm_watchdog_unit_s"):
                if getattr(d, key) != getattr(first, key):
                    raise ValueError(f"doors.{d.name}.{key}: {getattr(d, key)} differs from {first.name}'s "
                                     f"{getattr(first, key)} on the same board (unit {unit} on bus {bus})")


def check_unique_names(*groups: list) -> None:
    seen: set[str] = set()
    for group in groups:
        for item in group:
            if item.name in seen:
                raise ValueError(f"device name {item.name!r} is used twice")
            seen.add(item.name)


class ConfigError(Exception):
    """Invalid configuration; ``problems`` holds one 'file: key: reason' line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


M = TypeVar("M", bound=BaseModel)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_model(path: str | Path, model: type[M]) -> M:
    """Read a TOML file into ``model`` or raise ConfigError with every problem found."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read: {e}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            msg = re.sub(r"^Value error, ", "", msg)
            problems.append(f"{path}: {_loc(tuple(err['loc']))}: {msg}")
        raise ConfigError(problems) from None


def load_store_config(path: str | Path) -> StoreConfig:
    """The store config, with its catalog checked too (against what the wallet gateway accepts)."""
    from .domain.catalog import Catalog, CatalogError

    cfg = load_model(path, StoreConfig)
    if cfg.batches is not None and cfg.catalog is None:
        raise ConfigError([f"{path}: batches: a batch list needs a catalog"])
    if cfg.catalog is not None:
        try:
            Catalog.load(cfg.catalog, cfg.batches, cfg.store.tz())
        except CatalogError as e:
            raise ConfigError([f"{path}: catalog: {p}" for p in e.problems]) from None
    return cfg
