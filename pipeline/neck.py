"""The neck: painted in the face's palette, inside the aligned square and past its edge.

The student paints what lies under the jaw by the region it reads there, background, so a
neck took the artwork's background: sky-blue under a grey-green face for Van Gogh's
self-portrait, whose background is blue. In a painted portrait the neck is skin, painted
like the face. So the neck takes the face's palette: a linear map from the photo's colours
to the stylized crop's, fitted on the cheeks (:func:`face_palette`), applied to the photo's
own neck. The map keeps the photo's shading and changes only its palette, which is what a
neck in a painted portrait mostly is.

Inside the square the stylized crop's neck column under the lower jaw is replaced by the
crop's photo so recoloured (:func:`neck_opacity` says where; the compositor blends it), and
the head matte decides how much of that column shows (its neck is skin-coloured only, so a
collar or a tie stays the photo's).

The aligned crop ends a little under the chin (on a 720p talking head about 50 frame pixels
under it), so the matte stops at the square's edge, and below it the photo's neck would
show: an engraving's grey head sat on a brown neck, a band of it down to the collar. There
the same map is applied to the frame's own pixels, at the frame's resolution, so the neck
keeps all its detail (:func:`neck_strip`). Where it applies is a strip under the square,
in the crop's own coordinates (the crop's matrix shifted down), so the compositor warps it
as it warps a crop's mask; it starts inside the matte's fade, so the square fades out onto
the recoloured neck rather than onto the photo.

Where, below the square: the neck's column under the lower jaw
(:func:`pipeline.matte.neck_polygon`), as wide as the matte is at the square's edge, where
the frame's colour is the neck's (between its own in the square's last rows, in the shadow
under the chin, and the lit cheeks'), down each column only as far as the first thing that
is not: a collar, a tie or a beard stay as they are. It fades out over the strip's lower
half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.frame import AlignedCrop
from pipeline.guides import cheek_rows, to_lab
from pipeline.matte import face_polygon, fade_width, fill_polygon, neck_polygon
from pipeline.xp import to_host

__all__ = [
    "FacePalette",
    "NeckStrip",
    "face_palette",
    "neck_colour_map",
    "neck_opacity",
    "neck_strip",
    "recolour",
]

# In fractions of the crop side: the strip reaches this far below the square, and the
# neck's own colour is measured on this many rows above the matte's fade
# (:func:`pipeline.matte.fade_width`).
_STRIP_DEPTH = 0.5
_OWN_ROWS = 1 / 16

# The painted neck's edge under the jaw line, a Gaussian's sigma in fractions of the crop
# side: about the student's own softness there (its region masks are blurred by S / 80).
_JAW_SOFTNESS = 1 / 80

# The skin test's CIELAB widths (L, a, b) against the neck's own colour: half the face's
# width in lightness (:func:`pipeline.guides.skin_likeness`), since the neck's own shadow is
# already in its colour, while the shadows of a collar beside a dark neck are only darker.
_NECK_WIDTHS = np.array([20.0, 10.0, 14.0], np.float32)

# Skin likeness (0-1) mapped to the strip's opacity: none under the first, full over the second,
# so the strip's edge at a collar is soft rather than a threshold's jagged line.
_SKIN_FROM, _SKIN_FULL = 0.3, 0.6

# The map's regulariser, in squared grey levels a pixel: skin is nearly one colour, so most
# directions of its colour carry little information about the map; there the map leaves the
# photo's variation as it is (the slope shrinks toward the identity), where its shading and
# the style's palette are fitted. A style that leaves the cheeks unchanged leaves the neck
# unchanged, exactly.
_RIDGE = 25.0

# Fewer pixels than this to fit the map on (cheeks) or to measure the neck's own colour on
# (a face cut by the frame's bottom, a scarf): no map, or no strip.
_MIN_FIT_PIXELS = 64


@dataclass(frozen=True)
class FacePalette:
    """The face's skin in the photo and stylized: what the neck takes.

    Attributes:
        colour_map: ``(4, 3)`` ``float64`` photo -> stylized colours
            (:func:`neck_colour_map`), fitted on the cheeks.
        skin: ``(3,)`` ``float32`` the cheeks' median CIELAB in the photo: the skin lit as
            the face is, where the neck under the chin is mostly its shadow.
    """

    colour_map: np.ndarray
    skin: np.ndarray


@dataclass(frozen=True)
class NeckStrip:
    """The neck under one crop's square: where it is stylized, and the colours it takes.

    Attributes:
        opacity: ``(R, K)`` ``uint8``, 255 = fully stylized, ``R`` rows from the top of the
            matte's fade at the square's bottom down, ``K`` of the crop's columns (those the
            neck shows in).
        colour_map: ``(4, 3)`` ``float64``, the face's palette (:func:`face_palette`), for
            the frame's own pixels under the strip (:func:`recolour`).
        matrix: ``(2, 3)`` ``float64`` frame pixels -> strip pixels.
    """

    opacity: np.ndarray
    colour_map: np.ndarray
    matrix: np.ndarray


def neck_colour_map(photo: np.ndarray, stylized: np.ndarray, ridge: float = _RIDGE) -> np.ndarray:
    """The affine colour map that takes ``photo`` pixels nearest to ``stylized`` ones.

    Least squares on the centred colours, regularised toward the identity, so the map is
    defined even on pixels of one colour (it then moves every colour by the difference of
    the means), and a ``stylized`` equal to ``photo`` gives the identity.

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
    prior = ridge * len(x) * np.eye(3)
    slope = np.linalg.solve(xc.T @ xc + prior, xc.T @ yc + prior)
    return np.vstack([slope, y_mean - x_mean @ slope])


