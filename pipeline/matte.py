"""The head matte: which pixels of an aligned crop are the head, hair included.

Users judge the whole head — hair, ears, outline — so the stylized crop is blended back
through a soft matte of the head rather than an oval on the face. Landmarks stop at the
brows, so the matte is built in three steps, all in crop pixels:

1. :func:`head_prior`: a head shape extrapolated from the landmarks — the jaw line below,
   a half-ellipse for the skull above (a head is about twice as tall as the eye line is
   above the chin, and a little wider than the jaw at the ears).
2. :func:`head_cut`: GrabCut at low resolution on the crop's surround (the frame around
   it, so the background beyond the crop's edges is in view), seeded by the prior (the face
   inside the landmarks is surely head, the frame far outside the prior surely not), so
   the matte follows the hair's real outline and takes the neck under the jaw; then
   :func:`soft_matte`: the cut's edge moved to where the crop's colour changes
   (:func:`snap_to_colour`, since GrabCut at low resolution takes the pixels that mix hair
   and wall as head) and a guided filter (OpenCV contrib's) on the crop's luminance turns the
   hard cut into a soft edge that follows the hair's own edges (:func:`refine_matte` is the
   two together).
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

from pipeline.frame import BROWS, CHIN, EYES, JAW, SURROUND_SCALE, SURROUND_SIDE, AlignedCrop
from pipeline.guides import cheek_rows, skin_likeness, to_lab

__all__ = [
    "HeadMatte",
    "behind_the_edge",
    "face_polygon",
    "fade_width",
    "fill_polygon",
    "head_cut",
    "head_polygon",
    "head_prior",
    "neck_polygon",
    "refine_matte",
    "snap_to_colour",
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

# The lower jaw, whose width the neck takes.
_LOWER_JAW = slice(4, 13)

# The band around GrabCut's edge that colour decides, and the reach of the sure colours on
# either side, in pixels at half the crop's side (a cut pixel is two of them): the cut's
# edge lay up to 4 crop pixels off the hair's on the shared clips. The RGB distance (0-1)
# between head and background colours below which the cut stands, above which colour
# decides.
_EDGE_BAND = 3
_EDGE_REACH = 6
_EDGE_CONTRAST = (0.06, 0.15)

# The matte from which the photo at the head's edge gives way wholly to the background
# behind it (:func:`behind_the_edge`); below it the photo fades back in. From 0.05, the
# edge of what was replaced lay on the matte's faint tail, a line across the wall (a faint
# arc beside clip 1's ear) that moved with the matte. eval's warping error ratio on clip 3
# with the engraving, against 1.17 for the photo under the whole edge: 1.29 from 0.05 with
# the background averaged within 1/32 of the crop's side, 1.24 from 0.5, 1.24 within 1/64,
# 1.23 from 0.5 within 1/64 (the bookshelf behind the edge less blurred).
_BEHIND_FROM = 0.5

# GrabCut works on the crop at this many pixels a side (hair outlines need no more; about a
# sixteenth of the cost of the full 256² crop), within the crop's surround.
_CUT_SIDE = round(SURROUND_SIDE / SURROUND_SCALE)


def head_polygon(
    landmarks: np.ndarray,
    up: float = _SKULL_UP,
    across: float = _SKULL_ACROSS,
    *,
    jaw_centred: bool = False,
) -> np.ndarray:
    """The head's outline extrapolated from the landmarks: ``(K, 2)`` ``float32`` crop pixels.

    The convex hull of the jaw line (points 0-16) and a half-ellipse above the eye line whose
    height is ``up`` eye-to-chin distances and whose half-width is ``across`` times half the
    jaw's width (by default :data:`_SKULL_UP` and :data:`_SKULL_ACROSS`); the ellipse
    follows the face's roll. It is centred between the eyes, or with ``jaw_centred``
    between the jaw's two ends: on a turned head the eyes sit toward the far cheek, so an
    ellipse centred on them reaches past the face's far outline into the background, while
    the jaw's ends stay at the outline and the ear.
    """
    skull_up, skull_across = up, across
    points = np.asarray(landmarks, np.float64)
    jaw = points[JAW]
    eyes = points[EYES].mean(axis=0)
    up = eyes - points[CHIN]
    height = float(np.linalg.norm(up)) or 1.0
    up /= height
    across = np.array([-up[1], up[0]])
    centre = eyes
    if jaw_centred:
        centre = eyes + across * float(((jaw[0] + jaw[16]) / 2.0 - eyes) @ across)
    half_width = 0.5 * float(np.linalg.norm(jaw[16] - jaw[0])) * skull_across
    angles = np.linspace(0.0, np.pi, 25)
    skull = (
        centre
        + np.cos(angles)[:, None] * half_width * across
        + np.sin(angles)[:, None] * skull_up * height * up
    )
    hull = cv2.convexHull(np.concatenate([jaw, skull]).astype(np.float32))
    return hull.reshape(-1, 2)


def neck_polygon(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The column under the jaw where a neck would be: ``(K, 2)`` ``float32`` crop pixels.

    The lower jaw (points 4-12, about the neck's width) and straight down from its two ends
    past the crop's bottom edge (``size``). Below the chin it is only a place to look: the
    face's skin colour, then GrabCut, decide which of it is neck rather than collar, tie or
    beard (:func:`head_cut`).
    """
    points = np.asarray(landmarks, np.float64)
    lower_jaw = points[_LOWER_JAW]
    below = lower_jaw[[-1, 0]] + np.array([0.0, float(size)])
    return np.concatenate([lower_jaw, below]).astype(np.float32)


