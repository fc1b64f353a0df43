"""Dense optical flow between two frames (OpenCV DIS) and warping by it.

Convention stated once: ``flow[y, x]`` is the displacement ``dx, dy`` in pixels that takes
pixel ``(x, y)`` of the *first* image to where it is in the *second*; warping the second
image by this flow (:func:`warp_by_flow`) brings it back onto the first.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

__all__ = ["chain_flow", "optical_flow", "pixel_grid", "warp_by_flow"]


def optical_flow(first: np.ndarray, second: np.ndarray, *, fast: bool = False) -> np.ndarray:
    """DIS optical flow from ``first`` to ``second``.

    Args:
        first, second: ``(H, W, 3)`` ``uint8`` RGB, or ``(H, W)`` ``uint8`` grey, of the
            same size.
        fast: the ultrafast preset (about a millisecond on a 256x256 crop, for every frame
            of a live face) instead of the medium one (for measuring).

    Returns:
        ``(H, W, 2)`` ``float32`` ``dx, dy`` pixels.
    """
    grey = [
        np.ascontiguousarray(x if x.ndim == 2 else cv2.cvtColor(x, cv2.COLOR_RGB2GRAY))
        for x in (first, second)
    ]
    preset = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST if fast else cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
    # A fresh estimator per call: DIS keeps no useful state between unrelated pairs, and
    # this keeps the function pure and thread-safe (creation costs microseconds).
    return cv2.DISOpticalFlow_create(preset).calc(*grey, None)


@lru_cache(maxsize=8)
def pixel_grid(height: int, width: int) -> np.ndarray:
    """``(height, width, 2)`` ``float32`` read-only ``x, y`` of every pixel: the identity
    flow's sampling positions, made once per size (warps run per face per frame)."""
    axis_x, axis_y = np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis_x, axis_y), axis=-1)
    grid.flags.writeable = False
    return grid


def warp_by_flow(
    image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """``image`` (the second frame) sampled at ``x + flow``: aligned with the first frame.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` array of any OpenCV dtype.
        flow: ``(H, W, 2)`` ``float32`` from :func:`optical_flow`.
        interpolation: an OpenCV ``INTER_*`` flag.

    Returns:
        Same shape and dtype as ``image``; samples past the border repeat the edge.
    """
    positions = pixel_grid(*flow.shape[:2]) + flow
    return cv2.remap(image, positions, None, interpolation, borderMode=cv2.BORDER_REPLICATE)


def chain_flow(first_to_second: np.ndarray, second_to_third: np.ndarray) -> np.ndarray:
    """The flow from the first image to the third, through the second.

    Args:
        first_to_second: ``(H, W, 2)`` ``float32``, as :func:`optical_flow`.
        second_to_third: ``(H, W, 2)`` ``float32``, at the second image's pixels.

    Returns:
        ``(H, W, 2)`` ``float32``: each first-image pixel's displacement to the third image,
        so that ``warp_by_flow(third, result)`` lines the third image up with the first.
    """
    onward = warp_by_flow(second_to_third, first_to_second)
    return first_to_second + onward