def face_palette(crop: AlignedCrop, stylized: Any) -> FacePalette | None:
    """The colour map from ``crop``'s photo to its stylized face, fitted on the cheeks.

    The cheeks (the face between the eyes and the upper lip) are the most skin any face
    shows, and both sides have them at the same pixels; every second pixel each way is
    plenty for an affine map.

    Args:
        crop: the aligned crop (its photo and landmarks).
        stylized: ``(S, S, 3)`` ``uint8`` RGB, the stylized crop, NumPy or CuPy (of a crop
            on the GPU only every second pixel of the cheeks' rows is copied).

    Returns:
        The palette, or ``None`` where the landmarks leave too few cheek pixels.
    """
    size = crop.size
    rows = np.flatnonzero(cheek_rows(crop.landmarks, size)[:, 0])
    if len(rows) == 0:
        return None
    band = slice(int(rows[0]), int(rows[-1]) + 1)
    face = fill_polygon(face_polygon(crop.landmarks), size)[band][::2, ::2] > 127
    if np.count_nonzero(face) < _MIN_FIT_PIXELS:
        return None
    cheeks = crop.image[band][::2, ::2][face]
    colour_map = neck_colour_map(cheeks, to_host(stylized[band][::2, ::2])[face])
    return FacePalette(colour_map, np.median(to_lab(cheeks), axis=0))


def neck_opacity(landmarks: np.ndarray, size: int) -> tuple[int, int, np.ndarray]:
    """Where the neck inside the square takes the face's palette: the column under the lower
    jaw (:func:`pipeline.matte.neck_polygon`), its edge at the jaw line soft.

    Args:
        landmarks: ``(68, 2)`` crop pixels.
        size: crop side ``S``.

    Returns:
        ``top``, ``left`` and ``(S - top, W)`` ``uint8`` (255 = the recoloured photo): the
        crop's rows from ``top`` down and ``W`` of its columns from ``left`` (the column and
        its soft edge), empty where the jaw is below the square or beside it.
    """
    sigma = size * _JAW_SOFTNESS
    polygon = neck_polygon(landmarks, size)
    reach = 3.0 * sigma
    top = min(max(int(polygon[:, 1].min() - reach), 0), size)
    left = min(max(int(polygon[:, 0].min() - reach), 0), size)
    right = min(max(int(np.ceil(polygon[:, 0].max() + reach)), left), size)
    if top == size or right == left:
        return top, left, np.zeros((size - top, right - left), np.uint8)
    column = fill_polygon(polygon - np.float32([left, top]), size - top, right - left)
    return top, left, cv2.GaussianBlur(column, (0, 0), sigma)


