"""Keyframe painting: the teacher paints each face every few frames, the flow carries it.

The real-time student learns the average of its teacher's paintings and shows a tinted photo
where the teacher paints the artist's marks (``docs/quality-log.md``). A file can wait for
the teacher: about a second a face, every ``every``-th frame of each track. Between keyframes
the last painting is carried along the face's optical flow, chained frame to frame so that it
moves exactly as the face did, and each new keyframe is painted with the carried one as its
temporal guide (Jamriška et al. 2019) and faded in over ``fade`` frames, so no painting
replaces another at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from models.exemplar import Exemplar, exemplar_from_crop
from models.pack import StylePack
from models.teacher import TeacherParams, synthesize, toned
from pipeline.detail import DEFAULT_IDENTITY_SCALE
from pipeline.flow import chain_flow, optical_flow, warp_by_flow
from pipeline.frame import AlignedCrop
from pipeline.guides import compute_guides

__all__ = ["ARTWORK_IDENTITY", "KeyframePainter", "KeyframeSettings", "pack_exemplar"]

ARTWORK_IDENTITY = 0.75
"""The identity of keyframes painted straight from an artwork, with no pack to say it. Six of
the shared artworks on the shared clip 3: at 0.35 the album portrait of Confucius kept the
person in 75 % of the frames judged and Vermeer's turned head in 88 %, at 0.75 both in all,
with the same style figures (within 0.02) for about 0.05 more warping error."""


@dataclass(frozen=True)
class KeyframeSettings:
    """How often the teacher paints a face, and how its paintings meet.

    Attributes:
        every: frames of a track from one keyframe to the next (1 paints every frame).
        fade: frames over which a new keyframe's painting replaces the carried one (0: at
            once), less than ``every``; ``None``: half of ``every``.
        temporal: weight of the temporal guide, the carried painting, when a keyframe is
            painted (:attr:`models.teacher.TeacherParams.temporal`).
    """

    every: int = 8
    fade: int | None = None
    temporal: float = 2.0

    def __post_init__(self) -> None:
        if not (isinstance(self.every, int) and self.every >= 1):
            raise ValueError(
                f"KeyframeSettings.every: expected a whole number >= 1, got {self.every!r}"
            )
        if self.fade is None:
            object.__setattr__(self, "fade", self.every // 2)
        if not (isinstance(self.fade, int) and 0 <= self.fade < self.every):
            raise ValueError(
                f"KeyframeSettings.fade: expected a whole number from 0 to {self.every - 1}, "
                f"got {self.fade!r}"
            )
        if not self.temporal >= 0:
            raise ValueError(f"KeyframeSettings.temporal: expected >= 0, got {self.temporal!r}")


@dataclass
class _Painting:
    """A keyframe's painting and the flow from the track's latest crop back onto it.

    Attributes:
        image: ``(S, S, 3)`` ``uint8`` RGB, painted on the keyframe's crop (before its tone).
        flow: ``(S, S, 2)`` ``float32``, each pixel of the latest crop to where it was in the
            keyframe's crop.
    """

    image: np.ndarray
    flow: np.ndarray

    def carried(self) -> np.ndarray:
        """``(S, S, 3)`` ``uint8``: the painting moved onto the latest crop."""
        # Bicubic: bilinear resampling softens a stroke by a different amount each frame.
        return warp_by_flow(self.image, self.flow, cv2.INTER_CUBIC)


@dataclass
class _Track:
    """One face's keyframes: the latest crop, its painting and the one fading out."""

    last_crop: np.ndarray
    painting: _Painting
    fading: _Painting | None = None
    age: int = 0  # frames since the keyframe


