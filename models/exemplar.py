"""The style exemplar: one portrait, found, aligned to the canonical crop, with its guides.

dlib's detector finds most painted and drawn portraits; for the ones it misses (strong
cartoons, profiles of a sort) the user gives five points — eye centres, nose tip, mouth
corners — and the other landmarks are fitted from the mean face by an affine transform, which
also absorbs a cartoon's stretched proportions better than a similarity would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.align import CROP_SIZE, align_face, canonical_landmarks
from pipeline.detail import low_pass
from pipeline.errors import InputError, InputNotFoundError, NoFaceError
from pipeline.guides import (
    REGIONS,
    GuideReference,
    Guides,
    compute_guides,
    guide_reference,
    is_monochrome,
    luminance,
)
from pipeline.landmarks import detect_faces, predict_landmarks

__all__ = [
    "FIVE_POINTS",
    "Exemplar",
    "exemplar_from_crop",
    "landmarks_from_points",
    "load_image",
    "parse_points",
    "prepare_exemplar",
]

_SEARCH_SIDE = 800

FIVE_POINTS = ("left eye", "right eye", "nose tip", "left mouth corner", "right mouth corner")
"""The five points a user gives for an undetected face, in order, as seen in the image
(the "left eye" is the one on the image's left)."""


@dataclass(frozen=True)
class Exemplar:
    """A style portrait ready for synthesis.

    Attributes:
        image: ``(S, S, 3)`` ``uint8`` RGB canonical crop of the portrait.
        landmarks: ``(68, 2)`` ``float32`` its landmarks in crop pixels.
        reference: the exemplar-only part of every content crop's guides.
        guides: the exemplar crop's own guides (positional is the identity grid).
        fitted: True when the landmarks were fitted from five user points, not detected.
        keep_tone: each stylized face is brought back to the person's own skin tone
            afterwards (:func:`pipeline.detail.restore_tone`); ``False``: it keeps the
            exemplar's (a dark face comes out as light as the exemplar's).
        monochrome: the portrait is drawn or printed in one ink on its paper (an engraving,
            a sepia print, red chalk): a pack made from it paints in those two colours only.
    """

    image: np.ndarray
    landmarks: np.ndarray
    reference: GuideReference
    guides: Guides
    fitted: bool = False
    keep_tone: bool = False
    monochrome: bool = False

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    @property
    def shading(self) -> float:
        """How strongly the portrait models its face with light and shadow: the spread of
        the skin's luminance between a 3 px and a 64 px blur (of a 256 px crop), over its
        mean. Mucha's flat poster skin 0.12; Renoir's, Cranach's, Modigliani's and Van
        Gogh's oils 0.16-0.24."""
        skin = self.guides.regions[..., REGIONS.index("skin")] > 0.5
        luma = luminance(self.image)
        scale = self.size / 256
        band = low_pass(luma, 3 * scale) - low_pass(luma, 64 * scale)
        return float(band[skin].std() / max(float(luma[skin].mean()), 1 / 255))


def _five(landmarks: np.ndarray) -> np.ndarray:
    """The five user points of a 68-point face, ``(5, 2)``, in :data:`FIVE_POINTS` order."""
    pts = np.asarray(landmarks, np.float64)
    return np.stack([pts[36:42].mean(axis=0), pts[42:48].mean(axis=0), pts[30], pts[48], pts[54]])


def landmarks_from_points(points: np.ndarray) -> np.ndarray:
    """68 landmarks fitted to five points by a least-squares affine of the mean face.

    Args:
        points: ``(5, 2)`` image pixels ``x, y`` in :data:`FIVE_POINTS` order.

    Returns:
        ``(68, 2)`` ``float32`` image pixels.
    """
    points = np.asarray(points, np.float64)
    if points.shape != (5, 2):
        raise InputError(
            f"expected five points (eyes, nose tip, mouth corners), got {points.shape}"
        )
    mean = canonical_landmarks().astype(np.float64)
    source = np.hstack([_five(mean), np.ones((5, 1))])
    solution, *_ = np.linalg.lstsq(source, points, rcond=None)
    if abs(np.linalg.det(solution[:2])) < 1e-6 or points[1, 0] <= points[0, 0]:
        raise InputError(
            "the five points do not make a face: give left eye, right eye, nose tip, left and "
            "right mouth corner, as x,y image pixels, left eye first"
        )
    return (np.hstack([mean, np.ones((68, 1))]) @ solution).astype(np.float32)


def parse_points(text: str) -> np.ndarray:
    """``"x,y,x,y,..."`` (10 numbers) as ``(5, 2)`` ``float64``; :class:`InputError` otherwise."""
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError as error:
        raise InputError(f"expected 10 comma-separated numbers, got {text!r}") from error
    if len(values) != 10:
        raise InputError(
            f"expected 10 numbers (x,y for {', '.join(FIVE_POINTS)}), got {len(values)}"
        )
    return np.array(values, np.float64).reshape(5, 2)


def load_image(path: str | Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` ``uint8`` RGB."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read {path} as an image (PNG, JPEG, ...)")
    return np.ascontiguousarray(image[:, :, ::-1])


def prepare_exemplar(
    image: np.ndarray,
    points: np.ndarray | None = None,
    size: int = CROP_SIZE,
    keep_tone: bool | None = None,
    monochrome: bool | None = None,
) -> Exemplar:
    """Find the portrait's face, align it and precompute its guides.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB style portrait.
        points: optional ``(5, 2)`` image pixels in :data:`FIVE_POINTS` order; used instead
            of detection (for faces the detector misses).
        size: crop side ``S``.
        keep_tone: whether content faces keep their own skin tone (see
            :attr:`Exemplar.keep_tone`); ``None``: they do unless the portrait is monochrome
            (a drawing's tones are its shading, and a dark face drawn in them would lose
            its features).
        monochrome: whether the portrait is in one ink (:attr:`Exemplar.monochrome`);
            ``None``: :func:`pipeline.guides.is_monochrome`, which tells grey and evenly
            tinted prints but not a drawing on paper whose tint varies (Leonardo's red
            chalk), whose author has to say so.

    Raises:
        NoFaceError: no face found and no points given.
    """
    if points is not None:
        landmarks, fitted = landmarks_from_points(points), True
    else:
        # A large portrait is searched at about 800 px (upsampled once, so faces down to
        # ~30 px there are found); the landmarks are then fitted at full resolution.
        scale = min(1.0, _SEARCH_SIDE / max(image.shape[:2]))
        boxes = detect_faces(image, upsample=1, scale=scale)
        if not boxes:
            # A drawn face can score under the margin that keeps clutter out of video frames
            # (Leonardo's red-chalk self-portrait and an album portrait of Confucius in the
            # shared media: 0.13); the one portrait given has a face, so its best box at
            # dlib's own threshold is taken.
            boxes = detect_faces(image, upsample=1, scale=scale, min_score=0.0)
        if not boxes:
            raise NoFaceError(
                "no face found in the style image; give its five points with "
                "--points x,y,x,y,... (left eye, right eye, nose tip, left and right mouth "
                "corner, in image pixels)"
            )
        landmarks, fitted = predict_landmarks(image, boxes[0]), False
    crop = align_face(image, landmarks, size)
    return exemplar_from_crop(crop.image, crop.landmarks, fitted, keep_tone, monochrome)


def exemplar_from_crop(
    image: np.ndarray,
    landmarks: np.ndarray,
    fitted: bool = False,
    keep_tone: bool | None = None,
    monochrome: bool | None = None,
) -> Exemplar:
    """An exemplar from its aligned crop, e.g. the one a style pack stores.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB aligned portrait.
        landmarks: ``(68, 2)`` its landmarks in crop pixels.
        fitted, keep_tone, monochrome: as :func:`prepare_exemplar`.
    """
    if monochrome is None:
        monochrome = is_monochrome(image)
    reference = guide_reference(image, landmarks, monochrome)
    return Exemplar(
        image=image,
        landmarks=np.asarray(landmarks, np.float32),
        reference=reference,
        guides=compute_guides(image, landmarks, reference, ears=False),
        fitted=fitted,
        keep_tone=not monochrome if keep_tone is None else keep_tone,
        monochrome=monochrome,
    )
