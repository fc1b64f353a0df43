"""Geometry option: warp a face part-way toward the exemplar's proportions (toonification).

A cartoon's big eyes or an El Greco's long face are part of the style; ``strength`` 0 keeps
the person's own shape, 1 gives them the exemplar's landmark layout. Pure functions on
aligned crops; the warp is a thin-plate spline through the landmarks with the crop border
held still (the same spline as :func:`pipeline.guides.positional_guide`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from pipeline.frame import AlignedCrop
from pipeline.guides import positional_guide

__all__ = ["Reshaper", "reshape_crops", "toward_exemplar"]


def toward_exemplar(
    image: np.ndarray, landmarks: np.ndarray, exemplar_landmarks: np.ndarray, strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Warp one aligned crop so its landmarks move ``strength`` of the way to the exemplar's.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB aligned crop.
        landmarks: ``(68, 2)`` ``float32`` its landmarks, crop pixels.
        exemplar_landmarks: ``(68, 2)`` ``float32`` the exemplar's, crop pixels.
        strength: 0..1.

    Returns:
        The warped ``(S, S, 3)`` ``uint8`` crop and its ``(68, 2)`` ``float32`` landmarks.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"geometry strength: expected 0..1, got {strength}")
    landmarks = np.asarray(landmarks, np.float32)
    if strength == 0.0:
        return image, landmarks
    target = landmarks + np.float32(strength) * (
        np.asarray(exemplar_landmarks, np.float32) - landmarks
    )
    # For every pixel of the reshaped face, where to read the content crop.
    source = positional_guide(target, landmarks, image.shape[0])
    warped = cv2.remap(
        image, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return warped, target.astype(np.float32)


def reshape_crops(
    crops: Sequence[AlignedCrop], exemplar_landmarks: np.ndarray, side: int, strength: float
) -> list[AlignedCrop]:
    """Each crop reshaped by :func:`toward_exemplar`, at its own side (the exemplar's
    landmarks scaled to it); the crops themselves at ``strength`` 0.

    Args:
        crops: aligned crops, each ``S_i`` pixels a side.
        exemplar_landmarks: ``(68, 2)`` ``float32`` the exemplar's, in a ``side`` px crop.
        side: the side ``exemplar_landmarks`` are given at.
        strength: 0..1.
    """
    if strength == 0.0:
        return list(crops)
    reshaped = []
    for crop in crops:
        target = np.asarray(exemplar_landmarks, np.float32) * np.float32(crop.size / side)
        image, landmarks = toward_exemplar(crop.image, crop.landmarks, target, strength)
        reshaped.append(replace(crop, image=image, landmarks=landmarks))
    return reshaped


class Reshaper:
    """:func:`reshape_crops` for one geometry, each crop reshaped once.

    A frame's crops are reshaped when the stylizer prepares them and asked for again when the
    restyler lines the output up with them (:attr:`pipeline.restyle.Stylized.drawn`), on the
    compositing thread: 1.5 ms a 256² face each time on one core. The last ``keep`` crops'
    results are kept, found by the crop object itself (held, so its ``id`` is not reused).

    Args:
        exemplar_landmarks, side, strength: as for :func:`reshape_crops`.
        keep: how many crops' results to keep (a few frames of a crowd).
    """

    def __init__(
        self, exemplar_landmarks: np.ndarray, side: int, strength: float, keep: int = 32
    ) -> None:
        self.exemplar_landmarks = np.asarray(exemplar_landmarks, np.float32)
        self.side = side
        self.strength = strength
        self.keep = keep
        # Prepared on one thread, asked for on another.
        self._lock = threading.Lock()
        self._done: dict[int, tuple[AlignedCrop, AlignedCrop]] = {}

    def __call__(self, crops: Sequence[AlignedCrop]) -> list[AlignedCrop]:
        """``crops`` reshaped, as :func:`reshape_crops` gives them."""
        if self.strength == 0.0:
            return list(crops)
        reshaped = []
        for crop in crops:
            with self._lock:
                done = self._done.get(id(crop))
            if done is None or done[0] is not crop:
                (made,) = reshape_crops([crop], self.exemplar_landmarks, self.side, self.strength)
                done = (crop, made)
                with self._lock:
                    self._done[id(crop)] = done
                    while len(self._done) > self.keep:
                        del self._done[next(iter(self._done))]
            reshaped.append(done[1])
        return reshaped
