"""The head matte: which pixels of an aligned crop are the head, hair included.

Users judge the whole head — hair, ears, outline — so the stylized crop is blended back
through a soft matte of the head rather than an oval on the face. Landmarks stop at the
brows, so the matte is built in three steps, all in crop pixels:

1. :func:`head_prior`: a head shape extrapolated from the landmarks — the jaw line below,
   a half-ellipse for the skull above (a head is about twice as tall as the eye line is
   above the chin, and a little wider than the jaw at the ears).
2. :func:`head_cut`: GrabCut on the crop, at low resolution, seeded by the prior (the
   face inside the landmarks is surely head, the crop far outside the prior surely not), so
   the matte follows the hair's real outline; then :func:`soft_matte`: a guided filter
   (OpenCV contrib's) on the crop's luminance turns the hard cut into a soft edge that
   follows the hair's own edges (:func:`refine_matte` is the two together).
3. :class:`HeadMatte`: per track, GrabCut every few frames and an exponential average over
   frames in crop coordinates (the aligned crop already cancels the head's motion), so the
   edge does not flicker.

Conventions: crops are square, ``S`` pixels a side; landmarks are ``(68, 2)`` ``float32``
``x, y`` crop pixels in iBUG-300W order; a matte is ``(S, S)`` ``float32`` 0-1.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.frame import BROWS, CHIN, EYES, JAW, AlignedCrop

__all__ = [
    "HeadMatte",
    "head_cut",
    "head_polygon",
    "head_prior",
    "refine_matte",
    "soft_matte",
]

# Skull half-ellipse, in units of the eye-line-to-chin distance (up) and of half the jaw's
# width at the ears (across). Measured on the bundled photos and the shared artworks: the
# crown sits about one eye-to-chin distance above the eyes; hair adds a little on every side.
_SKULL_UP = 1.05
_SKULL_ACROSS = 1.12

# A skull this tall above the eyes (in eye-to-chin distances) and this much narrower than
# the head polygon is taken as head whatever GrabCut says; colour decides only the band
# outside it. A short-haired crown sits lower than the polygon's: on the shared
# weekly-address clips about 0.75 eye-to-chin distances above the eyes. When the sure region
# reached higher (the polygon shrunk by 0.85 toward the eyes, 0.89 up), a dark curtain or
# bookshelf above a short-haired head was sure head too, and GrabCut kept the whole block
# above the head: the style painted a rectangle over the background.
_SURE_UP = 0.8
_SURE_ACROSS = 0.85

# GrabCut works on a crop this many pixels a side: hair outlines need no more, and it costs
# about a sixteenth of the full 256² crop.
_CUT_SIDE = 64

# The cut's top rows that are background when they look it: the outer 1/32 of the crop, which
# soft_matte fades out anyway.
_TOP_ROWS = _CUT_SIDE // 32

# How many times likelier under the background's colours than the head's a top-row pixel must
# be to be taken as background. At even odds hair touching the crop's top edge (the
# astronaut's bob on a generated clip) went back and forth between frames: the cut changed by
# 2.4 % of its pixels a frame against 1.7 % before the top rows were decided, and a batch
# render split into segments no longer matched the whole render. At 5: 1.8 %, and the halo
# above short hair on the shared clips as low as at even odds (0.6 % of the head; at 20,
# 0.9 %; at 50, 1.6 %).
_BACKGROUND_ODDS = 5.0

# Components of each of GrabCut's colour mixtures (fixed in OpenCV).
_COMPONENTS = 5


def head_polygon(
    landmarks: np.ndarray, up: float = _SKULL_UP, across: float = _SKULL_ACROSS
) -> np.ndarray:
    """The head's outline extrapolated from the landmarks: ``(K, 2)`` ``float32`` crop pixels.

    The convex hull of the jaw line (points 0-16) and a half-ellipse above the eye line whose
    height is ``up`` eye-to-chin distances and whose half-width is ``across`` times half the
    jaw's width (by default :data:`_SKULL_UP` and :data:`_SKULL_ACROSS`); the ellipse
    follows the face's roll.
    """
    skull_up, skull_across = up, across
    points = np.asarray(landmarks, np.float64)
    jaw = points[JAW]
    eyes = points[EYES].mean(axis=0)
    up = eyes - points[CHIN]
    height = float(np.linalg.norm(up)) or 1.0
    up /= height
    across = np.array([-up[1], up[0]])
    half_width = 0.5 * float(np.linalg.norm(jaw[16] - jaw[0])) * skull_across
    angles = np.linspace(0.0, np.pi, 25)
    skull = (
        eyes
        + np.cos(angles)[:, None] * half_width * across
        + np.sin(angles)[:, None] * skull_up * height * up
    )
    hull = cv2.convexHull(np.concatenate([jaw, skull]).astype(np.float32))
    return hull.reshape(-1, 2)


def _fill(polygon: np.ndarray, size: int) -> np.ndarray:
    """``(S, S)`` ``uint8`` 255 inside ``polygon`` (crop pixels), anti-aliased, sub-pixel."""
    solid = np.zeros((size, size), np.uint8)
    cv2.fillPoly(solid, [np.rint(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return solid


def head_prior(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The head region from the landmarks alone: ``(S, S)`` ``float32``, 1 inside, 0 outside.

    Hard-edged (anti-aliased only): the region the eval's head figures are measured on, and
    the seed of :func:`head_cut`.
    """
    return _fill(head_polygon(landmarks), size).astype(np.float32) / np.float32(255.0)


