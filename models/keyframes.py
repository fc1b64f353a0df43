"""Keyframe painting: the teacher paints each face every few frames, the flow carries it.

The real-time student learns the average of its teacher's paintings and shows a tinted photo
where the teacher paints the artist's marks (``docs/quality-log.md``). The teacher takes about
a second a face, so it paints every ``every``-th frame of each track. Between keyframes the
last painting is carried along the face's optical flow, chained frame to frame so that it
moves exactly as the face did, and each new keyframe is painted with the carried one as its
temporal guide (Jamriška et al. 2019) and faded in over ``fade`` frames, so no painting
replaces another at once. Each keyframe after a face's first also starts from the carried
one's patch field, refined at the finest level only (a warm start, about a third of the
teacher's time): Van Gogh's keyframes on the shared clips 1 / 3 (``eval --keyframes 8``, 120
frames) as close to the artwork and the person as painted afresh, a little steadier (warping
error ratio 0.79 / 1.40 -> 0.78 / 1.37), and at a keyframe every 2nd frame, 60 warm starts in
a row, no drift (1.98 -> 1.70 on clip 3).

A file waits for each painting (``lag`` 0), and the faces of one frame due a keyframe are
painted at once, one per core. A live session cannot: there the teacher paints on
a thread of its own while the frames go on (``lag`` ``None``), and each painting, made on the
crop of the frame it was asked on, is moved onto the crop of the frame it arrives on by the
flow between the two, then carried on from there. Until a face's first painting arrives it is
shown by a fallback (the pack's real-time student).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from models.exemplar import Exemplar, exemplar_from_crop
from models.geometry import Reshaper
from models.pack import StylePack
from models.teacher import Synthesis, TeacherParams, synthesize, toned
from pipeline.detail import DEFAULT_IDENTITY_SCALE, remove_detail, restore_detail
from pipeline.flow import (
    chain_flow,
    optical_flow,
    supersample,
    warp_by_flow,
    warp_supersampled,
)
from pipeline.frame import AlignedCrop
from pipeline.guides import compute_guides
from pipeline.stylizer import StagedStylizer
from pipeline.xp import array_module

__all__ = [
    "ARTWORK_IDENTITY",
    "BACKGROUND_IDENTITY",
    "KeyframePainter",
    "KeyframeSettings",
    "pack_exemplar",
]

ARTWORK_IDENTITY = 0.75
"""The identity of keyframes painted straight from an artwork, with no pack to say it. Six of
the shared artworks on the shared clip 3: at 0.35 the album portrait of Confucius kept the
person in 75 % of the frames judged and Vermeer's turned head in 88 %, at 0.75 both in all,
with the same style figures (within 0.02) for about 0.05 more warping error."""

BACKGROUND_IDENTITY = 0.75
"""The least identity of keyframes painted in the background. A painting shown a second after
its frame is of the face as it was then: Van Gogh's (its pack's own identity 0.35), shown 36
frames late, kept the person of the shared clips 1 and 3 in 75 % and 83 % of the frames
judged, against all of them in line; at 0.5 in 92 % and 92 %, at 0.75 in all, with the same
style figures and sharper (0.70 / 0.69 of the artwork's sharpness against 0.58 / 0.64)."""


@dataclass(frozen=True)
class KeyframeSettings:
    """How often the teacher paints a face, and how its paintings meet.

    Attributes:
        every: frames of a track from asking for one keyframe to asking for the next (1
            paints every frame).
        fade: frames over which a new keyframe's painting replaces the one shown before it
            (0: at once), less than ``every``; ``None``: half of ``every``.
        temporal: weight of the temporal guide, the carried painting, when a keyframe is
            painted (:attr:`models.teacher.TeacherParams.temporal`).
        lag: 0 paints each keyframe on its own frame, in line (files). N >= 1 paints on a
            thread of its own and shows the painting from N frames after the one it was asked
            on, waiting for it there if need be, so a render is the same every time (and
            ``facestyle eval`` can judge what a live session would show). ``None`` shows
            each painting as soon as it is ready and never waits (live). With a lag, a face
            is shown by the fallback until its first painting arrives.
    """

    every: int = 8
    fade: int | None = None
    temporal: float = 2.0
    lag: int | None = 0

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
        if not (self.lag is None or (isinstance(self.lag, int) and self.lag >= 0)):
            raise ValueError(
                f"KeyframeSettings.lag: expected a whole number >= 0 or None, got {self.lag!r}"
            )


@dataclass
class _Painting:
    """A painting and the flow from the track's latest crop back onto the crop it is of.

    Attributes:
        image: ``(S, S, 3)`` ``uint8`` RGB, painted on its keyframe's crop (before its tone);
            ``None`` while a painting asked for is still being made.
        flow: ``(S, S, 2)`` ``float32``, each pixel of the latest crop to where it was in the
            keyframe's crop.
        nnf: ``(S, S, 2)`` ``int32``, the artwork pixel each pixel of the painting was copied
            from (:attr:`models.teacher.Synthesis.nnf`); ``None`` while it is being made.
        ready: the painting being made, for one asked for on a thread of its own.
        supersampled: carried by :func:`pipeline.flow.warp_supersampled`; else (a live
            frame's budget) softened by a Gaussian of 0.4 px once and carried by one bicubic
            sample a pixel. Sampled once a pixel as it is, its pixel-fine marks are softened
            more at half-pixel offsets than at whole ones, and shimmer as the face moves.
        crop: ``(S, S, 3)`` ``uint8``, the crop a painting being made is of, until it
            arrives; ``None`` after.
        frames: frames since it was asked for.
    """

    image: np.ndarray | None
    flow: np.ndarray
    nnf: np.ndarray | None = None
    ready: Future[Synthesis] | None = None
    supersampled: bool = True
    crop: np.ndarray | None = None
    frames: int = 0
    _carried: np.ndarray | None = None  # carried() on the latest crop, once made
    _source: np.ndarray | None = None  # what carried() resamples, made once from the image

    def follow(self, step: np.ndarray) -> None:
        """Move on to a new latest crop; ``step``: ``(S, S, 2)`` ``float32``, the flow from
        it to the crop before."""
        self.flow = chain_flow(step, self.flow)
        self._carried = None

    def carried(self) -> np.ndarray:
        """``(S, S, 3)`` ``uint8``: the painting moved onto the latest crop (made once per
        crop: a keyframe's frame needs the outgoing painting for its guide and its fade)."""
        if self._carried is None:
            if self._source is None:
                self._source = (
                    supersample(self.image)
                    if self.supersampled
                    else cv2.GaussianBlur(self.image, (5, 5), _SOFTENING)
                )
            self._carried = (
                warp_supersampled(self._source, self.flow)
                if self.supersampled
                else warp_by_flow(self._source, self.flow, cv2.INTER_CUBIC)
            )
        return self._carried

    def carried_field(self) -> np.ndarray:
        """``(S, S, 2)`` ``int32``: :attr:`nnf` moved onto the latest crop, each pixel taking
        the artwork pixel of the one it came from (a warm start for the next keyframe)."""
        moved = warp_by_flow(self.nnf.astype(np.float32), self.flow, cv2.INTER_NEAREST)
        return moved.astype(np.int32)


@dataclass
class _Track:
    """One face's paintings: the one shown, the one fading out, the one being made.

    ``painting`` is ``None`` until the track's first painting arrives (the fallback shows the
    face); ``fading`` is ``None`` outside a fade, and also during the fade from the fallback
    to the first painting (``from_fallback``).
    """

    last_crop: np.ndarray
    painting: _Painting | None = None
    fading: _Painting | None = None
    asked: _Painting | None = None
    from_fallback: bool = False
    age: int = 0  # frames since the painting shown arrived
    since_asked: int = 0  # frames since the last keyframe was asked for
    missing: int = 0  # calls in a row the face was missing from

    def drop(self) -> None:
        """Give up the painting being made, if it has not started."""
        if self.asked is not None and self.asked.ready is not None:
            self.asked.ready.cancel()


_Guide = tuple[np.ndarray, np.ndarray]
"""What a keyframe is painted from besides its crop: the painting before it carried onto the
crop, ``(S, S, 3)`` ``uint8`` (the temporal guide), and its field, ``(S, S, 2)`` ``int32`` (the
warm start)."""

_Due = tuple[_Track, AlignedCrop, _Guide | None]
"""A keyframe asked for in line: the track, the crop to paint, what guides it."""

# The Gaussian (px) a painting carried by one sample a pixel is softened by first, so that the
# sub-pixel offsets soften it more evenly. Van Gogh's keyframes 36 frames late
# (eval --keyframe-lag 36, clips 1 / 3): warping error ratio 1.19 / 1.83 -> 1.14 / 1.71,
# sharpness 0.71 / 0.70 -> 0.69 / 0.67; at 0.5 px clip 3 1.55, sharpness 0.63. Supersampled,
# 1.09 / 1.59 for 0.66 / 0.65, but a live frame cannot afford it (see _ask).
_SOFTENING = 0.4

# How many calls in a row a track may miss before a painter that paints in the background
# forgets it: live's degraded steps leave slow or far faces out of some frames.
_MISSING_CALLS = 15


class _PaintingThread:
    """Paints keyframes one at a time on a daemon thread, in the order they were asked for.

    The teacher is NumPy and Numba code that releases the interpreter's lock, so it takes
    one core while the frames go on. The thread ends whenever nothing is left to paint, so
    a painter dropped by a style switch leaves no thread behind.
    """

    def __init__(self, paint: Callable[[AlignedCrop, _Guide | None], Synthesis]) -> None:
        self._paint = paint
        self._jobs: deque[tuple[Future[Synthesis], AlignedCrop, _Guide | None]] = deque()
        self._lock = threading.Lock()
        self._running = False
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, crop: AlignedCrop, guide: _Guide | None) -> Future[Synthesis]:
        """The painting of ``crop`` (guided by ``guide``), soon."""
        future: Future[Synthesis] = Future()
        with self._lock:
            self._jobs.append((future, crop, guide))
            if not self._running:
                self._running = True
                self._idle.clear()
                threading.Thread(
                    target=self._drain, name="facestyle-keyframes", daemon=True
                ).start()
        return future

    def wait(self) -> None:
        """Return when nothing is left to paint."""
        self._idle.wait()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._running = False
                    self._idle.set()
                    return
                future, crop, guide = self._jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._paint(crop, guide))
            except BaseException as error:  # handed to the frame that takes the painting
                future.set_exception(error)


