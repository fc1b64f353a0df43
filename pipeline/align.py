"""Canonical face crops: a similarity transform from a face's landmarks to a mean face.

Convention, stated once: every matrix here is a ``(2, 3)`` ``float64`` affine that maps
*frame* pixel coordinates to *crop* pixel coordinates, ``crop = matrix @ [x, y, 1]``, the
direction ``cv2.warpAffine(frame, matrix, (size, size))`` expects. :func:`invert_affine`
gives the crop-to-frame matrix the compositor warps back with.

The crop frames the whole head the way FFHQ-style face crops do: the eye centres are a
quarter of the crop apart, level, slightly above the middle, so forehead, some hair and the
chin (with margin) are all inside.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from pipeline.frame import SURROUND_SCALE, SURROUND_SIDE, AlignedCrop, Face

__all__ = [
    "CROP_SIZE",
    "align_face",
    "alignment_matrix",
    "box_centre",
    "canonical_landmarks",
    "invert_affine",
    "similarity_scale",
    "transform_points",
]

CROP_SIZE = 256

# The mean of dlib's 68 landmarks on the two bundled public-domain portraits and their mirror
# images, each first rotated and scaled so the eye centres lie at (-0.5, 0) and (0.5, 0):
# units are the distance between the eye centres, origin midway between them, y down.
# fmt: off
_MEAN_FACE = np.array(
    [
        # jaw 0-16
        (-1.078, 0.087), (-1.045, 0.366), (-1.007, 0.631), (-0.953, 0.901),
        (-0.864, 1.159), (-0.725, 1.388), (-0.512, 1.566), (-0.280, 1.702),
        (0.000, 1.738), (0.280, 1.702), (0.512, 1.566), (0.725, 1.388),
        (0.864, 1.159), (0.953, 0.901), (1.007, 0.631), (1.045, 0.366),
        (1.078, 0.087),
        # brows 17-26
        (-0.918, -0.111), (-0.805, -0.278), (-0.619, -0.330), (-0.422, -0.318),
        (-0.241, -0.250), (0.241, -0.250), (0.422, -0.318), (0.619, -0.330),
        (0.805, -0.278), (0.918, -0.111),
        # nose 27-35
        (0.000, -0.027), (0.000, 0.181), (0.000, 0.371), (0.000, 0.567),
        (-0.238, 0.668), (-0.122, 0.704), (0.000, 0.734), (0.122, 0.704),
        (0.238, 0.668),
        # eyes 36-47
        (-0.680, 0.012), (-0.570, -0.076), (-0.428, -0.076), (-0.307, 0.039),
        (-0.440, 0.051), (-0.576, 0.051), (0.307, 0.039), (0.428, -0.076),
        (0.570, -0.076), (0.680, 0.012), (0.576, 0.051), (0.440, 0.051),
        # mouth 48-67
        (-0.465, 0.968), (-0.299, 0.929), (-0.128, 0.916), (0.000, 0.949),
        (0.128, 0.916), (0.299, 0.929), (0.465, 0.968), (0.304, 1.123),
        (0.133, 1.194), (0.000, 1.215), (-0.133, 1.194), (-0.304, 1.123),
        (-0.402, 0.982), (-0.127, 0.996), (0.000, 1.015), (0.127, 0.996),
        (0.402, 0.982), (0.127, 1.081), (0.000, 1.095), (-0.127, 1.081),
    ],
    np.float64,
)
# fmt: on

_EYE_DISTANCE = 0.25  # of the crop side
_EYE_CENTRE = (0.5, 0.473)  # of the crop side; FFHQ puts the crop centre 0.1 eye-mouth below

# Eyes, nose, brows and the upper jaw: points that do not move when the mouth opens or the
# face changes expression, so talking does not zoom or shift the crop.
_RIGID = np.r_[0:4, 13:48]


@cache
def _canonical(size: int) -> np.ndarray:
    centre = np.array(_EYE_CENTRE) * size
    points = _MEAN_FACE * (_EYE_DISTANCE * size) + centre
    points.setflags(write=False)
    return points


def canonical_landmarks(size: int = CROP_SIZE) -> np.ndarray:
    """Where a mean frontal face's 68 landmarks sit in a ``size`` x ``size`` crop.

    Returns:
        ``(68, 2)`` ``float32`` ``x, y`` crop pixels, iBUG-300W order.
    """
    return _canonical(size).astype(np.float32)


def _similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) taking ``source`` points onto ``target``."""
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mean_s, target - mean_t
    spread = float((s**2).sum(axis=1).mean())
    if spread < 1e-6:
        raise ValueError("alignment: the landmarks are all at one point; expected a face")
    u, sigma, vt = np.linalg.svd(t.T @ s / len(s))
    # Force a rotation (det +1): a mirrored face must not be "aligned" by a reflection.
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sigma) @ d) / spread)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_t - scale * rotation @ mean_s
    return matrix


