"""The canvas: a fixed noise image the student paints its strokes from, carried with the face.

A student that sees only the photo must give the same output for the same input, but the
teacher paints a different stroke for nearly the same input; L1 and the texture term then
agree on an average of its strokes, a soft wash (DESIGN.md, step 4). With a noise image as
one more input the student has something to place strokes by, so it can paint them instead
of averaging them. It is the same image for every face, stored in the pack (the student was
trained with exactly this one), and on video it moves with the face: each track's canvas is
carried along the optical flow of its crops, so strokes stay on the skin instead of
swimming over it as the face turns or the crop jitters (the temporal-noise guide of
Jamriška et al., "Stylizing Video by Example", SIGGRAPH 2019).

Arrays here: a canvas is ``(C, S, S)`` ``float32`` about -1..1 (``C`` channels, ``S`` the
crop side); a shift is ``(S, S, 2)`` ``float32`` pixels, where each pixel of the face now
was on the canvas (``x + shift``).
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.flow import warp_by_flow

__all__ = [
    "CANVAS_STRENGTH",
    "SHOWN_STRENGTH",
    "advect_shift",
    "make_canvas",
    "resize_canvas",
    "shifted_canvas",
]

CANVAS_STRENGTH = 0.5
"""The canvas's standard deviation while training: like a mid-contrast photo's."""

SHOWN_STRENGTH = 0.7
"""The share of :data:`CANVAS_STRENGTH` a pack stores and shows: strokes painted fainter
than trained. On the shared weekly-address clips (Van Gogh pack, 30 frames a clip) the full
canvas left the dark-skinned face of clip 2 recognisable in half its frames and gave warping
errors of 0.87 / 1.34 / 1.53; 0.7 of it kept every face (100 % under 0.6) at 0.82 / 1.22 /
1.35, still sharper than without a canvas."""


def make_canvas(size: int, channels: int = 1, stroke: float = 2.0, seed: int = 0) -> np.ndarray:
    """Gaussian noise blurred to about a stroke's width, scaled to :data:`CANVAS_STRENGTH`.

    Args:
        size: crop side ``S``.
        channels: ``C``.
        stroke: the blur's sigma in pixels of a 256 px crop (scaled with ``size``): the
            width of the blobs the student turns into strokes.
        seed: the noise's seed.

    Returns:
        ``(C, S, S)`` ``float32``.
    """
    rng = np.random.default_rng(seed)
    sigma = stroke * size / 256
    planes = []
    for _ in range(channels):
        noise = cv2.GaussianBlur(rng.standard_normal((size, size), np.float32), (0, 0), sigma)
        planes.append(noise * np.float32(CANVAS_STRENGTH / max(float(noise.std()), 1e-6)))
    return np.stack(planes).astype(np.float32)


def resize_canvas(canvas: np.ndarray, size: int) -> np.ndarray:
    """``(C, S, S)`` canvas at side ``size`` (area-averaged, contrast kept) for smaller crops."""
    if canvas.shape[1] == size:
        return canvas
    planes = []
    for plane in canvas:
        small = cv2.resize(plane, (size, size), interpolation=cv2.INTER_AREA)
        planes.append(small * np.float32(plane.std() / max(float(small.std()), 1e-6)))
    return np.stack(planes).astype(np.float32)


def advect_shift(shift: np.ndarray, flow: np.ndarray, decay: float = 0.98) -> np.ndarray:
    """Where each pixel of this crop was on the canvas, from where the last crop's were.

    ``flow`` maps this crop to the last one (this pixel ``x`` was at ``x + flow`` there,
    :func:`pipeline.flow.optical_flow`), so it was at ``x + flow + shift_last(x + flow)`` on
    the canvas. Composing shifts and sampling the canvas once, rather than carrying the
    sampled canvas, keeps it from blurring with every resampling. ``decay`` pulls the shift
    back toward none, about 2 % a frame: the flow's small errors do not pile up into a
    canvas that drifts off the face, and the pull is too slow to see.

    Args:
        shift: ``(S, S, 2)`` the last crop's shift.
        flow: ``(S, S, 2)`` ``float32`` this crop → the last one, pixels.
        decay: 0..1, how much of the shift is kept each frame.

    Returns:
        ``(S, S, 2)`` ``float32`` this crop's shift.
    """
    return (np.float32(decay) * (flow + warp_by_flow(shift, flow))).astype(np.float32)


def shifted_canvas(canvas: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``(C, S, S)`` canvas sampled at ``x + shift`` (bicubic, edges repeated)."""
    planes = np.moveaxis(canvas, 0, -1)
    moved = warp_by_flow(np.ascontiguousarray(planes), shift, cv2.INTER_CUBIC)
    return np.moveaxis(moved.reshape(planes.shape), -1, 0).astype(np.float32)