class KeyframePainter:
    """The teacher as a video stylizer: keyframes painted, carried between.

    A :class:`pipeline.stylizer.Stylizer`. Each call holds every face of one frame at one
    crop side; a crop of another side than the exemplar's is painted at the exemplar's and
    brought back (live's "smaller crops" step). A track missing from a call has ended and
    starts afresh if it returns, except that a painter with a lag of ``None`` keeps it for a
    few calls (live's degraded steps leave faces out of some frames).

    Args:
        exemplar: the artwork the teacher paints from (:func:`pack_exemplar`).
        settings: how often it paints; the defaults if ``None``.
        name: the style's name, for summaries.
        identity: the default strength of each frame's own fine detail over the carried
            painting (a pack's own identity), at least :data:`BACKGROUND_IDENTITY` with a
            lag. Van Gogh's, every 8th frame: at 0 the face of the shared clip 2 stayed under
            0.6 in 88 % of the frames judged, at 0.35 in all.
        fallback: what shows a face until its first painting arrives, with a lag (the pack's
            student, which reshapes faces as this painter does), shown as it shows on its own;
            ``None`` shows the face itself.
        geometry: 0..1, how far each face is reshaped toward the exemplar's proportions
            before it is painted (a pack's geometry, :func:`models.geometry.toward_exemplar`).
    """

    identity_scale = DEFAULT_IDENTITY_SCALE

    def __init__(
        self,
        exemplar: Exemplar,
        settings: KeyframeSettings | None = None,
        name: str = "teacher",
        identity: float = 0.35,
        fallback: StagedStylizer | None = None,
        geometry: float = 0.0,
    ) -> None:
        if not 0.0 <= geometry <= 1.0:
            raise ValueError(f"KeyframePainter: geometry must be in 0..1, got {geometry}")
        self.exemplar = exemplar
        self.geometry = geometry
        self.settings = settings or KeyframeSettings()
        lagging = self.settings.lag != 0
        self.default_identity = max(identity, BACKGROUND_IDENTITY) if lagging else identity
        self.fallback = fallback
        when = ", painted in the background" if lagging else ""
        self.name = f"{name} (keyframes every {self.settings.every}{when})"
        self.crop_size = exemplar.size
        self._reshaper = Reshaper(exemplar.landmarks, exemplar.size, geometry)
        self.asked = 0  # keyframes asked for since construction
        # Keyframes shown since construction: one dropped with its track (a live session's
        # warm-up face) is not counted, though the teacher may have painted it.
        self.paintings = 0
        self._params = TeacherParams(temporal=self.settings.temporal)
        self._thread = _PaintingThread(self._paint) if lagging else None
        # Frames that do not wait for the teacher must keep the camera's pace: DIS's ultrafast
        # preset, as the student's canvas uses live. bench --live --keyframes 8, two rounds
        # against the medium preset: 2 / 2 frames of 600 dropped at 640x480 against 19 / 3,
        # 2 / 1 at 720p against 36 / 6, for warping error ratios (eval --keyframe-lag 36,
        # clips 1 / 3) of 1.19 / 1.84 against 1.12 / 1.70.
        self._fast_flow = lagging
        self._tracks: dict[int, _Track] = {}

    def reset(self) -> None:
        """Forget every track (paintings still being made are dropped)."""
        for track in self._tracks.values():
            track.drop()
        self._tracks = {}
        if self.fallback is not None:
            self.fallback.reset()

    def settle(self) -> None:
        """Wait for the painting being made, if any (after :meth:`reset`, which drops those
        not yet begun): a live session's warm-up face starts one, which otherwise held the
        teacher's core for about a second as the camera started."""
        if self._thread is not None:
            self._thread.wait()

    def stylize(self, crops: Sequence[AlignedCrop]) -> np.ndarray:
        """``N`` aligned crops of one frame, of one side ``s`` → ``(N, s, s, 3)`` ``uint8``
        RGB."""
        self._forget_missing({crop.track_id for crop in crops})
        side = crops[0].size if crops else self.crop_size
        out = np.empty((len(crops), side, side, 3), np.uint8)
        reshaped = self.reshape(crops)
        full = [self._at_side(crop, self.crop_size) for crop in reshaped]
        # Keyframes asked for in line during this call, painted together at its end.
        due: list[_Due] = []
        tracks = [self._advance(crop, due) for crop in full]
        self._paint_due(due)
        wanted = [
            i for i, track in enumerate(tracks) if track.painting is None or track.from_fallback
        ]
        before = self._fallback([crops[i] for i in wanted], [reshaped[i] for i in wanted])
        shown_before = dict(zip(wanted, before, strict=True))
        for i, (crop, track) in enumerate(zip(full, tracks, strict=True)):
            if track.painting is None:
                out[i] = shown_before[i]
                continue
            painted = track.painting.carried()
            weight = np.float32((track.age + 1) / (self.settings.fade + 1))
            if track.fading is not None:
                painted = _faded(track.fading.carried(), painted, weight)
            painted = toned(self.exemplar, painted, crop.image, crop.landmarks)
            if side != self.crop_size:
                painted = cv2.resize(painted, (side, side), interpolation=cv2.INTER_AREA)
            if track.from_fallback:
                painted = _faded(shown_before[i], painted, weight)
            out[i] = painted
        return out

    def _forget_missing(self, seen: set[int]) -> None:
        """Drop the tracks not in ``seen`` (after a few calls, when painting in the
        background)."""
        patience = _MISSING_CALLS if self.settings.lag is None else 0
        for track_id, track in list(self._tracks.items()):
            track.missing = 0 if track_id in seen else track.missing + 1
            if track.missing > patience:
                self._tracks.pop(track_id).drop()

    def reshape(self, crops: Sequence[AlignedCrop]) -> list[AlignedCrop]:
        """``crops`` reshaped as they are painted (``geometry``): what the output lines up
        with (:class:`pipeline.stylizer.ReshapingStylizer`)."""
        return self._reshaper(crops)

    def _fallback(
        self, crops: Sequence[AlignedCrop], reshaped: Sequence[AlignedCrop]
    ) -> list[np.ndarray]:
        """``crops`` (``reshaped``, as painted) as shown before their face's first painting:
        as the fallback shows them on its own, or the faces themselves.

        The restyler puts this painter's identity over every face it shows, as over a
        painting, so that detail is taken off here first. Over the face itself it had
        sharpened it; over the fallback, a pack's own identity and scale (``painterly``'s
        0.35 at 64 px: the person's light and shadow) came out as 0.75 at 3 px, a flatter
        face with harder fine detail, for the second until the first painting. (With an
        identity the user chose instead, the restyler puts that on, and the fallback gets its
        difference from this painter's own, as the paintings do.)
        """
        if not crops:
            return []
        faces = np.stack([crop.image for crop in reshaped])
        fallback = self.fallback
        if fallback is None:
            shown = faces
        else:
            # As the restyler finishes it: its own detail, then its finish (the skin tone).
            painted = _on_host(fallback.paint(crops, fallback.prepare(crops)))
            identity, scale = fallback.default_identity, fallback.identity_scale
            painted = restore_detail(painted, faces, identity, scale)
            shown = _on_host(fallback.finish(painted, reshaped))
        return list(remove_detail(shown, faces, self.default_identity, self.identity_scale))

    @staticmethod
    def _at_side(crop: AlignedCrop, side: int) -> AlignedCrop:
        """``crop`` enlarged (or shrunk) to ``side`` pixels, its matrix and points with it."""
        if crop.size == side:
            return crop
        scale = side / crop.size
        image = cv2.resize(crop.image, (side, side), interpolation=cv2.INTER_CUBIC)
        return replace(
            crop, image=image, matrix=crop.matrix * scale, landmarks=crop.landmarks * scale
        )

    def _advance(self, crop: AlignedCrop, due: list[_Due]) -> _Track:
        """The crop's track moved on to it: every painting carried along the flow, a
        painting that is ready shown, a new keyframe asked for when it is time (added to
        ``due`` in line)."""
        track = self._tracks.get(crop.track_id)
        if track is None:
            track = _Track(crop.image)
            self._tracks[crop.track_id] = track
            self._ask(track, crop, due)
            return track
        step = optical_flow(crop.image, track.last_crop, fast=self._fast_flow)
        for painting in (track.painting, track.fading):
            if painting is not None:
                painting.follow(step)
        track.last_crop = crop.image
        track.age += 1
        track.since_asked += 1
        if track.asked is not None:
            track.asked.frames += 1
            self._take_if_ready(track)
        if track.asked is None and track.since_asked >= self.settings.every:
            self._ask(track, crop, due)
        if track.age >= self.settings.fade:
            track.fading, track.from_fallback = None, False
        return track

    def _ask(self, track: _Track, crop: AlignedCrop, due: list[_Due]) -> None:
        """A keyframe of ``crop``: added to ``due`` (in line), or asked of the painting
        thread."""
        painting = track.painting
        guide = None if painting is None else (painting.carried(), painting.carried_field())
        track.since_asked = 0
        self.asked += 1
        if self._thread is None:
            due.append((track, crop, guide))
        else:
            # Carried by one sample a pixel (softened first): supersampled, bench --live
            # --load 1 (two rounds each) kept 0.76 x its quiet frame rate at 640x480
            # against 0.88 x.
            ready = self._thread.submit(crop, guide)
            track.asked = _Painting(
                None, _still(crop), ready=ready, supersampled=False, crop=crop.image
            )

    def _paint_due(self, due: list[_Due]) -> None:
        """Paint the keyframes asked for in line and show them.

        Each face on a thread of its own, as many at once as OpenCV has threads (the cores
        this process may use: a batch worker's share). The teacher's kernels release the
        interpreter's lock and each thread paints on its own, with nothing to wait for
        between them, so a core that another program holds slows only its own face.
        """
        if not due:
            return
        workers = min(len(due), max(1, cv2.getNumThreads()))
        if workers == 1:
            paintings = [self._paint(crop, guide) for _, crop, guide in due]
        else:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="facestyle-keyframes")
            try:
                jobs = [pool.submit(self._paint, crop, guide) for _, crop, guide in due]
                paintings = [job.result() for job in jobs]
            finally:
                # On Ctrl-C, the faces not yet started are dropped; those begun finish.
                pool.shutdown(cancel_futures=True)
        for (track, crop, _), painted in zip(due, paintings, strict=True):
            self._show(track, _Painting(painted.image, _still(crop), painted.nnf))

    def _take_if_ready(self, track: _Track) -> None:
        """Show the painting asked for, if the lag says it is due (waiting for it) or it is
        ready with no lag set."""
        asked = track.asked
        lag = self.settings.lag
        if lag is None and not asked.ready.done():
            return
        if lag is not None and asked.frames < lag:
            return
        painted = asked.ready.result()
        asked.image, asked.nnf = painted.image, painted.nnf
        # The flow between the two crops, taken directly (DIS's medium preset, once a
        # painting): chained along the second's frames between them, it drifted off the
        # face's features. eval --keyframe-lag 36 on clip 3: the engraving kept the person
        # in 9 of 12 frames judged chained, all 12 so (11 of 12 with the ultrafast preset).
        asked.flow = optical_flow(track.last_crop, asked.crop)
        asked.ready = asked.crop = None
        track.asked = None
        self._show(track, asked)

    def _show(self, track: _Track, painting: _Painting) -> None:
        """Make ``painting`` the one shown, the one before fading out."""
        fades = self.settings.fade > 0
        track.fading = track.painting if fades else None
        track.from_fallback = fades and track.painting is None and self._thread is not None
        track.painting = painting
        track.age = 0
        self.paintings += 1

    def _paint(self, crop: AlignedCrop, guide: _Guide | None) -> Synthesis:
        """The teacher's painting of ``crop``, guided by the painting before carried onto it
        where there is one."""
        guides = compute_guides(crop.image, crop.landmarks, self.exemplar.reference)
        if guide is not None:
            carried, start = guide
            return synthesize(self.exemplar, guides, self._params, carried, start)
        return synthesize(self.exemplar, guides, replace(self._params, temporal=0.0))


def _on_host(crops: Any) -> np.ndarray:
    """A stylizer's ``(N, S, S, 3)`` crops as NumPy (a pack on the GPU gives CuPy)."""
    return crops.get() if array_module(crops) is not np else crops


def _still(crop: AlignedCrop) -> np.ndarray:
    """``(S, S, 2)`` ``float32``: the flow of a painting onto the crop it was painted on."""
    return np.zeros((*crop.image.shape[:2], 2), np.float32)


def _faded(earlier: np.ndarray, later: np.ndarray, weight: np.float32) -> np.ndarray:
    """``(S, S, 3)`` ``uint8``: ``later`` over ``earlier`` at ``weight`` (0 to 1)."""
    earlier = earlier.astype(np.float32)
    return np.rint(earlier + (later - earlier) * weight).astype(np.uint8)


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
