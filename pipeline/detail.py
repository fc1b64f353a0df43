"""The identity <-> style lever: put the content's fine luminance detail back on a stylized crop.

A stylized face loses the small structure that makes a person recognisable (the exact shape
of the eyelids, lip line, wrinkles). Adding the content crop's high-frequency luminance (its
luminance minus a Gaussian blur of it) back on top, times a strength ``k``, restores that
structure while leaving the style's colours and large shapes alone. Measured on real
artist/photo pairs, ``k = 0.5`` and ``k = 1`` lowered the dlib identity distance markedly with
the style still plain to see; larger ``k`` looks more photographic.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pipeline.frame import BROWS, JAW
from pipeline.guides import LUMA_WEIGHTS
from pipeline.xp import array_module

__all__ = [
    "DEFAULT_IDENTITY",
    "DEFAULT_IDENTITY_SCALE",
    "MAX_IDENTITY",
    "MAX_IDENTITY_SCALE",
    "detail_band",
    "inner_face",
    "low_pass",
    "remove_detail",
    "restore_detail",
    "restore_tone",
]

# The strength new style packs suggest. Chosen with `facestyle eval --identity 0 0.25 0.5 1`
# on the bundled packs: 0.25 brought each face 0.01-0.03 closer to its own descriptor for a
# small cost in style (+0.6-0.9 patch distance) and steadiness (+0.05-0.08 warping-error
# ratio); 0.5 and 1 cost two to four times as much for little more identity.
DEFAULT_IDENTITY = 0.25

MAX_IDENTITY = 2.0
"""The strongest identity strength a pack may store and a run may ask for (render, live, eval,
adapt and the API alike); beyond 1 a face looks more and more photographic."""

DEFAULT_IDENTITY_SCALE = 3.0
"""The Gaussian blur (pixels of a 256 px crop) that separates the person's detail from the
face's shape: at 3 identity restores fine structure only (eyelids, lip line, wrinkles); a
pack whose portrait is painted with light and shadow restores the face's modelling too (64,
which ``adapt`` chooses for one: ``models.adapt.identity_scale_for``)."""

MAX_IDENTITY_SCALE = 128.0
"""The widest identity scale a pack may have: half a 256 px crop."""

# Blurs wider than this are taken on a copy of the crop shrunk by sigma / 8: sigma 32 costs 2.9
# ms a 256 px crop exactly and 0.12 ms so, 0.7 grey levels apart on average.
_EXACT_BLUR = 8.0


def low_pass(luminance: np.ndarray, sigma: float) -> np.ndarray:
    """``(S, S)`` ``float32`` Gaussian blur of ``sigma`` pixels (see :data:`_EXACT_BLUR`)."""
    if sigma <= _EXACT_BLUR:
        return cv2.GaussianBlur(luminance, (0, 0), sigma)
    factor = int(sigma // _EXACT_BLUR)
    height, width = luminance.shape
    small = cv2.resize(
        luminance, (max(width // factor, 1), max(height // factor, 1)), interpolation=cv2.INTER_AREA
    )
    blurred = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)


def detail_band(content: np.ndarray, sigma: float = DEFAULT_IDENTITY_SCALE) -> np.ndarray:
    """``(N, S, S, 3)`` ``uint8`` RGB crops → ``(N, S, S)`` ``float32``: their luminance less
    its Gaussian blur of ``sigma`` pixels at ``S = 256`` (scaled with ``S``), the person's
    detail that :func:`restore_detail` adds."""
    sigma = sigma * content.shape[1] / 256
    detail = np.empty(content.shape[:3], np.float32)
    for i, source in enumerate(content):
        luminance = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY).astype(np.float32)
        detail[i] = luminance - low_pass(luminance, sigma)
    return detail


def remove_detail(
    stylized: np.ndarray,
    content: np.ndarray,
    strength: float,
    sigma: float = DEFAULT_IDENTITY_SCALE,
) -> np.ndarray:
    """What :func:`restore_detail` adds at ``strength``, taken off instead: for a face that is
    already finished and will have the detail put over it again.

    Args:
        stylized: ``(N, S, S, 3)`` ``uint8`` RGB NumPy crops (the content itself, for a face
            shown as it is).
        content: ``(N, S, S, 3)`` ``uint8`` RGB, the aligned crops whose detail it is.
        strength: ``k >= 0``.
        sigma: see :func:`restore_detail`.

    Returns:
        ``(N, S, S, 3)`` ``uint8`` RGB, the detail taken off every channel alike (where it
        clips at black or white, adding it back does not quite restore ``stylized``).
    """
    return _with_detail(stylized, detail_band(content, sigma), -strength)


def restore_detail(
    stylized: Any, content: np.ndarray, strength: float, sigma: float = DEFAULT_IDENTITY_SCALE
) -> Any:
    """Add ``strength`` times the content's high-frequency luminance to the stylized crops.

    Args:
        stylized: ``(N, S, S, 3)`` ``uint8`` RGB, the stylizer's output: a NumPy array, or a
            CuPy array from a stylizer on the GPU (the result stays there).
        content: ``(N, S, S, 3)`` ``uint8`` RGB NumPy, the aligned crops it was made from.
        strength: ``k >= 0``; 0 returns ``stylized`` itself, untouched.
        sigma: Gaussian blur that separates detail from shape, in pixels at ``S = 256``
            (scaled with ``S``); see :data:`DEFAULT_IDENTITY_SCALE`.

    Returns:
        ``(N, S, S, 3)`` ``uint8`` RGB, of ``stylized``'s array module.
    """
    if stylized.shape != content.shape or stylized.ndim != 4 or stylized.shape[3] != 3:
        raise ValueError(
            "restore_detail: expected stylized and content of the same (N, S, S, 3) shape, "
            f"got {stylized.shape} and {content.shape}"
        )
    if stylized.dtype != np.uint8 or content.dtype != np.uint8:
        raise ValueError(
            f"restore_detail: expected uint8 crops, got {stylized.dtype} and {content.dtype}"
        )
    if not strength >= 0:
        raise ValueError(f"restore_detail: strength must be >= 0, got {strength}")
    if strength == 0:
        return stylized
    # The detail comes from the content crops, which are on the host: computed there, then
    # added wherever the stylized crops are.
    return _with_detail(stylized, detail_band(content, sigma), strength)


def _with_detail(stylized: Any, detail: np.ndarray, strength: float) -> Any:
    """``(N, S, S, 3)`` ``uint8`` ``stylized`` plus ``strength`` times the ``(N, S, S)``
    ``detail`` in every channel, in ``stylized``'s array module."""
    xp = array_module(stylized)
    # Adding the same amount to R, G and B changes luminance only, not hue.
    lifted = stylized.astype(xp.float32) + xp.float32(strength) * xp.asarray(detail)[..., None]
    return xp.clip(xp.rint(lifted), 0, 255).astype(xp.uint8)


