"""Guides for patch-based face synthesis, in the canonical crop.

A guide is an image that says, for every pixel of a crop, *what it is*: where it sits on the
face (positional guide), which facial part it belongs to (region masks), how bright its
neighbourhood is (appearance guide), how strong its edges are (edge guide) and how like the
face's own skin its colour is (skin guide). The teacher matches content pixels to exemplar
pixels whose guides agree; the student reads some of the same guides as extra input channels
(:mod:`models.student_input`), so everything per-frame here is cheap (a few ms at 256²).

Conventions stated once: crops are square, ``S`` pixels a side; landmarks are ``(68, 2)``
``float32`` ``x, y`` crop pixels in iBUG-300W order; every guide is ``float32``.

What depends only on the exemplar (its landmarks and its luminance distribution) is computed
once into a :class:`GuideReference`; :func:`compute_guides` is the per-frame part.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

__all__ = [
    "LUMA_WEIGHTS",
    "REGIONS",
    "GuideReference",
    "Guides",
    "appearance_guide",
    "cheek_rows",
    "compute_guides",
    "edge_guide",
    "guide_reference",
    "is_monochrome",
    "luminance",
    "positional_guide",
    "region_labels",
    "region_masks",
    "skin_guide",
    "skin_likeness",
    "thin_plate_spline",
    "to_lab",
]

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
"""ITU-R BT.601 luma weights of R, G, B: the grey of OpenCV's ``COLOR_RGB2GRAY``."""

REGIONS = ("background", "hair", "skin", "nose", "brows", "eyes", "lips", "mouth")
"""Region mask channels, in order. ``hair`` is the band above the brows (forehead and hair),
``mouth`` the inside of the lips (teeth, tongue, dark gap), ``lips`` the lips themselves."""

_FACE_REGIONS = tuple(REGIONS.index(name) for name in REGIONS if name not in ("background", "hair"))

# Quantiles at which luminance distributions are compared for histogram matching.
_QUANTILES = np.linspace(0.0, 1.0, 65)

# The skin guide's Gaussian widths, CIELAB units, for L, a and b. Lightness is widest: a face's
# own shading and the shine on a forehead move it (at 16 the lit forehead of the shared clip 1
# read as not skin, and the album portrait of Confucius painted its paper there), and the
# appearance guide already matches it. Yellow-blue (b) is wider than red-green (a): warmer or
# cooler light moves skin along it, and the top of a forehead lit from above is yellower than
# the cheeks (clip 1: b 12 units over them, a 5; at 10 it read 0.4-0.5, and Vermeer's turban was
# painted across it), while a turban, a hat or a painted flower stays far on one axis or both.
_SKIN_WIDTHS = np.array([40.0, 10.0, 14.0], np.float32)
# The blur before the skin guide's colours are taken, a fraction of the crop side: paper
# grain and pores are not what it tells apart.
_SKIN_BLUR = 1.5 / 256

# TPS is smooth, so it is evaluated on a coarse grid (this many cells a side) and resampled.
_TPS_GRID = 32


@dataclass(frozen=True)
class GuideReference:
    """What the guides of every content crop are measured against: the exemplar's side.

    Attributes:
        landmarks: ``(68, 2)`` ``float32`` the exemplar's landmarks in its crop.
        luminance_quantiles: ``(65,)`` ``float32`` quantiles 0, 1/64, ..., 1 of the
            exemplar's blurred luminance (0-1) inside its face, increasing.
        size: crop side ``S``.
        monochrome: the exemplar is in one ink, whose skin no colour tells from its hair or
            a hat: every crop's skin guide is then 1 throughout, which matches nothing
            (lightness is the appearance guide's).
    """

    landmarks: np.ndarray
    luminance_quantiles: np.ndarray
    size: int
    monochrome: bool = False


