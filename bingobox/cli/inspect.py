"""Looking at a store: ``devices`` (its drivers' events), ``vision`` (the pipeline on image files), ``diagram``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..config import load_store_config
from ..sdnotify import wait_for_signal
from . import load

QR_FILE_BUDGET_MS = 1000.0  # `vision qr`: a photograph may take every retry and grid, but no file more than this


# devices ---------------------------------------------------------------------------------------------
def cmd_devices(args: argparse.Namespace) -> int:
    """Start the drivers for every device in the config, print their events (JSON lines) and status."""
    from ..devices.camera import Camera
    from ..devices.door import build_doors
    from ..devices.llrp import LlrpReader
    from ..devices.rfid import RfidReader

    cfg = load(load_store_config, args.config)
    if cfg is None:
        return 2

    out_lock = threading.Lock()

    def emit(ev) -> None:  # called from every driver's thread: one whole line at a time
        line = json.dumps({"t": round(ev.t, 3), "device": ev.device, "event": ev.kind, **ev.data}) + "\n"
        with out_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    buses, doors = build_doors(cfg.doors, cfg.buses, emit)
    llrp = [LlrpReader(r, emit) for r in cfg.llrp_readers]
    zones = [z for r in llrp for z in r.zones.values()]
    others: list[Any] = [*[RfidReader(r, emit) for r in cfg.readers], *zones, *[Camera(c, emit) for c in cfg.cameras]]
    running: list[Any] = [*buses.values(), *llrp, *others]
    for d in running:
        d.start()
    try:
        for door in args.grant or []:
            if door not in doors:
                print(f"no door named {door!r}", file=sys.stderr)
                return 2
            time.sleep(0.5)
            doors[door].grant()
        if args.seconds:
            time.sleep(args.seconds)
        else:
            wait_for_signal()
        status = {d.name: d.status() for d in [*doors.values(), *others]}
        print(json.dumps({"status": status, "buses": {b.name: b.status() for b in buses.values()}}, default=str),
              flush=True)
    finally:
        for d in running:
            d.stop()
    return 0


def cmd_vision_qr(args: argparse.Namespace) -> int:
    """One JSON line per image: the texts found and the time the decoder took."""
    import cv2

    from ..vision.qr import QrReader

    reader = QrReader(budget_ms=QR_FILE_BUDGET_MS)  # photographs: a larger budget than a camera frame, still a bound
    status = 0
    for path in args.images:
        img = cv2.imread(path)
        if img is None:
            print(json.dumps({"file": path, "error": "not a readable image (missing, corrupt or truncated)"}))
            status = 1
            continue
        t0 = time.perf_counter()
        texts = reader.decode(img)
        print(json.dumps({"file": path, "texts": texts, "ms": round((time.perf_counter() - t0) * 1000, 2)},
                         ensure_ascii=False), flush=True)
    return status


def cmd_vision_faces(args: argparse.Namespace) -> int:
    """Enrol everyone in --gallery (one folder per person), then decide each image with the exit's rule."""
    from ..vision.faces import FaceEngine, ImageReadError, Rule, decide, read_rgb

    engine = FaceEngine()
    rule = Rule(**{k: v for k, v in (("threshold", args.threshold), ("margin", args.margin)) if v is not None})
    gallery: dict[str, list] = {}
    root = Path(args.gallery)
    if not root.is_dir():
        print(f"--gallery {root}: not a folder", file=sys.stderr)
        return 2
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            try:
                e = engine.enrol(read_rgb(str(photo)))
            except ImageReadError as err:
                print(f"gallery: {err}", file=sys.stderr)
                continue
            if e.ok:
                gallery.setdefault(person.name, []).append(e.encoding)
            else:
                print(f"gallery: {photo}: not enrolled ({e.reason})", file=sys.stderr)
    status = 0
    for path in args.images:
        try:
            rgb = read_rgb(path)
        except ImageReadError as err:
            print(json.dumps({"file": path, "match": None, "distance": None, "margin": None, "reason": "error",
                              "error": str(err)}))
            status = 1
            continue
        enc, why, faces = engine.probe(rgb)
        d = decide(enc, gallery, rule) if enc is not None else None
        out = {"file": path, "match": d.match if d else None, "distance": d.distance if d else None,
               "margin": d.margin if d else None, "reason": d.reason if d else why, "faces": faces}
        print(json.dumps(out), flush=True)
    return status


def cmd_diagram(args: argparse.Namespace) -> int:
    """Print the state machines (from their live definitions) as Mermaid diagrams."""
    from ..domain import diagram

    unknown = set(args.machines) - set(diagram.MACHINES)
    if unknown:
        print(f"no machine named {', '.join(sorted(unknown))}; known: {', '.join(diagram.MACHINES)}", file=sys.stderr)
        return 2
    for name in args.machines or sorted(diagram.MACHINES):
        print(f"%% {name}\n{diagram.mermaid(name)}\n")
    return 0



def add_parsers(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("devices", help="run the device drivers of a store config and print their events")
    d.add_argument("--config", required=True)
    d.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    d.add_argument("--grant", action="append", metavar="DOOR", help="grant access at DOOR once started")
    d.set_defaults(fn=cmd_devices)

    v = sub.add_parser("vision", help="run the vision pipeline on image files")
    vsub = v.add_subparsers(dest="vision_command", required=True)
    vq = vsub.add_parser("qr", help="decode QR codes: one JSON line per image")
    vq.add_argument("images", nargs="+")
    vq.set_defaults(fn=cmd_vision_qr)
    vf = vsub.add_parser("faces", help="match faces against a gallery with the exit's decision rule")
    vf.add_argument("--gallery", required=True, help="one subfolder per person with enrolment photos")
    vf.add_argument("--threshold", type=float, default=None)
    vf.add_argument("--margin", type=float, default=None)
    vf.add_argument("images", nargs="+")
    vf.set_defaults(fn=cmd_vision_faces)

    dg = sub.add_parser("diagram", help="print the store, visit and door state machines as Mermaid")
    dg.add_argument("machines", nargs="*", help="store, visit and/or door (default: all)")
    dg.set_defaults(fn=cmd_diagram)

