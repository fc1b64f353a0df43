"""Dense optical flow between two frames (OpenCV DIS) and warping by it.

Convention stated once: ``flow[y, x]`` is the displacement ``dx, dy`` in pixels that takes
pixel ``(x, y)`` of the *first* image to where it is in the *second*; warping the second
image by this flow (:func:`warp_by_flow`) brings it back onto the first.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

__all__ = [
    "SUPERSAMPLING",
    "chain_flow",
    "optical_flow",
    "pixel_grid",
    "supersample",
    "warp_by_flow",
    "warp_supersampled",
]

SUPERSAMPLING = 2
"""How many times finer than the output :func:`warp_supersampled` samples, a side."""


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


def supersample(image: np.ndarray, factor: int = SUPERSAMPLING) -> np.ndarray:
    """``(H, W, C)`` → ``(factor * H, factor * W, C)``, enlarged bicubically, for
    :func:`warp_supersampled` (made once per image that is warped again and again)."""
    height, width = image.shape[:2]
    return cv2.resize(image, (factor * width, factor * height), interpolation=cv2.INTER_CUBIC)


def warp_supersampled(fine: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """:func:`warp_by_flow` of an image whose detail is at the pixel's scale: sampled
    ``factor * factor`` times a pixel (bilinearly, from :func:`supersample`'s bicubic
    enlargement) and averaged, so that it is softened about as much at every sub-pixel
    offset.

    One sample a pixel leaves such an image sharp at whole-pixel offsets and softer between;
    carried frame after frame along a face's motion, its finest marks shimmer (pixel noise's
    contrast varies by 19 % over the offsets, sampled once bicubically; by 12 % so). A
    teacher's painting carried along 40 frames of the shared clip 3 (``facestyle eval``'s
    warping error ratio of the face as shown, and its mean gradient):

    - one bicubic sample a pixel: 1.71, 2.52 (0.6 ms a 256 px crop);
    - four bicubic samples: 1.53, 2.46 (3.8 ms);
    - four bilinear samples, as here: 1.45, 2.42 (1.7 ms);
    - one bicubic sample of the painting blurred by a Gaussian of 0.5 px: 1.39, 2.36.

    The supersampled warps give up the least detail for their steadiness. Clip 1: 0.89,
    1.95; 0.81, 1.91; 0.78, 1.87.

    Args:
        fine: ``(factor * H, factor * W, C)``, the image :func:`supersample` enlarged.
        flow: ``(H, W, 2)`` ``float32``, as for :func:`warp_by_flow`.

    Returns:
        ``(H, W, C)`` of ``fine``'s dtype.
    """
    height, width = flow.shape[:2]
    factor = fine.shape[0] // height
    fine_flow = cv2.resize(flow, (factor * width, factor * height)) * np.float32(factor)
    # A fine pixel's centre is a coarse one's position times the factor, plus a constant
    # that the flow, a difference of positions, does not see.
    positions = pixel_grid(factor * height, factor * width) + fine_flow
    warped = cv2.remap(fine, positions, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(warped, (width, height), interpolation=cv2.INTER_AREA)


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
