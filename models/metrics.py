"""Quality, measured: identity, style fidelity and temporal stability of stylized faces.

- Identity: dlib's 128-D face descriptor distance between each input face and its stylized
  face (dlib calls two faces the same person under 0.6). Because an absolute threshold says
  little about drawings, also the *margin*: is the stylized face closer to its own source than
  to any other person's face?
- Style fidelity: mean distance from the stylized crop's patches to their nearest exemplar
  patches (RMS per pixel, 0-255 units), reported beside the same for the unstylized input, so
  lower than the input's means "made of the exemplar's patches".
- Temporal stability: warping error — the next output frame warped back onto the current one
  with optical flow computed on the *input* (OpenCV DIS), pixels failing a forward-backward
  check left out — relative to the same error of the input itself (1 = as steady as the input).
  On a clip (:func:`evaluate_stylizer`) it is measured on each track's sequence of aligned
  crops, the stylizer's own input and output, so compositing and background do not dilute it.

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

from pipeline.align import align_face
from pipeline.flow import optical_flow, warp_by_flow
from pipeline.frame import AlignedCrop, Frame
from pipeline.landmarks import detect_landmarks, model_path
from pipeline.samples import FACE_PHOTOS, face_photo
from pipeline.stylizer import Stylizer
from pipeline.tracker import FaceTracker

__all__ = [
    "SAME_PERSON",
    "IdentityReport",
    "StylizerReport",
    "TemporalReport",
    "TrackCrops",
    "clip_tracks",
    "descriptor_distance",
    "evaluate_stylizer",
    "face_descriptor",
    "face_descriptors",
    "identity_report",
    "reference_descriptors",
    "style_distance",
    "temporal_report",
    "warping_errors",
]

SAME_PERSON = 0.6
"""dlib's descriptor distance under which two faces are called the same person."""


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
        data = asdict(self)
        data.pop("distances")
        return data


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


def _patches(image: np.ndarray, size: int, patch: int, stride: int) -> np.ndarray:
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(small, (patch, patch), axis=(0, 1))
    return windows[::stride, ::stride].reshape(-1, patch * patch * 3)