def head_cut(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Which pixels are head, decided by colour: GrabCut seeded by :func:`head_polygon`.

    One iteration at :data:`_CUT_SIDE` pixels a side, deciding only the band around the
    polygon's edge: the face (jaw and brows) and a short-haired skull (:data:`_SURE_UP`) are
    sure head; the rest of the polygon probable head; a ring around it, a fifth of the crop
    wide, probable background; the rest, everything below the chin outside the polygon
    (neck, collar) sure background. (Left to decide the whole skull, GrabCut gave fair hair
    on a pale wall to the background.) The polygon reaches the crop's top edge on most crops,
    so nothing there told GrabCut what lies above the head, and a dark curtain or bookshelf
    above a short-haired head, taken for hair, stayed head up to the edge: the style painted
    a block over the background. So the crop's top rows (:data:`_TOP_ROWS`) are background
    too where their colour is clearly likelier the background's than the sure head's
    (:func:`_likelier_background`); hair that reaches the edge stays undecided.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB aligned crop.
        landmarks: ``(68, 2)`` its landmarks, crop pixels.

    Returns:
        ``(C, C)`` ``float32`` 1 = head, 0 = not, ``C`` = :data:`_CUT_SIDE`.
    """
    scale = _CUT_SIDE / image.shape[0]
    points = np.asarray(landmarks, np.float64) * scale
    polygon = head_polygon(points)
    head = _fill(polygon, _CUT_SIDE) > 127
    skull = _fill(head_polygon(points, _SURE_UP, _SKULL_ACROSS * _SURE_ACROSS), _CUT_SIDE) > 127
    face = _fill(np.concatenate([points[JAW], points[BROWS][::-1]]), _CUT_SIDE) > 127
    sure = cv2.erode(face.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) | skull
    ring = cv2.dilate(head.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    rows = np.arange(_CUT_SIDE)[:, None]
    below_chin = rows > points[CHIN, 1] + 1.0
    seeds = np.full((_CUT_SIDE, _CUT_SIDE), cv2.GC_BGD, np.uint8)
    seeds[ring & ~below_chin] = cv2.GC_PR_BGD
    seeds[head] = cv2.GC_PR_FGD
    seeds[sure] = cv2.GC_FGD
    small = cv2.resize(image, (_CUT_SIDE, _CUT_SIDE), interpolation=cv2.INTER_AREA)
    # GrabCut models colours as BGR, but only compares them, so RGB order does not matter.
    # Its k-means start draws from OpenCV's per-thread RNG: seed it, or the same crop gets a
    # slightly different matte each time (renders would not be reproducible).
    cv2.setRNGSeed(0)
    top = seeds[:_TOP_ROWS]
    above = _likelier_background(small[:_TOP_ROWS], small, sure, seeds == cv2.GC_BGD)
    top[above & (top != cv2.GC_FGD)] = cv2.GC_BGD
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    # One iteration: a second one changed the cut on the shared weekly-address crops by an IoU
    # of at most 0.012 (median 0) for 1.7-2 ms more a call (4.7-5.5 ms against 3.0-3.4).
    cv2.grabCut(small, seeds, None, background, foreground, 1, cv2.GC_INIT_WITH_MASK)
    return ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.float32)


def _likelier_background(
    pixels: np.ndarray, image: np.ndarray, head: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """Which ``pixels`` are :data:`_BACKGROUND_ODDS` times likelier under the colour model
    of ``image``'s ``background`` than under that of its ``head``.

    The models are GrabCut's own (five-component Gaussian mixtures, fitted by its
    initialisation alone: ``iterCount`` 0 on a strip of the sample pixels).

    Args:
        pixels: ``(..., 3)`` ``uint8`` colours to decide.
        image: ``(C, C, 3)`` ``uint8`` the crop the samples come from.
        head, background: ``(C, C)`` ``bool`` the sample pixels.

    Returns:
        ``(...)`` ``bool``; all ``False`` when either sample has fewer pixels than a mixture
        has components.
    """
    # Every 4th sample: the mixtures' k-means start is most of the cost, and a few hundred
    # pixels a side fit five components as well.
    head_pixels, background_pixels = image[head][::4], image[background][::4]
    if len(head_pixels) < _COMPONENTS or len(background_pixels) < _COMPONENTS:
        return np.zeros(pixels.shape[:-1], bool)
    strip = np.ascontiguousarray(np.concatenate([head_pixels, background_pixels])[None])
    labels = np.concatenate(
        [np.full(len(head_pixels), cv2.GC_FGD), np.full(len(background_pixels), cv2.GC_BGD)]
    ).astype(np.uint8)[None]
    background_model, head_model = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(strip, labels, None, background_model, head_model, 0, cv2.GC_INIT_WITH_MASK)
    return _likelihood(pixels, background_model) > _BACKGROUND_ODDS * _likelihood(
        pixels, head_model
    )


def _likelihood(pixels: np.ndarray, model: np.ndarray) -> np.ndarray:
    """``(..., 3)`` colours → ``(...)`` ``float64`` density under a GrabCut colour model,
    ``(1, 65)`` ``float64`` in OpenCV's layout: five weights, five means, five 3x3
    covariances."""
    values = model.reshape(-1)
    weights = values[:_COMPONENTS]
    means = values[_COMPONENTS : 4 * _COMPONENTS].reshape(_COMPONENTS, 3)
    covariances = values[4 * _COMPONENTS :].reshape(_COMPONENTS, 3, 3)
    colours = pixels.reshape(-1, 3).astype(np.float64)
    density = np.zeros(len(colours))
    for weight, mean, covariance in zip(weights, means, covariances, strict=True):
        if weight <= 0:
            continue
        # OpenCV adds the same to a near-singular covariance's diagonal.
        covariance = covariance + np.eye(3) * 0.01
        offset = colours - mean
        distance = np.einsum("ni,ij,nj->n", offset, np.linalg.inv(covariance), offset)
        norm = np.sqrt((2 * np.pi) ** 3 * np.linalg.det(covariance))
        density += weight * np.exp(-0.5 * distance) / norm
    return density.reshape(pixels.shape[:-1])


def soft_matte(image: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """A hard head cut made soft along the crop's own edges, and faded out at its border.

    The cut is upsampled and passed through He et al.'s guided filter (OpenCV contrib's
    ``ximgproc.guidedFilter``) on the crop's luminance, so the edge follows hair strands
    rather than the cut's blocky outline, then faded to 0 over the outer 1/32 of the crop,
    where the stylized square ends.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB aligned crop.
        cut: ``(C, C)`` ``float32`` 0-1, from :func:`head_cut`.

    Returns:
        ``(S, S)`` ``float32`` 0-1.
    """
    size = image.shape[0]
    cut = cv2.resize(cut, (size, size), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / np.float32(255.0)
    soft = cv2.ximgproc.guidedFilter(grey, cut, max(1, size // 64), 1e-3, -1)
    return np.clip(soft, 0.0, 1.0) * _border_fade(size)


@functools.lru_cache(maxsize=4)
def _border_fade(size: int) -> np.ndarray:
    """``(S, S)`` ``float32``: 1 inside, falling to 0 over the outer 1/32 of the crop.

    The same for every crop of a size, so made once (read-only) rather than per face and frame.
    """
    border = max(1, size // 32)
    ramp = np.minimum(np.arange(size) + 0.5, size - 0.5 - np.arange(size)).astype(np.float32)
    ramp = np.clip(ramp / np.float32(border), 0.0, 1.0)
    fade = np.minimum(ramp[:, None], ramp[None, :])
    fade.flags.writeable = False
    return fade


def refine_matte(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The head matte of one crop: :func:`soft_matte` of :func:`head_cut`,
    ``(S, S)`` ``float32`` 0-1."""
    return soft_matte(image, head_cut(image, landmarks))


