"""One frame through the face stages: track → align → stylize → restore detail → composite.

This is where the per-frame stages are wired, once; the Python API calls
:meth:`Restyler.process`, the threaded runner (renders, live sessions, batches, the
benchmarks) its three parts (:attr:`Restyler.stages`: analyse, stylize, composite) on three
threads, so one frame is composited while the next is stylized and the one after tracked
(stylize and composite on one thread set the pace of a 720p render; split, interleaved runs
on 2 cores were 3-13 % faster). A :class:`~pipeline.stylizer.StagedStylizer` (a style
pack) has its work spread over all three: what it reads from the input crops alone is
prepared with the analysis, its finishing touches are made with the composite, so the
stylizing thread, the slowest, only paints.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from pipeline.align import align_face, alignment_matrix, box_centre
from pipeline.cartoon import CartoonStylizer
from pipeline.composite import Compositor, magnification
from pipeline.degrade import DegradePolicy, DegradeSettings, sheds
from pipeline.detail import MAX_IDENTITY, restore_detail
from pipeline.frame import AlignedCrop, Face, Frame
from pipeline.stylizer import StagedStylizer, Stylizer, drawn_crops
from pipeline.timings import StageTimings
from pipeline.tracker import FaceTracker
from pipeline.xp import array_module

__all__ = [
    "HALF_CROPS_AFTER",
    "HALF_CROPS_AT",
    "STAGES",
    "Analysis",
    "Restyler",
    "SmallFaces",
    "Stylized",
    "stylize_by_side",
]

# The stages in the order they run, as named in :attr:`Restyler.timings`.
STAGES = ("track", "align", "prepare", "stylize", "finish", "detail", "composite")

HALF_CROPS_AT = 0.5
"""The magnification (frame pixels per crop pixel of a full-size crop) at or below which a
face is aligned and stylized at half the crop side, when it was shown that small in each of
its last :data:`HALF_CROPS_AFTER` frames: a crop shown at half its size or less holds detail
the frame cannot show, so a small face costs a quarter of the work and looks no coarser."""

HALF_CROPS_AFTER = 15
"""Frames a face must be shown small in before its crops go to half size; one frame larger
brings them back to full at once. A size change restarts the stylizer's track of the face,
so a face near the limit switches at most once every this many frames; and the choice
depends on these frames alone, so a batch segment's warm-up makes the same choice as one
long render."""


@dataclass(frozen=True)
class Analysis:
    """One frame's visible faces, tracked and aligned, waiting to be stylized.

    Attributes:
        frame: the input frame.
        faces: the faces to restyle (visibility above 0).
        crops: ``crops[i]`` is ``faces[i]`` aligned to ``stylizer.crop_size``, or to half
            of it (a small face, or live's "smaller crops" step).
        stylizer: the stylizer the crops were aligned for (a style switch between the two
            halves of :meth:`Restyler.process` must not pair crops with the wrong size).
        step: the degradation step (:data:`pipeline.degrade.STEPS`) the crops were made at.
        seconds: wall time the analysis took.
        prepared: ``prepared[i]``, what a staged stylizer prepared of ``crops[i]``
            (:meth:`~pipeline.stylizer.StagedStylizer.prepare`); empty for another stylizer.
    """

    frame: Frame
    faces: tuple[Face, ...]
    crops: tuple[AlignedCrop, ...]
    stylizer: Stylizer
    step: int = 0
    seconds: float = 0.0
    prepared: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Stylized:
    """One frame's faces stylized, waiting to be composited.

    Attributes:
        analysis: what was stylized.
        crops: ``N`` stylized crops, ``crops[i]`` ``(S_i, S_i, 3)`` ``uint8`` RGB at the side
            of ``analysis.crops[i]``, of the stylizer's array module (NumPy, or CuPy on a
            GPU), before their detail is restored; ``None`` without faces.
        seconds: wall time stylizing took.
        unfinished: ``unfinished[i]``: ``crops[i]`` is painted by the analysis's staged
            stylizer and still to be finished by it
            (:meth:`~pipeline.stylizer.StagedStylizer.finish`), after the person's detail is
            restored (:meth:`Restyler.finish`); empty when none is.
        classical: ``classical[i]``: ``crops[i]`` is the classical filter's (live's degraded
            steps), not drawn by the analysis's stylizer on its reshaped crop
            (:func:`~pipeline.stylizer.drawn_crops`); empty when none is.
    """

    analysis: Analysis
    crops: Any
    seconds: float = 0.0
    unfinished: tuple[bool, ...] = ()
    classical: tuple[bool, ...] = ()

    @cached_property
    def drawn(self) -> list[AlignedCrop]:
        """The crops the stylized ones line up with, which the person's detail, the finish
        and the head matte are taken from: ``analysis.crops``, each reshaped as the
        analysis's stylizer draws faces (a style pack's geometry) where it drew it. Made
        once, on the compositing thread."""
        analysis = self.analysis
        classical = self.classical or (False,) * len(analysis.crops)
        drawn = list(analysis.crops)
        styled = [i for i, plain in enumerate(classical) if not plain]
        reshaped = drawn_crops(analysis.stylizer, [drawn[i] for i in styled])
        for i, crop in zip(styled, reshaped, strict=True):
            drawn[i] = crop
        return drawn


class Restyler:
    """Restyles every tracked face in a stream of frames.

    Args:
        stylizer: turns aligned crops into stylized crops.
        tracker: finds and follows faces; a default :class:`FaceTracker` if ``None``.
        compositor: blends stylized crops back; a default ``Compositor()`` (the head matte)
            if ``None``.
        identity: strength of the content's fine luminance detail added back after
            stylizing (0 = pure style, about 1 = clearly the person); see
            :func:`pipeline.detail.restore_detail`. ``None`` uses the stylizer's own
            ``default_identity``; it follows the stylizer through a style switch.
        degrade: sheds work step by step when frames take too long (live); ``None`` always
            does the full work (files).
        half_crops: stylize small faces at half the crop side (see :data:`HALF_CROPS_AT`);
            the stylizer must take such crops, as the bundled ones do, and gets a frame's
            crops in one batch per side (a staged one prepares them all at once).

    Attributes:
        timings: seconds spent per stage (:data:`STAGES`) and frames processed.
        track_ids: every track id that has been stylized in at least one frame.
        most_faces: the most faces restyled in one frame (the student's largest batch).
    """

    def __init__(
        self,
        stylizer: Stylizer,
        tracker: FaceTracker | None = None,
        compositor: Compositor | None = None,
        identity: float | None = None,
        degrade: DegradePolicy | None = None,
        half_crops: bool = False,
    ) -> None:
        if identity is not None and not 0 <= identity <= MAX_IDENTITY:
            raise ValueError(f"Restyler: identity must be in 0..{MAX_IDENTITY:g}, got {identity}")
        self.stylizer = stylizer
        self.tracker = tracker if tracker is not None else FaceTracker()
        self.compositor = compositor if compositor is not None else Compositor()
        self.identity = identity
        self.degrade = degrade
        self.half_crops = half_crops
        self._small_faces = SmallFaces()
        self.timings = StageTimings()
        self.track_ids: set[int] = set()
        self.most_faces = 0
        # For the "far faces classical" step, made on first use.
        self._classical: CartoonStylizer | None = None
        # track id -> (face box, stylized crop, whether that crop was a reused one, whether it
        # is still to be finished, whether it is the classical filter's) of its last frame,
        # for the "alternate frames" step.
        self._last: dict[int, tuple[np.ndarray, Any, bool, bool, bool]] = {}

    def process(self, frame: Frame) -> Frame:
        """Restyle the faces in one frame.

        Returns:
            A frame with the same time, index and pts; the very same object when no face is
            visible, so faceless frames pass through bit for bit.
        """
        return self.render(self.analyse(frame))

    def analyse(self, frame: Frame) -> Analysis:
        """The first stage of :meth:`process`: track and align (must see frames in order).

        The runner calls the three :attr:`stages` on three threads.
        """
        start = time.perf_counter()
        timings = self.timings
        timings.frames += 1
        with timings.measure("track"):
            faces = [face for face in self.tracker.process(frame) if face.visibility > 0]
        stylizer = self.stylizer
        step = self.degrade.step if self.degrade is not None else 0
        if not faces:
            return Analysis(frame, (), (), stylizer, step)
        with timings.measure("align"):
            full = stylizer.crop_size
            # The canonical face scales with the crop's side, and so does its matrix.
            matrices = [alignment_matrix(face.landmarks, full) for face in faces]
            sides = self._crop_sides(faces, matrices, full, step)
            crops = [
                align_face(frame.image, face, side, matrix=matrix * (side / full))
                for face, matrix, side in zip(faces, matrices, sides, strict=True)
            ]
        prepared: tuple[Any, ...] = ()
        if isinstance(stylizer, StagedStylizer):
            if _all_classical(step, len(faces)):
                # Nothing of it is used; when it is again, its tracks start afresh rather
                # than from crops seconds old.
                stylizer.reset()
            else:
                with timings.measure("prepare"):
                    prepared = tuple(stylizer.prepare(crops))
        seconds = time.perf_counter() - start
        return Analysis(frame, tuple(faces), tuple(crops), stylizer, step, seconds, prepared)

    def _crop_sides(
        self, faces: list[Face], matrices: list[np.ndarray], full: int, step: int
    ) -> list[int]:
        """The side to align each face at (``matrices``: their frame-to-crop similarities
        at side ``full``): half of ``full`` at live's "smaller crops" step, or for a face
        :attr:`half_crops` finds small (:data:`HALF_CROPS_AT`) in this frame and its last
        ones (:data:`HALF_CROPS_AFTER`)."""
        small = [False] * len(faces)
        if self.half_crops:
            small = self._small_faces.update(faces, matrices)
        every = sheds(step, "smaller crops")
        return [full // 2 if every or half else full for half in small]

    def render(self, analysis: Analysis) -> Frame:
        """The rest of :meth:`process`: :meth:`stylize`, then :meth:`composite`."""
        return self.composite(self.stylize(analysis))

    def stylize(self, analysis: Analysis) -> Stylized:
        """Stylize the analysed faces (the runner's second stage)."""
        if not analysis.faces:
            return Stylized(analysis, None)
        start = time.perf_counter()
        with self.timings.measure("stylize"):
            crops, unfinished, classical = self._stylize(analysis)
        return Stylized(analysis, crops, time.perf_counter() - start, unfinished, classical)

    def finish(self, stylized: Stylized) -> tuple[Any, ...]:
        """The stylized crops made final, one batch per crop side: the person's detail
        restored (see ``identity``), then finished by their stylizer where it left that to
        this stage, both from :attr:`Stylized.drawn`.

        Detail first: a pack's finish brings each face to the person's own lightness, and
        the detail of a wide identity scale (the bundled ``painterly``'s 64 px) is not zero
        on the face — a face lighter than the hair and background around it gains light
        from it — so, added after, it left faces paler than the person (clip 3 by 5.9 L*).
        """
        analysis, crops = stylized.analysis, list(stylized.crops)
        identity = self.identity_for(analysis.stylizer)
        if not (any(stylized.unfinished) or identity > 0):
            return tuple(crops)
        drawn = stylized.drawn
        timings = self.timings
        unfinished = stylized.unfinished or (False,) * len(crops)
        finisher: StagedStylizer = analysis.stylizer  # type: ignore[assignment]
        for group in _by_side(analysis.crops, range(len(crops))):
            aligned = [drawn[i] for i in group]
            batch = array_module(crops[group[0]]).stack([crops[i] for i in group])
            if identity > 0:
                with timings.measure("detail"):
                    content = np.stack([crop.image for crop in aligned])
                    scale = analysis.stylizer.identity_scale
                    batch = restore_detail(batch, content, identity, scale)
            pending = [k for k, i in enumerate(group) if unfinished[i]]
            if len(pending) == len(group):
                with timings.measure("finish"):
                    batch = finisher.finish(batch, aligned)
            elif pending:  # live's degraded steps: some faces classical or reused
                with timings.measure("finish"):
                    batch[pending] = finisher.finish(batch[pending], [aligned[k] for k in pending])
            for i, crop in zip(group, batch, strict=True):
                crops[i] = crop
        return tuple(crops)

    def composite(self, stylized: Stylized) -> Frame:
        """Finish the stylized faces and blend them into their frame (the runner's third
        stage)."""
        analysis = stylized.analysis
        frame, faces = analysis.frame, analysis.faces
        if not faces:
            return frame
        start = time.perf_counter()
        drawn = stylized.drawn
        crops = self.finish(stylized)
        with self.timings.measure("composite"):
            in_place = [a is b for a, b in zip(drawn, analysis.crops, strict=True)]
            image = self.compositor.process(frame.image, drawn, crops, faces, in_place)
        self.track_ids.update(face.track_id for face in faces)
        self.most_faces = max(self.most_faces, len(faces))
        if self.degrade is not None:
            # The slowest stage sets the pace of the live pipeline.
            slowest = max(analysis.seconds, stylized.seconds, time.perf_counter() - start)
            self.degrade.update(slowest * 1000, analysis.step)
        return frame.with_image(image)

    @property
    def stages(
        self,
    ) -> tuple[
        Callable[[Frame], Analysis], Callable[[Analysis], Stylized], Callable[[Stylized], Frame]
    ]:
        """:meth:`process` as three stages for the threaded runner, in order."""
        return (self.analyse, self.stylize, self.composite)

    def _stylize(self, analysis: Analysis) -> tuple[Any, tuple[bool, ...], tuple[bool, ...]]:
        """The crops stylized as ``analysis.step`` says (see :mod:`pipeline.degrade`), which
        are still to be finished (:attr:`Stylized.unfinished`) and which are the classical
        filter's (:attr:`Stylized.classical`)."""
        crops, faces, step = analysis.crops, analysis.faces, analysis.step
        alternate, classical = sheds(step, "alternate frames"), sheds(step, "far faces classical")
        # The analysis's own staged stylizer leaves its finish to the compositing thread.
        pending = bool(analysis.prepared)
        if not (alternate or classical):
            self._last.clear()
            painted = self._stylize_some(analysis.stylizer, analysis, range(len(crops)))
            return tuple(painted), (pending,) * len(crops), ()
        settings = self.degrade.settings if self.degrade is not None else DegradeSettings()
        sides = [float(face.box[2] - face.box[0]) for face in faces]
        parts: list[Any] = [None] * len(crops)
        unfinished = [False] * len(crops)
        plain = [False] * len(crops)
        if alternate:
            # Every other frame a face reaches this stage, not every odd frame index: the
            # frames dropped under load would otherwise leave only even ones, all stylized.
            for i, face in enumerate(faces):
                last = self._last.get(face.track_id)
                if last is None or last[2] or last[1].shape != crops[i].image.shape:
                    continue
                moved = np.hypot(*(box_centre(face.box) - box_centre(last[0])))
                if moved < settings.slow_face * sides[i]:
                    parts[i], unfinished[i], plain[i] = last[1], last[3], last[4]
        reused = [part is not None for part in parts]
        far_below = settings.far_face * max(sides) if classical else 0.0
        if _all_classical(step, len(faces)):
            far_below = np.inf
        far = [i for i, side in enumerate(sides) if side < far_below]
        near = [i for i in range(len(crops)) if i not in far]
        for chosen, stylizer in ((near, analysis.stylizer), (far, self._classical_for(analysis))):
            todo = [i for i in chosen if parts[i] is None]
            if todo:
                for i, styled in zip(
                    todo, self._stylize_some(stylizer, analysis, todo), strict=True
                ):
                    parts[i] = styled
                    unfinished[i] = pending and stylizer is analysis.stylizer
                    plain[i] = stylizer is not analysis.stylizer
        self._last = {
            face.track_id: (face.box, parts[i], reused[i], unfinished[i], plain[i])
            for i, face in enumerate(faces)
        }
        xp = next((array_module(p) for p in parts if array_module(p) is not np), np)
        return tuple(xp.asarray(part) for part in parts), tuple(unfinished), tuple(plain)

    @staticmethod
    def _stylize_some(stylizer: Stylizer, analysis: Analysis, indices: Iterable[int]) -> list[Any]:
        """Crops ``indices`` of ``analysis`` stylized by ``stylizer``, one batch per crop
        side, in the order of ``indices``: when it is the analysis's own staged stylizer,
        painted from what was prepared of them (so its tracks see every frame, the faces
        left out of this one too) and left to :meth:`finish`; otherwise made whole."""
        order = list(indices)
        crops = [analysis.crops[i] for i in order]
        if stylizer is analysis.stylizer and analysis.prepared:
            prepared = [analysis.prepared[i] for i in order]
            return stylize_by_side(stylizer, crops, prepared, finish=False)
        return stylize_by_side(stylizer, crops)

    def _classical_for(self, analysis: Analysis) -> CartoonStylizer:
        """The classical filter for the far faces, at the style's crop size."""
        size = analysis.stylizer.crop_size
        if self._classical is None or self._classical.crop_size != size:
            self._classical = CartoonStylizer(size)
        return self._classical

    def identity_for(self, stylizer: Stylizer) -> float:
        """The identity strength used with ``stylizer`` (see the ``identity`` argument)."""
        if self.identity is not None:
            return self.identity
        return float(stylizer.default_identity)

    def reset(self) -> None:
        """Forget tracks, stylizer state and timings (call between unrelated clips)."""
        self.tracker.reset()
        self.stylizer.reset()
        self.compositor.reset()
        self.timings.reset()
        self.track_ids.clear()
        self.most_faces = 0
        self._last.clear()
        self._small_faces.reset()
        if self.degrade is not None:
            self.degrade.reset()


class SmallFaces:
    """Which faces are small enough for half-size crops (:data:`HALF_CROPS_AT`), each by its
    own track's last :data:`HALF_CROPS_AFTER` frames. The restyler's rule, and ``eval``'s,
    so that its figures describe the crops a render makes."""

    def __init__(self) -> None:
        # track id -> the magnification of its full-size crop in each of its last frames.
        self._shown: dict[int, deque[float]] = {}

    def update(self, faces: Sequence[Face], matrices: Sequence[np.ndarray]) -> list[bool]:
        """One frame's faces and their frame-to-crop similarities at the full crop side, in
        frame order → whether each is stylized at half the side."""
        shown = {}
        for face, matrix in zip(faces, matrices, strict=True):
            recent = self._shown.get(face.track_id, deque(maxlen=HALF_CROPS_AFTER))
            recent.append(magnification(matrix))
            shown[face.track_id] = recent
        # A face missing from this frame starts afresh when it is back.
        self._shown = shown
        return [max(shown[face.track_id]) <= HALF_CROPS_AT for face in faces]

    def reset(self) -> None:
        """Forget every track."""
        self._shown = {}


def stylize_by_side(
    stylizer: Stylizer,
    crops: Sequence[AlignedCrop],
    prepared: Sequence[Any] | None = None,
    *,
    finish: bool = True,
) -> list[Any]:
    """One frame's crops, of one side or two, stylized: ``crops[i]`` → ``(S_i, S_i, 3)``
    ``uint8`` of the stylizer's array module, one batch per side.

    A staged stylizer prepares the whole frame at once (its tracks must see every face of
    it; ``prepared`` where that was done already, on another thread), then paints, and
    finishes unless ``finish`` is false, one side at a time; another stylizer gets one
    :meth:`~pipeline.stylizer.Stylizer.stylize` call per side.
    """
    styled: dict[int, Any] = {}
    staged = isinstance(stylizer, StagedStylizer)
    if staged and prepared is None:
        prepared = stylizer.prepare(crops)  # type: ignore[union-attr]
    for group in _by_side(crops, range(len(crops))):
        batch_crops = [crops[i] for i in group]
        if staged and prepared is not None:
            painter: StagedStylizer = stylizer  # type: ignore[assignment]
            batch = painter.paint(batch_crops, [prepared[i] for i in group])
            if finish:
                batch = painter.finish(batch, batch_crops)
        else:
            batch = stylizer.stylize(batch_crops)
        styled.update(zip(group, batch, strict=True))
    return [styled[i] for i in range(len(crops))]


def _by_side(crops: Sequence[AlignedCrop], indices: Iterable[int]) -> list[list[int]]:
    """``indices`` grouped by the side of their crop, each group in the given order."""
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(crops[i].size, []).append(i)
    return list(groups.values())


def _all_classical(step: int, faces: int) -> bool:
    """Whether every face of a frame with ``faces`` faces gets the classical filter at
    ``step``: at "groups classical", when there are several (a lone face keeps its style)."""
    return sheds(step, "groups classical") and faces > 1
