"""What the student reads: the crop's RGB and its cheap per-frame guides at quarter size.

The guides are the teacher's own (:mod:`pipeline.guides`) minus the edge guide (the
full-resolution RGB already carries the edges). They are smooth, so they are computed on a
crop a quarter the side, where they cost about 3 ms instead of 15 ms a frame, and enter the
student at its quarter-resolution stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.guides import (
    REGIONS,
    GuideReference,
    appearance_guide,
    positional_guide,
    region_masks,
)

__all__ = [
    "DEFAULT_GUIDES",
    "GUIDE_CHANNELS",
    "GUIDE_SCALE",
    "StudentReference",
    "guide_channels",
    "student_guides",
    "to_unit_rgb",
]

GUIDE_CHANNELS = {"positional": 2, "regions": len(REGIONS), "appearance": 1}
"""Guide name → number of channels, for the names a pack may list."""

DEFAULT_GUIDES = ("positional", "regions", "appearance")

GUIDE_SCALE = 4
"""The guides' side is the crop's divided by this (the student's quarter resolution)."""


@dataclass(frozen=True)
class StudentReference:
    """The exemplar's side of the guides, in the crop's full-size pixels.

    Attributes:
        landmarks: ``(68, 2)`` ``float32`` exemplar landmarks, crop pixels.
        luminance_quantiles: ``(65,)`` ``float32`` increasing, the exemplar's blurred face
            luminance quantiles (0-1), as in :class:`pipeline.guides.GuideReference`.
        size: crop side ``S``.
    """

    landmarks: np.ndarray
    luminance_quantiles: np.ndarray
    size: int

    @classmethod
    def from_guides(cls, reference: GuideReference) -> StudentReference:
        return cls(reference.landmarks, reference.luminance_quantiles, reference.size)


def guide_channels(guides: Sequence[str]) -> int:
    """Total channels of the named guides."""
    return sum(GUIDE_CHANNELS[g] for g in guides)


def student_guides(
    image: np.ndarray,
    landmarks: np.ndarray,
    reference: StudentReference,
    guides: Sequence[str] = DEFAULT_GUIDES,
) -> np.ndarray:
    """The guides of one crop, at quarter size, scaled to about -1..1.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB aligned crop.
        landmarks: ``(68, 2)`` its landmarks, crop pixels.
        reference: the exemplar's side (same ``S``).
        guides: which guides, in channel order.

    Returns:
        ``(G, S/4, S/4)`` ``float32``, ``G = guide_channels(guides)``.
    """
    size = image.shape[0]
    small = size // GUIDE_SCALE
    scale = np.float32(1.0 / GUIDE_SCALE)
    points = np.asarray(landmarks, np.float32) * scale
    regions = region_masks(points, small)
    parts: list[np.ndarray] = []
    for name in guides:
        if name == "positional":
            exemplar = reference.landmarks * scale
            positional = positional_guide(points, exemplar, small)
            parts.append(positional * np.float32(2.0 / small) - np.float32(1.0))
        elif name == "regions":
            parts.append(regions * np.float32(2.0) - np.float32(1.0))
        elif name == "appearance":
            reduced = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
            small_reference = GuideReference(
                reference.landmarks * scale, reference.luminance_quantiles, small
            )
            appearance = appearance_guide(reduced, regions, small_reference)
            parts.append(appearance[..., None] * np.float32(2.0) - np.float32(1.0))
        else:
            raise ValueError(f"unknown guide {name!r}; expected one of {sorted(GUIDE_CHANNELS)}")
    stacked = np.concatenate(parts, axis=2) if parts else np.zeros((small, small, 0), np.float32)
    return np.ascontiguousarray(stacked.transpose(2, 0, 1))


def to_unit_rgb(images: np.ndarray) -> np.ndarray:
    """``(N, S, S, 3)`` ``uint8`` RGB → ``(N, 3, S, S)`` ``float32`` -1..1."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(
        127.5
    ) - np.float32(1.0)
