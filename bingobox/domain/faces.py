"""What the exit's face matcher decided, as the store core reads it (the matcher itself, with OpenCV and dlib, is
``bingobox.vision``: the core imports neither)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FaceDecision:
    match: str | None  # the visit whose shopper it is (only when certain)
    distance: float | None
    margin: float | None
    reason: str  # matched | unsure_distance | unsure_margin | no_face | several_faces | nobody_inside | …
    nearest: str | None = None  # the closest shopper even when unsure (never charged on this; asked to scan)
