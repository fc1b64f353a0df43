"""The aligner: canonical crops by similarity transform, and their inverse."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.align import (
    CROP_SIZE,
    align_face,
    alignment_matrix,
    canonical_landmarks,
    invert_affine,
    transform_points,
)
from pipeline.frame import SURROUND_SIDE, Face
from pipeline.landmarks import detect_landmarks


def _similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D((0.0, 0.0), angle, scale)
    matrix[:, 2] = shift
    return matrix


def test_canonical_face_is_level_symmetric_and_framed() -> None:
    points = canonical_landmarks(CROP_SIZE)
    assert points.shape == (68, 2) and points.dtype == np.float32
    left_eye, right_eye = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    assert right_eye[1] == pytest.approx(left_eye[1], abs=1e-3)
    assert right_eye[0] - left_eye[0] == pytest.approx(CROP_SIZE / 4, abs=0.1)
    assert (left_eye[0] + right_eye[0]) / 2 == pytest.approx(CROP_SIZE / 2, abs=1e-3)
    # Room for hair above the brows and a margin below the chin.
    assert points[17:27, 1].min() > 0.3 * CROP_SIZE
    assert 0.85 * CROP_SIZE < points[8, 1] < 0.95 * CROP_SIZE
    assert points[:, 0].min() > 0.1 * CROP_SIZE and points[:, 0].max() < 0.9 * CROP_SIZE


@pytest.mark.parametrize("size", [128, 256])
@pytest.mark.parametrize(
    ("angle", "scale", "shift"), [(0, 1.0, (0, 0)), (15, 1.7, (300, 120)), (-15, 0.4, (-20, 50))]
)
def test_alignment_recovers_a_known_similarity(
    size: int, angle: float, scale: float, shift: tuple[float, float]
) -> None:
    to_frame = _similarity(angle, scale, shift)
    frame_points = transform_points(to_frame, canonical_landmarks(size))
    matrix = alignment_matrix(frame_points, size)
    assert matrix.shape == (2, 3) and matrix.dtype == np.float64
    np.testing.assert_allclose(
        transform_points(matrix, frame_points), canonical_landmarks(size), atol=1e-3
    )
    np.testing.assert_allclose(invert_affine(matrix), to_frame, atol=1e-4)


def test_invert_affine_round_trips() -> None:
    matrix = _similarity(10, 2.0, (5, -7))
    points = np.random.default_rng(0).uniform(0, 500, (20, 2)).astype(np.float32)
    back = transform_points(invert_affine(matrix), transform_points(matrix, points))
    np.testing.assert_allclose(back, points, atol=1e-3)


def test_mirrored_landmarks_are_rotated_not_reflected() -> None:
    mirrored = canonical_landmarks() * np.array([-1, 1], np.float32)
    linear = alignment_matrix(mirrored)[:, :2]
    assert np.linalg.det(linear) > 0


@pytest.mark.parametrize("angle", [-15, 0, 15])
def test_crops_of_a_turned_and_zoomed_photo_match(astronaut: np.ndarray, angle: float) -> None:
    reference = align_face(astronaut, detect_landmarks(astronaut)[0])
    to_frame = cv2.getRotationMatrix2D((256, 256), angle, 0.8)
    moved = cv2.warpAffine(astronaut, to_frame, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    crop = align_face(moved, detect_landmarks(moved)[0], track_id=3)
    assert crop.image.shape == (CROP_SIZE, CROP_SIZE, 3) and crop.track_id == 3
    # The same face lands in the same place, whatever its pose in the frame.
    assert np.abs(crop.landmarks - reference.landmarks).mean() < 2.0
    centre = (slice(64, 192), slice(64, 192))
    difference = np.abs(crop.image[centre].astype(int) - reference.image[centre].astype(int))
    assert difference.mean() < 12


def test_align_face_takes_a_face_and_keeps_its_track(grace_hopper: np.ndarray) -> None:
    landmarks = detect_landmarks(grace_hopper)[0]
    box = np.array([*landmarks.min(axis=0), *landmarks.max(axis=0)], np.float32)
    crop = align_face(grace_hopper, Face(7, box, landmarks), size=128)
    assert crop.track_id == 7 and crop.size == 128
    np.testing.assert_allclose(transform_points(crop.matrix, landmarks), crop.landmarks, atol=1e-3)
    # The crop is the frame warped by the matrix: a landmark's pixel matches in both.
    x, y = landmarks[30]
    cx, cy = crop.landmarks[30]
    assert (
        np.abs(
            crop.image[round(cy), round(cx)].astype(int)
            - grace_hopper[round(y), round(x)].astype(int)
        ).max()
        < 40
    )


def test_align_face_gives_the_crop_its_surround(grace_hopper: np.ndarray) -> None:
    crop = align_face(grace_hopper, detect_landmarks(grace_hopper)[0])
    assert crop.surround is not None
    # Her nose tip, in the crop and in the surround (the crop's square is its middle third).
    assert crop.surround.shape == (SURROUND_SIDE, SURROUND_SIDE, 3)
    x, y = crop.landmarks[30] / crop.size * (SURROUND_SIDE * 2 / 3) + SURROUND_SIDE / 6
    nose = crop.image[tuple(np.rint(crop.landmarks[30][::-1]).astype(int))].astype(int)
    assert np.abs(crop.surround[round(y), round(x)].astype(int) - nose).max() < 40


def test_alignment_rejects_wrong_landmarks() -> None:
    with pytest.raises(ValueError, match=r"expected \(68, 2\)"):
        alignment_matrix(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="all at one point"):
        alignment_matrix(np.full((68, 2), 7.0))
