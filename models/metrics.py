"""Quality, measured: identity, style fidelity and temporal stability of stylized faces.

- Identity: dlib's 128-D face descriptor distance between each input face and its stylized
  face (dlib calls two faces the same person under 0.6). Because an absolute threshold says
  little about drawings, also the *margin*: is the stylized face closer to its own source than
  to any other person's face?
- Style: a two-sided patch-distribution figure — the sliced Wasserstein distance between the
  7x7 Lab patches of the shown head and those of the exemplar's head, divided by the same for
  the unstylized head (1 = no closer to the reference than the photo). A one-sided
  nearest-patch distance rewards blur (a soft face finds near neighbours among a painting's
  smooth patches); a distribution distance does not.
- Style by part: the same figure on the face and on the rest of the head (hair, a hat, a
  turban), each against the same part of the exemplar's head. The whole-head figure counts
  an artist's hat laid on a bare forehead as style; this one asks for the artist's face on
  the face and the artist's hair on the hair.
- Sharpness: mean gradient magnitude of the lightness on the head, as a ratio to the
  exemplar's (a student that averages away brush marks scores well under 1).
- Head share: how much of the head, hair included, the compositor's mask restyles (an
  oval on the face restyles about half of it).
- Detail at full resolution: a face larger in the frame than its crop is shown enlarged,
  with the frame's fine detail put back by the compositor (:mod:`pipeline.composite`); on
  those faces, the shown head's pixel-scale detail (mean absolute Laplacian) over the
  photo's own, both at the frame's resolution.
- Temporal stability: warping error — the next output frame warped back onto the current one
  with optical flow computed on the *input* (OpenCV DIS), pixels failing a forward-backward
  check left out — relative to the same error of the input itself (1 = as steady as the input).
  On a clip (:func:`evaluate_stylizer`) it is measured on each track's sequence of aligned
  crops as shown (stylized, blended over the input through the mask), so a flickering matte
  counts and the frame's background does not dilute it.

The metric functions are pure (arrays in, numbers out); :func:`clip_tracks` and
:func:`evaluate_stylizer` run the tracker and a stylizer. The dlib model is loaded once per
process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import cache

import cv2
import dlib
import numpy as np

from models.exemplar import Exemplar
from pipeline.align import align_face, invert_affine
from pipeline.composite import (
    FINE_DETAIL_FROM,
    Compositor,
    fine_detail_gain,
    magnification,
    place_crop,
)
from pipeline.detail import inner_face
from pipeline.flow import optical_flow, warp_by_flow
from pipeline.frame import AlignedCrop, Frame
from pipeline.guides import REGIONS, region_labels, region_masks, skin_guide, to_lab
from pipeline.landmarks import detect_landmarks, model_path
from pipeline.matte import head_cut, head_prior
from pipeline.restyle import SmallFaces, stylize_by_side
from pipeline.samples import FACE_PHOTOS, face_photo
from pipeline.stylizer import Stylizer, drawn_crops
from pipeline.tracker import FaceTracker
from pipeline.xp import select_backend

__all__ = [
    "SAME_PERSON",
    "IdentityReport",
    "StyleReport",
    "StylizerReport",
    "TemporalReport",
    "TrackCrops",
    "clip_tracks",
    "descriptor_distance",
    "evaluate_stylizer",
    "face_and_hair",
    "face_descriptor",
    "face_descriptors",
    "full_resolution_detail",
    "head_share",
    "identity_report",
    "lab_patches",
    "lightness_shift",
    "mean_gradient",
    "pixel_detail",
    "reference_descriptors",
    "sharpness",
    "sliced_wasserstein",
    "style_ratio",
    "temporal_report",
    "warping_errors",
]

SAME_PERSON = 0.6
"""dlib's descriptor distance under which two faces are called the same person."""

# Fewer 7x7 windows than this (every 3rd pixel each way: about a 12 px square) are too few
# for a patch distribution.
_MIN_PATCHES = 16


@cache
def _recognizer() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(model_path("dlib_face_recognition_resnet_model_v1")))


