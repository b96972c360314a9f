"""The three dlib models the store uses, loaded alone: the HOG face detector, the 5-point shape predictor and the
ResNet face encoder — with face_recognition's own calls (same models, same arithmetic, same results).

``import face_recognition`` loads every model it ships at import time, among them the 68-point predictor (about
95 MiB in memory) and the CNN detector, which the store never uses; each of the two face processes paid for them
(189 MiB each, measured by ``bingobox bench store``). Loaded here, a face process holds about 95 MiB.

dlib's encoder multiplies its matrices with OpenBLAS, whose threads (one per core by default) spin for a while after
each call: a face encoded every frame cost three times its own time in CPU on a 2-core box (``probe`` p50 51 ms wall,
152 ms CPU), taken from the other processes of the store. ``BLAS_THREADS`` (one) is set before dlib loads, unless
``OPENBLAS_NUM_THREADS`` is set already (docs/performance.md, "What the face processes spend their time on").
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

Css = tuple[int, int, int, int]  # (top, right, bottom, left), face_recognition's order
BLAS_THREADS = 1  # the face processes run beside the store's others: one thread each, no spinning helpers


class DlibFaces:
    """``face_locations`` (HOG), ``face_encodings`` and ``face_landmarks`` (5-point model only)."""

    def __init__(self) -> None:
        if "dlib" not in sys.modules:  # (OpenBLAS reads it once, as dlib loads it)
            os.environ.setdefault("OPENBLAS_NUM_THREADS", str(BLAS_THREADS))
        import dlib  # heavy: loaded in the face processes only
        import face_recognition_models as models

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())

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
