"""The dataclasses that flow between stages refuse malformed data with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.frame import AlignedCrop, Face, Frame


def test_frame_keeps_timing_when_image_changes() -> None:
    frame = Frame(np.zeros((4, 6, 3), np.uint8), time=1.5, index=3, pts=4500)
    smaller = frame.with_image(np.ones((2, 2, 3), np.uint8))
    assert (smaller.time, smaller.index, smaller.pts) == (1.5, 3, 4500)
    assert (frame.width, frame.height) == (6, 4)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 6), np.uint8), "expected an \\(H, W, 3\\) array"),
        (np.zeros((4, 6, 4), np.uint8), "expected an \\(H, W, 3\\) array"),
        (np.zeros((4, 6, 3), np.float32), "expected uint8"),
    ],
)
def test_frame_rejects_bad_images(image: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Frame(image, time=0.0, index=0)


@pytest.mark.parametrize(
    ("box", "landmarks", "visibility"),
    [
        (np.zeros(3), np.zeros((68, 2)), 1.0),
        (np.zeros(4), np.zeros((5, 2)), 1.0),
        (np.zeros(4), np.zeros((68, 2)), 1.5),
    ],
)
def test_face_rejects_bad_fields(box: np.ndarray, landmarks: np.ndarray, visibility: float) -> None:
    with pytest.raises(ValueError, match="Face\\."):
        Face(track_id=1, box=box, landmarks=landmarks, visibility=visibility)


def test_aligned_crop_must_be_square_uint8() -> None:
    with pytest.raises(ValueError, match=r"AlignedCrop\.image"):
        AlignedCrop(np.zeros((8, 9, 3), np.uint8), np.eye(2, 3), np.zeros((68, 2)))
    crop = AlignedCrop(np.zeros((8, 8, 3), np.uint8), np.eye(2, 3), np.zeros((68, 2)))
    assert crop.size == 8
    with pytest.raises(ValueError, match=r"AlignedCrop\.surround"):
        AlignedCrop(crop.image, crop.matrix, crop.landmarks, surround=np.zeros((12, 12), np.uint8))