def face_descriptors(image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
    """dlib 128-D descriptors of faces in one image.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB (a frame or an aligned crop).
        landmarks: one ``(68, 2)`` ``x, y`` pixel array per face.

    Returns:
        ``(N, 128)`` ``float64``.
    """
    shapes = dlib.full_object_detections()
    for points in landmarks:
        points = np.asarray(points, np.float64)
        x0, y0 = np.floor(points.min(axis=0)).astype(int).tolist()
        x1, y1 = np.ceil(points.max(axis=0)).astype(int).tolist()
        pixels = np.rint(points).astype(int).tolist()
        parts = dlib.points([dlib.point(x, y) for x, y in pixels])
        shapes.append(dlib.full_object_detection(dlib.rectangle(x0, y0, x1, y1), parts))
    if len(shapes) == 0:
        return np.zeros((0, 128))
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return np.array([np.array(d) for d in _recognizer().compute_face_descriptor(image, shapes)])


def face_descriptor(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The ``(128,)`` ``float64`` descriptor of one face (see :func:`face_descriptors`)."""
    return face_descriptors(image, [landmarks])[0]


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two ``(128,)`` descriptors."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


@cache
def _reference_descriptors() -> tuple[tuple[str, np.ndarray], ...]:
    pairs = []
    for name in FACE_PHOTOS:
        photo = face_photo(name)
        found = detect_landmarks(photo)
        if found:
            pairs.append((name, face_descriptor(photo, found[0])))
    return tuple(pairs)


def reference_descriptors() -> dict[str, np.ndarray]:
    """Descriptors of the public-domain faces facestyle ships (``pipeline.samples``)."""
    return {name: d.copy() for name, d in _reference_descriptors()}


def _figures(report: object) -> dict[str, float]:
    """A report's summary figures: its fields without the per-face arrays."""
    return {k: v for k, v in asdict(report).items() if not isinstance(v, np.ndarray)}


@dataclass(frozen=True)
class IdentityReport:
    """How recognisable the stylized faces stay.

    Attributes:
        distances: ``(N,)`` input-to-stylized descriptor distance per face.
        mean_distance: their mean.
        share_same: share of faces under :data:`SAME_PERSON`.
        share_closest: share of faces whose stylized face is closer to its own source than to
            every other person's face; ``nan`` when there is no other person to compare with.
    """

    distances: np.ndarray
    mean_distance: float
    share_same: float
    share_closest: float

    def as_dict(self) -> dict[str, float]:
        return _figures(self)


def identity_report(
    sources: np.ndarray,
    stylized: np.ndarray,
    others: Sequence[np.ndarray] | None = None,
) -> IdentityReport:
    """Identity from descriptors.

    Args:
        sources: ``(N, 128)`` descriptors of the input faces.
        stylized: ``(N, 128)`` descriptors of their stylized faces, row for row.
        others: for each face, ``(M_i, 128)`` descriptors of *other* people (other tracks of
            the clip, shipped public-domain faces of someone else). Faces with ``M_i == 0``
            are left out of the margin; ``None`` leaves it undefined (``nan``).
    """
    sources, stylized = np.asarray(sources), np.asarray(stylized)
    distances = np.linalg.norm(sources - stylized, axis=1)
    closest = [
        distances[i] < np.linalg.norm(np.asarray(o) - stylized[i], axis=1).min()
        for i, o in enumerate(others or [])
        if len(o)
    ]
    return IdentityReport(
        distances=distances,
        mean_distance=float(distances.mean()) if distances.size else float("nan"),
        share_same=float(np.mean(distances < SAME_PERSON)) if distances.size else float("nan"),
        share_closest=float(np.mean(closest)) if closest else float("nan"),
    )


def _lab(image: np.ndarray, tone_region: np.ndarray | None = None) -> np.ndarray:
    """``(S, S, 3)`` ``float32`` OpenCV Lab of an RGB ``uint8`` image; with ``tone_region``,
    apart from skin tone: scaled so the median of L + 16 inside it is 66 (L = 50)."""
    lab = to_lab(image)
    if tone_region is None:
        return lab
    # A gain on the RGB values (how pipeline.detail.restore_tone moves a face to its own
    # brightness, before it keeps part of the colour) scales L + 16, a and b alike by a power
    # of the gain (Lab's cube root of linear light); dividing all three by the median of
    # L + 16 undoes it.
    inside = np.asarray(tone_region) > 0.5
    lab[:, :, 0] += np.float32(16.0)
    median = float(np.median(lab[:, :, 0][inside])) if inside.any() else 66.0
    lab *= np.float32(66.0 / max(median, 1.0))
    lab[:, :, 0] -= np.float32(16.0)
    return lab


def lab_patches(
    image: np.ndarray,
    region: np.ndarray,
    *,
    patch: int = 7,
    stride: int = 3,
    tone_free: bool = False,
) -> np.ndarray:
    """Every ``stride``-th ``patch`` x ``patch`` window of ``image`` centred in ``region``, as
    Lab vectors.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB.
        region: ``(S, S)`` weights; windows whose centre weight is above 0.5 are kept.
        patch: window side (odd).
        stride: keep every ``stride``-th window each way.
        tone_free: lightness relative to the region's median (scaled so the median is
            L = 50), so a face whose RGB values were all scaled by one gain (a person's own
            skin tone kept) has nearly the same patches.

    Returns:
        ``(N, 3 * patch * patch)`` ``float32``: per window its L (0-100), then a, then b
        (about -100..100, OpenCV's float Lab), each ``patch`` x ``patch`` row-major.
    """
    lab = _lab(image, region if tone_free else None)
    windows = np.lib.stride_tricks.sliding_window_view(lab, (patch, patch), axis=(0, 1))
    radius = patch // 2
    centres = np.asarray(region)[radius:-radius, radius:-radius] > 0.5
    keep = centres[::stride, ::stride]
    return windows[::stride, ::stride][keep].reshape(-1, patch * patch * 3)


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, *, projections: int = 128, quantiles: int = 256, seed: int = 0
) -> float:
    """Sliced 2-Wasserstein distance between two point clouds of the same dimension.

    Both clouds are projected on the same ``projections`` random unit directions (fixed by
    ``seed``, so the figure is reproducible); per direction, the two 1-D distributions are
    compared at ``quantiles`` evenly spaced quantiles. Unlike a nearest-neighbour distance
    it is two-sided: a blurred copy misses the reference's high-contrast patches and pays
    for it.

    Args:
        a: ``(N, D)`` points.
        b: ``(M, D)`` points; ``N`` and ``M`` may differ.

    Returns:
        ``sqrt`` of the mean over directions and quantiles of the squared difference, in the
        points' units; 0 for identical distributions.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(
            f"sliced_wasserstein: expected (N, D) and (M, D) points, got {a.shape} and {b.shape}"
        )
    directions = np.random.default_rng(seed).normal(size=(a.shape[1], projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    levels = (np.arange(quantiles) + 0.5) / quantiles
    qa = np.quantile(a @ directions, levels, axis=0)
    qb = np.quantile(b @ directions, levels, axis=0)
    return float(np.sqrt(np.mean((qa - qb) ** 2)))


def style_ratio(
    stylized: np.ndarray,
    content: np.ndarray,
    region: np.ndarray,
    reference: np.ndarray,
    *,
    tone_free: bool = False,
) -> float:
    """How much closer to the exemplar's patch statistics the stylized face is than the photo.

    The :func:`sliced_wasserstein` distance between the 7x7 Lab patches of the stylized crop
    and the exemplar's, divided by the same for the unstylized content crop (each inside its
    region): 1 = no closer to the reference than the photo, 0 = the reference's own patch
    statistics. With ``tone_free`` each image's lightness is measured from its own median
    (see :func:`lab_patches`): the figure apart from skin tone, which a stylizer that keeps
    the person's tone is asked not to change.

    Args:
        stylized: ``(S, S, 3)`` ``uint8`` RGB, what is shown of the stylized crop.
        content: ``(S, S, 3)`` ``uint8`` RGB, the aligned crop it was made from.
        region: ``(S, S)`` where to compare (the head), on both crops.
        reference: the exemplar's patches in the same region,
            ``lab_patches(exemplar, exemplar_region, tone_free=tone_free)`` (computed once
            for every face).

    Returns:
        The ratio; NaN where the region or the reference holds fewer than 16 patches (a
        part of the head one of them hardly has, such as hair on a shaved head).
    """
    shown = lab_patches(stylized, region, tone_free=tone_free)
    if min(len(shown), len(reference)) < _MIN_PATCHES:
        return float("nan")
    photo = sliced_wasserstein(lab_patches(content, region, tone_free=tone_free), reference)
    return sliced_wasserstein(shown, reference) / max(photo, 1e-9)


def face_and_hair(crop: AlignedCrop, *, ears: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The head split into the face and the rest of it (hair, a hat, a turban), each
    ``(S, S)`` ``float32`` 0 or 1.

    The head is :func:`pipeline.matte.head_prior` where :func:`pipeline.matte.head_cut` (by
    colour, on the crop's surround when it has one) agrees: the prior, extrapolated from the
    landmarks, reaches above short hair into the wall or bookshelf behind it. The face is
    what the landmarks place there (skin, nose, brows, eyes, lips, mouth, and a photo's
    ears), shadows and painted patches of any colour included, and the forehead above the
    brows where it is skin-coloured (:func:`pipeline.guides.skin_guide` over 0.5): the
    landmarks alone cannot tell a forehead from the hat or turban an artist painted there.

    Args:
        crop: the aligned crop and its landmarks (an exemplar's: ``AlignedCrop(image,
            np.eye(2, 3), landmarks)``).
        ears: its ears are skin by position (a photo); ``False`` for an artwork, as in
            :func:`pipeline.guides.region_labels`.
    """
    image, landmarks, size = crop.image, crop.landmarks, crop.size
    cut = cv2.resize(head_cut(crop), (size, size), interpolation=cv2.INTER_LINEAR) > 0.5
    head = (head_prior(landmarks, size) > 0.5) & cut
    labels = region_labels(landmarks, size, ears)
    above_brows = labels == REGIONS.index("hair")
    skin = skin_guide(image, landmarks, region_masks(landmarks, size, ears=ears)) > 0.5
    face = head & (((labels != REGIONS.index("background")) & ~above_brows) | (above_brows & skin))
    return face.astype(np.float32), (head & ~face).astype(np.float32)


