"""The bundled public-domain portraits as aligned face crops, found once per test session,
and the parts of a crop that tests look at."""

from __future__ import annotations

from functools import cache

import numpy as np

from pipeline.align import align_face
from pipeline.frame import AlignedCrop, Face
from pipeline.guides import REGIONS, region_labels
from pipeline.landmarks import detect_landmarks
from pipeline.samples import face_photo


@cache
def _landmarks(name: str) -> np.ndarray:
    return detect_landmarks(face_photo(name))[0]


def photo_face(name: str, track_id: int = 0) -> tuple[np.ndarray, Face, AlignedCrop]:
    """A portrait, its face (dlib landmarks) and the face's canonical 256 crop.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB photo, the :class:`Face`, and its :class:`AlignedCrop`.
    """
    photo = face_photo(name)
    landmarks = _landmarks(name)
    box = np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)]).astype(np.float32)
    face = Face(track_id, box, landmarks)
    return photo, face, align_face(photo, face)


def above_brows(crop: AlignedCrop) -> np.ndarray:
    """``(S, S)`` ``bool``: the band labelled hair (forehead and hair) within the brows'
    columns."""
    labels = region_labels(crop.landmarks, crop.size)
    columns = np.arange(crop.size)[None, :]
    brows = crop.landmarks[17:27]
    inside = (columns > brows[:, 0].min()) & (columns < brows[:, 0].max())
    return (labels == REGIONS.index("hair")) & inside
