"""Face detection and 68-point landmarks with dlib, and a One-Euro filter to smooth them.

The model files come from the installed ``face_recognition_models`` package; nothing is
downloaded. Boxes are ``x0, y0, x1, y1`` in image pixels exactly as dlib reports them
(``left, top, right, bottom``), so a box here compares like with like with
:attr:`pipeline.samples.ClipTruth.boxes`. Landmarks follow the iBUG-300W 68-point order.

dlib's HOG detector (an 80x80 window, no upsampling) finds faces down to about 60 px box
side in the image it is given, measured on the bundled photos;
:class:`pipeline.detector.FaceDetector` resizes a frame so that the smallest face wanted
reaches that size, which is where the detector's time goes (about 32 ms at 640x480, 9 ms at
half size).
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cv2
import dlib
import numpy as np

from pipeline.errors import InputError

__all__ = [
    "MIN_DETECTABLE_FACE",
    "LandmarkFit",
    "OneEuroFilter",
    "detect_faces",
    "detect_landmarks",
    "model_path",
    "predict_landmarks",
    "preload_models",
]

MIN_DETECTABLE_FACE = 60
"""Smallest face box side, in pixels of the detector's input, that HOG finds reliably."""

LandmarkFit = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(grey (H, W) uint8, box (4,)) -> (68, 2) float32``: :func:`predict_landmarks`, or the
same fit in another process (:mod:`pipeline.landmark_process`)."""


def model_path(name: str) -> Path:
    """Where the installed ``face_recognition_models`` package keeps ``<name>.dat``.

    The package is located without importing it: its ``__init__`` needs ``pkg_resources``,
    which current setuptools no longer ships.

    Raises:
        InputError: the package or the file is missing.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the dlib face models are not installed; run `pip install face_recognition_models`"
        )
    path = Path(spec.submodule_search_locations[0]) / "models" / f"{name}.dat"
    if not path.is_file():
        raise InputError(
            f"dlib model {name!r} not found at {path}; reinstall face_recognition_models"
        )
    return path


@cache
def _detector() -> tuple[dlib.fhog_object_detector, threading.Lock]:
    # The HOG detector keeps its image pyramid inside the object and dlib releases the GIL
    # while it runs, so one instance must not run on two threads at once (dlib issue #340).
    # A second instance would cost a second or so to build; detection is rare, so share one
    # behind a lock. The shape predictor's call is const in dlib: it needs no lock.
    return dlib.get_frontal_face_detector(), threading.Lock()


@cache
def _predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks")))


def preload_models(*, predictor: bool = True) -> None:
    """Load the detector and the 68-point predictor now (about a second, once per process)
    rather than inside the first frame, where it would stall a live stream and skew timings.

    ``predictor=False``: the detector only (the landmarks are fitted in another process)."""
    _detector()
    if predictor:
        _predictor()


def _check_image(image: np.ndarray) -> np.ndarray:
    if not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
    ):
        raise InputError(
            "expected an (H, W, 3) RGB or (H, W) grey uint8 image, got "
            f"{getattr(image, 'shape', type(image))} {getattr(image, 'dtype', '')}"
        )
    return np.ascontiguousarray(image)


def detect_faces(
    image: np.ndarray, *, upsample: int = 0, scale: float = 1.0, min_score: float = 0.3
) -> list[np.ndarray]:
    """Frontal faces found by dlib's HOG detector, largest first.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB or ``(H, W)`` ``uint8`` grey, values 0-255.
        upsample: how many times dlib doubles the (scaled) image first; each doubling finds
            faces half as large and costs about four times as much.
        scale: resize factor applied before detection (see
            :class:`pipeline.detector.FaceDetector`); the boxes are returned in the
            coordinates of ``image``.
        min_score: the HOG detector's SVM margin a face must exceed. dlib's own threshold
            is 0; true frontal faces here score above 1, and the clutter it mistakes for a
            face (a spacesuit patch in the astronaut photo) scores about 0.1.

    Returns:
        One ``(4,)`` ``float32`` box ``x0, y0, x1, y1`` per face, in ``image`` pixels.
    """
    image = _check_image(image)
    small = image
    if scale != 1.0:
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    detector, lock = _detector()
    with lock:
        rects, _, _ = detector.run(small, upsample, min_score)
    boxes = [
        np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32) / np.float32(scale)
        for r in rects
    ]
    return sorted(boxes, key=lambda b: -float((b[2] - b[0]) * (b[3] - b[1])))


def predict_landmarks(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The 68 landmarks of the face in ``box``.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB or ``(H, W)`` ``uint8`` grey (grey is faster when
            several faces share one frame: dlib converts RGB to grey on every call).
        box: ``(4,)`` ``x0, y0, x1, y1`` in image pixels, roughly dlib's detector box.

    Returns:
        ``(68, 2)`` ``float32`` ``x, y`` in image pixels, iBUG-300W order.
    """
    image = _check_image(image)
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    shape = _predictor()(image, dlib.rectangle(x0, y0, x1, y1))
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def detect_landmarks(
    image: np.ndarray, *, upsample: int = 1, max_side: int = 1600
) -> list[np.ndarray]:
    """Landmarks of every face in a still image, largest face first.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB, values 0-255.
        upsample: detector upsampling (1 finds faces down to about 30 px).
        max_side: longest side the detector works on, after upsampling; a larger image is
            shrunk for detection only (landmarks use full resolution), so a 4000 px camera
            photo costs what a 800 px one does, about 0.2 s.

    Returns:
        One ``(68, 2)`` ``float32`` array of ``x, y`` image pixels per face.
    """
    scale = min(1.0, max_side / (max(image.shape[:2]) * 2**upsample))
    boxes = detect_faces(image, upsample=upsample, scale=scale)
    return [predict_landmarks(image, box) for box in boxes]


class OneEuroFilter:
    """One-Euro low-pass filter (Casiez et al., CHI 2012) over arrays of any fixed shape.

    Each element is filtered on its own. The cutoff rises with the filtered speed, so a still
    signal is smoothed hard (no jitter) and a fast one lightly (little lag). As in MediaPipe's
    landmark smoothing, the speed is divided by ``scale`` (e.g. the face size in pixels) so
    one setting suits faces of every size.

    Args:
        min_cutoff: cutoff frequency in Hz when still; lower is smoother and laggier.
        beta: how fast the cutoff rises with speed, in Hz per (scale units per second).
        d_cutoff: cutoff in Hz of the speed estimate itself.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def process(self, value: np.ndarray, time: float, scale: float = 1.0) -> np.ndarray:
        """Filter one sample.

        Args:
            value: an array of floats, the same shape on every call until :meth:`reset`.
            time: the sample's time in seconds, increasing.
            scale: the signal's natural size (face side in pixels for landmarks).

        Returns:
            The filtered sample, ``float64``, the shape of ``value``.
        """
        value = np.asarray(value, np.float64)
        if self._value is None or self._speed is None:
            self._value, self._speed, self._time = value, np.zeros_like(value), time
            return value
        # A repeated or backwards timestamp would divide by zero; treat it as one 60 Hz tick.
        dt = time - self._time if time > self._time else 1.0 / 60.0
        speed = (value - self._value) / (dt * scale)
        self._speed = self._speed + self._alpha(self.d_cutoff, dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value = self._value + self._alpha(cutoff, dt) * (value - self._value)
        self._time = time
        return self._value