def sharpness(image: np.ndarray, region: np.ndarray, *, tone_free: bool = False) -> float:
    """Mean gradient magnitude of the Lab lightness inside ``region``, L units per pixel.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB aligned crop (crops of one size compare: the face
            is the same size in each).
        region: ``(S, S)`` weights, each pixel counted with its weight.
        tone_free: lightness relative to the region's median, as :func:`lab_patches` takes
            it: a face kept darker by one gain has proportionally smaller steps of L for
            the same marks, and this figure does not count that against it.
    """
    lab = _lab(image, region if tone_free else None)
    lightness = np.ascontiguousarray(lab[:, :, 0])
    # Sobel's 3x3 kernel sums to 8 times the slope of a ramp.
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3) / np.float32(8.0)
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3) / np.float32(8.0)
    weights = np.asarray(region, np.float32)
    inner = (slice(1, -1), slice(1, -1))  # the image border has no true gradient
    magnitude = cv2.magnitude(gx, gy)[inner]
    return float((magnitude * weights[inner]).sum() / max(float(weights[inner].sum()), 1e-9))


def head_share(matte: np.ndarray, head: np.ndarray) -> float:
    """Share of the head that is restyled: ``sum(matte * head) / sum(head)``.

    Args:
        matte: ``(S, S)`` 0-1, how much of the stylized crop is shown at each pixel.
        head: ``(S, S)`` 0-1, the head (hair included), e.g.
            :func:`pipeline.matte.head_prior`.
    """
    head = np.asarray(head, np.float64)
    return float((np.asarray(matte, np.float64) * head).sum() / max(head.sum(), 1e-9))


