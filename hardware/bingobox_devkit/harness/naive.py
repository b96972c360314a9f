"""The naive exit pipeline, for ``bingobox bench store``: the same exits the store just made, replayed the way a
first attempt would do them — face_recognition's defaults on the full frame (HOG with one upsampling, every face
encoded, ``compare_faces`` at 0.6), a commit per evidence row, a new HTTP connection per charge — against the same
wallet gateway and the same simulated exit door (a real pty), timed from the frame to the unlock on the wire."""

from __future__ import annotations

import json
import queue
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import requests

from bingobox.config import DoorConfig
from bingobox.devices.door import DoorBoard
from bingobox.journal import Journal
from bingobox.wallet.signing import sign_headers
from bingobox_devkit.sim.camera_server import VirtualCamera, load_image
from bingobox_devkit.sim.config import SimCamera


def camera_frame(photo: Path, seed: int = 2) -> np.ndarray:
    """The photo held up to a 640x480 camera as the simulator composes it (RGB)."""
    cam = VirtualCamera(SimCamera(name="exit-cam"), seed=seed)
    cam.show(load_image(photo), photo.name, scale=0.8)
    return cv2.cvtColor(cam.compose(1), cv2.COLOR_BGR2RGB)


class NaiveExit:
    def __init__(self, gateway: str, store_id: str, secret: str, exit_pty: str, db: Path) -> None:
        import face_recognition

        self.fr = face_recognition
        self.gateway, self.store_id, self.secret = gateway, store_id, secret
        self.journal = Journal(db)
        self.events: queue.Queue = queue.Queue()
        self.door = DoorBoard(DoorConfig(name="exit", port=exit_pty, energize_to_unlock=True, unlock_s=1),
                              self.events.put)
        self.door.start()
        deadline = time.monotonic() + 10
        while not self.door.online and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.door.stop()
        self.journal.close()

    def enrol(self, photos: list[Path]) -> list[np.ndarray]:
        encs = []
        for p in photos:
            frame = camera_frame(p)
            encs += self.fr.face_encodings(frame, self.fr.face_locations(frame))
        return encs

    def exit(self, frame: np.ndarray | None, gallery: dict[str, list[np.ndarray]], account: str, amount_fen: int,
             lines: list[dict], entry_jti: str) -> dict:
        """One exit; the times of its stages (ms from the frame). ``entry_jti``: the code the visit came in by."""
        t0, wall0 = time.perf_counter(), time.time()
        stamp = {}
        if frame is not None:  # a face exit: library defaults on the whole frame
            encs = self.fr.face_encodings(frame, self.fr.face_locations(frame))
            names = [n for n, temps in gallery.items() for _ in temps]
            known = [t for temps in gallery.values() for t in temps]
            for e in encs:
                hits = self.fr.compare_faces(known, e)
                if any(hits):
                    account = names[hits.index(True)]
                    break
        stamp["decided"] = time.perf_counter()
        visit = "naive_" + uuid.uuid4().hex[:12]
        for kind, data in (("identified", {"account": account}), ("exit_inventory", {"lines": lines}),
                           ("basket", {"total_fen": amount_fen})):
            self.journal.evidence(visit, kind, data)  # a commit per evidence row
        key = str(uuid.uuid4())
        self.journal.evidence(visit, "charge_intent", {"key": key, "amount_fen": amount_fen})
        stamp["committed"] = time.perf_counter()
        body = json.dumps({"account_id": account, "amount_fen": amount_fen, "currency": "CNY", "visit_id": visit,
                           "entry_jti": entry_jti, "items": lines}, separators=(",", ":")).encode()
        headers = {**sign_headers(self.store_id, self.secret, "POST", "/v1/charges", body, idempotency_key=key),
                   "Content-Type": "application/json", "Connection": "close"}
        stamp["sent"] = time.perf_counter()
        r = requests.post(self.gateway + "/v1/charges", data=body, headers=headers, timeout=10)  # a new connection
        stamp["answered"] = time.perf_counter()
        self.journal.evidence(visit, "charge_answer", {"status": r.status_code})
        while not self.events.empty():
            self.events.get_nowait()
        self.door.grant(1.0, tag=visit)
        ack = None
        deadline = time.monotonic() + 5
        while ack is None and time.monotonic() < deadline:
            try:
                ev = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if ev.kind == "unlock_written" and ev.data.get("tag") == visit:
                ack = ev
        # the door driver says when the unlock went on the wire (wall clock)
        stamp["written"] = t0 + (ack.data["written"] - wall0) if ack is not None else time.perf_counter()
        total = (stamp["written"] - t0) * 1000
        stages = {k: round((v - t0) * 1000, 2) for k, v in stamp.items()}
        return {"ms": round(total, 2), "stages": stages, "status": r.status_code}

    def wait_relocked(self, timeout: float = 3.0) -> None:
        """Between exits: the door relocks at the end of its grant window (so the next unlock is a real write)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.door.status()["lock_engaged"]:
            time.sleep(0.05)
