"""The teacher: guided patch-based synthesis of a content face in the exemplar's style.

Every pixel of the output is painted with the exemplar's own patches, chosen where the
guides agree (StyLit / FaceStyle): multi-scale PatchMatch over colour + guide features, patch
voting, and a few EM iterations per level, so the output is the exemplar's texture laid out
as the content face. Slow (about a second a crop) and not temporally stable on its own; it
makes the training targets of the student.

The appearance guide stays on every pixel with a weight that lets the content's own
structure win (its eyes, its open mouth, a microphone at its lips); a positional-dominant
version pasted the exemplar's features on every face (see DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from models.exemplar import Exemplar
from models.patchmatch import occupancy, pad_features, patchmatch, vote
from pipeline.detail import DEFAULT_IDENTITY_SCALE, restore_tone
from pipeline.flow import optical_flow, warp_by_flow
from pipeline.frame import AlignedCrop
from pipeline.guides import REGIONS, Guides, compute_guides

__all__ = [
    "Synthesis",
    "TeacherParams",
    "TeacherStylizer",
    "stylize_face",
    "synthesize",
    "toned",
]


@dataclass(frozen=True)
class TeacherParams:
    """Settings of the teacher.

    Attributes:
        levels: pyramid levels; the coarsest is ``S / 2**(levels - 1)`` pixels a side.
        em_iterations: EM iterations (match, then vote) per level, coarse to fine.
        pm_iterations: PatchMatch scans per EM iteration.
        patch: patch side in pixels (odd).
        color: weight of the colour term (the current estimate against the exemplar).
        positional: weight of the positional guide (where on the face).
        regions: weight of the region masks (which part of the face).
        appearance: weight of the appearance guide (the content's own shading) — keep it
            high enough that the content's eyes and mouth survive.
        edges: weight of the edge guide.
        skin: weight of the skin guide: skin painted with the artist's skin, hair and hats
            with what the artist painted above the brows.
        uniformity: occupancy penalty per already-matched patch, as a fraction of a patch
            whose every pixel is off by 1 in one unit-weight channel; 0 turns it off.
        final_radius: radius of the last vote, which makes the output: 0 copies each
            pixel from the centre of its matched exemplar patch, so brush marks and hatching
            come out as crisp as in the exemplar (averaging the ``patch``-wide overlapping
            patches, as the EM iterations do, blurs them: on the shared artworks the head's
            sharpness fell to 0.5-0.9 of the exemplar's, against 0.8-1.0 copied);
            ``patch // 2`` keeps the plain vote.
        temporal: weight of the temporal guide — the previous output warped onto this frame
            by optical flow — when a sequence is synthesized (:class:`TeacherStylizer`);
            0 paints every frame on its own (and it flickers).
        warm_iterations: EM iterations of a warm start (``synthesize``'s ``start``), at the
            finest level only. Van Gogh's keyframes on the shared clips scored the same at 1
            and 2 (``docs/quality-log.md``), in half the time.
        seed: random seed of PatchMatch.
    """

    levels: int = 3
    em_iterations: tuple[int, ...] = (4, 3, 2)
    pm_iterations: int = 2
    patch: int = 5
    color: float = 1.0
    positional: float = 3.0
    regions: float = 1.0
    appearance: float = 15.0
    edges: float = 4.0
    skin: float = 3.0
    uniformity: float = 0.005
    final_radius: int = 0
    temporal: float = 0.0
    warm_iterations: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.em_iterations) != self.levels:
            raise ValueError(
                f"TeacherParams: expected {self.levels} em_iterations, got {self.em_iterations}"
            )
        if min(self.em_iterations) < 1 or self.warm_iterations < 1:
            raise ValueError(
                "TeacherParams: expected at least 1 EM iteration per level and warm start, "
                f"got {self.em_iterations} and {self.warm_iterations}"
            )
        if self.patch < 3 or self.patch % 2 == 0:
            raise ValueError(f"TeacherParams.patch: expected an odd size >= 3, got {self.patch}")
        if not 0 <= self.final_radius <= self.patch // 2:
            raise ValueError(
                f"TeacherParams.final_radius: expected 0..{self.patch // 2}, "
                f"got {self.final_radius}"
            )

    def guide_weights(self) -> np.ndarray:
        """``(2 + len(REGIONS) + 3,)`` ``float32`` weights in :meth:`Guides.stack` order."""
        return np.array(
            [self.positional] * 2
            + [self.regions] * len(REGIONS)
            + [self.appearance, self.edges, self.skin],
            np.float32,
        )


@dataclass(frozen=True)
class Synthesis:
    """The teacher's output with what it was made from.

    Attributes:
        image: ``(S, S, 3)`` ``uint8`` RGB stylized crop.
        nnf: ``(S, S, 2)`` ``int32`` for each output pixel, the exemplar pixel ``y, x`` at
            the centre of its matched patch.
        distance: ``(S, S)`` ``float32`` each patch's final guided distance.
    """

    image: np.ndarray
    nnf: np.ndarray
    distance: np.ndarray = field(repr=False)


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    if array.shape[0] == size:
        return array
    return cv2.resize(array, (size, size), interpolation=cv2.INTER_AREA)


def _upsample(nnf: np.ndarray, source_size: int) -> np.ndarray:
    """A field at twice the resolution: each match doubled, children offset like their pixel."""
    size = nnf.shape[0] * 2
    grid = np.indices((size, size)).transpose(1, 2, 0)
    doubled = np.repeat(np.repeat(nnf, 2, axis=0), 2, axis=1) * 2 + grid % 2
    return np.clip(doubled, 0, source_size - 1).astype(np.int32)


def _clipped(nnf: np.ndarray, source_size: int) -> np.ndarray:
    """``nnf`` as a contiguous ``int32`` field of exemplar pixels within the exemplar."""
    if nnf.ndim != 3 or nnf.shape[:2] != (source_size, source_size) or nnf.shape[2] != 2:
        raise ValueError(
            f"synthesize: expected a start field of shape ({source_size}, {source_size}, 2), "
            f"got {nnf.shape}"
        )
    return np.ascontiguousarray(np.clip(nnf, 0, source_size - 1), dtype=np.int32)


def _initial_field(positional: np.ndarray, size: int, source_size: int) -> np.ndarray:
    """Each target pixel matched where the positional guide says it lands."""
    scaled = _resize(positional, size) * (size / positional.shape[0])
    yx = np.rint(scaled[..., ::-1]).astype(np.int32)
    return np.ascontiguousarray(np.clip(yx, 0, source_size - 1))


def synthesize(
    exemplar: Exemplar,
    content: Guides,
    params: TeacherParams | None = None,
    previous: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> Synthesis:
    """Paint the content crop (known by its guides) with the exemplar's patches.

    Args:
        exemplar: the prepared style portrait.
        content: the content crop's guides, from :func:`compute_guides` against
            ``exemplar.reference`` (same size as the exemplar crop).
        params: settings; defaults if ``None``.
        previous: ``(S, S, 3)`` ``uint8`` RGB, the previous frame's output warped onto this
            crop; with ``params.temporal > 0`` it guides the output to stay like it
            (the temporal guide of Jamriška et al. 2019). ``None`` for a single image.
        start: ``(S, S, 2)`` ``int32``, a field to begin from at the finest level, skipping
            the coarser ones, with ``params.warm_iterations`` EM iterations there (a warm
            start): the previous keyframe's :attr:`Synthesis.nnf` carried onto this crop,
            whose layout the coarse levels would only find again. A third of the time; see
            :mod:`models.keyframes` for what it did to a video's paintings.
    """
    params = params or TeacherParams()
    size = exemplar.size
    radius = params.patch // 2
    weights = np.sqrt(params.guide_weights())
    source_guides = exemplar.guides.stack() * weights
    target_guides = content.stack() * weights
    style = exemplar.image.astype(np.float32) / np.float32(255.0)
    if previous is not None and params.temporal > 0:
        # Exemplar colours on one side, the expected colours on the other.
        temporal = np.float32(np.sqrt(params.temporal))
        source_guides = np.concatenate([source_guides, style * temporal], axis=2)
        expected = previous.astype(np.float32) / np.float32(255.0) * temporal
        target_guides = np.concatenate([target_guides, expected], axis=2)
    color = np.float32(np.sqrt(params.color))
    penalty = params.uniformity * params.patch**2
    nnf = None
    first = 0 if start is None else params.levels - 1
    for level in range(first, params.levels):
        side = size >> (params.levels - 1 - level)
        level_style = _resize(style, side)
        level_guides = _resize(source_guides, side)
        source = pad_features(np.concatenate([level_style * color, level_guides], axis=2), radius)
        source_guides_only = pad_features(
            np.concatenate([np.zeros_like(level_style), level_guides], axis=2), radius
        )
        level_target = _resize(target_guides, side)
        if nnf is None and start is None:
            nnf = _initial_field(content.positional, side, side)
            search = side // 2
        else:
            # Finer levels, and a warm start, refine a layout already found; long jumps
            # rarely pay.
            nnf = _upsample(nnf, side) if nnf is not None else _clipped(start, side)
            search = max(side // 8, 4)
        used = occupancy(nnf, (side, side))
        estimate = vote(level_style, nnf, radius)
        iterations = params.em_iterations[level] if start is None else params.warm_iterations
        for iteration in range(iterations):
            # The first match is made on the guides alone: an estimate voted from the
            # positional start is the exemplar's own face reshaped (its eyes, its glasses),
            # and a colour term would hold on to it.
            guides_only = start is None and level == 0 and iteration == 0
            weight = np.float32(0.0) if guides_only else color
            target = pad_features(np.concatenate([estimate * weight, level_target], axis=2), radius)
            distance = patchmatch(
                source_guides_only if guides_only else source,
                target,
                nnf,
                used,
                radius,
                penalty,
                params.pm_iterations,
                search,
                params.seed + 101 * level + iteration,
            )
            estimate = vote(level_style, nnf, radius)
    if params.final_radius != radius:
        estimate = vote(style, nnf, params.final_radius)
    image = np.clip(estimate * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Synthesis(image=image, nnf=nnf, distance=distance)


def stylize_face(
    exemplar: Exemplar,
    content_crop: np.ndarray,
    content_landmarks: np.ndarray,
    params: TeacherParams | None = None,
) -> np.ndarray:
    """One content face in the exemplar's style.

    Args:
        exemplar: the prepared style portrait (crop side ``S``).
        content_crop: ``(S, S, 3)`` ``uint8`` RGB aligned content crop.
        content_landmarks: ``(68, 2)`` its landmarks in crop pixels.
        params: teacher settings; defaults if ``None``.

    Returns:
        ``(S, S, 3)`` ``uint8`` RGB; with the content face's own brightness when the
        exemplar keeps skin tone (:func:`pipeline.detail.restore_tone`).
    """
    guides = compute_guides(content_crop, content_landmarks, exemplar.reference)
    return toned(
        exemplar, synthesize(exemplar, guides, params).image, content_crop, content_landmarks
    )


def toned(
    exemplar: Exemplar, image: np.ndarray, content: np.ndarray, landmarks: np.ndarray
) -> np.ndarray:
    """``image`` with the content face's brightness when the exemplar keeps skin tone."""
    if not exemplar.keep_tone:
        return image
    return restore_tone(image[None], content[None], np.asarray(landmarks)[None])[0]


class TeacherStylizer:
    """The teacher as a :class:`pipeline.stylizer.Stylizer` (about a second per crop).

    Used to judge an exemplar on a clip (``facestyle eval --teacher``) and to measure how
    much the teacher flickers when run frame by frame. With ``params.temporal > 0`` each
    track's previous output, warped onto the new crop by optical flow between the input
    crops, guides the next one.
    """

    name = "teacher"
    # The appearance guide already keeps the person's own shading.
    default_identity = 0.0
    identity_scale = DEFAULT_IDENTITY_SCALE

    def __init__(self, exemplar: Exemplar, params: TeacherParams | None = None) -> None:
        self.exemplar = exemplar
        self.params = params or TeacherParams()
        self.crop_size = exemplar.size
        self.reset()

    def stylize(self, crops: Sequence[AlignedCrop]) -> np.ndarray:
        """``N`` aligned crops → ``(N, S, S, 3)`` ``uint8`` RGB stylized crops (``S`` the
        exemplar's size)."""
        out = np.empty((len(crops), self.crop_size, self.crop_size, 3), np.uint8)
        for i, crop in enumerate(crops):
            guides = compute_guides(crop.image, crop.landmarks, self.exemplar.reference)
            expected = None
            if self.params.temporal > 0 and crop.track_id in self._last:
                last_input, last_output = self._last[crop.track_id]
                flow = optical_flow(crop.image, last_input)
                expected = warp_by_flow(last_output, flow)
            image = synthesize(self.exemplar, guides, self.params, expected).image
            out[i] = toned(self.exemplar, image, crop.image, crop.landmarks)
            self._last[crop.track_id] = (crop.image, out[i].copy())
        return out

    def reset(self) -> None:
        """Forget every track's previous crop and output."""
        self._last: dict[int, tuple[np.ndarray, np.ndarray]] = {}
