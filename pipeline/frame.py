"""What flows between pipeline stages: a frame, the faces in it, an aligned face crop."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = [
    "BROWS",
    "CHIN",
    "EYES",
    "JAW",
    "SURROUND_SCALE",
    "SURROUND_SIDE",
    "AlignedCrop",
    "Face",
    "Frame",
]

# Parts of the 68-point (iBUG-300W) landmarks every Face and AlignedCrop carries.
JAW = slice(0, 17)
BROWS = slice(17, 27)
EYES = slice(36, 48)
CHIN = 8

# An AlignedCrop's surround: its square enlarged this many times about its centre (a sixth of
# the surround on every side is outside the crop), this many pixels a side whatever the
# crop's size — the resolution the head matte's colour cut works at.
SURROUND_SCALE = 1.5
SURROUND_SIDE = 96


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class Frame:
    """One video frame and when it is shown.

    Attributes:
        image: ``(H, W, 3)`` ``uint8`` RGB, values 0-255, C-contiguous.
        time: presentation time in seconds from the start of the stream.
        index: 0-based position in the stream.
        pts: the source stream's presentation timestamp in ``time_base`` units, kept so a
            file sink can write exactly the input's timing; ``None`` for live or synthetic
            frames.
        time_base: unit of ``pts`` in seconds.
    """

    image: np.ndarray
    time: float
    index: int
    pts: int | None = None
    time_base: Fraction | None = None

    def __post_init__(self) -> None:
        image = self.image
        _expect(
            isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3,
            f"Frame.image: expected an (H, W, 3) array, got {getattr(image, 'shape', type(image))}",
        )
        _expect(image.dtype == np.uint8, f"Frame.image: expected uint8, got {image.dtype}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def with_image(self, image: np.ndarray) -> Frame:
        """The same frame (time, index, pts) carrying another image of any size."""
        return Frame(image, self.time, self.index, self.pts, self.time_base)


@dataclass(frozen=True)
class Face:
    """One tracked face in one frame.

    Attributes:
        track_id: stable id of the track this face belongs to, counted per tracker.
        box: ``(4,)`` ``float32`` ``x0, y0, x1, y1`` in frame pixels.
        landmarks: ``(68, 2)`` ``float32`` ``x, y`` in frame pixels, iBUG-300W order,
            temporally smoothed.
        visibility: 0-1 weight with which the stylized face is blended in; it ramps over a
            few frames when a track appears or is lost, so faces fade instead of popping.
    """

    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    visibility: float = 1.0

    def __post_init__(self) -> None:
        _expect(
            np.shape(self.box) == (4,), f"Face.box: expected shape (4,), got {np.shape(self.box)}"
        )
        _expect(
            np.shape(self.landmarks) == (68, 2),
            f"Face.landmarks: expected shape (68, 2), got {np.shape(self.landmarks)}",
        )
        _expect(
            0.0 <= self.visibility <= 1.0,
            f"Face.visibility: expected 0..1, got {self.visibility}",
        )


@dataclass(frozen=True)
class AlignedCrop:
    """A face warped into the canonical square crop.

    Attributes:
        image: ``(S, S, 3)`` ``uint8`` RGB.
        matrix: ``(2, 3)`` ``float64`` affine (a similarity) mapping *frame* pixel
            coordinates to *crop* pixel coordinates: ``crop = matrix @ [x, y, 1]``. Use it
            with ``cv2.warpAffine(frame, matrix, (S, S))``; the compositor inverts it.
        landmarks: ``(68, 2)`` ``float32`` the face's landmarks in crop pixels.
        track_id: the face's track, so stateful stylizers can keep per-face state.
        surround: ``(W, W, 3)`` ``uint8`` RGB, the frame around the crop at low resolution:
            the crop's square enlarged :data:`SURROUND_SCALE` times about its centre, ``W``
            pixels a side (:func:`pipeline.align.align_face` makes it ``SURROUND_SIDE``).
            The head matte finds the background above and beside the head there, which
            the crop cuts off. ``None`` for a crop with no frame around it.
    """

    image: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    track_id: int = 0
    surround: np.ndarray | None = None

    def __post_init__(self) -> None:
        s = self.image.shape[0]
        _expect(
            self.image.shape == (s, s, 3) and self.image.dtype == np.uint8,
            f"AlignedCrop.image: expected (S, S, 3) uint8, got {self.image.shape} {self.image.dtype}",
        )
        _expect(
            np.shape(self.matrix) == (2, 3),
            f"AlignedCrop.matrix: expected (2, 3), got {np.shape(self.matrix)}",
        )
        _expect(
            np.shape(self.landmarks) == (68, 2),
            f"AlignedCrop.landmarks: expected (68, 2), got {np.shape(self.landmarks)}",
        )
        if self.surround is not None:
            w = self.surround.shape[0]
            _expect(
                self.surround.shape == (w, w, 3) and self.surround.dtype == np.uint8,
                "AlignedCrop.surround: expected (W, W, 3) uint8, got "
                f"{self.surround.shape} {self.surround.dtype}",
            )

    @property
    def size(self) -> int:
        return int(self.image.shape[0])