@dataclass(frozen=True)
class Guides:
    """The guides of one crop.

    Attributes:
        positional: ``(S, S, 2)`` ``float32`` for each pixel, the exemplar crop coordinate
            ``x, y`` (pixels) that corresponds to it; the identity grid for the exemplar itself.
        regions: ``(S, S, len(REGIONS))`` ``float32`` 0-1 soft masks, channels in
            :data:`REGIONS` order, summing to 1 at every pixel.
        appearance: ``(S, S)`` ``float32`` 0-1 blurred luminance, histogram-matched inside the
            face to the exemplar's.
        edges: ``(S, S)`` ``float32`` 0-1 gradient magnitude of the blurred luminance.
        skin: ``(S, S)`` ``float32`` 0-1 how like the face's own skin each pixel's colour is
            (:func:`skin_guide`); 1 throughout beside a monochrome exemplar.
    """

    positional: np.ndarray
    regions: np.ndarray
    appearance: np.ndarray
    edges: np.ndarray
    skin: np.ndarray

    @property
    def size(self) -> int:
        return int(self.appearance.shape[0])

    def stack(self) -> np.ndarray:
        """All guides as one ``(S, S, 2 + len(REGIONS) + 3)`` ``float32`` array, about 0-1.

        Channel order: positional ``x / S``, ``y / S``, the region masks, appearance, edges,
        skin.
        """
        return np.concatenate(
            [
                self.positional / np.float32(self.size),
                self.regions,
                self.appearance[..., None],
                self.edges[..., None],
                self.skin[..., None],
            ],
            axis=2,
        )


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of ``(S, S, 3)`` ``uint8`` RGB as ``(S, S)`` ``float32`` 0-1."""
    return image.astype(np.float32) @ (LUMA_WEIGHTS / np.float32(255.0))


def _polygon(labels: np.ndarray, points: np.ndarray, value: int) -> None:
    # 4 fractional bits: landmarks are sub-pixel and the crops are small.
    cv2.fillPoly(labels, [np.round(points * 16).astype(np.int32)], value, cv2.LINE_8, shift=4)


def _scaled(points: np.ndarray, factor: float) -> np.ndarray:
    centre = points.mean(axis=0)
    return centre + (points - centre) * factor


def region_labels(landmarks: np.ndarray, size: int, ears: bool = True) -> np.ndarray:
    """Hard region map: ``(S, S)`` ``uint8``, each pixel the index of its region in
    :data:`REGIONS`.

    Regions are painted from the landmarks, back to front: the head (jaw line plus a band
    above the brows, slightly enlarged: hair), the ears (skin, see below), the face (jaw
    line closed over the brows: skin), then nose, brows, eyes, lips and the inner mouth;
    the rest is background.

    Args:
        landmarks: ``(68, 2)`` crop pixels.
        size: crop side ``S``.
        ears: label the ears (beside the jaw line's upper third) as skin where they would
            otherwise be background. A content face's ears are skin to be painted, and the
            head matte shows them; labelled background, the teacher painted them from the
            exemplar's background (blue ears for Van Gogh). ``False`` for the exemplar
            itself, whose ear zone is as often background or hair (a turned head, hair over
            the ears), so that skin is matched only to the exemplar's skin.
    """
    pts = np.asarray(landmarks, np.float64)
    labels = np.zeros((size, size), np.uint8)
    brows = pts[17:27]
    chin = pts[8]
    brow_centre = brows.mean(axis=0)
    up = brow_centre - chin
    height = float(np.linalg.norm(up)) or 1.0
    up /= height
    # The band above the brows up to about two thirds of the brow-chin distance, widened at
    # the temples: forehead and hair, as far as the landmarks can tell.
    top = _scaled(brows, 1.15) + up * 0.65 * height
    head = np.concatenate([pts[0:17], top[::-1]])
    _polygon(labels, _scaled(head, 1.08), REGIONS.index("hair"))
    if ears:
        background = labels == REGIONS.index("background")
        ear_labels = np.zeros_like(labels)
        for ear in _ears(pts, up, height):
            _polygon(ear_labels, ear, 1)
        labels[background & (ear_labels == 1)] = REGIONS.index("skin")
    face = np.concatenate([pts[0:17], brows[::-1] + up * 0.06 * height])
    _polygon(labels, face, REGIONS.index("skin"))
    nose = pts[[27, 31, 32, 33, 34, 35]]
    _polygon(labels, _scaled(nose, 1.1), REGIONS.index("nose"))
    thickness = 0.035 * height
    for brow in (pts[17:22], pts[22:27]):
        outline = np.concatenate([brow + up * thickness, brow[::-1] - up * thickness])
        _polygon(labels, outline, REGIONS.index("brows"))
    for eye in (pts[36:42], pts[42:48]):
        _polygon(labels, _scaled(eye, 1.35), REGIONS.index("eyes"))
    _polygon(labels, pts[48:60], REGIONS.index("lips"))
    _polygon(labels, pts[60:68], REGIONS.index("mouth"))
    return labels


def _ears(pts: np.ndarray, up: np.ndarray, height: float) -> list[np.ndarray]:
    """Two polygons where the ears are: outward of the jaw line's upper third (landmarks
    0-3 and 13-16), from a little above its top, 0.13 of the face's width wide."""
    width = float(np.linalg.norm(pts[16] - pts[0])) or 1.0
    side = pts[16] - pts[0]
    side /= float(np.linalg.norm(side)) or 1.0
    polygons = []
    for jaw, outward in ((pts[0:4], -side), (pts[16:12:-1], side)):
        top = jaw[0] + up * 0.12 * height
        outer = jaw + outward * 0.13 * width
        polygons.append(np.concatenate([[top, top + outward * 0.1 * width], outer, jaw[::-1]]))
    return polygons