# Darkening or lightening a stylized face by more than this factor is a failed landmark fit or
# a blank crop, not a skin tone.
_MAX_GAIN = 3.0

# An RGB gain g scales Lab's L + 16, a and b alike (by about g^0.73, through sRGB's gamma and
# Lab's cube root), so pale painted skin darkened by g alone turns grey-mauve rather than
# brown. Scaling the colour's distance from grey by g^-0.365 as well leaves a and b scaled by
# the square root of the lightness's factor. Measured on the Mucha teacher, four crops each of
# the dark-skinned clip 2 and clip 1: style apart from skin tone 0.37 / 0.22 against 0.55 /
# 0.39 with the gain alone.
_CHROMA_POWER = 0.365


def restore_tone(
    stylized: Any, content: np.ndarray, landmarks: np.ndarray, hue: float = 0.0
) -> Any:
    """Bring each stylized crop's face to the content face's median luminance: a
    dark-skinned person stays dark in a style painted with pale skin.

    The stylizer paints every face with the exemplar's skin (its guides are matched to the
    exemplar's brightness, :func:`pipeline.guides.appearance_guide`); one gain per crop,
    measured on the face inside the landmarks, then moves it to the person's own brightness,
    and the colour's distance from grey is scaled by the gain's :data:`_CHROMA_POWER`
    (see there) so that darkened skin keeps its warmth. The style's hues, contrast and
    strokes stay as they are, unless ``hue`` asks for the person's.

    Args:
        stylized: ``(N, S, S, 3)`` ``uint8`` RGB, the stylizer's output: NumPy, or CuPy
            (the gains are measured and applied where the crops are).
        content: ``(N, S, S, 3)`` ``uint8`` RGB, the aligned crops it was made from.
        landmarks: ``(N, 68, 2)`` their landmarks, crop pixels.
        hue: 0..1, how far the face's median colour moves from the style's toward the
            person's own, its lightness kept (0: the painter's skin hue; 1: the person's):
            at the same lightness, a brown face in a palette of grey-ochre skin reads ashen.
            Shifted evenly inside the face, fading over its outline.

    Returns:
        ``(N, S, S, 3)`` ``uint8`` RGB, of ``stylized``'s array module.
    """
    if stylized.shape != content.shape or len(landmarks) != len(stylized):
        raise ValueError(
            "restore_tone: expected stylized and content of one (N, S, S, 3) shape and N "
            f"landmark sets, got {stylized.shape}, {content.shape} and {len(landmarks)}"
        )
    if not 0.0 <= hue <= 1.0:
        raise ValueError(f"restore_tone: hue must be in 0..1, got {hue}")
    xp = array_module(stylized)
    size = stylized.shape[1]
    out = xp.empty_like(stylized)
    for i, (styled, source, points) in enumerate(zip(stylized, content, landmarks, strict=True)):
        face = inner_face(points, size)
        # Every other pixel each way: a median of the face's pixels, 4x cheaper.
        inside = face[::2, ::2]
        if not inside.any():
            out[i] = styled
            continue
        # The luma weights, not OpenCV's RGB2GRAY (host only): the same sum for both sides,
        # so a face already at its own brightness gets a gain of exactly 1.
        own = np.median(_luma(source[::2, ::2])[inside])
        made = float(xp.median(_luma(styled[::2, ::2])[xp.asarray(inside)]))
        gain = np.clip(max(float(own), 1.0) / max(made, 1.0), 1 / _MAX_GAIN, _MAX_GAIN)
        out[i] = _apply_colour_matrix(styled, _tone_matrix(gain))
        if hue > 0:
            out[i] = _toward_own_hue(out[i], source, face, hue)
    return out