class KeyframePainter:
    """The teacher as a video stylizer for files: keyframes painted, carried between.

    A :class:`pipeline.stylizer.Stylizer`. Each call must hold every face of one frame, at
    one crop side (a track missing from a call has ended, and starts afresh if it returns),
    so the restyler runs it with full-size crops only.

    Args:
        exemplar: the artwork the teacher paints from (:func:`pack_exemplar`).
        settings: how often it paints; the defaults if ``None``.
        name: the style's name, for summaries.
        identity: the default strength of each frame's own fine detail over the carried
            painting (a pack's own identity). Van Gogh's, every 8th frame: at 0 the face of
            the shared clip 2 stayed under 0.6 in 88 % of the frames judged, at 0.35 in all.
    """

    identity_scale = DEFAULT_IDENTITY_SCALE

    def __init__(
        self,
        exemplar: Exemplar,
        settings: KeyframeSettings | None = None,
        name: str = "teacher",
        identity: float = 0.35,
    ) -> None:
        self.exemplar = exemplar
        self.default_identity = identity
        self.settings = settings or KeyframeSettings()
        self.name = f"{name} (keyframes every {self.settings.every})"
        self.crop_size = exemplar.size
        self.paintings = 0  # keyframes painted since construction
        self._params = TeacherParams(temporal=self.settings.temporal)
        self.reset()

    def reset(self) -> None:
        """Forget every track."""
        self._tracks: dict[int, _Track] = {}

    def stylize(self, crops: Sequence[AlignedCrop]) -> np.ndarray:
        """``N`` aligned crops of one frame → ``(N, S, S, 3)`` ``uint8`` RGB."""
        seen = {crop.track_id for crop in crops}
        self._tracks = {k: v for k, v in self._tracks.items() if k in seen}
        out = np.empty((len(crops), self.crop_size, self.crop_size, 3), np.uint8)
        for i, crop in enumerate(crops):
            if crop.size != self.crop_size:
                raise ValueError(
                    f"KeyframePainter: expected {self.crop_size} px crops, got {crop.size}"
                )
            track = self._advance(crop)
            shown = track.painting.carried()
            if track.fading is not None:
                weight = np.float32((track.age + 1) / (self.settings.fade + 1))
                earlier = track.fading.carried().astype(np.float32)
                shown = np.rint(earlier + (shown - earlier) * weight).astype(np.uint8)
            out[i] = toned(self.exemplar, shown, crop.image, crop.landmarks)
        return out

    def _advance(self, crop: AlignedCrop) -> _Track:
        """The crop's track moved on to it: carried along the flow, or a new keyframe."""
        track = self._tracks.get(crop.track_id)
        if track is None:
            still = np.zeros((*crop.image.shape[:2], 2), np.float32)
            track = _Track(crop.image, _Painting(self._paint(crop, None), still))
            self._tracks[crop.track_id] = track
            return track
        step = optical_flow(crop.image, track.last_crop)
        for painting in (track.painting, track.fading):
            if painting is not None:
                painting.flow = chain_flow(step, painting.flow)
        track.last_crop = crop.image
        track.age += 1
        if track.age >= self.settings.every:
            previous = track.painting
            still = np.zeros_like(step)
            track.painting = _Painting(self._paint(crop, previous.carried()), still)
            track.fading = previous if self.settings.fade else None
            track.age = 0
        elif track.age >= self.settings.fade:
            track.fading = None
        return track

    def _paint(self, crop: AlignedCrop, carried: np.ndarray | None) -> np.ndarray:
        """The teacher's painting of ``crop``, guided by ``carried`` where there is one."""
        self.paintings += 1
        guides = compute_guides(crop.image, crop.landmarks, self.exemplar.reference)
        params = self._params if carried is not None else replace(self._params, temporal=0.0)
        return synthesize(self.exemplar, guides, params, carried).image


def pack_exemplar(pack: StylePack) -> Exemplar:
    """The artwork a style pack was made from, as the teacher takes it.

    A pack stores its aligned exemplar (``thumbnail``); packs made before facestyle kept it
    at full size hold it at 128 px, enlarged here, so their keyframes are softer.
    """
    image = pack.thumbnail
    if image.shape[0] != pack.crop_size:
        side = (pack.crop_size, pack.crop_size)
        image = cv2.resize(image, side, interpolation=cv2.INTER_CUBIC)
    return exemplar_from_crop(
        image, pack.exemplar_landmarks, keep_tone=pack.keep_tone, monochrome=pack.monochrome
    )
