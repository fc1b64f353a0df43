"""Coverage: the share of the faces a stronger detector sees that the tracker restyles.

The reference is dlib's CNN face detector (``mmod_human_face_detector`` from the installed
``face_recognition_models``), upsampled once, which finds turned and small faces that the
HOG detector misses. It costs seconds a frame on a CPU (about 5 s at 640x360 on 2 busy
cores), so it runs on every ``every``-th frame only, and never inside a render.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import dlib
import numpy as np

from pipeline.align import box_centre
from pipeline.frame import Face, Frame
from pipeline.landmarks import model_path
from pipeline.timings import StageTimings

__all__ = ["CoverageReport", "measure_coverage", "reference_faces"]


class _Tracker(Protocol):
    timings: StageTimings

    def process(self, frame: Frame) -> list[Face]: ...


@cache
def _cnn() -> tuple[dlib.cnn_face_detection_model_v1, threading.Lock]:
    # One network per process (it takes a second to load), used by one thread at a time.
    return dlib.cnn_face_detection_model_v1(str(model_path("mmod_human_face_detector"))), (
        threading.Lock()
    )


def reference_faces(image: np.ndarray, min_face: float = 40.0) -> list[np.ndarray]:
    """Faces the CNN detector finds, upsampled once.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB frame.
        min_face: smallest box side kept, in frame pixels.

    Returns:
        One ``(4,)`` ``float32`` box ``x0, y0, x1, y1`` per face, in frame pixels (the CNN's
        boxes are tighter than HOG's: about 0.9 of their side).
    """
    detector, lock = _cnn()
    with lock:
        found = detector(np.ascontiguousarray(image), 1)
    boxes = [
        np.array([d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()], np.float32)
        for d in found
    ]
    return [b for b in boxes if min(b[2] - b[0], b[3] - b[1]) >= min_face]


def _covers(face: np.ndarray, reference: np.ndarray) -> bool:
    """Each box holds the other's centre: the same face, whatever the box convention."""
    fc, rc = box_centre(face), box_centre(reference)
    return bool(
        np.all((reference[:2] <= fc) & (fc <= reference[2:]))
        and np.all((face[:2] <= rc) & (rc <= face[2:]))
    )


@dataclass(frozen=True)
class CoverageReport:
    """How many of the reference's faces were restyled, and what tracking cost.

    Attributes:
        frames: frames tracked.
        checked: frames the reference looked at.
        faces: reference faces in those frames (side at least ``min_face``).
        restyled: those of them a tracked face with visibility above 0 covered.
        tracking_ms: the tracker's milliseconds per frame by stage (see its ``timings``).
    """

    frames: int
    checked: int
    faces: int
    restyled: int
    tracking_ms: dict[str, float]

    @property
    def coverage(self) -> float:
        """``restyled / faces``, NaN without reference faces."""
        return self.restyled / self.faces if self.faces else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "checked": self.checked,
            "faces": self.faces,
            "restyled": self.restyled,
            "coverage": self.coverage,
            "tracking_ms": self.tracking_ms,
            "tracking_ms_total": sum(self.tracking_ms.values()),
        }


def measure_coverage(
    frames: Iterable[Frame], tracker: _Tracker, *, every: int = 5, min_face: float = 40.0
) -> CoverageReport:
    """Track a clip and count the reference's faces that were restyled.

    Args:
        frames: the clip in order; each goes through ``tracker``.
        tracker: a fresh :class:`~pipeline.tracker.FaceTracker` (or anything with its
            ``process`` and ``timings``).
        every: run the reference on every this many frames, from frame ``every - 1`` (the
            first frames are where a new face is still being confirmed).
        min_face: smallest reference face counted, box side in frame pixels.
    """
    count = checked = faces = restyled = 0
    for count, frame in enumerate(frames, 1):
        shown = [f.box for f in tracker.process(frame) if f.visibility > 0]
        if count % every:
            continue
        checked += 1
        for reference in reference_faces(frame.image, min_face):
            faces += 1
            restyled += any(_covers(box, reference) for box in shown)
    return CoverageReport(count, checked, faces, restyled, tracker.timings.ms_per_frame())
