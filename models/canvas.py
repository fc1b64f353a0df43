"""The canvas: a fixed noise image the student paints its strokes from, carried with the face.

A student that sees only the photo must give the same output for the same input, but the
teacher paints a different stroke for nearly the same input; L1 and the texture term then
agree on an average of its strokes, a soft wash (DESIGN.md, step 4). With a noise image as
one more input the student has something to place strokes by, so it can paint them instead
of averaging them. The noise is smeared along the exemplar's own strokes (line integral
convolution), so the student's strokes run where the artist's did. It is the same image for
every face, stored in the pack (the student was trained with exactly this one), and on
video it moves with the face: each track's canvas is carried along the optical flow of its
crops, so strokes stay on the skin instead of swimming over it as the face turns or the crop
jitters (the temporal-noise guide of Jamriška et al., "Stylizing Video by Example",
SIGGRAPH 2019).

Arrays here: a canvas is ``(C, S, S)`` ``float32`` about -1..1 (``C`` channels, ``S`` the
crop side); a shift is ``(S, S, 2)`` ``float32`` pixels, where each pixel of the face now
was on the canvas (``x + shift``).
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.flow import chain_flow, pixel_grid, warp_by_flow

__all__ = [
    "CANVAS_STRENGTH",
    "SHOWN_STRENGTH",
    "advect_shift",
    "make_canvas",
    "resize_canvas",
    "shifted_canvas",
    "smear_along",
    "stroke_directions",
]

CANVAS_STRENGTH = 0.5
"""The canvas's standard deviation while training: like a mid-contrast photo's."""

SHOWN_STRENGTH = 0.42
"""The share of :data:`CANVAS_STRENGTH` a pack stores and shows: strokes painted fainter
than trained, so faces stay recognisable and steady. On the shared weekly-address clips (Van
Gogh pack, 30 frames a clip, warping-error ratios): with undirected noise the full canvas
left clip 2's dark-skinned face under 0.6 in half its frames, at 0.87 / 1.34 / 1.53, and 0.7
of it kept every face, at 0.82 / 1.22 / 1.35; the canvas directed along the exemplar's
strokes flickers more for its detail, 0.90 / 1.32 / 1.44 at 0.7 and 0.84 / 1.15 / 1.23 at
0.42 (the earlier pack without a canvas: 0.81 / 1.11 / 1.23), its swirls still plain to see."""


def stroke_directions(image: np.ndarray, scale: float = 6.0) -> np.ndarray:
    """Which way the strokes of an image run at each pixel: across its dominant gradient.

    The structure tensor of the lightness, smoothed over ``scale`` pixels (of a 256 px
    crop; scaled with the image), gives each neighbourhood's dominant gradient orientation;
    strokes, hatching and contours run perpendicular to it.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB (an aligned exemplar).
        scale: smoothing sigma in pixels of a 256 px crop.

    Returns:
        ``(S, S, 2)`` ``float32`` unit ``x, y`` vectors (a direction's sign is arbitrary).
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / np.float32(255.0)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    sigma = scale * image.shape[0] / 256
    jxx, jyy, jxy = (cv2.GaussianBlur(a, (0, 0), sigma) for a in (gx * gx, gy * gy, gx * gy))
    across = 0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2
    return np.stack([np.cos(across), np.sin(across)], axis=-1).astype(np.float32)


def smear_along(noise: np.ndarray, directions: np.ndarray, length: int) -> np.ndarray:
    """Line integral convolution: each pixel the mean of ``noise`` along the streamline of
    ``directions`` through it, ``length`` one-pixel steps each way (Cabral and Leedom, 1993).

    Args:
        noise: ``(S, S)`` ``float32``.
        directions: ``(S, S, 2)`` ``float32`` unit vectors, sign-free (each step keeps the
            heading of the step before).
        length: steps each way.

    Returns:
        ``(S, S)`` ``float32``: streaks of noise along the directions.
    """
    positions = pixel_grid(*noise.shape)
    total, count = noise.copy(), 1
    for sign in (1.0, -1.0):
        here = positions.copy()
        heading = directions * np.float32(sign)
        for _ in range(length):
            step = warp_by_flow(directions, here - positions)
            flip = np.where((step * heading).sum(axis=-1, keepdims=True) < 0, -1.0, 1.0)
            heading = (step * flip).astype(np.float32)
            here = here + heading
            total += warp_by_flow(noise, here - positions)
            count += 1
    return total / np.float32(count)


def make_canvas(
    size: int,
    channels: int = 1,
    stroke: float = 2.0,
    seed: int = 0,
    exemplar: np.ndarray | None = None,
) -> np.ndarray:
    """Gaussian noise blurred to about a stroke's width, scaled to :data:`CANVAS_STRENGTH`;
    with an exemplar, smeared along its own strokes instead.

    Smeared along the exemplar's stroke directions (:func:`stroke_directions`, in the
    aligned crop's coordinates, so on the same part of every face), the student's strokes
    run where the artist's ran: around the head in swirls for Van Gogh's self-portrait,
    along the contours of an engraving.

    Args:
        size: crop side ``S``.
        channels: ``C``.
        stroke: the blur's sigma in pixels of a 256 px crop (scaled with ``size``): the
            width of the blobs the student turns into strokes (halved along an exemplar's
            strokes, where the smearing widens them).
        seed: the noise's seed.
        exemplar: ``(S, S, 3)`` ``uint8`` RGB aligned exemplar, or ``None`` for undirected
            noise.

    Returns:
        ``(C, S, S)`` ``float32``.
    """
    rng = np.random.default_rng(seed)
    scale = size / 256
    directions = None if exemplar is None else stroke_directions(exemplar)
    planes = []
    for _ in range(channels):
        noise = rng.standard_normal((size, size), np.float32)
        if directions is None:
            noise = cv2.GaussianBlur(noise, (0, 0), stroke * scale)
        else:
            noise = cv2.GaussianBlur(noise, (0, 0), stroke * scale / 2)
            noise = smear_along(noise, directions, max(round(8 * scale), 1))
        noise = noise - np.float32(noise.mean())
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
    return (np.float32(decay) * chain_flow(flow, shift)).astype(np.float32)


def shifted_canvas(canvas: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``(C, S, S)`` canvas sampled at ``x + shift`` (bicubic, edges repeated)."""
    planes = np.moveaxis(canvas, 0, -1)
    moved = warp_by_flow(np.ascontiguousarray(planes), shift, cv2.INTER_CUBIC)
    return np.moveaxis(moved.reshape(planes.shape), -1, 0).astype(np.float32)
