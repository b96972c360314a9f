"""``bingobox bench``: the project's own speed measurements (never timed unit tests).

Every figure is a median and p99 over repeated runs in this process, and each optimised path is reported as a
ratio against its baseline measured in the same run, so a noisy shared machine shifts both alike.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bingobox_devkit.sim.camera_server import load_image


def timed(fn: Callable[[], object], runs: int, warmup: int = 2) -> dict:
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return {"median_ms": round(statistics.median(ms), 2), "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
            "runs": runs}


def _exit_frames(testdata: Path, n: int) -> list[np.ndarray]:
    """640x480 exit-camera frames: a face photo held up in front of the simulator's background."""
    from bingobox_devkit.sim.camera_server import background

    photos = sorted((testdata / "faces").glob("*/*.jpg"))
    photos = [p for p in photos if p.parent.name not in ("multi_face", "no_face")]
    frames = []
    for i, p in enumerate(photos[:: max(1, len(photos) // n)][:n]):
        img = load_image(p)
        f = 380 / img.shape[0]
        small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)[:, :600]
        bg = background(640, 480, i)
        y0, x0 = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
        bg[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        frames.append(cv2.cvtColor(bg, cv2.COLOR_BGR2RGB))
    return frames


def _held_up(photo: Path) -> np.ndarray:
    """A photo held up to the simulator's 640x480 camera (0.8 of the frame height), RGB."""
    from bingobox_devkit.sim.camera_server import VirtualCamera
    from bingobox_devkit.sim.config import SimCamera

    cam = VirtualCamera(SimCamera(name="exit-cam"), seed=1)
    cam.show(load_image(photo), photo.name, scale=0.8)
    return cv2.cvtColor(cam.compose(1), cv2.COLOR_BGR2RGB)


class PassCounter:
    """Stands in for a ``FaceEngine``'s detector (``engine.fr``): the pixels of each HOG pass it is given."""

    def __init__(self, fr) -> None:
        self.fr = fr
        self.sizes: list[int] = []

    def face_locations(self, img, number_of_times_to_upsample=0, model="hog"):
        self.sizes.append(img.shape[0] * img.shape[1])
        return self.fr.face_locations(img, number_of_times_to_upsample, model)


def exit_looks(photos: list[Path]):
    """Each photograph held up to the simulator's exit camera (as the demo shows it) after the empty exit, as the
    matcher gets it: (photo, the RGB frame, the motion gate's box; None if the gate saw no change)."""
    from bingobox.vision.motion import MotionGate
    from bingobox_devkit.sim.camera_server import VirtualCamera
    from bingobox_devkit.sim.config import SimCamera

    cam = VirtualCamera(SimCamera(name="exit-cam"), seed=3)
    empty = cam.compose(1)
    for p in photos:
        cam.show(load_image(p), p.name, scale=0.8)
        shown = cam.compose(2)
        gate = MotionGate()
        gate.moved(empty)
        gate.absorb(empty)
        moved = gate.moved(shown)
        yield p, cv2.cvtColor(shown, cv2.COLOR_BGR2RGB), gate.box if moved else None


def _first_pass(testdata: Path, engine) -> dict:
    """The exit's first detection pass over the whole frame (the baseline) and over where the picture changed (the
    motion gate's box, the same pixels: what the store does), in the same process: every photograph of the demo's
    people (``MORE_FACES`` too) held up to the simulator's exit camera as the demo shows it; how many faces each
    finds in its first pass, in a finer one, or not at all, and the detection's time over all its passes."""
    from bingobox.metrics import percentiles
    from bingobox_devkit.harness.demo import MORE_FACES, _identities

    more = (testdata / MORE_FACES).is_file()  # (another copy of the photographs may not have the crowd's)
    photos = [p for walk, shown in _identities(testdata, more) for p in (shown, *walk)]
    out: dict[str, dict] = {k: {"first_pass": 0, "finer_pass": 0, "none": 0} for k in ("whole_frame", "changed_region")}
    ms: dict[str, list[float]] = {k: [] for k in out}
    plain, counting = engine.fr, PassCounter(engine.fr)
    try:
        engine.fr = counting
        for _p, rgb, box in exit_looks(photos):
            for key, roi in (("whole_frame", None), ("changed_region", box)):
                counting.sizes.clear()
                t0 = time.perf_counter()
                found = engine.locate(rgb, roi)
                ms[key].append((time.perf_counter() - t0) * 1000)
                out[key]["none" if not found else "first_pass" if len(counting.sizes) == 1 else "finer_pass"] += 1
    finally:
        engine.fr = plain
    for k, o in out.items():
        o["detect_ms"] = percentiles(ms[k])
    return {"frames": len(photos), "with_more_faces": more, **out}


def _qr_bounds(runs: int) -> dict:
    """Every adversarial frame through the camera path (``[vision] qr_budget_ms``, 80 ms by default, and the 150 ms
    of a slower box), the `vision qr` path (1 s a file) and, as the baseline in the same process, no budget: the worst
    frame's time in each (the bound must hold)."""
    from bingobox.cli.inspect import QR_FILE_BUDGET_MS
    from bingobox.config import VisionConfig
    from bingobox.vision.qr import QrReader
    from bingobox_devkit.sim.camera_server import adversarial_frames

    frames = adversarial_frames()
    out: dict = {"frames": len(frames), "runs": runs}
    camera = VisionConfig().qr_budget_ms
    for name, budget in ((f"camera_{camera:g}ms", camera), ("camera_150ms", 150.0), ("vision_qr_1s", QR_FILE_BUDGET_MS),
                         ("no_budget", None)):
        reader = QrReader(budget_ms=budget)
        times: list[tuple[float, str]] = []
        for _ in range(runs if budget is not None else 1):
            for label, f in frames:
                t0 = time.perf_counter()
                reader.decode(f)
                times.append(((time.perf_counter() - t0) * 1000, label))
        ms = sorted(t for t, _ in times)
        worst = max(times)
        out[name] = {"budget_ms": budget, "median_ms": round(statistics.median(ms), 1),
                     "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1), "worst_ms": round(worst[0], 1),
                     "worst_frame": worst[1], "over_budget": reader.stats["over_budget"]}
    return out


def _cycle(items: list):
    state = {"i": 0}

    def nxt():
        state["i"] = (state["i"] + 1) % len(items)
        return items[state["i"]]
    return nxt


def _progress(work: Callable[[], object], seconds: float = 1.5) -> float:
    """How many loop iterations a Python thread makes while ``work`` runs (busy elsewhere), per second."""
    stop = threading.Event()
    count = [0]

    def spin():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t0 = time.perf_counter()
    t.start()
    end = t0 + seconds
    while time.perf_counter() < end:
        work()
    stop.set()
    t.join()
    return count[0] / (time.perf_counter() - t0)


def bench_vision(testdata: Path, runs: int = 30) -> dict:
    import dlib
    import face_recognition

    from bingobox.vision.faces import FaceEngine, decide
    from bingobox.vision.qr import QrReader
    from bingobox_devkit.sim.camera_server import background, finder_squares, qr_image

    out: dict = {"dlib": {"version": dlib.__version__, "blas": bool(dlib.DLIB_USE_BLAS)}}
    reader = QrReader()
    bg = [background(640, 480, s) for s in range(8)]
    with_code = []
    for i, b in enumerate(bg):
        code = cv2.resize(qr_image(f"bbx-entry-{i}-" + "x" * 200), (200, 200), interpolation=cv2.INTER_AREA)
        f = b.copy()
        f[100:300, 200:400] = code
        with_code.append(f)
    nxt_code, nxt_none = _cycle(with_code), _cycle(bg)
    out["qr_640x480_with_code"] = timed(lambda: reader.decode(nxt_code()), runs * 3)
    out["qr_640x480_no_code"] = timed(lambda: reader.decode(nxt_none()), runs * 3)
    squares = finder_squares()  # adversarial: finder-like squares in three corners (was 11 s a frame)
    feed = QrReader(budget_ms=80)
    out["qr_finder_squares_worst"] = {**timed(lambda: reader.decode(squares), runs),
                                      "feed_budget_80ms": timed(lambda: feed.decode(squares), runs)}
    out["qr_adversarial"] = _qr_bounds(max(3, runs // 5))
    shirt_files = [testdata / "qr" / f"zxing_qrcode-4_{i}.png" for i in range(30, 34)]
    if all(f.is_file() for f in shirt_files):  # codes on a wrinkled shirt: only the refined grid reads them
        shirts = [cv2.cvtColor(load_image(f), cv2.COLOR_BGR2GRAY) for f in shirt_files]
        from pyzbar import pyzbar

        from bingobox.vision.qr import _finders, candidate_grids
        from bingobox.vision.qr_grid import refine

        nxt_shirt = _cycle(shirts)
        out["qr_wrinkled_plain_pyzbar"] = timed(lambda: pyzbar.decode(nxt_shirt()), runs)
        out["qr_wrinkled_reader"] = timed(lambda: reader.decode(nxt_shirt()), runs)
        grid, _ = next(candidate_grids(_finders(shirts[0])))
        out["qr_grid_refine_one"] = timed(lambda: refine(shirts[0], grid), runs)

    frames = _exit_frames(testdata, 12)
    engine = FaceEngine()
    nf = _cycle(frames)
    gallery = {f"v{i}": [np.random.default_rng(i).normal(0, 0.1, 128)] for i in range(10)}
    probe_enc, _, _ = engine.probe(frames[0])
    assert probe_enc is not None, "the bench's first exit frame shows no face"
    gallery["v0"] = [probe_enc]
    out["detect_full_frame_upsample1"] = timed(lambda: face_recognition.face_locations(nf()), runs)
    out["detect_full_frame_upsample0"] = timed(
        lambda: face_recognition.face_locations(nf(), number_of_times_to_upsample=0), runs)
    out["detect_320_upsample0"] = timed(lambda: engine.locate(nf()), runs)
    box = engine.locate(frames[0])[0]
    out["encode_one_face"] = timed(lambda: engine.encode(frames[0], box), runs)
    big = {f"v{i}": [np.random.default_rng(i).normal(0, 0.1, 128)] for i in range(1000)}
    out["match_10_inside"] = timed(lambda: decide(probe_enc, gallery), runs * 10)
    out["match_1000_inside"] = timed(lambda: decide(probe_enc, big), runs)

    def naive():
        img = nf()
        locs = face_recognition.face_locations(img)
        encs = face_recognition.face_encodings(img, locs)
        return [face_recognition.compare_faces(list(np.array([g[0] for g in gallery.values()])), e) for e in encs]

    def ours():
        enc, _, _ = engine.probe(nf())
        return decide(enc, gallery) if enc is not None else None

    out["exit_naive_library_defaults"] = timed(naive, runs)
    out["exit_ours"] = timed(ours, runs)
    # the worst frames: a small face (found only by the third detection pass, inside the moving region) and a crowd
    small = _held_up(testdata / "faces/biden/1.jpg")
    crowd = _held_up(testdata / "faces/multi_face/multiface_friends.jpg")
    roi = (150, 0, 490, 480)  # where a photo held up to the camera changes the picture
    out["exit_worst_small_face"] = timed(lambda: engine.probe(small, roi), runs)
    out["exit_worst_small_face_no_roi"] = timed(lambda: engine.probe(small), max(3, runs // 3))
    out["exit_worst_crowd"] = timed(lambda: engine.probe(crowd, roi), runs)
    out["exit_first_detection_pass"] = _first_pass(testdata, engine)
    base, ours_t = out["exit_naive_library_defaults"], out["exit_ours"]
    out["exit_speedup_median"] = round(base["median_ms"] / ours_t["median_ms"], 2)
    out["exit_speedup_p99"] = round(base["p99_ms"] / ours_t["p99_ms"], 2)

    from bingobox.vision.worker import FaceWorker

    w = FaceWorker()
    w.start()
    try:
        w.enrol("v0", frames[0])
        out["exit_via_worker_process"] = timed(lambda: w.match([nf()], ["v0"]), runs)
        idle = _progress(lambda: time.sleep(0.001))
        in_thread = _progress(lambda: engine.encode(frames[0], box))
        in_worker = _progress(lambda: w.match([frames[0]], ["v0"]))
    finally:
        w.stop()
    out["control_loop_progress_while_encoding"] = {
        "same_process_thread": round(in_thread / idle, 3), "worker_process": round(in_worker / idle, 3)}
    return out


def main(args) -> int:
    import json

    testdata = Path(args.testdata)
    result: dict = {}
    if args.what in ("vision", "all"):
        if not (testdata / "faces").is_dir():
            print(f"{testdata}: no faces/ folder (the vision bench needs the photographs of tests/data)")
            return 2
        result["vision"] = bench_vision(testdata, runs=args.runs)
    if args.what in ("faces", "all"):
        from .bench_crowd import bench_faces

        result["faces"] = bench_faces(testdata, seed=args.seed)
    if args.what in ("rfid", "all"):
        result["rfid"] = bench_rfid()
    if args.what == "bus":
        from .bench_devices import bench_bus

        result["bus"] = bench_bus([int(x) for x in args.units.split(",")], args.baud)
    if args.what == "llrp":
        from .bench_devices import bench_llrp

        result["llrp"] = bench_llrp([int(x) for x in args.tags.split(",")])
    if args.what in ("store", "all"):
        result["store"] = bench_store(max(args.exits, args.shoppers or 0), testdata, args.concurrency, args.seed,
                                      approach=args.approach)
    print(json.dumps(result, indent=2))
    return 0


def bench_rfid(seconds: float = 5.0, tags: int = 60) -> dict:
    """Driver throughput and CPU at the link limit: a simulated reader (its own process, 115200 baud pacing) streams
    multi-poll notices for ``tags`` tags; this process runs only the driver. CPU is this process's time / wall."""
    import tempfile

    from bingobox.config import ReaderConfig
    from bingobox.devices.rfid import RfidReader
    from bingobox_devkit.harness.process import Proc

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "sim.toml"
        epcs = ", ".join(f'"E2806894000050240001{i:04X}"' for i in range(tags))
        cfg.write_text(f'[sim]\ncontrol_port = 0\n[[readers]]\nname = "r"\nround_s = 0\nbaudrate = 115200\n'
                       f'rssi_noise = 0\ntags = [{epcs}]\n')
        sim = Proc("sim", ["sim", "--config", str(cfg), "--run-dir", f"{tmp}/run", "--control-port", "0"],
                   Path(tmp) / "sim.log")
        try:
            sim.wait_line("ready", timeout=30)
            t0, c0 = time.perf_counter(), time.process_time()
            time.sleep(seconds / 2)
            idle_cpu = (time.process_time() - c0) / (time.perf_counter() - t0)
            r = RfidReader(ReaderConfig(name="r", port=f"{tmp}/run/r", gone_after_s=2.0), lambda e: None)
            r.start()
            time.sleep(1.0)  # warm up
            n0, t0, c0 = r.stats["notices"], time.perf_counter(), time.process_time()
            time.sleep(seconds)
            n1, t1, c1 = r.stats["notices"], time.perf_counter(), time.process_time()
            present = len(r.present())
            r.stop()
        finally:
            sim.stop()
    wall = t1 - t0
    return {"notices_per_s": round((n1 - n0) / wall, 1), "link_limit_per_s": round(115200 / 10 / 24, 1),
            "driver_cpu_percent_of_one_core": round(100 * ((c1 - c0) / wall - idle_cpu), 2),
            "idle_process_cpu_percent": round(100 * idle_cpu, 2), "tags_present": present, "tags": tags}


def bench_store(exits: int, testdata: Path, concurrency: int = 3, seed: int = 1,
                naive_exits: int | None = None, approach: bool = False) -> dict:
    """The whole store (simulator, gateway, controller as processes; scripted shoppers, no faults): at least
    ``exits`` exits, their latency from the frame to the unlock on the wire and each stage's share (the store's own
    ``stages`` evidence), the ledger checked, each door panel message's time from the decision to a panel page's
    stream (``panel_ms``); then the same exits replayed through the naive pipeline
    (``hardware/harness/naive.py``) against the same gateway and exit door, and the speedup. ``approach``: the
    exit camera sees shoppers as they step into the exit area (``Demo(approach=True)``)."""
    import tempfile

    from bingobox_devkit.harness.demo import Demo
    from bingobox_devkit.harness.oracle import stage_table
    from bingobox_devkit.harness.panel_watch import PanelWatch

    with tempfile.TemporaryDirectory() as tmp:
        # (without the cabinets: the store its figures have always been measured on, two cameras)
        d = Demo(exits, seed, set(), Path(tmp) / "store", testdata, concurrency=concurrency, verbose=False,
                 cabinets=False, approach=approach)
        watch: list[PanelWatch] = []
        try:
            s = d.run(after_setup=lambda: watch.append(PanelWatch(d.panels).start()))
            panel = watch[0].stop()
            pid = d.procs["controller"].p.pid
            resources = {"controller": _proc_usage(pid), "children": [_proc_usage(c) for c in _children(pid)]}
            resources["one_enrolled_shopper_idling_inside"] = _idle_shopper_cost(d, pid)
            stages = stage_table(d.dir / "store.db")
            walk = _from_zone(d)
            replay = _exits_of(d)
            d.procs["controller"].stop()  # the naive pipeline drives the exit door itself
            naive = _naive(d, replay[: naive_exits or len(replay)], Path(tmp))
        finally:
            d.close()
    ours = stages.get("exit", {}).get("total_ms", {"count": 0})
    out = {"shoppers": s["shoppers"], "exits": ours.get("count", 0), "concurrency": concurrency,
           "camera_sees": "the exit area (approach)" if approach else "the door",
           "entry_ms": stages.get("entry", {}).get("total_ms", {"count": 0}), "exit_ms": ours,
           "exit_stages_ms": _p50_p99(stages.get("exit", {}).get("stages_ms", {})),
           "entry_stages_ms": _p50_p99(stages.get("entry", {}).get("stages_ms", {})),
           "lost": s["lost"], "doubled": s["doubled"], "wrong_person": s["wrong_person"],
           "wrong_amount": s["wrong_amount"], "items_not_charged": s["items_not_charged"],
           "fallback_qr": s["fallback_qr"], "seconds": s["seconds"], "resources": resources, "naive": naive,
           "panel_ms": panel, **walk}
    if ours.get("count") and naive["exit_ms"].get("count"):
        naive["speedup_p50"] = round(naive["exit_ms"]["p50"] / ours["p50"], 2)
        naive["speedup_p99"] = round(naive["exit_ms"]["p99"] / ours["p99"], 2)
    return out


def _from_zone(d) -> dict:
    """Face exits timed from the shopper's side: from stepping into the exit area (the camera sees them) to the
    unlock acknowledged (``exit_from_zone_ms``), and from reaching the door (``EXIT_WALK_S`` later) to it
    (``door_wait_ms``; 0 when the door was unlocked before they got there: they did not stop). And the face exits
    whose match came after looks at them that decided nothing (``after_undecided_looks``: how many, why, and their
    waits at the door): a long wait is the rule's, not the pipeline's, when it is among them; when the identifying
    frame was taken (``identifying_frame_after_zone_ms``), and the longest waits at the door with both."""
    import collections
    import json as _json
    import sqlite3

    from bingobox.metrics import percentiles

    def rows(kind: str, like: str = "%") -> dict:
        return {r["account_id"]: _json.loads(r["data"]) for r in c.execute(
            "SELECT v.account_id, e.data FROM visit_events e JOIN visits v ON v.id = e.visit_id "
            "WHERE e.kind=? AND e.data LIKE ?", (kind, like))}

    with sqlite3.connect(f"file:{d.dir / 'store.db'}?mode=ro", uri=True) as c:
        c.row_factory = sqlite3.Row
        acked = {a: r.get("acked") for a, r in rows("stages", '%"path": "exit"%').items()}
        how = rows("identified")
    zone, wait, seen, late, why, waited = [], [], [], [], collections.Counter[str](), []
    for s in d.shoppers:
        t = acked.get(s.account)
        if t is None or s.used_qr_at_exit or not s.face or s.exit_zone_at is None or s.at_door_at is None:
            continue
        zone.append((t - s.exit_zone_at) * 1000)
        wait.append(max(0.0, t - s.at_door_at) * 1000)
        ident = how.get(s.account, {})
        if ident.get("frame_t") is not None:
            seen.append((ident["frame_t"] - s.exit_zone_at) * 1000)
        undecided = ident.get("undecided_looks")
        if undecided:
            late.append(wait[-1])
            why.update(undecided)
        if wait[-1] > 0:
            waited.append({"door_wait_ms": round(wait[-1], 1), "undecided_looks": undecided or {},
                           "frame_after_zone_ms": round(seen[-1], 1) if ident.get("frame_t") else None})
    waited.sort(key=lambda w: -w["door_wait_ms"])
    return {"exit_from_zone_ms": percentiles(zone), "door_wait_ms": percentiles(wait),
            "door_open_before_arrival": sum(w == 0 for w in wait),
            "identifying_frame_after_zone_ms": percentiles(seen),
            "after_undecided_looks": {"exits": len(late), "looks": dict(why), "door_wait_ms": percentiles(late)},
            "longest_door_waits": waited[:10]}


def _p50_p99(stages: dict) -> dict:
    return {k: {"p50": v.get("p50"), "p99": v.get("p99")} for k, v in stages.items()}


def _exits_of(d) -> list[dict]:
    """Each shopper's exit as the store made it: the photo at the exit camera (None: by code), the account, the
    amount and receipt lines charged."""
    import json as _json
    import sqlite3

    with sqlite3.connect(f"file:{d.dir / 'store.db'}?mode=ro", uri=True) as c:
        c.row_factory = sqlite3.Row
        rows = {r["account_id"]: dict(r) for r in c.execute("SELECT account_id, amount_fen, receipt FROM visits "
                                                           "WHERE state='left'")}
    out = []
    for s in d.shoppers:
        v = rows.get(s.account)
        if v is None or not v["amount_fen"]:
            continue
        lines = (_json.loads(v["receipt"]) or {}).get("lines", []) if v["receipt"] else []
        out.append({"account": s.account, "amount_fen": v["amount_fen"], "lines": lines,
                    "photo": None if s.used_qr_at_exit or not s.face else s.face[1],
                    "walk_in": s.face[0] if s.face else []})
    return out


def _naive(d, exits: list[dict], tmp: Path) -> dict:
    from bingobox.metrics import Histogram
    from bingobox_devkit.harness.demo import _identities
    from bingobox_devkit.harness.naive import NaiveExit, camera_frame

    n = NaiveExit(d.gw, d.store_id, d.secret, d.manifest["devices"]["exit"]["pty"], tmp / "naive.db")
    try:
        known = {str(walk[0]): n.enrol(walk) for walk, _ in _identities(d.testdata)}
        total, stages = Histogram(), dict[str, Histogram]()
        rng = __import__("random").Random(7)
        for e in exits:
            frame = camera_frame(e["photo"]) if e["photo"] is not None else None
            gallery = {}
            if frame is not None:  # the exiting shopper and nine others inside
                others = [k for k in known if k != str(e["walk_in"][0])]
                gallery = {k: known[k] for k in rng.sample(others, min(9, len(others)))}
                gallery[e["account"]] = known[str(e["walk_in"][0])]
            code = d.admin_post("/v1/entry-codes", {"account_id": e["account"], "store_id": d.store_id})["jti"]
            r = n.exit(frame, gallery, e["account"], e["amount_fen"], e["lines"], code)
            total.add(r["ms"])
            prev = 0.0
            for k, t in r["stages"].items():
                stages.setdefault(k, Histogram()).add(t - prev)
                prev = t
            n.wait_relocked()
    finally:
        n.close()
    return {"what": "the same exits: face_recognition defaults on the full frame, a commit per evidence row, a new "
                    "HTTP connection per charge, the unlock through the same door driver",
            "exit_ms": total.summary(), "stages_ms": {k: h.summary() for k, h in stages.items()},
            "face_exits": sum(e["photo"] is not None for e in exits)}


def _idle_shopper_cost(d, pid: int, seconds: float = 20.0) -> dict:
    """CPU share of the controller and its children while one enrolled shopper browses and the exit area is empty
    (the exit's face matcher is armed: the motion gate decides whether it looks). Measured from a second after their
    enrolment is recorded (before, the enroller's last assessments could fall in the window)."""
    import sqlite3

    from bingobox_devkit.harness.demo import _identities

    faces = _identities(d.testdata)
    s = d.new_shopper(999, face=faces[0])
    d.enter(s)

    def enrolled() -> bool:
        with sqlite3.connect(f"file:{d.dir / 'store.db'}?mode=ro", uri=True) as c:
            return c.execute("SELECT 1 FROM visit_events e JOIN visits v ON v.id = e.visit_id WHERE "
                             "v.account_id = ? AND e.kind = 'face_enrolment'", (s.account,)).fetchone() is not None

    deadline = time.monotonic() + 15
    while not (was_enrolled := enrolled()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)

    def cpu() -> float:
        return _proc_usage(pid)["cpu_s"]

    def children() -> float:
        return sum(_proc_usage(p)["cpu_s"] for p in _children(pid))

    c0, k0, t0 = cpu(), children(), time.monotonic()
    time.sleep(seconds)
    el = time.monotonic() - t0
    own, kids = (cpu() - c0) / el, (children() - k0) / el
    d.leave(s)
    return {"seconds": seconds, "cpu_share_of_one_core": round(own + kids, 3), "controller": round(own, 3),
            "face_processes": round(kids, 3), "enrolment_recorded": was_enrolled}


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _proc_usage(pid: int) -> dict:
    """Resident memory now and at its peak (MiB), and CPU seconds used so far, of one process (Linux /proc)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return {"pid": pid, "cmd": cmd[-60:], "rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1),
            "peak_rss_mib": round(int(status["VmHWM"].split()[0]) / 1024, 1),
            "cpu_s": round((int(stat[11]) + int(stat[12])) / ticks, 2), "threads": int(status["Threads"])}
