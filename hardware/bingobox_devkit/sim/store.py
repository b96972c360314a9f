"""The virtual store: every simulated device built from the simulator config, and the actions an integrator
(HTTP control API, CLI, scenario file) can take in it — acting in the store and injecting faults."""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .camera_server import VirtualCamera, load_image, qr_image
from .config import SimConfig
from .door_board import VirtualDoor, build_lines
from .llrp_reader import VirtualLlrpReader
from .nfc_reader import VirtualCardReader
from .probe import VirtualProbe
from .rfid_reader import VirtualReader
from .serial_device import SerialDevice, SerialFaults

log = logging.getLogger(__name__)


class ActionError(ValueError):
    """An action that cannot be done as asked (unknown device, bad argument, locked door...)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class VirtualStore:
    def __init__(self, cfg: SimConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        seed = cfg.sim.seed
        self.lines, self.doors = build_lines(cfg.buses, cfg.doors, self.run_dir, seed)
        self.readers = {r.name: VirtualReader(r, self.run_dir, seed + 100 + i) for i, r in enumerate(cfg.readers)}
        self.llrp = {r.name: VirtualLlrpReader(r, seed + 300 + i) for i, r in enumerate(cfg.llrp_readers)}
        self.cameras = {c.name: VirtualCamera(c, seed + 200 + i) for i, c in enumerate(cfg.cameras)}
        self.card_readers = {c.name: VirtualCardReader(c, self.run_dir, seed + 400 + i)
                             for i, c in enumerate(cfg.card_readers)}
        self.probes: dict[str, VirtualProbe] = {}
        for i, pc in enumerate(cfg.probes):
            probe = self.probes[pc.name] = VirtualProbe(pc, self.lines[pc.bus], seed + 500 + i)
            self.lines[pc.bus].boards[pc.unit] = probe  # type: ignore[assignment]  # (a unit: answers its address)
        self.control_url: str | None = None
        self.token = secrets.token_urlsafe(24)  # for the control API; in the manifest (mode 600) only
        self.image_dirs = [Path(d).resolve() for d in cfg.sim.image_dirs]
        self.actions: dict[str, Callable[..., Any]] = {
            "door.open": self._door_open, "door.force": self._door_force, "door.close": self._door_close,
            "door.rex": self._door_rex, "door.pass": self._door_pass, "fire": self._fire,
            "tags.add": self._tags_add, "tags.remove": self._tags_remove, "tags.set": self._tags_set,
            "camera.show": self._camera_show, "camera.clear": self._camera_clear,
            "card.tap": self._card_tap, "card.remove": self._card_remove,
            "probe.set": self._probe_set, "fridge.fail": self._fridge_fail, "fridge.repair": self._fridge_repair,
            "fault.stuck_value": self._stuck_value,
            "fault.unplug": self._unplug, "fault.replug": self._replug, "fault.garbage": self._garbage,
            "fault.corrupt": self._corrupt, "fault.delay": self._delay, "fault.drop_reads": self._drop_reads,
            "fault.stuck_relay": self._stuck_relay, "fault.silent": self._silent, "fault.clear": self._clear,
        }

    # lifecycle -------------------------------------------------------------------------------------
    def devices(self) -> dict[str, Any]:
        """What actions and faults address by name: buses, doors (a door's faults are its board's), readers,
        cameras."""
        return {**self.lines, **self.doors, **self.readers, **self.llrp, **self.cameras, **self.card_readers,
                **self.probes}

    def _hardware(self) -> list:
        own = [d.line for d in self.doors.values() if not d.line.shared]
        return [*self.lines.values(), *own, *self.readers.values(), *self.llrp.values(), *self.cameras.values(),
                *self.card_readers.values()]

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for dev in self._hardware():
            dev.plug()

    def stop(self) -> None:
        for dev in self._hardware():
            dev.unplug()
        manifest = self.run_dir / "sim.json"
        if manifest.exists():
            manifest.unlink()

    def manifest(self) -> dict:
        return {"pid": os.getpid(), "control": self.control_url, "token": self.token,
                "devices": {n: {"kind": d.kind, **d.endpoints()} for n, d in self.devices().items()}}

    def write_manifest(self) -> Path:
        path = self.run_dir / "sim.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the control token
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(self.manifest(), indent=2))
        tmp.replace(path)
        return path

    def status(self) -> dict:
        return {"devices": {n: d.status() for n, d in self.devices().items()}, "control": self.control_url}

    # dispatch --------------------------------------------------------------------------------------
    def act(self, action: str, **args: Any) -> dict:
        fn = self.actions.get(action)
        if fn is None:
            raise ActionError(f"unknown action {action!r}; known: {', '.join(sorted(self.actions))}", 404)
        try:
            result = fn(**args)
        except TypeError as e:
            raise ActionError(f"{action}: bad arguments: {e}") from None
        except ActionError:
            raise
        except (ValueError, RuntimeError, OSError) as e:
            raise ActionError(f"{action}: {e}", 409 if "locked" in str(e) else 400) from None
        log.info("action %s %s", action, args)
        return {"ok": True, "action": action, **(result or {})}

    def _get(self, table: dict, name: str, what: str):
        if name not in table:
            raise ActionError(f"no {what} named {name!r}; known: {', '.join(sorted(table)) or 'none'}", 404)
        return table[name]

    def _serial(self, device: str) -> SerialDevice:
        return self._get({**self.lines, **self.doors, **self.readers, **self.llrp, **self.card_readers,
                          **self.probes}, device, "serial or LLRP device")

    # acting in the store ---------------------------------------------------------------------------
    def _door_open(self, door: str) -> dict:
        self._get(self.doors, door, "door").open_door()
        return {}

    def _door_force(self, door: str) -> dict:
        self._get(self.doors, door, "door").open_door(force=True)
        return {}

    def _door_close(self, door: str) -> dict:
        self._get(self.doors, door, "door").close_door()
        return {}

    def _door_rex(self, door: str) -> dict:
        self._get(self.doors, door, "door").press_rex()
        return {}

    def _door_pass(self, door: str, people: int = 1, gap_s: float = 0.5) -> dict:
        """People walking through a doorway past its people counter (one pulse each, ``gap_s`` apart)."""
        self._get(self.doors, door, "door").walk_through(int(people), float(gap_s))
        return {}

    def _fire(self, active: bool = True, door: str | None = None) -> dict:
        targets = [self._get(self.doors, door, "door")] if door else list(self.doors.values())
        for d in targets:
            d.set_fire(bool(active))
        return {"doors": [d.name for d in targets]}

    def _reader(self, reader: str, antenna) -> tuple[Any, dict]:
        """A reader and how to address its field: an LLRP reader's tags are on one of its antennas."""
        r = self._get({**self.readers, **self.llrp}, reader, "reader")
        if isinstance(r, VirtualLlrpReader):
            if antenna is None:
                raise ActionError(f"{reader} is an LLRP reader with antennas 1..{r.cfg.antennas}: say antenna=N")
            return r, {"antenna": antenna}
        if antenna is not None:
            raise ActionError(f"{reader} has one field: no antenna to choose")
        return r, {}

    def _tags_add(self, reader: str, epcs: list[str], rssi: int | None = None, antenna: int | None = None) -> dict:
        r, at = self._reader(reader, antenna)
        return {"tags": r.add_tags(_as_list(epcs), rssi, **at)}

    def _tags_remove(self, reader: str, epcs: list[str], antenna: int | None = None) -> dict:
        r, at = self._reader(reader, antenna)
        return {"tags": r.remove_tags(_as_list(epcs), **at)}

    def _tags_set(self, reader: str, epcs: list[str], antenna: int | None = None) -> dict:
        r, at = self._reader(reader, antenna)
        return {"tags": r.set_tags(_as_list(epcs), **at)}

    def _camera_show(self, camera: str, image: str | None = None, qr: str | None = None,
                     scale: float = 0.6, walk_from: float | None = None, walk_s: float = 0.0) -> dict:
        """``walk_from``: the image walks towards the camera from that scale to ``scale`` over ``walk_s`` s."""
        cam = self._get(self.cameras, camera, "camera")
        if (image is None) == (qr is None):
            raise ActionError("camera.show needs exactly one of image=PATH or qr=TEXT")
        if image is not None:
            path = Path(image).resolve()
            if not any(path.is_relative_to(d) for d in self.image_dirs):
                raise ActionError(f"camera.show: {image} is not in an image folder the simulator serves from "
                                  f"(sim.image_dirs: {', '.join(map(str, self.image_dirs)) or 'none'})", 403)
            cam.show(load_image(path), f"image:{path.name}", float(scale),  # (a bad walk: ``act``'s ActionError)
                     None if walk_from is None else float(walk_from), float(walk_s))
        else:
            cam.show(qr_image(str(qr)), "qr", float(scale))
        return {}

    def _card_tap(self, reader: str, uid: str, hold_s: float = 0.5) -> dict:
        """A card held to an NFC reader (``uid``: its UID in hex, 4, 7 or 10 bytes) for ``hold_s`` seconds."""
        return self._get(self.card_readers, reader, "card reader").tap(str(uid), float(hold_s))

    def _probe_set(self, probe: str, temp_c: float) -> dict:
        """The zone a probe is in holds ``temp_c`` from now on."""
        return self._get(self.probes, probe, "probe").set(float(temp_c))

    def _fridge_fail(self, probe: str, rate_c_per_min: float = 0.25, ambient_c: float = 25.0) -> dict:
        """The fridge a probe is in stops cooling: it warms towards ``ambient_c``, at first ``rate_c_per_min``."""
        return self._get(self.probes, probe, "probe").fail(float(rate_c_per_min), float(ambient_c))

    def _fridge_repair(self, probe: str, rate_c_per_min: float = 0.5) -> dict:
        return self._get(self.probes, probe, "probe").repair(float(rate_c_per_min))

    def _stuck_value(self, probe: str, on: bool = True) -> dict:
        """A probe whose reading no longer changes (its sensor died; it still answers)."""
        self._get(self.probes, probe, "probe").stick(bool(on))
        return {}

    def _card_remove(self, reader: str) -> dict:
        return self._get(self.card_readers, reader, "card reader").remove()

    def _camera_clear(self, camera: str) -> dict:
        self._get(self.cameras, camera, "camera").clear()
        return {}

    # faults ----------------------------------------------------------------------------------------
    def _unplug(self, device: str) -> dict:
        self._get(self.devices(), device, "device").unplug()
        return {}

    def _replug(self, device: str) -> dict:
        dev = self._get(self.devices(), device, "device")
        dev.plug()
        self.write_manifest()
        return dev.endpoints()

    def _garbage(self, device: str, bytes: int = 16) -> dict:
        if not 1 <= int(bytes) <= 4096:
            raise ActionError("bytes must be 1..4096")
        self._serial(device).faults.garbage_bytes = int(bytes)
        return {}

    def _corrupt(self, device: str, count: int = 1) -> dict:
        if not 1 <= int(count) <= 10000:
            raise ActionError("count must be 1..10000")
        self._serial(device).faults.corrupt_frames = int(count)
        return {}

    def _delay(self, device: str, ms: float) -> dict:
        if not 0 <= float(ms) <= 10000:
            raise ActionError("ms must be 0..10000")
        self._serial(device).faults.delay_s = float(ms) / 1000
        return {}

    def _drop_reads(self, reader: str, probability: float) -> dict:
        if not 0 <= float(probability) <= 1:
            raise ActionError("probability must be 0..1")
        self._get({**self.readers, **self.llrp}, reader, "reader").faults.drop_reads = float(probability)
        return {}

    def _stuck_relay(self, door: str, stuck: bool = True) -> dict:
        self._get(self.doors, door, "door").set_stuck(bool(stuck))
        return {}

    def _silent(self, device: str, on: bool = True) -> dict:
        self._serial(device).faults.silent = bool(on)
        return {}

    def _clear(self, device: str) -> dict:
        dev = self._get(self.devices(), device, "device")
        if isinstance(dev, SerialDevice | VirtualLlrpReader):
            dev.faults = SerialFaults()
        if isinstance(dev, VirtualDoor):
            dev.board.faults = SerialFaults()
            dev.set_stuck(False)
        if isinstance(dev, VirtualProbe):
            dev.faults = SerialFaults()
            dev.stick(False)
        if not dev.plugged:
            dev.plug()
            self.write_manifest()
        return {}


def _as_list(v: list[str] | str) -> list[str]:
    return [x for x in v.replace(",", " ").split()] if isinstance(v, str) else list(v)