def style_distance(
    image: np.ndarray,
    exemplar: np.ndarray,
    *,
    size: int = 128,
    patch: int = 5,
    stride: int = 2,
) -> float:
    """Mean distance from each patch of ``image`` to its nearest patch of ``exemplar``.

    Exact nearest neighbours on both images resized to ``size`` (patches every ``stride``
    pixels), so the figure is reproducible; 0 when ``image`` is made of exemplar patches.

    Args:
        image: ``(S, S, 3)`` ``uint8`` RGB stylized (or input) crop.
        exemplar: ``(S', S', 3)`` ``uint8`` RGB exemplar crop.

    Returns:
        RMS difference per pixel and channel, 0-255 units.
    """
    query = _patches(image, size, patch, stride)
    bank = _patches(exemplar, size, patch, stride)
    # |q - b|^2 = |q|^2 - 2 q.b + |b|^2, in blocks to bound memory.
    bank_norm = (bank**2).sum(axis=1)
    nearest = np.empty(len(query), np.float32)
    for start in range(0, len(query), 1024):
        block = query[start : start + 1024]
        d2 = (block**2).sum(axis=1)[:, None] - 2.0 * block @ bank.T + bank_norm[None, :]
        nearest[start : start + 1024] = np.maximum(d2.min(axis=1), 0.0)
    return float(np.sqrt(nearest / query.shape[1]).mean())


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
    """

    output_error: float
    input_error: float
    ratio: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def temporal_report(inputs: np.ndarray, outputs: np.ndarray) -> TemporalReport:
    """Warping error of ``outputs`` relative to ``inputs`` (both ``(T, H, W, 3)`` ``uint8``)."""
    own, out = (float(e.mean()) for e in warping_errors(inputs, [inputs, outputs]))
    return TemporalReport(output_error=out, input_error=own, ratio=out / max(own, 1e-6))


@dataclass(frozen=True)
class TrackCrops:
    """One tracked face through a clip, as the aligned crops a stylizer receives.

    Attributes:
        track_id: the tracker's id.
        frames: ``(T,)`` ``int`` index of the frame of each crop, increasing.
        crops: ``T`` aligned crops, row for row with ``frames``.
    """

    track_id: int
    frames: np.ndarray
    crops: tuple[AlignedCrop, ...]


def clip_tracks(frames: Iterable[Frame], tracker: FaceTracker | None = None) -> list[TrackCrops]:
    """Track, smooth and align every face of a clip, as a stylizer in the pipeline sees them.

    Args:
        frames: the clip's frames in order.
        tracker: defaults to a fresh :class:`pipeline.tracker.FaceTracker`.

    Returns:
        One entry per track, in order of first appearance.
    """
    tracker = tracker or FaceTracker()
    indices: dict[int, list[int]] = {}
    crops: dict[int, list[AlignedCrop]] = {}
    for frame in frames:
        for face in tracker.process(frame):
            if face.visibility <= 0.0:
                continue
            indices.setdefault(face.track_id, []).append(frame.index)
            crops.setdefault(face.track_id, []).append(align_face(frame.image, face))
    return [TrackCrops(t, np.array(indices[t]), tuple(crops[t])) for t in indices]


@dataclass(frozen=True)
class StylizerReport:
    """The three quality figures of one stylizer on one clip.

    Attributes:
        name: the stylizer's name.
        faces: stylized crops in all.
        seconds_per_crop: wall time of ``stylize`` per crop.
        identity: see :class:`IdentityReport` (on every ``every``-th crop of each track).
        style: mean :func:`style_distance` of the stylized crops to the exemplar, or ``None``
            without an exemplar.
        style_input: the same for the unstylized input crops (the figure to beat).
        temporal: warping error of the stylized crop sequences relative to the input's.
    """

    name: str
    faces: int
    seconds_per_crop: float
    identity: IdentityReport
    style: float | None
    style_input: float | None
    temporal: TemporalReport

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "faces": self.faces,
            "seconds_per_crop": self.seconds_per_crop,
            "identity": self.identity.as_dict(),
            "style": self.style,
            "style_input": self.style_input,
            "temporal": self.temporal.as_dict(),
        }


def _stylize_clip(
    stylizer: Stylizer, tracks: Sequence[TrackCrops]
) -> tuple[list[np.ndarray], float]:
    """Stylized crops per track, fed frame by frame (all faces of a frame in one batch)."""
    by_frame: dict[int, list[tuple[int, int]]] = {}
    for k, track in enumerate(tracks):
        for row, index in enumerate(track.frames):
            by_frame.setdefault(int(index), []).append((k, row))
    out = [np.empty((len(t.crops), *t.crops[0].image.shape), np.uint8) for t in tracks]
    stylizer.reset()
    start = time.perf_counter()
    for index in sorted(by_frame):
        batch = by_frame[index]
        styled = stylizer.stylize([tracks[k].crops[row] for k, row in batch])
        for (k, row), image in zip(batch, styled, strict=True):
            out[k][row] = image
    elapsed = time.perf_counter() - start
    return out, elapsed / max(sum(len(t.crops) for t in tracks), 1)


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
        return TemporalReport(float("nan"), float("nan"), float("nan"))
    own_mean, out_mean = float(np.mean(own)), float(np.mean(out))
    return TemporalReport(out_mean, own_mean, out_mean / max(own_mean, 1e-6))


def evaluate_stylizer(
    stylizer: Stylizer,
    tracks: Sequence[TrackCrops],
    exemplar: np.ndarray | None = None,
    *,
    every: int = 4,
) -> StylizerReport:
    """Identity, style fidelity and temporal stability of a stylizer on a tracked clip.

    Args:
        stylizer: run on every crop, frame by frame, after ``reset()``.
        tracks: from :func:`clip_tracks`.
        exemplar: ``(S, S, 3)`` ``uint8`` RGB exemplar crop for style fidelity, or ``None``.
        every: identity and style are measured on every ``every``-th crop of each track
            (a dlib descriptor costs about 100 ms).

    Raises:
        ValueError: no tracked face.
    """
    tracks = [t for t in tracks if len(t.crops)]
    if not tracks:
        raise ValueError("evaluate_stylizer: the clip has no tracked face")
    stylized, seconds = _stylize_clip(stylizer, tracks)
    means = {t.track_id: _track_descriptor(t) for t in tracks}
    references = list(reference_descriptors().values())
    sources, results, others, style, style_input = [], [], [], [], []
    for track, styled in zip(tracks, stylized, strict=True):
        own = means[track.track_id]
        strangers = [means[t] for t in means if t != track.track_id]
        # A shipped photo of this very person is not "someone else".
        strangers += [r for r in references if descriptor_distance(r, own) >= SAME_PERSON]
        for row in range(0, len(track.crops), every):
            crop = track.crops[row]
            sources.append(face_descriptor(crop.image, crop.landmarks))
            results.append(face_descriptor(styled[row], crop.landmarks))
            others.append(np.array(strangers).reshape(-1, 128))
            if exemplar is not None:
                style.append(style_distance(styled[row], exemplar))
                style_input.append(style_distance(crop.image, exemplar))
    return StylizerReport(
        name=stylizer.name,
        faces=sum(len(t.crops) for t in tracks),
        seconds_per_crop=seconds,
        identity=identity_report(np.array(sources), np.array(results), others),
        style=float(np.mean(style)) if style else None,
        style_input=float(np.mean(style_input)) if style_input else None,
        temporal=_temporal(tracks, stylized),
    )


def _track_descriptor(track: TrackCrops) -> np.ndarray:
    """``(128,)`` mean descriptor of a track's input face (first, middle and last crop)."""
    rows = sorted({0, len(track.crops) // 2, len(track.crops) - 1})
    return np.mean(
        [face_descriptor(track.crops[r].image, track.crops[r].landmarks) for r in rows], axis=0
    )