def fill_polygon(polygon: np.ndarray, height: int, width: int | None = None) -> np.ndarray:
    """``(height, width)`` ``uint8``, 255 inside ``polygon`` (``(K, 2)`` pixels, ``x, y``),
    anti-aliased with sub-pixel vertices; square when ``width`` is not given."""
    solid = np.zeros((height, height if width is None else width), np.uint8)
    cv2.fillPoly(solid, [np.rint(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return solid


def face_polygon(points: np.ndarray) -> np.ndarray:
    """The face inside the landmarks, jaw line and brows: ``(26, 2)`` pixels."""
    return np.concatenate([points[JAW], points[BROWS][::-1]])


def _cheek_colour(image: np.ndarray, points: np.ndarray, face: np.ndarray) -> np.ndarray:
    """The face's own skin colour: the median CIELAB of ``face`` (``(H, W)`` ``bool``)
    between the eyes and the upper lip (all of it if that band is empty), ``(3,)``
    ``float32``; ``points`` are the landmarks in ``image``'s pixels."""
    cheeks = face & cheek_rows(points, image.shape[0])
    return np.median(to_lab(image[cheeks if cheeks.any() else face]), axis=0)


def head_prior(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The head region from the landmarks alone: ``(S, S)`` ``float32``, 1 inside, 0 outside.

    Hard-edged (anti-aliased only): the region the eval's head figures are measured on, and
    the seed of :func:`head_cut`.
    """
    return fill_polygon(head_polygon(landmarks), size).astype(np.float32) / np.float32(255.0)


def head_cut(crop: AlignedCrop) -> np.ndarray:
    """Which pixels are head, decided by colour: GrabCut seeded by :func:`head_polygon`.

    One iteration at :data:`_CUT_SIDE` pixels a side, deciding only the band around the
    polygon's edge: the face (jaw and brows) and a short-haired skull (:data:`_SURE_UP`) are
    sure head; the rest of the polygon and the column under the jaw (:func:`neck_polygon`)
    probable head; a ring around the polygon, a fifth of the crop wide, probable background;
    the rest, everything else below the chin (collar, shoulders) sure background. (Left to
    decide the whole skull, GrabCut gave fair hair on a pale wall to the background.)

    The neck is restyled with the head: left as it was, a monochrome or pale style sat on
    the photo's neck as a head pasted on. Where the neck goes on past the crop's square, the
    compositor carries it on down (:mod:`pipeline.neck`).

    The cut runs on the crop's surround (:attr:`AlignedCrop.surround`), so that it sees
    what lies above and beside the head. The polygon reaches the crop's top edge on most
    crops: cut on the crop alone, nothing told GrabCut what lies above the head, and a dark
    curtain or bookshelf above a short-haired head, taken for hair, stayed head up to the
    crop's edge (the style painted a block over the background), while hair in shadow at the
    crop's side was given to the background. A crop without a surround is cut on its own.

    Args:
        crop: the aligned crop, its landmarks and (when it has one) its surround.

    Returns:
        ``(C, C)`` ``float32`` over the crop, 1 = head (and neck), 0 = not, ``C`` =
        :data:`_CUT_SIDE`.
    """
    if crop.surround is None:
        window = cv2.resize(crop.image, (_CUT_SIDE, _CUT_SIDE), interpolation=cv2.INTER_AREA)
        inner = _CUT_SIDE
    else:
        window = crop.surround
        inner = round(window.shape[0] / SURROUND_SCALE)
    side = window.shape[0]
    margin = (side - inner) // 2
    points = np.asarray(crop.landmarks, np.float64) * (inner / crop.size) + margin
    head = fill_polygon(head_polygon(points), side) > 127
    sure_skull = head_polygon(points, _SURE_UP, _SKULL_ACROSS * _SURE_ACROSS, jaw_centred=True)
    skull = fill_polygon(sure_skull, side) > 127
    face = fill_polygon(face_polygon(points), side) > 127
    sure = cv2.erode(face.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) | skull
    ring = cv2.dilate(head.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    below_chin = np.arange(side)[:, None] > points[CHIN, 1] + 1.0
    column = (fill_polygon(neck_polygon(points, side), side) > 127) & below_chin
    # Only the neck's own skin colour: GrabCut alone gave a white collar under the neck to the
    # head (white is in the face too, eyes, teeth and highlights, and where the collar is all
    # the white below the chin, nowhere in the background it is shown).
    neck = np.zeros_like(column)
    neck[column] = skin_likeness(to_lab(window[column]), _cheek_colour(window, points, face)) > 0.5
    seeds = np.full((side, side), cv2.GC_BGD, np.uint8)
    seeds[ring & ~below_chin] = cv2.GC_PR_BGD
    seeds[head | neck] = cv2.GC_PR_FGD
    seeds[sure] = cv2.GC_FGD
    # GrabCut models colours as BGR, but only compares them, so RGB order does not matter.
    # Its k-means start draws from OpenCV's per-thread RNG: seed it, or the same crop gets a
    # slightly different matte each time (renders would not be reproducible).
    cv2.setRNGSeed(0)
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    # One iteration: a second one changed the cut on the shared weekly-address crops by an IoU
    # of at most 0.012 (median 0) for 1.7-2 ms more a call (4.7-5.5 ms against 3.0-3.4).
    cv2.grabCut(window, seeds, None, background, foreground, 1, cv2.GC_INIT_WITH_MASK)
    cut = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    return cut[margin : margin + inner, margin : margin + inner].astype(np.float32)


def snap_to_colour(crop: AlignedCrop, cut: np.ndarray) -> np.ndarray:
    """The cut with its edge moved to where the crop's colour turns from head to background.

    GrabCut decides at :data:`_CUT_SIDE` pixels a side, a quarter of the crop's, and takes
    pixels that mix hair and wall as head: on the shared clip 1 the matte reached up to 8
    crop pixels past the short hair (its middle, where it is 0.5, about 4), and the blend
    there mixed the style's painted background into the wall, a pale rim around the head.
    Here, at half the crop's side, the pixels within :data:`_EDGE_BAND` of the cut's edge
    take their opacity from their colour: where it lies on the line between the mean colour
    of the sure head and of the sure background within :data:`_EDGE_REACH` of them (the
    colour-line model of alpha matting, with a window's two colours estimated from its sure
    pixels). Where those two colours are close (dark hair on a dark curtain) colour cannot
    tell, and the cut stands. So it does below the chin: there a short neck lies between
    the chin's shadow and a collar, which no two mean colours describe (the astronaut's lit
    neck, under her chin's shadow and over a white collar, read as 0.6 head), and
    :func:`head_cut` has already judged it by the cheeks' skin colour.

    Args:
        crop: the aligned crop and its landmarks.
        cut: ``(C, C)`` ``float32`` 0-1, from :func:`head_cut`.

    Returns:
        ``(S/2, S/2)`` ``float32`` 0-1.
    """
    side = crop.size // 2
    rgb = cv2.resize(crop.image, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    rgb *= np.float32(1.0 / 255.0)
    soft = cv2.resize(cut, (side, side), interpolation=cv2.INTER_LINEAR)
    inside = (soft >= 0.5).astype(np.uint8)
    band = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _EDGE_BAND + 1,) * 2)
    head = cv2.erode(inside, band).astype(np.float32)
    background = cv2.erode(1 - inside, band).astype(np.float32)
    window = (2 * _EDGE_REACH + 1,) * 2
    # Sums over the three channels by cv2.transform: NumPy's reduction over an axis of three
    # took half of this function's time.
    summed = np.ones((1, 3), np.float32)

    def mean_colour(weights: np.ndarray) -> np.ndarray:
        total = cv2.boxFilter(cv2.multiply(rgb, cv2.merge([weights] * 3)), -1, window)
        count = cv2.boxFilter(weights, -1, window)
        return total / cv2.merge([np.maximum(count, np.float32(1e-3))] * 3)

    head_colour, background_colour = mean_colour(head), mean_colour(background)
    apart = head_colour - background_colour
    squared = cv2.transform(apart * apart, summed)
    along = cv2.transform((rgb - background_colour) * apart, summed)
    along /= np.maximum(squared, np.float32(1e-6))
    low, high = _EDGE_CONTRAST
    trust = np.clip((np.sqrt(squared) - low) / (high - low), 0.0, 1.0)
    by_colour = soft + trust * (np.clip(along, 0.0, 1.0) - soft)
    uncertain = 1.0 - head - background
    snapped = head + uncertain * by_colour
    below_chin = round(float(crop.landmarks[CHIN, 1]) * side / crop.size) + 1
    snapped[below_chin:] = soft[below_chin:]
    return snapped.astype(np.float32)


def soft_matte(crop: AlignedCrop, cut: np.ndarray) -> np.ndarray:
    """A hard head cut made soft along the crop's own edges, and faded out at its border.

    The cut's edge is first moved to where the crop's colour changes
    (:func:`snap_to_colour`); then the cut is upsampled and passed through He et al.'s
    guided filter (OpenCV contrib's ``ximgproc.guidedFilter``) on the crop's luminance, so
    the edge follows hair strands rather than the cut's blocky outline, then faded to 0
    over the outer 1/32 of the crop, where the stylized square ends.

    Args:
        crop: the aligned crop and its landmarks.
        cut: ``(C, C)`` ``float32`` 0-1, from :func:`head_cut`.

    Returns:
        ``(S, S)`` ``float32`` 0-1.
    """
    size = crop.size
    cut = cv2.resize(snap_to_colour(crop, cut), (size, size), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(crop.image, cv2.COLOR_RGB2GRAY).astype(np.float32) / np.float32(255.0)
    soft = cv2.ximgproc.guidedFilter(grey, cut, max(1, size // 64), 1e-3, -1)
    return np.clip(soft, 0.0, 1.0) * _border_fade(size)


def behind_the_edge(photo: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What lies behind the head's soft edge, and how much of the photo there to replace by it.

    A pixel of the photo at the head's edge is a mix of head and background, and so is the
    matte there: blending the stylized head over the photo through the matte shows the
    photo's own head once more in the edge, by up to a quarter at a matte of 0.5. Where the
    head's outline is thinner than the matte's soft edge it shows as a rim: on the shared
    clip 1 each ear kept a pink outline around its grey or painted inside. So inside the
    edge the photo gives way to the background alone — its colours averaged over the pixels
    around that the matte calls background (weighted by ``(1 - head) ** 8`` within 1/64 of
    the crop's side) — as matting separates foreground and background before compositing.

    Args:
        photo: ``(S, S, 3)`` ``uint8`` the aligned crop.
        head: ``(S, S)`` ``float32`` 0-1, its blend mask (1 = head).

    Returns:
        ``(S, S, 3)`` ``uint8`` the background behind the edge, and ``(S, S)`` ``float32``
        0-1: how much of the photo to replace by it, ``1 - head`` from a matte of
        :data:`_BEHIND_FROM` on, falling to 0 where the matte is 0 (the frame outside the
        head keeps its own pixels) and over the crop's border fade.
    """
    outside = 1.0 - head
    weights = cv2.pow(outside, 8)
    window = (2 * max(1, head.shape[0] // 64) + 1,) * 2
    total = cv2.boxFilter(
        cv2.multiply(photo.astype(np.float32), cv2.merge([weights] * 3)), -1, window
    )
    count = cv2.merge([np.maximum(cv2.boxFilter(weights, -1, window), np.float32(1e-4))] * 3)
    background = np.clip(np.rint(total / count), 0, 255).astype(np.uint8)
    cover = outside * np.clip(head * np.float32(1.0 / _BEHIND_FROM), 0.0, 1.0)
    # The matte's fade at the crop's border is not the head's edge: the photo there goes on
    # past the square (a neck, a collar), and its background estimate drew a line across
    # the neck in the colour of the tie below.
    fade = _border_fade(head.shape[0])
    return background, cover * (fade * fade) ** 2


def fade_width(size: int) -> int:
    """How many pixels at a crop's border the matte fades out over: 1/32 of its side."""
    return max(1, size // 32)


@functools.lru_cache(maxsize=4)
def _border_fade(size: int) -> np.ndarray:
    """``(S, S)`` ``float32``: 1 inside, falling to 0 over the outer 1/32 of the crop.

    The same for every crop of a size, so made once (read-only) rather than per face and frame.
    """
    border = fade_width(size)
    ramp = np.minimum(np.arange(size) + 0.5, size - 0.5 - np.arange(size)).astype(np.float32)
    ramp = np.clip(ramp / np.float32(border), 0.0, 1.0)
    fade = np.minimum(ramp[:, None], ramp[None, :])
    fade.flags.writeable = False
    return fade


def refine_matte(crop: AlignedCrop) -> np.ndarray:
    """The head matte of one crop: :func:`soft_matte` of :func:`head_cut`,
    ``(S, S)`` ``float32`` 0-1."""
    return soft_matte(crop, head_cut(crop))


class HeadMatte:
    """Head mattes for a stream of aligned crops, smoothed over time per track.

    GrabCut (about 3 ms a crop on one core) runs on a track's first frame and every
    ``refresh``-th frame after, each track at its own phase (by its id), so a crowd's cuts are
    spread over the frames; in between the last cut is reused — the aligned crop
    cancels the head's motion, so it still fits — and only its edge's colour test and the
    guided filter (about 1.4 ms, one core) run on the new crop, so the edge follows the hair
    in every frame.

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
        # track id -> (frames toward its next cut, the cut, the last matte)
        self._tracks: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}

    def process(self, crops: Sequence[AlignedCrop]) -> list[np.ndarray]:
        """The mattes of one frame's crops: ``(S, S)`` ``float32`` 0-1 each.

        Tracks absent from this frame are forgotten, so a face that comes back starts fresh.
        """
        previous, self._tracks = self._tracks, {}
        mattes = []
        for crop in crops:
            state = previous.get(crop.track_id)
            if state is None:
                # A new track is cut now and then at its own phase of the cycle, so that a
                # crowd's tracks, found together, are not all recut on the same frames (each
                # such frame a stall of some ms a face, which live answers by shedding work).
                age, cut, last = crop.track_id % self.refresh, head_cut(crop), None
            else:
                age, cut, last = state
                if age >= self.refresh:
                    age, cut = 0, head_cut(crop)
            matte = soft_matte(crop, cut)
            if last is not None and last.shape == matte.shape:
                matte += np.float32(self.smoothing) * (last - matte)
            self._tracks[crop.track_id] = (age + 1, cut, matte)
            mattes.append(matte)
        return mattes

    def reset(self) -> None:
        """Forget every track's cut and matte."""
        self._tracks = {}
