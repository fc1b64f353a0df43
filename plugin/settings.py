"""How a restyler is configured, in one frozen object, and the one place it is built.

The command line (``render``, ``live``, ``bench``), the Python API (:class:`FaceStylizer`,
:func:`render`, :class:`LiveSession`) and the benchmarks all describe a restyler with a
:class:`RestyleSettings` and make it with :func:`build_restyler`::

    settings = RestyleSettings(style="engraving", identity=0.5, device="cpu")
    restyler = build_restyler(settings)          # a pipeline.restyle.Restyler

This module imports nothing heavy at the top (the command line reads its choices for
``--help``); the stages are imported by :func:`build_restyler`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipeline.detail import MAX_IDENTITY
from pipeline.errors import DeviceError
from pipeline.stylizer import Stylizer
from plugin.styles import DEFAULT_STYLE, resolve_style

if TYPE_CHECKING:
    from pipeline.restyle import Restyler

__all__ = [
    "CHANNELS",
    "DEFAULT_STYLE",
    "DEVICES",
    "MASKS",
    "RestyleSettings",
    "build_restyler",
    "resolve_device",
]

MASKS = ("head", "face", "crop")
CHANNELS = ("rgb", "bgr")
DEVICES = ("auto", "cpu", "cuda")

Mask = Literal["head", "face", "crop"]
Channels = Literal["rgb", "bgr"]
Device = Literal["auto", "cpu", "cuda"]


def _expect(condition: bool, field: str, expected: str, value: object) -> None:
    if not condition:
        raise ValueError(f"RestyleSettings.{field}: expected {expected}, got {value!r}")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_number_in(value: object, low: float, high: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high


@dataclass(frozen=True)
class RestyleSettings:
    """Everything that decides how faces are restyled, validated on construction.

    Attributes:
        style: a style spec — ``"cartoon"``, a bundled pack name, a ``.safetensors`` pack path
            (see :func:`plugin.styles.resolve_style`) — or a ready :class:`Stylizer`.
        identity: how much of the person's fine detail to keep, 0 (pure style) to about 1,
            at most :data:`~pipeline.detail.MAX_IDENTITY` (2); ``None`` uses the style's own
            default (0.35-0.75 for the bundled packs, 0 for cartoon).
        strokes: how strongly a pack's student paints its strokes: its canvas
            (:mod:`models.canvas`) scaled by this, 0 (none) to 4; 1 is the pack's own
            (``adapt --strokes`` chose it; packs show less than they were trained with, for
            steadiness and identity). Packs without a canvas and the cartoon style ignore it.
        skin_hue: 0 to 1, how far a pack that keeps the person's skin tone also moves each
            face's colour from the painter's skin toward the person's own, at the same
            lightness (:func:`pipeline.detail.restore_tone`): 0 (the painter's hue, as the
            style figures measure it), 1 (the person's). Monochrome packs and the cartoon
            style ignore it.
        keyframes: 0 (the default): each face is painted by the pack's real-time student.
            N >= 1: the pack's teacher paints each face from the pack's artwork every N-th
            frame and the painting is carried along the face's motion in between
            (:mod:`models.keyframes`): the artist's own marks where the student shows a
            tinted photo, at about a second a face for its first keyframe and a third of that
            for each after. Every face is then stylized at the full crop side, a pack's
            geometry reshapes the faces painted, and ``strokes`` and ``skin_hue`` (the
            student's) do not apply.
        keyframe_lag: 0 (files) paints each keyframe on its own frame, in line, the frames
            waiting for it. N >= 1 paints on a thread of its own and shows each painting N
            frames after the frame it was asked on, carried there along the face's motion
            (a render stays the same every time); ``None`` shows it as soon as it is ready
            and never waits (what a live session does with keyframes). With a lag, a pack's
            student shows each face until its first painting arrives.
        max_faces: most faces restyled per frame.
        detect_every: run the face detector every this many frames (trackers in between).
        detect_lag: 0 runs the detector in line, so a file renders the same every time; N
            runs it on its own thread and uses its result N frames later, as soon as it is
            ready, so its spikes never hold up a frame (live sessions use 3).
        mask: ``"head"`` blends the whole head with its hair and neck (a matte that
            follows them);
            ``"face"`` only the face inside its landmarks; ``"crop"`` the whole aligned
            square.
        fine_detail: on a face larger in the frame than its 256 px crop, put back the
            frame's own detail finer than the crop, in the measure the style carries the
            photo's detail (:func:`pipeline.composite.fine_detail_gain`); ``False`` shows
            such a face as soft as its crop.
        half_crops: stylize a face shown at half its crop's size or less (under about 65
            px) at half the crop side (:data:`pipeline.restyle.HALF_CROPS_AT`): about twice
            the frame rate in a crowd, and a little less like the person; ``False`` keeps
            every face at the full side.
        channels: colour order of the bare arrays a host passes to
            :meth:`plugin.api.FaceStylizer.process` and gets back: ``"rgb"``, or ``"bgr"``
            for OpenCV hosts. Frames inside the pipeline are always RGB.
        device: where the work runs: ``"cpu"``, ``"cuda"``, or ``"auto"`` (CUDA when PyTorch
            sees one); see :func:`resolve_device`.

    Raises:
        ValueError: a field is out of range, e.g.
            ``RestyleSettings.max_faces: expected a whole number >= 1, got 0``.
    """

    style: str | Path | Stylizer = DEFAULT_STYLE
    identity: float | None = None
    strokes: float = 1.0
    skin_hue: float = 0.0
    keyframes: int = 0
    keyframe_lag: int | None = 0
    max_faces: int = 16
    detect_every: int = 10
    detect_lag: int = 0
    mask: Mask = "head"
    fine_detail: bool = True
    half_crops: bool = True
    channels: Channels = "rgb"
    device: Device = "auto"

    def __post_init__(self) -> None:
        _expect(
            isinstance(self.style, str | Path | Stylizer),
            "style",
            "a style name, a pack path or a Stylizer",
            self.style,
        )
        _expect(
            self.identity is None
            or (isinstance(self.identity, int | float) and 0 <= self.identity <= MAX_IDENTITY),
            "identity",
            f"a number from 0 to {MAX_IDENTITY:g} or None",
            self.identity,
        )
        for name, most in (("strokes", 4), ("skin_hue", 1)):
            value = getattr(self, name)
            _expect(_is_number_in(value, 0, most), name, f"a number from 0 to {most}", value)
        _expect(
            isinstance(self.keyframes, int)
            and not isinstance(self.keyframes, bool)
            and self.keyframes >= 0
            and not (self.keyframes and isinstance(self.style, Stylizer)),
            "keyframes",
            "a whole number >= 0, and 0 with a ready Stylizer",
            self.keyframes,
        )
        _expect(
            self.keyframe_lag is None
            or (
                isinstance(self.keyframe_lag, int)
                and not isinstance(self.keyframe_lag, bool)
                and self.keyframe_lag >= 0
            ),
            "keyframe_lag",
            "a whole number >= 0 or None",
            self.keyframe_lag,
        )
        _expect(_is_count(self.max_faces), "max_faces", "a whole number >= 1", self.max_faces)
        _expect(
            _is_count(self.detect_every), "detect_every", "a whole number >= 1", self.detect_every
        )
        _expect(
            isinstance(self.detect_lag, int) and 0 <= self.detect_lag <= self.detect_every,
            "detect_lag",
            f"a whole number from 0 to detect_every ({self.detect_every})",
            self.detect_lag,
        )
        _expect(self.mask in MASKS, "mask", ", ".join(MASKS), self.mask)
        _expect(
            isinstance(self.fine_detail, bool), "fine_detail", "True or False", self.fine_detail
        )
        _expect(isinstance(self.half_crops, bool), "half_crops", "True or False", self.half_crops)
        _expect(self.channels in CHANNELS, "channels", " or ".join(CHANNELS), self.channels)
        _expect(self.device in DEVICES, "device", ", ".join(DEVICES), self.device)


def resolve_device(name: str) -> str:
    """The device ``name`` stands for on this machine: ``"cpu"`` or ``"cuda"``.

    ``"auto"`` is ``"cuda"`` when PyTorch sees a CUDA device, else ``"cpu"``.

    Raises:
        DeviceError: ``"cuda"`` was asked for and PyTorch sees no CUDA device.
        ValueError: ``name`` is not one of :data:`DEVICES`.
    """
    if name not in DEVICES:
        raise ValueError(f"resolve_device: expected {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu":
        return "cpu"
    import torch  # only here: the CPU path and the command line's start-up never need it

    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise DeviceError(
            f"no CUDA device is available to PyTorch {torch.__version__} "
            f"(CUDA build: {torch.version.cuda or 'none'}); use --device cpu or --device auto"
        )
    return "cuda" if available else "cpu"


def build_restyler(settings: RestyleSettings) -> Restyler:
    """The face stages ``settings`` describe: stylizer, tracker, compositor, identity.

    This is where the device setting is applied, once for every stage: it is resolved
    (:func:`resolve_device`), the student and the compositor run there, and the thread
    policy (:func:`plugin.threads.apply_thread_policy`) is set for the process. The tracker
    fits landmarks in a process of its own (:mod:`pipeline.landmark_process`), shared by
    every restyler of this process.

    Raises:
        StyleError: the style cannot be used.
        DeviceError: ``device="cuda"`` on a machine without one (checked before any work).
    """
    from pipeline.composite import Compositor
    from pipeline.landmark_process import shared_landmark_process
    from pipeline.restyle import Restyler
    from pipeline.tracker import FaceTracker
    from plugin.threads import apply_thread_policy

    device = resolve_device(settings.device)
    # The landmark process loads dlib's model (about a second) while the pack loads here.
    landmarks_starting = threading.Thread(
        target=shared_landmark_process, name="facestyle-landmarks-start", daemon=True
    )
    landmarks_starting.start()
    style = settings.style
    stylizer = (
        style
        if isinstance(style, Stylizer)
        else resolve_style(
            style,
            device,
            settings.strokes,
            settings.skin_hue,
            settings.keyframes,
            settings.keyframe_lag,
        )
    )
    apply_thread_policy()
    landmarks_starting.join()
    # An explicit "cuda" wants every stage on the GPU (CuPy is then required); "auto" blends
    # with CuPy when it is installed and with NumPy when it is not.
    blend_device = "cuda" if settings.device == "cuda" else "auto" if device == "cuda" else "cpu"
    return Restyler(
        stylizer,
        FaceTracker(
            settings.detect_every,
            settings.max_faces,
            detect_lag=settings.detect_lag,
            detect_wait=settings.detect_lag == 0,
            fit_landmarks=shared_landmark_process(),
        ),
        Compositor(mode=settings.mask, device=blend_device, fine_detail=settings.fine_detail),
        settings.identity,
        # The keyframe painter's teacher paints at its exemplar's side only.
        half_crops=settings.half_crops and not settings.keyframes,
    )
