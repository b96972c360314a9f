"""Is this config pointed at the hardware simulator? A production store must never talk to one by mistake (its doors
would be simulated while the real ones stay shut, or worse), so devices that say they are simulated are refused
unless the config says ``[store] sim = true``.

What gives a simulated device away: a serial port that is one of the simulator's pty links (its run folder holds
``sim.json``), and a camera whose HTTP answers carry ``X-Bingobox-Simulator``. (A simulated serial device reached
over ``socket://`` or ``rfc2217://`` says nothing about itself: those are not detected.)
"""

from __future__ import annotations

from pathlib import Path

import requests

from .config import StoreConfig

SIM_HEADER = "X-Bingobox-Simulator"


def simulated_devices(cfg: StoreConfig, timeout_s: float = 1.0) -> list[str]:
    """``name: why`` for each device in ``cfg`` that is the simulator's (cameras not answering are not counted)."""
    found = []
    ports = [*[(b.name, b.port) for b in cfg.buses], *[(d.name, d.port) for d in cfg.doors if d.port is not None],
             *[(r.name, r.port) for r in cfg.readers]]
    for name, p in ports:
        port = str(p)
        if "://" not in port and (Path(port).parent / "sim.json").is_file():
            found.append(f"{name}: {port} is a port of the hardware simulator ({Path(port).parent}/sim.json)")
    for cam in cfg.cameras:
        src = str(cam.source)
        if not src.startswith(("http://", "https://")):
            continue
        try:
            with requests.get(src, stream=True, timeout=timeout_s) as r:
                if r.headers.get(SIM_HEADER):
                    found.append(f"{cam.name}: {src} is a camera of the hardware simulator")
        except requests.RequestException:
            continue  # not answering now: the camera driver will say so
    return found


def refuse_unmarked(cfg: StoreConfig) -> list[str]:
    """Problems (empty: fine) when the config talks to the simulator without saying so."""
    if cfg.store.sim:
        return []
    return [f"{p}: a config that drives the simulator must say `sim = true` under [store]"
            for p in simulated_devices(cfg)]
