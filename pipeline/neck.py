"""The neck below the crop: the style carried past the aligned square's bottom edge.

The aligned crop ends a little under the chin (on a 720p talking head about 50 frame pixels
under it), so a head matte that takes the neck (:func:`pipeline.matte.head_cut`) still
stops at the square's edge, and below it the photo's neck shows: an engraving's grey head
sat on a brown neck, a band of it down to the collar.

Below the square there is nothing stylized to show, so the style is carried down by colour:
a linear map from the photo's colours to the stylized crop's, fitted on the neck in the
square's last rows (above the matte's fade), is applied to the frame's neck below it. The
map keeps the photo's own shading and only changes its palette, which is what a neck in a
painted portrait mostly is. The map is applied to the frame's own pixels, at the frame's
resolution, so the neck keeps all its detail. Where it applies is a strip under the square,
in the crop's own coordinates (the crop's matrix shifted down), so the compositor warps it
as it warps a crop's mask; it starts inside the matte's fade, so the square fades out onto
the recoloured neck rather than onto the photo.

Where: the neck's column under the lower jaw (:func:`pipeline.matte.neck_polygon`), as wide as the matte is at the square's edge, where the frame's colour
is the neck's own (its median in the fitted rows), down each column only as far as the first
thing that is not: a collar, a tie or a beard stay as they are. It fades out over the strip's
lower half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.frame import AlignedCrop
from pipeline.guides import skin_likeness, to_lab
from pipeline.matte import fade_width, fill_polygon, neck_polygon
from pipeline.xp import to_host

__all__ = ["NeckStrip", "neck_colour_map", "neck_strip", "recolour"]

# In fractions of the crop side: the strip reaches this far below the square, and the map
# is fitted on this many rows above the matte's fade (:func:`pipeline.matte.fade_width`).
_STRIP_DEPTH = 0.5
_FIT_ROWS = 1 / 16

# The skin test's CIELAB widths (L, a, b) against the neck's own colour: half the face's
# width in lightness (:func:`pipeline.guides.skin_likeness`), since the neck's own shadow is
# already in its colour, while the shadows of a collar beside a dark neck are only darker.
_NECK_WIDTHS = np.array([20.0, 10.0, 14.0], np.float32)

# Skin likeness (0-1) mapped to the strip's opacity: none under the first, full over the second,
# so the strip's edge at a collar is soft rather than a threshold's jagged line.
_SKIN_FROM, _SKIN_FULL = 0.3, 0.6

# The map's regulariser, in squared grey levels a pixel: a neck is nearly one colour, so
# most directions of its colour carry no information about the map (their slope shrinks to
# 0 and the strip takes the stylized neck's mean colour there); its shading does.
_RIDGE = 25.0

# Fewer neck pixels than this in the rows fitted on (a face cut by the frame's bottom, a
# scarf) and the map is left unfitted: no strip.
_MIN_FIT_PIXELS = 64


@dataclass(frozen=True)
class NeckStrip:
    """The neck under one crop's square: where it is stylized, and the colours it takes.

    Attributes:
        opacity: ``(R, K)`` ``uint8``, 255 = fully stylized, ``R`` rows from the top of the
            matte's fade at the square's bottom down, ``K`` of the crop's columns (those the
            neck shows in).
        colour_map: ``(4, 3)`` ``float64`` from :func:`neck_colour_map`, for the frame's own
            pixels under the strip (:func:`recolour`).
        matrix: ``(2, 3)`` ``float64`` frame pixels -> strip pixels.
    """

    opacity: np.ndarray
    colour_map: np.ndarray
    matrix: np.ndarray


def neck_colour_map(photo: np.ndarray, stylized: np.ndarray, ridge: float = _RIDGE) -> np.ndarray:
    """The affine colour map that takes ``photo`` pixels nearest to ``stylized`` ones.

    Ridge-regularised least squares on the centred colours, so the map is defined even on
    pixels of one colour (it then maps every colour to the stylized mean).

    Args:
        photo: ``(N, 3)`` RGB pixels, any real dtype.
        stylized: ``(N, 3)`` RGB pixels, the same pixels stylized.
        ridge: regulariser in squared grey levels a pixel.

    Returns:
        ``(4, 3)`` ``float64``: ``[r, g, b, 1] @ map`` is the mapped colour.
    """
    x = np.asarray(photo, np.float64)
    y = np.asarray(stylized, np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    slope = np.linalg.solve(xc.T @ xc + ridge * len(x) * np.eye(3), xc.T @ yc)
    return np.vstack([slope, y_mean - x_mean @ slope])


def neck_strip(
    frame: np.ndarray, crop: AlignedCrop, stylized: np.ndarray, mask: np.ndarray
) -> NeckStrip | None:
    """The stylized neck under ``crop``'s square, or ``None`` where none reaches its edge.

    Args:
        frame: ``(H, W, 3)`` ``uint8`` RGB, the frame the crop was cut from.
        crop: the aligned crop (its matrix, landmarks and photo).
        stylized: ``(S, S, 3)`` ``uint8`` RGB, the stylized crop, NumPy or CuPy (of a
            crop on the GPU only the few rows the colour map is fitted on are copied).
        mask: ``(S, S)`` ``uint8`` the compositor's head matte for it (255 = stylized).

    Returns:
        The strip, or ``None``: the matte does not reach the square's bottom, or too few
        neck pixels to fit the colour map on.
    """
    size = crop.size
    fade = fade_width(size)
    top = size - fade
    fitted = slice(top - max(1, round(size * _FIT_ROWS)), top)
    depth = fade + round(size * _STRIP_DEPTH)
    # The neck's width at the square's edge, from the matte just above its fade; all that
    # follows works on those columns alone.
    columns = np.flatnonzero(mask[top - 1])
    if len(columns) == 0:
        return None
    x0, x1 = int(columns[0]), int(columns[-1]) + 1
    width = mask[top - 1, x0:x1].astype(np.float32) / np.float32(255.0)
    polygon = neck_polygon(crop.landmarks, size) - np.float32([x0, fitted.start])
    column = fill_polygon(polygon, top + depth - fitted.start, x1 - x0)
    under, column = column[: top - fitted.start], column[top - fitted.start :]
    neck = (mask[fitted, x0:x1] > 127) & (under > 127)
    if np.count_nonzero(neck) < _MIN_FIT_PIXELS:
        return None
    neck_photo = crop.image[fitted, x0:x1][neck]
    colour_map = neck_colour_map(neck_photo, to_host(stylized[fitted, x0:x1])[neck])
    # The neck's own colour where the square shows it, shadow under the chin and all: the
    # lit cheeks, lighter and redder, left its shadowed lower part to the photo.
    own = np.median(to_lab(neck_photo), axis=0)
    matrix = np.asarray(crop.matrix, np.float64).copy()
    matrix[:, 2] -= (x0, top)  # crop pixels -> strip pixels
    # Full down the strip's upper half, then a cosine to nothing at its bottom.
    rows = np.linspace(0.0, 1.0, depth, dtype=np.float32)
    down = np.where(rows < 0.5, 1.0, 0.5 + 0.5 * np.cos(np.pi * (2.0 * rows - 1.0)))
    reach = column.astype(np.float32) * (width[None, :] * down[:, None] / 255.0)
    # The colour test is most of the strip's cost: made at half resolution (the opacity is
    # soft anyway), and only where the strip can show.
    half = reach[::2, ::2] > 0.0
    photo = cv2.warpAffine(frame, matrix / 2.0, half.shape[::-1], flags=cv2.INTER_LINEAR)
    skin = np.zeros(half.shape, np.float32)
    skin[half] = skin_likeness(to_lab(photo[half]), own, _NECK_WIDTHS)
    skin = np.clip((skin - _SKIN_FROM) / (_SKIN_FULL - _SKIN_FROM), 0.0, 1.0)
    # Down each column the neck ends where the first thing that is not skin begins (the
    # collar): a dark tie under it, or the collar's shadows, read as a dark neck's colour.
    # Lightly blurred first, so one dark pore does not end a column.
    skin = np.minimum.accumulate(cv2.blur(skin, (3, 3)), axis=0)
    skin = cv2.resize(skin, reach.shape[::-1], interpolation=cv2.INTER_LINEAR)
    opacity = np.rint(255.0 * reach * skin).astype(np.uint8)
    shown = np.flatnonzero(opacity.any(axis=1))
    if len(shown) == 0:
        return None
    # Down to its last row that shows: the compositor warps and blends all it is given.
    return NeckStrip(opacity[: shown[-1] + 1], colour_map, matrix)


def recolour(xp: Any, image: Any, colour_map: np.ndarray) -> Any:
    """``image``'s pixels through an affine colour map (:func:`neck_colour_map`).

    Args:
        xp: ``numpy`` or ``cupy``.
        image: ``(H, W, 3)`` ``uint8`` RGB.
        colour_map: ``(4, 3)``: ``[r, g, b, 1] @ colour_map`` is the new colour.

    Returns:
        ``(H, W, 3)`` ``uint8``, rounded and clipped.
    """
    if xp is np:
        return cv2.transform(np.ascontiguousarray(image), colour_map.T)
    slope = xp.asarray(colour_map[:3], xp.float32)
    bias = xp.asarray(colour_map[3], xp.float32)
    mapped = image.astype(xp.float32) @ slope + bias
    return xp.clip(xp.rint(mapped), 0, 255).astype(xp.uint8)