def inner_face(landmarks: np.ndarray, size: int) -> np.ndarray:
    """``(S, S)`` ``bool``: the face inside its ``(68, 2)`` landmarks (crop pixels), the jaw
    line closed over the brows: where a face's skin tone is measured."""
    face = np.zeros((size, size), np.uint8)
    outline = np.concatenate([landmarks[JAW], landmarks[BROWS][::-1]])
    cv2.fillPoly(face, [np.rint(outline).astype(np.int32)], 1)
    return face.astype(bool)


def _toward_own_hue(styled: Any, source: np.ndarray, face: np.ndarray, hue: float) -> Any:
    """``styled`` (``(S, S, 3)`` ``uint8``, NumPy or CuPy) with ``hue`` of the difference
    between the median colours of ``source`` and of itself inside ``face``
    (:func:`inner_face`) added, less its luma (so the lightness stays), weighted by the face
    blurred over a 24th of the crop."""
    xp = array_module(styled)
    inside = face[::2, ::2]
    own = np.median(source[::2, ::2][inside].astype(np.float32), axis=0)
    made = xp.median(styled[::2, ::2][xp.asarray(inside)].astype(xp.float32), axis=0)
    shift = own - np.asarray(made.get() if xp is not np else made, np.float32)
    shift -= np.float32(shift @ LUMA_WEIGHTS)
    size = face.shape[0]
    weight = cv2.GaussianBlur(face.astype(np.float32), (0, 0), size / 24)
    weight = np.minimum(weight * np.float32(1.5), np.float32(1.0)) * np.float32(hue)
    moved = styled.astype(xp.float32) + xp.asarray(weight[..., None] * shift)
    return xp.clip(xp.rint(moved), 0, 255).astype(xp.uint8)


def _luma(image: Any) -> Any:
    """``(H, W, 3)`` ``uint8`` RGB → ``(H, W)`` ``float32`` luma (NumPy or CuPy)."""
    xp = array_module(image)
    return image.astype(xp.float32) @ xp.asarray(LUMA_WEIGHTS)


def _tone_matrix(gain: float) -> np.ndarray:
    """``(3, 3)`` ``float32`` RGB → RGB: luma times ``gain``, the colour's distance from grey
    times ``gain ** (1 - _CHROMA_POWER)``.

    With ``y = w . rgb`` the luma, the result is ``g y + g^-p (g rgb - g y)``, which is linear
    in ``rgb``: ``a rgb + b y`` with ``a = g^(1-p)`` and ``b = g - a``.
    """
    scaled = gain ** (1.0 - _CHROMA_POWER)
    return (scaled * np.eye(3) + (gain - scaled) * np.outer(np.ones(3), LUMA_WEIGHTS)).astype(
        np.float32
    )


def _apply_colour_matrix(image: Any, matrix: np.ndarray) -> Any:
    """``(H, W, 3)`` ``uint8`` with each pixel's RGB multiplied by ``matrix``, rounded and
    clipped: OpenCV's one pass on the host, a matrix product on a GPU."""
    xp = array_module(image)
    if xp is np:
        return cv2.transform(image, matrix)
    mixed = image.astype(xp.float32) @ xp.asarray(matrix.T)
    return xp.clip(xp.rint(mixed), 0, 255).astype(xp.uint8)