def alignment_matrix(landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The frame-to-crop similarity that best puts ``landmarks`` on the canonical face.

    Args:
        landmarks: ``(68, 2)`` ``x, y`` frame pixels, iBUG-300W order.
        size: crop side in pixels.

    Returns:
        ``(2, 3)`` ``float64``: ``crop = matrix @ [x, y, 1]``.
    """
    points = np.asarray(landmarks, np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"alignment_matrix: expected (68, 2) landmarks, got {points.shape}")
    return _similarity(points[_RIGID], _canonical(size)[_RIGID])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a ``(2, 3)`` affine, as a ``(2, 3)`` ``float64`` (crop to frame)."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def similarity_scale(matrix: np.ndarray) -> float:
    """How many times a ``(2, 3)`` similarity scales lengths (``sqrt |det|`` of its linear
    part)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def box_centre(box: np.ndarray) -> np.ndarray:
    """``(2,)`` the centre ``x, y`` of a ``(4,)`` box ``x0, y0, x1, y1``."""
    return (box[:2] + box[2:]) / 2


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points mapped by a ``(2, 3)`` affine, ``float32``."""
    matrix = np.asarray(matrix, np.float64)
    return (np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align_face(
    image: np.ndarray,
    face_or_landmarks: Face | np.ndarray,
    size: int = CROP_SIZE,
    track_id: int = 0,
    matrix: np.ndarray | None = None,
) -> AlignedCrop:
    """Warp one face into the canonical crop.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB frame, values 0-255.
        face_or_landmarks: a tracked :class:`Face` (its ``track_id`` is kept) or its
        ``(68, 2)`` landmarks in frame pixels.
        size: crop side in pixels.
        track_id: used when ``face_or_landmarks`` is a bare array.
        matrix: ``(2, 3)`` the frame-to-crop similarity, where the caller already has it
            (:func:`alignment_matrix` of these landmarks at ``size``); found here if ``None``.

    Returns:
        The ``(size, size, 3)`` ``uint8`` RGB crop, its frame-to-crop matrix, the
        landmarks in crop pixels and the crop's surround (:class:`AlignedCrop`). Where the
        crop reaches past the frame, edge pixels are repeated so a stylizer sees no hard
        black border.
    """
    if isinstance(face_or_landmarks, Face):
        landmarks, track_id = face_or_landmarks.landmarks, face_or_landmarks.track_id
    else:
        landmarks = face_or_landmarks
    if matrix is None:
        matrix = alignment_matrix(landmarks, size)
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    surround = cv2.warpAffine(
        image,
        _surround_matrix(matrix, size),
        (SURROUND_SIDE, SURROUND_SIDE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return AlignedCrop(crop, matrix, transform_points(matrix, landmarks), track_id, surround)


def _surround_matrix(matrix: np.ndarray, size: int) -> np.ndarray:
    """Frame → surround pixels: the crop's ``size`` square scaled to fill the middle
    ``1 / SURROUND_SCALE`` of a ``SURROUND_SIDE`` square."""
    scaled = np.asarray(matrix, np.float64) * (SURROUND_SIDE / (SURROUND_SCALE * size))
    scaled[:, 2] += SURROUND_SIDE * (1.0 - 1.0 / SURROUND_SCALE) / 2.0  # the margin
    return scaled
