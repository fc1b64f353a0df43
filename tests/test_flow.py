"""Warping by optical flow: known displacements, and fine marks under sub-pixel motion."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.flow import supersample, warp_by_flow, warp_supersampled


def _uniform(dx: float, side: int = 96) -> np.ndarray:
    """``(side, side, 2)`` ``float32``: every pixel displaced ``dx`` to the right."""
    flow = np.zeros((side, side, 2), np.float32)
    flow[..., 0] = dx
    return flow


def test_a_supersampled_warp_moves_a_picture_as_the_flow_says() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (96, 96, 3), np.uint8)
    picture = cv2.GaussianBlur(noise, (0, 0), 3.0)
    moved = warp_supersampled(supersample(picture), _uniform(3.0))
    inner = (slice(8, -8), slice(8, -11))
    error = np.abs(moved[:, :-3].astype(int) - picture[:, 3:].astype(int))[inner]
    assert error.mean() < 1.0


def test_pixel_fine_marks_keep_their_contrast_at_every_sub_pixel_offset() -> None:
    """A painting carried frame after frame lands at every sub-pixel offset in turn; sampled
    once a pixel, its finest marks are softened by a different amount at each (shimmer)."""
    rng = np.random.default_rng(1)
    marks = rng.integers(0, 256, (96, 96, 3), np.uint8)
    fine = supersample(marks)
    offsets = np.linspace(0.0, 0.5, 5)
    inner = (slice(8, -8), slice(8, -8))

    def spread(images: list[np.ndarray]) -> float:
        contrast = [float(image[inner].std()) for image in images]
        return max(contrast) / min(contrast)

    once = [warp_by_flow(marks, _uniform(dx), cv2.INTER_CUBIC) for dx in offsets]
    supersampled = [warp_supersampled(fine, _uniform(dx)) for dx in offsets]
    # Pixel noise is the worst case: the sub-pixel softening is smaller, not gone.
    assert spread(once) > 1.15
    assert spread(supersampled) < spread(once) - 0.05