def region_masks(
    landmarks: np.ndarray, size: int, sigma: float | None = None, ears: bool = True
) -> np.ndarray:
    """Soft region masks: ``(S, S, len(REGIONS))`` ``float32`` 0-1, summing to 1 per pixel.

    Args:
        landmarks: ``(68, 2)`` crop pixels.
        size: crop side ``S``.
        sigma: Gaussian blur in pixels; default ``S / 80`` (3.2 px at 256), enough that the
            masks of neighbouring parts overlap where the landmarks are uncertain.
        ears: see :func:`region_labels` (``False`` for the exemplar).
    """
    sigma = size / 80.0 if sigma is None else sigma
    # Blurred masks have no detail finer than sigma: paint and blur at half size (4x cheaper).
    half = size // 2
    labels = region_labels(np.asarray(landmarks, np.float64) * (half / size), half, ears)
    one_hot = (labels[..., None] == np.arange(len(REGIONS), dtype=np.uint8)).astype(np.float32)
    blurred = cv2.GaussianBlur(one_hot, (0, 0), sigma / 2)
    return cv2.resize(blurred, (size, size), interpolation=cv2.INTER_LINEAR)


def _border_anchors(size: int) -> np.ndarray:
    """``(16, 2)`` points along the crop border that the TPS keeps in place."""
    ticks = np.linspace(0, size - 1, 5)
    edge = np.concatenate(
        [
            np.stack([ticks, np.zeros(5)], 1),
            np.stack([ticks, np.full(5, size - 1.0)], 1),
            np.stack([np.zeros(3), ticks[1:4]], 1),
            np.stack([np.full(3, size - 1.0), ticks[1:4]], 1),
        ]
    )
    return edge