def lightness_shift(shown: np.ndarray, photo: np.ndarray, landmarks: np.ndarray) -> float:
    """How much lighter the shown face is than the person's own: the median CIELAB L* of the
    face inside its landmarks (:func:`pipeline.detail.inner_face`), shown minus photo.

    The figure of the skin-tone promise: 0 = the person's own lightness, +10 = ten L* paler
    (a dark-skinned face painted a shade paler reads as a different skin tone).

    Args:
        shown: ``(S, S, 3)`` ``uint8`` RGB, the face as shown.
        photo: ``(S, S, 3)`` ``uint8`` RGB, its input crop.
        landmarks: ``(68, 2)`` crop pixels.
    """
    inside = inner_face(landmarks, photo.shape[0])
    if not inside.any():
        return float("nan")
    # OpenCV's 8-bit L* is scaled to 0-255.
    scale = 100.0 / 255.0
    lightness = [cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0][inside] for image in (shown, photo)]
    return float(np.median(lightness[0]) - np.median(lightness[1])) * scale


def warping_errors(inputs: np.ndarray, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per frame pair, warping error of each output sequence under the input's flow.

    For each ``t``, flow from input ``t`` to ``t + 1`` (and back) is computed with DIS;
    output ``t + 1`` is warped onto ``t`` and compared with output ``t`` on pixels that pass
    the forward-backward check (Sundaram et al. 2010) and stay inside the image.

    Args:
        inputs: ``(T, H, W, 3)`` ``uint8`` RGB input frames (or crops), ``T >= 2``.
        outputs: sequences ``(T, H, W, 3)`` ``uint8`` RGB to judge, each aligned with
            ``inputs`` (pass ``inputs`` itself to get the input's own error).

    Returns:
        For each output sequence, ``(T - 1,)`` ``float64`` mean absolute difference, 0-255.
    """
    inputs = np.asarray(inputs)
    if inputs.ndim != 4 or len(inputs) < 2:
        raise ValueError(f"warping_errors: expected (T>=2, H, W, 3) inputs, got {inputs.shape}")
    errors = np.zeros((len(outputs), len(inputs) - 1))
    h, w = inputs.shape[1:3]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for t in range(len(inputs) - 1):
        forward = optical_flow(inputs[t], inputs[t + 1])
        backward = warp_by_flow(optical_flow(inputs[t + 1], inputs[t]), forward)
        mismatch = ((forward + backward) ** 2).sum(axis=2)
        scale = (forward**2).sum(axis=2) + (backward**2).sum(axis=2)
        x, y = grid_x + forward[..., 0], grid_y + forward[..., 1]
        valid = (mismatch < 0.01 * scale + 0.5) & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
        if not valid.any():
            continue
        for k, sequence in enumerate(outputs):
            warped = warp_by_flow(np.asarray(sequence[t + 1]), forward).astype(np.float32)
            diff = np.abs(warped - np.asarray(sequence[t], np.float32)).mean(axis=2)
            errors[k, t] = float(diff[valid].mean())
    return list(errors)


@dataclass(frozen=True)
class TemporalReport:
    """Temporal stability of one output sequence against its input.

    Attributes:
        output_error: mean warping error of the output, 0-255.
        input_error: the same for the input (flow errors, noise, lighting).
        ratio: ``output_error / input_error``; 1 is as steady as the input.
        detail_ratio: ``ratio`` divided by the output's mean gradient over the input's
            (:func:`mean_gradient`): flicker per unit of detail. The flow is never exact, so
            the warping error grows with the image's contrast: the input with its contrast
            doubled, as steady as the input, has ``ratio`` 2 and ``detail_ratio`` 1. A
            style sharper than the photo pays in ``ratio`` for its detail alone.
    """

    output_error: float
    input_error: float
    ratio: float
    detail_ratio: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def mean_gradient(images: Sequence[np.ndarray]) -> float:
    """Mean :func:`sharpness` of ``(H, W, 3)`` ``uint8`` RGB images over their whole area."""
    if not len(images):
        return float("nan")
    whole = np.ones(images[0].shape[:2], np.float32)
    return float(np.mean([sharpness(image, whole) for image in images]))


def _report(
    output_error: float, input_error: float, output_gradient: float, input_gradient: float
) -> TemporalReport:
    ratio = output_error / max(input_error, 1e-6)
    contrast = output_gradient / max(input_gradient, 1e-6)
    return TemporalReport(output_error, input_error, ratio, ratio / max(contrast, 1e-6))


def temporal_report(inputs: np.ndarray, outputs: np.ndarray) -> TemporalReport:
    """Warping error of ``outputs`` relative to ``inputs`` (both ``(T, H, W, 3)`` ``uint8``)."""
    own, out = (float(e.mean()) for e in warping_errors(inputs, [inputs, outputs]))
    return _report(out, own, mean_gradient(outputs), mean_gradient(inputs))


@dataclass(frozen=True)
class TrackCrops:
    """One tracked face through a clip, as the aligned crops a stylizer receives.

    Attributes:
        track_id: the tracker's id.
        frames: ``(T,)`` ``int`` index of the frame of each crop, increasing.
        crops: ``T`` aligned crops, row for row with ``frames``.
        native: row for row with ``crops``, the same face aligned at the frame's own
            resolution (its side the crop's times :func:`~pipeline.composite.magnification`)
            where :func:`clip_tracks` was asked for it and the face is enlarged at least
            :data:`~pipeline.composite.FINE_DETAIL_FROM` times, else ``None``; empty when
            not asked for.
        half: row for row with ``crops``, the same face aligned at half the crop side where
            a render stylizes it so (a small face, :class:`pipeline.restyle.SmallFaces`),
            else ``None``; empty when :func:`clip_tracks` was not asked for it.
    """

    track_id: int
    frames: np.ndarray
    crops: tuple[AlignedCrop, ...]
    native: tuple[AlignedCrop | None, ...] = ()
    half: tuple[AlignedCrop | None, ...] = ()


def clip_tracks(
    frames: Iterable[Frame],
    tracker: FaceTracker | None = None,
    native_every: int = 0,
    *,
    half_crops: bool = False,
) -> list[TrackCrops]:
    """Track, smooth and align every face of a clip, as a stylizer in the pipeline sees them.

    Args:
        frames: the clip's frames in order.
        tracker: defaults to a fresh :class:`pipeline.tracker.FaceTracker`.
        native_every: also keep every this-many-th crop of a track at the frame's own
            resolution, where the face is enlarged (:attr:`TrackCrops.native`); 0 keeps none.
        half_crops: also keep the half-size crop of each face a render stylizes at half
            the crop side (:attr:`TrackCrops.half`), by the render's own rule.

    Returns:
        One entry per track, in order of first appearance.
    """
    tracker = tracker or FaceTracker()
    small_faces = SmallFaces()
    indices: dict[int, list[int]] = {}
    crops: dict[int, list[AlignedCrop]] = {}
    natives: dict[int, list[AlignedCrop | None]] = {}
    halves: dict[int, list[AlignedCrop | None]] = {}
    for frame in frames:
        faces = [face for face in tracker.process(frame) if face.visibility > 0.0]
        aligned = [align_face(frame.image, face) for face in faces]
        small = small_faces.update(faces, [crop.matrix for crop in aligned])
        for face, crop, is_small in zip(faces, aligned, small, strict=True):
            indices.setdefault(face.track_id, []).append(frame.index)
            row = len(crops.setdefault(face.track_id, []))
            crops[face.track_id].append(crop)
            native = None
            if native_every and row % native_every == 0:
                enlarged = magnification(crop.matrix)
                if enlarged >= FINE_DETAIL_FROM:
                    native = align_face(frame.image, face, round(crop.size * enlarged))
            natives.setdefault(face.track_id, []).append(native)
            half = None
            if is_small:
                side = crop.size // 2
                half = align_face(frame.image, face, side, matrix=crop.matrix * (side / crop.size))
            halves.setdefault(face.track_id, []).append(half)
    return [
        TrackCrops(
            t,
            np.array(indices[t]),
            tuple(crops[t]),
            tuple(natives[t]) if native_every else (),
            tuple(halves[t]) if half_crops else (),
        )
        for t in indices
    ]


def pixel_detail(image: np.ndarray, region: np.ndarray) -> float:
    """Detail at the pixel scale: the mean absolute Laplacian of the grey image, weighted by
    ``region``.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB.
        region: ``(S, S)`` weights (0-1, or bool).
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    weights = np.asarray(region, np.float32)
    return float((energy * weights).sum() / max(float(weights.sum()), 1e-9))


def full_resolution_detail(
    crop: AlignedCrop,
    native: AlignedCrop,
    stylized: np.ndarray,
    mask: np.ndarray,
    fine_detail: bool = True,
) -> float:
    """Pixel-scale detail of a face as the compositor shows it in the frame, over the photo's.

    The stylized crop is put back onto the face aligned at the frame's own resolution as
    :class:`~pipeline.composite.Compositor` puts it into the frame (the same warp, fine
    detail and blend), and the head's mean absolute Laplacian is compared with the photo's.

    Args:
        crop: the aligned crop the stylizer saw, side ``S``.
        native: the same face aligned at the frame's resolution, side ``N`` > ``S``.
        stylized: ``(S, S, 3)`` ``uint8`` RGB, the stylizer's output for ``crop``.
        mask: ``(S, S)`` 0-1, the compositor's mask for it.
        fine_detail: as the compositor's setting.

    Returns:
        The ratio (1 = as much fine detail as the photo; a soft enlargement is well under 1).
    """
    size = native.size
    # native pixels -> frame -> crop pixels: the inverse map the compositor's warp reads.
    native_to_frame = np.vstack([invert_affine(native.matrix), [0.0, 0.0, 1.0]])
    native_to_crop = np.asarray(crop.matrix, np.float64) @ native_to_frame
    alpha = np.rint(np.asarray(mask, np.float32) * 255.0).astype(np.uint8)
    backend = select_backend("cpu")
    detail = fine_detail_gain(backend, crop.image, stylized) if fine_detail else None
    rgba = np.dstack([stylized, alpha])
    region = (0, 0, size, size)
    shown = place_crop(
        backend, native.image, native.image, rgba, detail, native_to_crop, region, 1.0
    )
    head = head_prior(native.landmarks, size)
    return pixel_detail(shown, head) / max(pixel_detail(native.image, head), 1e-9)


@dataclass(frozen=True)
class StyleReport:
    """How much the shown faces look like the exemplar, measured on the head.

    Attributes:
        ratios: ``(N,)`` :func:`style_ratio` per measured face.
        ratio: their median (1 = no closer to the reference than the photo, 0 = its own
            patch statistics).
        tone_free_ratio: the median of the same figure apart from skin tone
            (:func:`style_ratio` with ``tone_free``): on a dark-skinned face and a style
            painted with pale skin, what the style did beside keeping the person's tone.
        sharpness: median :func:`sharpness` of the shown faces over the exemplar's.
        input_sharpness: the same for the unstylized faces (the photo's own).
        tone_free_sharpness: the median of the same ratio apart from skin tone (both
            images' lightness relative to their own head's median): a face kept darker than
            a pale painting has smaller steps of lightness for the same marks.
        input_tone_free_sharpness: the same for the unstylized faces.
        face_ratio: the median :func:`style_ratio` on the face alone (:func:`face_and_hair`),
            against the exemplar's face.
        tone_free_face_ratio: the same apart from skin tone.
        hair_ratio: the same on the rest of the head (hair, headwear), against the rest of
            the exemplar's; NaN where no face has enough of it.
    """

    ratios: np.ndarray
    ratio: float
    tone_free_ratio: float
    sharpness: float
    input_sharpness: float
    tone_free_sharpness: float
    input_tone_free_sharpness: float
    face_ratio: float = float("nan")
    tone_free_face_ratio: float = float("nan")
    hair_ratio: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return _figures(self)


@dataclass(frozen=True)
class StylizerReport:
    """The quality figures of one stylizer on one clip, on the faces as shown: each
    stylized crop blended over its input crop through the compositor's mask.

    Attributes:
        name: the stylizer's name.
        faces: stylized crops in all.
        seconds_per_crop: wall time of ``stylize`` per crop.
        identity: see :class:`IdentityReport` (on every ``every``-th crop of each track).
        style: see :class:`StyleReport`, or ``None`` without an exemplar.
        head_share: mean share of the head (hair included, :func:`pipeline.matte.head_prior`)
            that the mask restyles.
        temporal: warping error of the shown crop sequences relative to the input's.
        full_resolution_detail: median :func:`full_resolution_detail` over the measured
            faces that are enlarged from their crops (those the tracks carry at the frame's
            resolution); NaN when there are none.
        lightness_shift: median :func:`lightness_shift` over the measured faces (L*; 0 =
            each face as light as the person's own).
    """

    name: str
    faces: int
    seconds_per_crop: float
    identity: IdentityReport
    style: StyleReport | None
    head_share: float
    temporal: TemporalReport
    full_resolution_detail: float = float("nan")
    lightness_shift: float = float("nan")

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "faces": self.faces,
            "seconds_per_crop": self.seconds_per_crop,
            "identity": self.identity.as_dict(),
            "style": None if self.style is None else self.style.as_dict(),
            "head_share": self.head_share,
            "temporal": self.temporal.as_dict(),
            "full_resolution_detail": self.full_resolution_detail,
            "lightness_shift": self.lightness_shift,
        }


def _stylize_clip(
    stylizer: Stylizer,
    tracks: Sequence[TrackCrops],
    compositor: Compositor,
    half_crops: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], float]:
    """Per track, the stylizer's crops (their necks painted as the compositor paints them),
    the crops as shown (stylized, blended over the input by the compositor's mask) and the
    masks (0-1), fed frame by frame (all faces of a frame
    at once, one batch per crop side); and the stylizer's seconds per crop.

    With ``half_crops``, a face the render stylizes at half the crop side
    (:attr:`TrackCrops.half`) is stylized and masked so, then enlarged to the full crop
    side, where every figure is measured: the face as the render makes it."""
    by_frame: dict[int, list[tuple[int, int]]] = {}
    for k, track in enumerate(tracks):
        for row, index in enumerate(track.frames):
            by_frame.setdefault(int(index), []).append((k, row))
    painted = [np.empty((len(t.crops), *t.crops[0].image.shape), np.uint8) for t in tracks]
    shown = [np.empty((len(t.crops), *t.crops[0].image.shape), np.uint8) for t in tracks]
    masks = [np.empty((len(t.crops), *t.crops[0].image.shape[:2]), np.float32) for t in tracks]
    stylizer.reset()
    compositor.reset()
    elapsed = 0.0
    for index in sorted(by_frame):
        batch = by_frame[index]
        crops = [tracks[k].crops[row] for k, row in batch]
        given = [
            (tracks[k].half[row] if half_crops and tracks[k].half else None) or crop
            for (k, row), crop in zip(batch, crops, strict=True)
        ]
        start = time.perf_counter()
        styled = stylize_by_side(stylizer, given)
        elapsed += time.perf_counter() - start
        # The matte of the face as the stylizer drew it (a pack's geometry), as a render's,
        # and its neck painted as a render paints it.
        drawn = drawn_crops(stylizer, given)
        mattes = compositor.masks(drawn)
        for (k, row), crop, drawn_crop, image, mask in zip(
            batch, crops, drawn, styled, mattes, strict=True
        ):
            image = compositor.paint_neck(drawn_crop, image)[0]
            # The edge over what lies behind it, as a render shows it.
            edged, shown_mask = compositor.over_background(drawn_crop, image, mask)
            image, edged = compositor.backend.to_numpy(image), compositor.backend.to_numpy(edged)
            if image.shape[0] != crop.size:
                full = (crop.size, crop.size)
                image, edged, mask, shown_mask = (
                    cv2.resize(layer, full, interpolation=cv2.INTER_LINEAR)
                    for layer in (image, edged, mask, shown_mask)
                )
            painted[k][row] = image
            alpha = shown_mask.astype(np.float32)[..., None] / np.float32(255.0)
            below = crop.image.astype(np.float32)
            shown[k][row] = np.rint(below + (edged - below) * alpha).astype(np.uint8)
            masks[k][row] = mask.astype(np.float32) / np.float32(255.0)
    return painted, shown, masks, elapsed / max(sum(len(t.crops) for t in tracks), 1)


def _temporal(tracks: Sequence[TrackCrops], stylized: Sequence[np.ndarray]) -> TemporalReport:
    """Warping error over every run of consecutive frames of every track, pooled."""
    own, out = [], []
    for track, styled in zip(tracks, stylized, strict=True):
        breaks = np.flatnonzero(np.diff(track.frames) != 1) + 1
        for run in np.split(np.arange(len(track.frames)), breaks):
            if len(run) < 2:
                continue
            inputs = np.stack([track.crops[i].image for i in run])
            errors = warping_errors(inputs, [inputs, styled[run]])
            own.extend(errors[0])
            out.extend(errors[1])
    if not own:
        return TemporalReport(float("nan"), float("nan"), float("nan"), float("nan"))
    inputs = [crop.image for track in tracks for crop in track.crops]
    outputs = [image for styled in stylized for image in styled]
    return _report(
        float(np.mean(out)), float(np.mean(own)), mean_gradient(outputs), mean_gradient(inputs)
    )


def evaluate_stylizer(
    stylizer: Stylizer,
    tracks: Sequence[TrackCrops],
    exemplar: Exemplar | AlignedCrop | None = None,
    *,
    compositor: Compositor | None = None,
    every: int = 4,
    half_crops: bool = False,
) -> StylizerReport:
    """Identity, style, sharpness, head coverage and temporal stability on a tracked clip.

    Args:
        stylizer: run on every crop, frame by frame, after ``reset()``.
        tracks: from :func:`clip_tracks`.
        exemplar: the aligned exemplar (its crop and landmarks) for the style figures, or
            ``None``.
        compositor: whose masks decide what of each stylized crop is shown; a default
            :class:`~pipeline.composite.Compositor` (the head matte) if ``None``.
        every: identity and style are measured on every ``every``-th crop of each track
            (a dlib descriptor costs about 100 ms).
        half_crops: stylize the small faces at half the crop side, as a render does
            (tracks from :func:`clip_tracks` with ``half_crops``); the stylizer must take
            such crops.

    Raises:
        ValueError: no tracked face.
    """
    tracks = [t for t in tracks if len(t.crops)]
    if not tracks:
        raise ValueError("evaluate_stylizer: the clip has no tracked face")
    compositor = compositor if compositor is not None else Compositor(device="cpu")
    painted, shown, masks, seconds = _stylize_clip(stylizer, tracks, compositor, half_crops)
    means = {t.track_id: _track_descriptor(t) for t in tracks}
    references = list(reference_descriptors().values())
    reference_sharpness = {False: 1.0, True: 1.0}
    exemplar_patches: dict[bool, np.ndarray] = {}
    if exemplar is not None:
        reference_head = head_prior(exemplar.landmarks, exemplar.image.shape[0])
        for tone in (False, True):
            reference_sharpness[tone] = max(
                sharpness(exemplar.image, reference_head, tone_free=tone), 1e-9
            )
            exemplar_patches[tone] = lab_patches(exemplar.image, reference_head, tone_free=tone)
        exemplar_crop = AlignedCrop(exemplar.image, np.eye(2, 3), exemplar.landmarks)
        face, hair = face_and_hair(exemplar_crop, ears=False)
        part_patches = {
            "face": lab_patches(exemplar.image, face),
            "tone-free face": lab_patches(exemplar.image, face, tone_free=True),
            "hair": lab_patches(exemplar.image, hair),
        }
    sources, results, others, shares, detail, lighter = [], [], [], [], [], []
    ratios, tone_free = [], []
    by_part: dict[str, list[float]] = {part: [] for part in ("face", "tone-free face", "hair")}
    # Per tone_free: the shown faces' sharpness, then the photos', over the exemplar's.
    sharp: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
    for track, own_painted, styled, mask in zip(tracks, painted, shown, masks, strict=True):
        own = means[track.track_id]
        strangers = [means[t] for t in means if t != track.track_id]
        # A shipped photo of this very person is not "someone else".
        strangers += [r for r in references if descriptor_distance(r, own) >= SAME_PERSON]
        for row in range(0, len(track.crops), every):
            crop = track.crops[row]
            head = head_prior(crop.landmarks, crop.size)
            shares.append(head_share(mask[row], head))
            native = track.native[row] if track.native else None
            if native is not None:
                detail.append(
                    full_resolution_detail(
                        crop, native, own_painted[row], mask[row], compositor.fine_detail
                    )
                )
            lighter.append(lightness_shift(styled[row], crop.image, crop.landmarks))
            sources.append(face_descriptor(crop.image, crop.landmarks))
            results.append(face_descriptor(styled[row], crop.landmarks))
            others.append(np.array(strangers).reshape(-1, 128))
            if exemplar_patches:
                pair = (styled[row], crop.image, head)
                ratios.append(style_ratio(*pair, exemplar_patches[False]))
                tone_free.append(style_ratio(*pair, exemplar_patches[True], tone_free=True))
                face, hair = face_and_hair(crop)
                for part, region in (("face", face), ("tone-free face", face), ("hair", hair)):
                    tone = part == "tone-free face"
                    ratio = style_ratio(*pair[:2], region, part_patches[part], tone_free=tone)
                    by_part[part].append(ratio)
                for tone, (shown_sharp, photo_sharp) in sharp.items():
                    scale = reference_sharpness[tone]
                    shown_sharp.append(sharpness(styled[row], head, tone_free=tone) / scale)
                    photo_sharp.append(sharpness(crop.image, head, tone_free=tone) / scale)
    style = None
    if ratios:
        style = StyleReport(
            ratios=np.array(ratios),
            ratio=float(np.median(ratios)),
            tone_free_ratio=float(np.median(tone_free)),
            sharpness=float(np.median(sharp[False][0])),
            input_sharpness=float(np.median(sharp[False][1])),
            tone_free_sharpness=float(np.median(sharp[True][0])),
            input_tone_free_sharpness=float(np.median(sharp[True][1])),
            face_ratio=_nan_median(by_part["face"]),
            tone_free_face_ratio=_nan_median(by_part["tone-free face"]),
            hair_ratio=_nan_median(by_part["hair"]),
        )
    return StylizerReport(
        name=stylizer.name,
        faces=sum(len(t.crops) for t in tracks),
        seconds_per_crop=seconds,
        identity=identity_report(np.array(sources), np.array(results), others),
        style=style,
        head_share=float(np.mean(shares)),
        temporal=_temporal(tracks, shown),
        full_resolution_detail=float(np.median(detail)) if detail else float("nan"),
        lightness_shift=float(np.nanmedian(lighter)),
    )


def _nan_median(values: Sequence[float]) -> float:
    """The median of the finite values; NaN if there are none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.median(finite)) if finite else float("nan")


def _track_descriptor(track: TrackCrops) -> np.ndarray:
    """``(128,)`` mean descriptor of a track's input face (first, middle and last crop)."""
    rows = sorted({0, len(track.crops) // 2, len(track.crops) - 1})
    return np.mean(
        [face_descriptor(track.crops[r].image, track.crops[r].landmarks) for r in rows], axis=0
    )
