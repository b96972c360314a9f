"""The demo store's configuration, built as data, checked against the config models (``StoreConfig``,
``SimConfig``) and written as TOML — never pasted together as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from bingobox.config import StoreConfig
from bingobox_devkit.sim.config import SimConfig

SHELVES = ("shelf-1", "shelf-2")
DOORS = ("entrance", "exit")
CAMERAS = ("door-cam", "exit-cam")
WATCHDOG_REGISTER = 0x00FA  # the simulated boards' communication-watchdog register (the controller sets 1 s)
BUS = "rs485"
BUS_BAUD = 38400  # the shared line's speed (paced by the simulator, its t3.5 kept by the controller)
_A = {"lock_coil": 0, "contact_input": 0, "rex_input": 1, "fire_input": 2}  # a door's standard terminals
# How the doors are wired: each on a board and port of its own; both on one 8-channel board (two coils, one fire
# contact); or two boards on one RS-485 line, with a third board (a staff door, not a shopper's) on it too
WIRING: dict[str, dict[str, dict]] = {
    "own": {},
    "board": {"entrance": {"bus": BUS, "unit": 1, **_A},
              "exit": {"bus": BUS, "unit": 1, "lock_coil": 1, "contact_input": 3, "rex_input": 4, "fire_input": 2}},
    "bus": {"entrance": {"bus": BUS, "unit": 1, **_A}, "exit": {"bus": BUS, "unit": 2, **_A},
            "staff": {"bus": BUS, "unit": 3, **_A}},
}

# each shopper door's green and red lamps: the two coils after its lock (an 8-channel board has them to spare)
LAMPS: dict[str, dict[str, dict]] = {
    "own": {n: {"green_lamp_coil": 2, "red_lamp_coil": 3} for n in DOORS},
    "board": {"entrance": {"green_lamp_coil": 2, "red_lamp_coil": 3},
              "exit": {"green_lamp_coil": 4, "red_lamp_coil": 5}},
    "bus": {n: {"green_lamp_coil": 2, "red_lamp_coil": 3} for n in DOORS},
}

# the entrance's people counter (an IR beam's pulse output) on the first free input of its board
COUNTER = {"own": {"entrance": {"passage_input": 3}}, "board": {"entrance": {"passage_input": 5}},
           "bus": {"entrance": {"passage_input": 3}}}

# the chilled zone's probe on the RS-485 line (a line of its own when the doors have theirs)
PROBE = {"name": "fridge-1", "bus": BUS, "unit": 10}
CHILLED = ["onigiri-tuna", "coffee-can"]
ZONE = {"name": "chilled", "max_c": 8.0, "alarm_after_s": 600, "budget_s": 7200, "skus": CHILLED}

# two locked cabinets on the RS-485 line beside the probe: the chilled zone's fridge (opens to its button while its
# goods are on sale) and the age-restricted goods' cabinet (opens to an adult's code shown to its own camera)
CABINET_DOORS = {"fridge-door": 11, "bar-door": 12}
CABINET_CAM = "bar-cam"
RESTRICTED = ["beer-500"]
CABINETS: list[dict[str, Any]] = [
    {"name": "fridge", "door": "fridge-door", "zone": ZONE["name"]},
    {"name": "bar", "door": "bar-door", "restricted": True, "skus": RESTRICTED, "camera": CABINET_CAM}]
_CAB = {"bus": BUS, "lock_coil": 0, "contact_input": 0, "rex_input": 1, "green_lamp_coil": 2, "red_lamp_coil": 3}

LLRP = "llrp-1"  # with --shelves llrp: one 4-antenna LLRP reader, shelf N on antenna N
CARD_READERS = {"entrance-nfc": "entrance", "exit-nfc": "exit"}  # a PN532 by each shopper door


def shelf_address(shelves: str, shelf: str) -> dict:
    """How the simulator's tag actions address a shelf: an M100 reader of its own, or an antenna of the LLRP
    reader."""
    return {"reader": LLRP, "antenna": SHELVES.index(shelf) + 1} if shelves == "llrp" else {"reader": shelf}


def doors_of(wiring: str) -> tuple[str, ...]:
    return (*DOORS, *[n for n in WIRING[wiring] if n not in DOORS])


def sim_config(seed: int, fps: float = 15, image_dirs: tuple[Path, ...] = (), wiring: str = "own",
               shelves: str = "m100", cabinets: bool = True) -> dict:
    """The simulated store: two doors (strikes) wired as ``wiring`` says, two shelves and the exit area, two
    cameras; ``image_dirs``: where the shoppers' photographs are (the only folders the simulator shows pictures
    from)."""
    dirs = {"image_dirs": [str(d) for d in image_dirs]} if image_dirs else {}
    wires = WIRING[wiring]
    cfg = {"sim": {"control_port": 0, "seed": seed, **dirs},
           "buses": [{"name": BUS, "baudrate": BUS_BAUD}],
           "probes": [{**PROBE, "temp_c": 4.0}],
           "doors": [*[{"name": n, "energize_to_unlock": True, "baudrate": 0,
                        "comm_watchdog_register": WATCHDOG_REGISTER,
                        **wires.get(n, {}), **LAMPS[wiring].get(n, {}), **COUNTER[wiring].get(n, {})}
                       for n in doors_of(wiring)],
                     *[{"name": n, "unit": u, **_CAB} for n, u in CABINET_DOORS.items() if cabinets]],
           "readers": [{"name": n, "round_s": 0.02, "rssi_noise": 2}
                       for n in ((*SHELVES, "exit-area") if shelves == "m100" else ("exit-area",))],
           "llrp_readers": [{"name": LLRP, "antennas": 4, "round_s": 0.1, "rssi_noise": 2, "bleed": 0.2}]
           if shelves == "llrp" else [],
           "cameras": [*[{"name": n, "fps": fps} for n in CAMERAS],
                       *([{"name": CABINET_CAM, "fps": min(fps, 5)}] if cabinets else [])],
           "card_readers": [{"name": n} for n in CARD_READERS]}
    SimConfig.model_validate(cfg)
    return cfg


def store_config(store_id: str, devices: dict, catalog: Path, gateway: str, secret_file: Path, keys_file: Path,
                 journal: Path, screen_port: int, operator: tuple[str, str] | None, wiring: str = "own",
                 shelves: str = "m100", overrides: dict | None = None, batches: Path | None = None,
                 cabinets: bool = True) -> dict:
    """The controller's config for the simulated store (``devices``: the simulator's manifest); ``overrides``:
    sections to change or add (e.g. {"vision": {"agree_frames": 2}})."""
    door = {"energize_to_unlock": True, "unlock_s": 4, "held_open_s": 15,
            "comm_watchdog_register": WATCHDOG_REGISTER, "comm_watchdog_s": 1.0}
    wires = WIRING[wiring]  # the same terminals as the simulated boards'
    buses = sorted({*(w["bus"] for w in wires.values()), BUS})
    doors = [{"name": n, **(wires[n] if n in wires else {"port": devices[n]["pty"]}), **LAMPS[wiring].get(n, {}),
              **COUNTER[wiring].get(n, {}), **door} for n in doors_of(wiring)]
    doors += [{"name": n, "unit": u, **_CAB, "energize_to_unlock": True, "rex_unlocks": False,
               "rex_shunt_s": 0, "unlock_s": 10, "held_open_s": 60} for n, u in CABINET_DOORS.items() if cabinets]
    cfg = {
        "catalog": str(catalog),
        **({"batches": str(batches)} if batches else {}),
        "store": {"id": store_id, "name": "bingobox demo store", "sim": True},
        "buses": [{"name": b, "port": devices[b]["pty"], "baudrate": BUS_BAUD} for b in buses],
        "doors": doors,
        "readers": [*[{"name": n, "port": devices[n]["pty"], "gone_after_s": 0.6}
                      for n in (SHELVES if shelves == "m100" else ())],
                    {"name": "exit-area", "port": devices["exit-area"]["pty"], "role": "exit", "mode": "poll",
                     "poll_interval_s": 0.03}],
        "llrp_readers": [{"name": LLRP, "host": "127.0.0.1", "port": devices[LLRP]["tcp"], "round_s": 0.1,
                          "gone_after_s": 0.8, "keepalive_s": 0.25, "silence_timeout_s": 1.0, "reconnect_max_s": 2,
                          "zones": [{"antenna": i + 1, "name": n} for i, n in enumerate(SHELVES)]}]
        if shelves == "llrp" else [],
        "cameras": [{"name": n, "source": devices[n]["stream"]}
                    for n in (*CAMERAS, *([CABINET_CAM] if cabinets else []))],
        "cabinets": CABINETS if cabinets else [],
        "card_readers": [{"name": n, "port": devices[n]["pty"], "door": d} for n, d in CARD_READERS.items()],
        "probes": [{**PROBE, "zone": ZONE["name"]}],
        "zones": [ZONE],
        "layout": {"entry_door": "entrance", "exit_door": "exit", "entry_camera": "door-cam",
                   "exit_camera": "exit-cam", "exit_reader": "exit-area"},
        "wallet": {"gateway_url": gateway, "secret_file": str(secret_file), "keys_file": str(keys_file),
                   "read_timeout_s": 1.5, "retry_base_s": 0.1, "retry_max_s": 2, "poll_interval_s": 0.5,
                   "paying_window_s": 5},
        "visits": {"exit_charge_wait_s": 3, "enter_within_s": 15, "card_list_every_s": 5},
        "journal": {"path": str(journal)},
        "screen": {"port": screen_port, "push_interval_s": 0.5,
                   "operators": [{"name": operator[0], "password_hash": operator[1], "may_refund": True}]
                   if operator else []},
        "panels": {"language": "en"},
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, list):  # ([[zones]], [[probes]]…: replaced whole)
            cfg[key] = value
            continue
        section = cfg.setdefault(key, {})
        assert isinstance(section, dict)
        section.update(value)
    StoreConfig.model_validate(cfg)
    return cfg


def write(path: Path, cfg: dict) -> Path:
    path.write_text(tomli_w.dumps(cfg))
    return path