@cache
def _coarse_grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coarse evaluation points and the remap tables that spread them over the crop."""
    ticks = np.linspace(0.0, size - 1.0, _TPS_GRID + 1)
    gx, gy = np.meshgrid(ticks, ticks)
    points = np.stack([gx.ravel(), gy.ravel()], 1)
    scale = _TPS_GRID / (size - 1.0)
    xs = np.arange(size, dtype=np.float32) * np.float32(scale)
    map_x, map_y = np.meshgrid(xs, xs)
    return points, map_x, map_y


def positional_guide(
    content_landmarks: np.ndarray, exemplar_landmarks: np.ndarray, size: int
) -> np.ndarray:
    """Where each content pixel lands on the exemplar: a thin-plate-spline warp.

    The spline maps the content's 68 landmarks exactly onto the exemplar's and keeps 16
    points on the crop border in place, so the background does not swing with the face.

    Args:
        content_landmarks: ``(68, 2)`` the content face in its crop, pixels.
        exemplar_landmarks: ``(68, 2)`` the exemplar face in its crop, pixels.
        size: crop side ``S`` (both crops).

    Returns:
        ``(S, S, 2)`` ``float32`` exemplar ``x, y`` pixel for each content pixel.
    """
    anchors = _border_anchors(size)
    source = np.concatenate([np.asarray(content_landmarks, np.float64), anchors])
    target = np.concatenate([np.asarray(exemplar_landmarks, np.float64), anchors])
    points, map_x, map_y = _coarse_grid(size)
    # A little smoothing: landmark noise should bend the warp, not fold it.
    warped = thin_plate_spline(source, target, points, smoothing=1.0)
    coarse = warped.astype(np.float32).reshape(_TPS_GRID + 1, _TPS_GRID + 1, 2)
    return cv2.remap(coarse, map_x, map_y, cv2.INTER_LINEAR)


def thin_plate_spline(
    source: np.ndarray, target: np.ndarray, points: np.ndarray, smoothing: float = 0.0
) -> np.ndarray:
    """The 2-D thin-plate spline that maps ``source`` onto ``target``, evaluated at ``points``.

    The interpolant of SciPy's ``RBFInterpolator(source, target,
    kernel="thin_plate_spline", smoothing=smoothing)`` (kernel ``r² log r``, a degree-1
    polynomial, ``smoothing`` added to the kernel's diagonal), to rounding. Written out
    because it runs for every face of every frame: SciPy's general interpolator spends
    about 1 ms a call on checks and scaling that this fixed case does not need, holding the
    GIL that the pipeline's other threads wait for.

    Args:
        source: ``(K, 2)`` ``float64`` control points, distinct.
        target: ``(K, 2)`` ``float64`` where they go.
        points: ``(P, 2)`` ``float64`` where to evaluate.
        smoothing: 0 interpolates exactly; more lets the spline pass near ``target``.

    Returns:
        ``(P, 2)`` ``float64``.
    """
    count = len(source)
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = _tps_kernel(source, source)
    system[np.arange(count), np.arange(count)] += smoothing
    system[:count, count] = system[count, :count] = 1.0
    system[:count, count + 1 :] = source
    system[count + 1 :, :count] = source.T
    values = np.zeros((count + 3, 2))
    values[:count] = target
    weights = np.linalg.solve(system, values)
    affine = weights[count] + points @ weights[count + 1 :]
    return _tps_kernel(points, source) @ weights[:count] + affine


def _tps_kernel(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(P, K)`` ``r² log r`` between ``(P, 2)`` points and ``(K, 2)`` centres (0 at r = 0)."""
    squared = np.square(points[:, None, 0] - centres[None, :, 0])
    squared += np.square(points[:, None, 1] - centres[None, :, 1])
    # r² log r = d log d / 2 with d = r²; the floor only keeps log finite where d = 0.
    return 0.5 * squared * np.log(np.maximum(squared, 1e-300))


def _blurred_luminance(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(luminance(image), (0, 0), sigma)


def _face_weight(regions: np.ndarray) -> np.ndarray:
    return regions[..., list(_FACE_REGIONS)].sum(axis=2)


def _luminance_quantiles(blurred: np.ndarray, regions: np.ndarray) -> np.ndarray:
    # Every other pixel each way: the image is blurred, so this sorts 4x less for the same
    # distribution.
    sample, weight = blurred[::2, ::2], _face_weight(regions[::2, ::2])
    inside = sample[weight > 0.5]
    if inside.size == 0:
        inside = sample.ravel()
    return np.quantile(inside, _QUANTILES).astype(np.float32)


def appearance_guide(
    image: np.ndarray, regions: np.ndarray, reference: GuideReference
) -> np.ndarray:
    """Blurred luminance, histogram-matched inside the face to the exemplar's.

    This is the guide that carries the content person's own structure (eyes, open mouth,
    a held microphone) into the synthesis; matching the histogram makes the content's shading
    comparable with the exemplar's, so a dark painting and a bright photo still pair up.
    A dark face is matched fully too, so that it is painted with the exemplar's skin rather
    than with whatever the exemplar has at the face's own brightness (a Mucha poster's hair
    and flowers); its tone comes back afterwards (:func:`pipeline.detail.restore_tone`).

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB crop.
        regions: ``(S, S, len(REGIONS))`` its :func:`region_masks`.
        reference: the exemplar's side.

    Returns:
        ``(S, S)`` ``float32`` 0-1.
    """
    size = image.shape[0]
    blurred = _blurred_luminance(image, size / 128.0)
    source = _luminance_quantiles(blurred, regions)
    # Ties (flat regions) would make np.interp's x non-increasing; nudge them apart.
    source = source + np.arange(source.size, dtype=np.float32) * np.float32(1e-6)
    return np.interp(blurred, source, reference.luminance_quantiles).astype(np.float32)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` ``uint8`` RGB (an image, or a list of pixels) → the same shape of
    ``float32`` CIELAB in OpenCV's float ranges (L 0-100)."""
    unit = rgb.reshape(-1, 1, 3).astype(np.float32) / np.float32(255.0)
    return cv2.cvtColor(unit, cv2.COLOR_RGB2Lab).reshape(rgb.shape)


def is_monochrome(image: np.ndarray) -> bool:
    """Whether an image's colour follows from its lightness alone (a drawing, an engraving,
    a sepia print): the chroma left once a and b are fitted as lines in L is under 4 Lab
    units (RMS).

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB.
    """
    lab = to_lab(image)[::2, ::2].reshape(-1, 3).astype(np.float64)
    design = np.stack([lab[:, 0], np.ones(len(lab))], axis=1)
    fit, *_ = np.linalg.lstsq(design, lab[:, 1:], rcond=None)
    residual = lab[:, 1:] - design @ fit
    return float(np.sqrt((residual**2).sum(axis=1).mean())) < 4.0


def edge_guide(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the lightly blurred luminance, ``(S, S)`` ``float32`` 0-1.

    Normalised by the crop's own 98th percentile (of every other pixel), so a soft painting and a crisp photo both
    span the range.
    """
    size = image.shape[0]
    blurred = _blurred_luminance(image, size / 256.0)
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = cv2.magnitude(gx, gy)
    top = float(np.percentile(magnitude[::2, ::2], 98.0)) or 1.0
    return np.minimum(magnitude / np.float32(top), np.float32(1.0))


def skin_likeness(
    lab: np.ndarray, own: np.ndarray, widths: np.ndarray = _SKIN_WIDTHS
) -> np.ndarray:
    """How near each colour is to one skin colour: a Gaussian of the CIELAB distance from
    ``own``, by default wider in lightness than in hue (:data:`_SKIN_WIDTHS`), so skin in
    shadow or in light still reads as skin.

    Args:
        lab: ``(..., 3)`` ``float32`` CIELAB (OpenCV's float ranges: L 0-100).
        own: ``(3,)`` the skin's own CIELAB colour.
        widths: ``(3,)`` the Gaussian's widths in L, a and b.

    Returns:
        ``(...)`` ``float32`` 0-1, 1 at ``own``.
    """
    scaled = (lab - own) / widths
    # einsum rather than ``.sum(axis=-1)``: NumPy's reduction over an axis of three is
    # slow (1.6 against 0.9 ms a 256² crop, the same bits).
    distance = np.einsum("...i,...i->...", scaled, scaled)
    return np.exp(np.float32(-0.5) * distance).astype(np.float32)


def cheek_rows(landmarks: np.ndarray, height: int) -> np.ndarray:
    """``(height, 1)`` ``bool``: the rows between the eyes' lowest point and the upper lip's
    highest, where the cheeks show a face's own skin colour (``landmarks`` ``(68, 2)`` in
    the image's pixels)."""
    rows = np.arange(height)[:, None]
    return (rows > landmarks[36:48, 1].max()) & (rows < landmarks[48:55, 1].min())


def skin_guide(image: np.ndarray, landmarks: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """How like the face's own skin each pixel's colour is, ``(S, S)`` ``float32`` 0-1.

    The region masks place the forehead and the hair by the landmarks alone, as one band
    above the brows, so whatever an artist painted there is taken as forehead: Vermeer's
    turban, a hat. Matched on this guide too, the teacher paints a bare forehead with the
    artist's skin and hair with the turban. Each crop is measured against its own skin (the
    median colour of the cheeks, between the eyes and the lips), so a painter's ochre skin
    and a person's brown skin both read 1: a Gaussian of the CIELAB distance from it. Below
    the brows, where the landmarks do place the face, every part of it reads 1 whatever its
    colour.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB crop.
        landmarks: ``(68, 2)`` its landmarks, crop pixels.
        regions: ``(S, S, len(REGIONS))`` its :func:`region_masks`.
    """
    size = image.shape[0]
    smooth = cv2.GaussianBlur(
        image.astype(np.float32) / np.float32(255.0), (0, 0), size * _SKIN_BLUR
    )
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2Lab)
    face = _face_weight(regions)
    cheeks = (regions[..., REGIONS.index("skin")] > 0.5) & cheek_rows(landmarks, size)
    if not cheeks.any():
        cheeks = face > 0.5
    own = np.median(lab[cheeks], axis=0) if cheeks.any() else lab.reshape(-1, 3).mean(axis=0)
    skin = skin_likeness(lab, own)
    # Below the brows the landmarks already say what is face, and the region masks match its
    # parts: counted as skin there on both sides, Renoir's red lips still paint a person's
    # paler ones, and an artist's shadows and coloured patches on a face paint the person's.
    return (skin + (1.0 - skin) * face).astype(np.float32)


def guide_reference(
    image: np.ndarray, landmarks: np.ndarray, monochrome: bool = False
) -> GuideReference:
    """The exemplar-only part of the guides, computed once per style.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB exemplar crop.
        landmarks: ``(68, 2)`` its landmarks, crop pixels.
        monochrome: the exemplar is in one ink (:func:`is_monochrome`, or its author says so).
    """
    size = image.shape[0]
    regions = region_masks(landmarks, size, ears=False)
    blurred = _blurred_luminance(image, size / 128.0)
    return GuideReference(
        landmarks=np.asarray(landmarks, np.float32),
        luminance_quantiles=_luminance_quantiles(blurred, regions),
        size=size,
        monochrome=monochrome,
    )


def compute_guides(
    image: np.ndarray, landmarks: np.ndarray, reference: GuideReference, ears: bool = True
) -> Guides:
    """All guides of one crop (per frame; a few ms at 256²).

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB aligned crop.
        landmarks: ``(68, 2)`` its landmarks, crop pixels.
        reference: from :func:`guide_reference` on the exemplar (same ``S``).
        ears: its ears are skin (a content face); ``False`` for the exemplar itself (see
            :func:`region_labels`).
    """
    size = image.shape[0]
    if image.shape != (size, size, 3) or reference.size != size:
        raise ValueError(
            f"compute_guides: expected an ({reference.size}, {reference.size}, 3) crop, "
            f"got {image.shape}"
        )
    regions = region_masks(landmarks, size, ears=ears)
    return Guides(
        positional=positional_guide(landmarks, reference.landmarks, size),
        regions=regions,
        appearance=appearance_guide(image, regions, reference),
        edges=edge_guide(image),
        skin=(
            np.ones((size, size), np.float32)
            if reference.monochrome
            else skin_guide(image, landmarks, regions)
        ),
    )