class HeadMatte:
    """Head mattes for a stream of aligned crops, smoothed over time per track.

    GrabCut (about 3 ms a crop on one core) runs on a track's first frame and every
    ``refresh``-th frame after; in between the last cut is reused — the aligned crop
    cancels the head's motion, so it still fits — and only the guided filter (about 1.5 ms)
    runs on the new crop.

    Args:
        smoothing: 0..1, weight of a track's previous matte in the new one (an exponential
            average in crop coordinates); 0 takes each frame's matte as it is.
        refresh: run GrabCut every this many frames of a track (1 = every frame).
    """

    def __init__(self, smoothing: float = 0.6, refresh: int = 4) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"HeadMatte: smoothing must be in 0..1, got {smoothing}")
        if refresh < 1:
            raise ValueError(f"HeadMatte: refresh must be >= 1, got {refresh}")
        self.smoothing = smoothing
        self.refresh = refresh
        # track id -> (frames since its cut, the cut, the last matte)
        self._tracks: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}

    def process(self, crops: Sequence[AlignedCrop]) -> list[np.ndarray]:
        """The mattes of one frame's crops: ``(S, S)`` ``float32`` 0-1 each.

        Tracks absent from this frame are forgotten, so a face that comes back starts fresh.
        """
        previous, self._tracks = self._tracks, {}
        mattes = []
        for crop in crops:
            age, cut, last = previous.get(crop.track_id, (self.refresh, None, None))
            if cut is None or age >= self.refresh:
                age, cut = 0, head_cut(crop.image, crop.landmarks)
            matte = soft_matte(crop.image, cut)
            if last is not None and last.shape == matte.shape:
                matte += np.float32(self.smoothing) * (last - matte)
            self._tracks[crop.track_id] = (age + 1, cut, matte)
            mattes.append(matte)
        return mattes

    def reset(self) -> None:
        """Forget every track's cut and matte."""
        self._tracks = {}
