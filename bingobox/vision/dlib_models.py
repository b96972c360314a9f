"""The three dlib models the store uses, loaded alone: the HOG face detector, the 5-point shape predictor and the
ResNet face encoder — with face_recognition's own calls (same models, same arithmetic, same results).

``import face_recognition`` loads every model it ships at import time, among them the 68-point predictor (about
95 MiB in memory) and the CNN detector, which the store never uses; each of the two face processes paid for them
(189 MiB each, measured by ``bingobox bench store``). Loaded here, a face process holds about 95 MiB.

dlib's encoder multiplies its matrices with OpenBLAS, whose threads (one per core by default) spin for a while after
each call: a face encoded every frame cost three times its own time in CPU on a 2-core box (``probe`` p50 51 ms wall,
152 ms CPU), taken from the other processes of the store. ``BLAS_THREADS`` (one) is set before dlib loads, unless
``OPENBLAS_NUM_THREADS`` is set already (docs/performance.md, "What the face processes spend their time on").

dlib builds its HOG detector from a compressed copy in its own code: 0.3–0.55 s of CPU, most of a face process's
start, paid by both. Once built it is kept in this box's cache (``cache_dir``) and loaded from there in ~2 ms
(``frontal_face_detector``): a public model, nothing of anyone's face.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np

Css = tuple[int, int, int, int]  # (top, right, bottom, left), face_recognition's order
BLAS_THREADS = 1  # the face processes run beside the store's others: one thread each, no spinning helpers
DETECTOR_FILE = "dlib-{version}-frontal-face-detector.svm"  # (named for the dlib that built it)


def cache_dir() -> Path | None:
    """Where this box keeps what it can rebuild: systemd's ``CacheDirectory=`` (``$CACHE_DIRECTORY``), else
    ``$XDG_CACHE_HOME/bingobox``, else ``~/.cache/bingobox``; None without any of them."""
    systemd = os.environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "bingobox"
    try:
        return Path.home() / ".cache" / "bingobox"
    except RuntimeError:  # (no home: nowhere to keep it)
        return None


def _ours(path: Path, kind: int) -> bool:
    """A ``kind`` (``stat.S_IFDIR``/``S_IFREG``, not a link) that this user owns and nobody else may write."""
    st = path.lstat()
    return stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.getuid() and not st.st_mode & 0o022


def frontal_face_detector(dlib: Any, where: Path | None) -> Any:
    """dlib's HOG face detector: loaded from ``where`` when dlib's own build of it was kept there, the file and the
    folder this user's and writable by nobody else (a file anyone else could have put there is never loaded);
    otherwise built as dlib builds it, then kept there for the next start (written aside, then renamed: a file
    half written is never read). A folder that cannot be made or written only costs the time."""
    if where is None:
        return dlib.get_frontal_face_detector()
    path = where / DETECTOR_FILE.format(version=getattr(dlib, "__version__", "unknown"))
    try:
        if _ours(where, stat.S_IFDIR) and _ours(path, stat.S_IFREG):
            return dlib.fhog_object_detector(str(path))
    except (OSError, RuntimeError):  # (none yet, or unreadable or corrupt: built again below)
        pass
    detector = dlib.get_frontal_face_detector()
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _ours(where, stat.S_IFDIR):
            detector.save(str(aside))
            os.chmod(aside, 0o600)
            os.replace(aside, path)
    except (OSError, RuntimeError):
        with contextlib.suppress(OSError):
            aside.unlink()
    return detector


class DlibFaces:
    """``face_locations`` (HOG), ``face_encodings`` and ``face_landmarks`` (5-point model only)."""

    def __init__(self) -> None:
        if "dlib" not in sys.modules:  # (OpenBLAS reads it once, as dlib loads it)
            os.environ.setdefault("OPENBLAS_NUM_THREADS", str(BLAS_THREADS))
        import dlib  # heavy: loaded in the face processes only

        self._dlib = dlib
        self._detector = frontal_face_detector(dlib, cache_dir())
        self._predictor = dlib.shape_predictor(_model("shape_predictor_5_face_landmarks.dat"))
        self._encoder = dlib.face_recognition_model_v1(_model("dlib_face_recognition_resnet_model_v1.dat"))

    def face_locations(self, img: np.ndarray, number_of_times_to_upsample: int = 1, model: str = "hog") -> list[Css]:
        if model != "hog":
            raise ValueError("only the HOG detector is loaded")
        h, w = img.shape[:2]
        return [(max(r.top(), 0), min(r.right(), w), min(r.bottom(), h), max(r.left(), 0))
                for r in self._detector(img, number_of_times_to_upsample)]

    def _shapes(self, img: np.ndarray, locations: list[Css]) -> list[Any]:
        return [self._predictor(img, self._dlib.rectangle(left, top, right, bottom))
                for top, right, bottom, left in locations]

    def face_encodings(self, img: np.ndarray, known_face_locations: list[Css], num_jitters: int = 1,
                       model: str = "small") -> list[np.ndarray]:
        if model != "small":
            raise ValueError("only the 5-point model is loaded")
        return [np.array(self._encoder.compute_face_descriptor(img, s, num_jitters))
                for s in self._shapes(img, known_face_locations)]

    def face_landmarks(self, img: np.ndarray, face_locations: list[Css], model: str = "small") -> list[dict]:
        if model != "small":
            raise ValueError("only the 5-point model is loaded")
        out = []
        for s in self._shapes(img, face_locations):
            p = [(q.x, q.y) for q in s.parts()]
            out.append({"nose_tip": [p[4]], "left_eye": p[2:4], "right_eye": p[0:2]})
        return out


def _model(name: str) -> str:
    """A model file of the face_recognition_models package, found without importing it (its ``__init__`` imports
    pkg_resources: 0.1 s of each face process's start)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face_recognition_models is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "models" / name)