def _neck_likeness(lab: np.ndarray, shadow: np.ndarray, lit: np.ndarray) -> np.ndarray:
    """How like the neck's skin each colour is: a Gaussian of its distance (in
    :data:`_NECK_WIDTHS`) from the line between the neck's own colour in the shadow under the
    chin and the cheeks' colour, lit as the face is.

    A neck turned to the light is as lit as the cheeks, its shadowed part like the square's
    last rows, and most of it in between: against its shadow alone the lit half of clip 1's
    neck was left to the photo. The line, not either end: either colour on its own took a dark
    red tie knot or a lit collar's shadows for a neck somewhere on the shared clips.

    Args:
        lab: ``(N, 3)`` ``float32`` CIELAB.
        shadow: ``(3,)`` the neck's own colour.
        lit: ``(3,)`` the cheeks' colour.

    Returns:
        ``(N,)`` ``float32`` 0-1.
    """
    start = shadow / _NECK_WIDTHS
    along = lit / _NECK_WIDTHS - start
    scaled = lab / _NECK_WIDTHS - start
    length = float(along @ along)
    share = np.clip(scaled @ along / length, 0.0, 1.0) if length > 0.0 else 0.0
    off = scaled - np.multiply.outer(share, along)
    distance = np.einsum("ij,ij->i", off, off)
    return np.exp(np.float32(-0.5) * distance).astype(np.float32)


def neck_strip(
    frame: np.ndarray, crop: AlignedCrop, mask: np.ndarray, palette: FacePalette
) -> NeckStrip | None:
    """The stylized neck under ``crop``'s square, or ``None`` where none reaches its edge.

    Args:
        frame: ``(H, W, 3)`` ``uint8`` RGB, the frame the crop was cut from.
        crop: the aligned crop (its matrix, landmarks and photo).
        mask: ``(S, S)`` ``uint8`` the compositor's head matte for it (255 = stylized).
        palette: the face's palette (:func:`face_palette`).

    Returns:
        The strip, or ``None``: the matte does not reach the square's bottom, or too few
        neck pixels there to measure the neck's own colour on.
    """
    size = crop.size
    fade = fade_width(size)
    top = size - fade
    measured = slice(top - max(1, round(size * _OWN_ROWS)), top)
    depth = fade + round(size * _STRIP_DEPTH)
    # The neck's width at the square's edge, from the matte just above its fade; all that
    # follows works on those columns alone.
    columns = np.flatnonzero(mask[top - 1])
    if len(columns) == 0:
        return None
    x0, x1 = int(columns[0]), int(columns[-1]) + 1
    width = mask[top - 1, x0:x1].astype(np.float32) / np.float32(255.0)
    polygon = neck_polygon(crop.landmarks, size) - np.float32([x0, measured.start])
    column = fill_polygon(polygon, top + depth - measured.start, x1 - x0)
    under, column = column[: top - measured.start], column[top - measured.start :]
    neck = (mask[measured, x0:x1] > 127) & (under > 127)
    if np.count_nonzero(neck) < _MIN_FIT_PIXELS:
        return None
    neck_photo = crop.image[measured, x0:x1][neck]
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
    skin[half] = _neck_likeness(to_lab(photo[half]), own, palette.skin)
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
    return NeckStrip(opacity[: shown[-1] + 1], palette.colour_map, matrix)


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
