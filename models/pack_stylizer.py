"""A style pack as a :class:`pipeline.stylizer.Stylizer`: the trained student, run per frame."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional

from models.canvas import advect_shift, resize_canvas, shifted_canvas
from models.generator import StudentGenerator
from models.geometry import Reshaper
from models.pack import StylePack
from models.student_input import StudentReference, student_guides, to_unit_rgb
from pipeline.detail import restore_tone
from pipeline.errors import DeviceError, StyleError
from pipeline.flow import optical_flow, pixel_grid, warp_by_flow
from pipeline.frame import AlignedCrop
from pipeline.guides import LUMA_WEIGHTS
from pipeline.xp import select_backend

__all__ = ["PackStylizer", "as_graph", "build_generator", "default_dtype", "ink_colours"]

# Input luminance change (0-255, blurred) at which the blend weight has fallen to 1/e: noise
# and compression shimmer are smaller, a blink or a mouth opening much larger.
_CHANGE_SCALE = 10.0

# Crop pixels per student call on the CPU: two 256² crops, or eight 128² ones. A larger batch
# no longer fits the cores' caches: one thread, bfloat16, five interleaved rounds, ms a 256²
# crop for four crops in calls of 1 / 2 / 4 crops 9.2 / 9.0 / 12.4, for eight 128² crops in
# calls of 1 / 2 / 4 / 8 2.8 / 2.7 / 2.3 / 2.3; the output is the same bit for bit. A GPU
# takes every crop of a frame in one call.
_CPU_CALL_PIXELS = 2 * 256 * 256


def default_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA; bfloat16 on a CPU with native bf16 support; float32 otherwise."""
    if device.type == "cuda":
        return torch.float16
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


def build_generator(pack: StylePack) -> StudentGenerator:
    """The pack's student as a float32 module in eval mode (CPU)."""
    net = StudentGenerator(pack.config)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in pack.weights.items()})
    return net.eval()


def as_graph(net: StudentGenerator, crop_size: int, dtype: torch.dtype) -> torch.nn.Module:
    """The student traced into one TorchScript graph, for the stylizing thread's sake.

    Run as a module, every layer returns to Python and must take the interpreter's lock back
    before the next starts; in a render the tracking and compositing threads hold that lock
    much of the time, and in a four-face frame the stylizing thread, which sets the pace,
    spent 45 % of its time waiting for it (py-spy on the 2x2 mosaic of clips 1 and 2 at
    720p). A graph takes the lock back once per call: `facestyle bench` on that mosaic, three
    interleaved rounds, 12.2 / 11.0 / 15.0 fps as a module against 15.5 / 12.5 / 17.1 as a
    graph; alone, the student is as fast either way. The output is the same bit for bit at
    every batch and crop size (the trace holds no shapes: convolutions and a 2x upsampling).
    ``torch.jit`` is deprecated in favour of ``torch.compile``, which needs a C++ compiler
    at run time. A CUDA student stays a module until a GPU measures the graph there
    (``scripts/gpu-check`` times both).

    Args:
        net: the student in eval mode, in ``dtype``, channels-last, on its device.
        crop_size: the side of the crops it is traced on (any side divisible by 4 runs).
    """
    config = net.config
    device = next(net.parameters()).device

    def example(channels: int, side: int) -> torch.Tensor:
        return torch.zeros(1, channels, side, side, dtype=dtype, device=device).contiguous(
            memory_format=torch.channels_last
        )

    inputs = (example(3, crop_size), example(config.guide_channels, crop_size // 4))
    if config.canvas:
        inputs += (example(config.canvas, crop_size),)
    with warnings.catch_warnings(), torch.inference_mode():
        # The deprecation notice, and the tracer's note that a Python check on the canvas
        # is not recorded (it held for the example and is kept by the inputs' makers).
        warnings.simplefilter("ignore")
        return torch.jit.trace(net, inputs, check_trace=False)


def _warp_crop(crop: torch.Tensor, flow: np.ndarray) -> torch.Tensor:
    """``(S, S, C)`` ``float32`` crop sampled at ``x + flow`` (see
    :func:`pipeline.flow.warp_by_flow`), on the crop's device; ``flow``: ``(S, S, 2)``
    ``float32`` pixels.

    Bicubic, not bilinear: the carried output is resampled again every frame, and bilinear
    sampling halfway between pixels halves a 4 px stroke's contrast each time, so the blend
    of past frames turned into a blur (sharpness on the shared clips 0.51 / 0.26 / 0.37 of
    the exemplar's against 0.59 / 0.28 / 0.39 bicubic, painterly, smoothing 0.75). On the CPU
    through OpenCV: 0.7 ms at 256², where PyTorch's bicubic takes 2.8 ms.
    """
    if crop.device.type == "cpu":
        image = np.ascontiguousarray(crop.numpy())
        return torch.from_numpy(warp_by_flow(image, flow, cv2.INTER_CUBIC).reshape(image.shape))
    size = flow.shape[0]
    # grid_sample's coordinates: -1..1 from the first pixel's centre to the last's.
    positions = pixel_grid(size, size) + flow
    grid = torch.from_numpy(positions * np.float32(2 / (size - 1)) - 1).to(crop.device)
    return functional.grid_sample(
        crop.permute(2, 0, 1)[None],
        grid[None],
        mode="bicubic",
        padding_mode="border",
        align_corners=True,
    )[0].permute(1, 2, 0)


def ink_colours(exemplar: np.ndarray) -> np.ndarray:
    """How a monochrome exemplar colours each grey level: its ink and paper as a line in RGB.

    A student trained on an engraving or a drawing can still leave a tint of the photo's
    colours (green hair, a magenta background, red lips: its corrections are per channel); a
    monochrome style should never show one. So its output is reduced to grey and recoloured
    the way the exemplar is (grey for a grey print, brown for sepia, red-brown on buff for
    red chalk).

    Args:
        exemplar: ``(T, T, 3)`` ``uint8`` RGB aligned exemplar (a pack's thumbnail).

    Returns:
        ``(2, 3)`` ``float32``: per RGB channel the gain and the offset (0-255) fitted from
        the exemplar's grey to its channels.
    """
    pixels = exemplar.reshape(-1, 3).astype(np.float64)
    design = np.stack([pixels @ LUMA_WEIGHTS, np.ones(len(pixels))], axis=1)
    fit, *_ = np.linalg.lstsq(design, pixels, rcond=None)
    return fit.astype(np.float32)


@dataclass
class _TrackState:
    """What a track keeps of its last frame.

    Attributes:
        grey: ``(S, S)`` ``uint8`` the input crop's grey.
        luminance: ``(S, S)`` ``float32`` its blurred luminance (when smoothing).
        styled: ``(S, S, 3)`` ``float32`` 0-255 the stylized crop, on the stylizer's device.
        shift: ``(S, S, 2)`` ``float32`` where its pixels are on the canvas (a pack with one).
    """

    grey: np.ndarray
    luminance: np.ndarray | None = None
    styled: torch.Tensor | None = None
    shift: np.ndarray | None = None


@dataclass
class _Motion:
    """One crop of this frame: its track's new state, the last one, the flow between and,
    when smoothing, how much of the last output to blend in (``(S, S)`` ``float32``; see
    :meth:`PackStylizer._smooth`)."""

    track_id: int
    track: _TrackState
    last: _TrackState | None
    flow: np.ndarray | None
    weight: np.ndarray | None = None


@dataclass(frozen=True)
class _Prepared:
    """One crop ready for the student (:meth:`PackStylizer.prepare`).

    Attributes:
        rgb: ``(3, S, S)`` ``float32`` -1..1, the crop after the pack's geometry warp.
        guides: ``(G, S/4, S/4)`` ``float32``.
        motion: the crop's track, now and at its last frame.
        canvas: ``(C, S, S)`` ``float32``, the track's carried canvas; ``None`` without one.
    """

    rgb: np.ndarray
    guides: np.ndarray
    motion: _Motion
    canvas: np.ndarray | None


class PackStylizer:
    """Stylizes aligned crops with a pack's student.

    Attributes:
        default_identity: the pack's suggested identity <-> style strength (for
            :func:`pipeline.detail.restore_detail`), chosen when the pack was made.
        identity_scale: the pack's blur separating the person's detail from the face's
            shape (:data:`pipeline.detail.DEFAULT_IDENTITY_SCALE`), chosen likewise.
        device: the torch device the student runs on.
        backend: the array module :meth:`stylize` returns crops in.

    Args:
        pack: a loaded, validated pack.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"``): where the student runs, in one batch
            per frame (all its faces), and where its crops stay (see :meth:`stylize`).
        dtype: compute precision; default :func:`default_dtype` for the device.
        smoothing: 0..1, how much of a track's previous stylized crop, carried along the
            face's motion by optical flow, is blended into the current one; fades to 0
            where the flow does not explain the change (a blink, an occlusion), so nothing
            ghosts. 0 stylizes every frame on its own.
        strokes: the pack's canvas is scaled by this (1: as stored; 0: none), so its
            student paints fainter or bolder strokes; a pack without a canvas ignores it.
        skin_hue: 0..1, with a pack that keeps skin tone, how far each face's colour moves
            from the painter's skin toward the person's own (the ``hue`` of
            :func:`pipeline.detail.restore_tone`); other packs ignore it.
    """

    def __init__(
        self,
        pack: StylePack,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        smoothing: float = 0.85,
        strokes: float = 1.0,
        skin_hue: float = 0.0,
    ) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"PackStylizer: smoothing must be in 0..1, got {smoothing}")
        if not 0.0 <= strokes <= 4.0:
            raise ValueError(f"PackStylizer: strokes must be in 0..4, got {strokes}")
        if not 0.0 <= skin_hue <= 1.0:
            raise ValueError(f"PackStylizer: skin_hue must be in 0..1, got {skin_hue}")
        self.skin_hue = skin_hue
        self.smoothing = smoothing
        # Each track's last prepared crop (prepare's) and last painted one (paint's): on the
        # live path a frame can be prepared and then dropped before it is painted.
        self._tracks: dict[int, _TrackState] = {}
        self._painted: dict[int, _TrackState] = {}
        self.pack = pack
        self.name = pack.name
        self.crop_size = pack.crop_size
        self.default_identity = pack.identity
        self.identity_scale = pack.identity_scale
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise DeviceError(
                "device 'cuda' requested but PyTorch sees no CUDA GPU; use device='cpu'"
            )
        self.dtype = dtype or default_dtype(self.device)
        # Where the stylized crops go next (the compositor): CuPy beside a CUDA student when
        # it is installed, so the crops never leave the GPU.
        self.backend = select_backend("auto" if self.device.type == "cuda" else "cpu")
        net = build_generator(pack).to(self.device, self.dtype)
        net = net.to(memory_format=torch.channels_last)
        on_cpu = self.device.type == "cpu"
        self._net = as_graph(net, self.crop_size, self.dtype) if on_cpu else net
        self._reference = pack.reference
        self._reshaper = Reshaper(pack.exemplar_landmarks, pack.crop_size, pack.geometry)
        self._canvas = None if pack.canvas is None else pack.canvas * np.float32(strokes)
        # (luma weights, per-channel gains, offsets) on the device, made once, not per frame.
        self._monochrome = (
            tuple(
                torch.from_numpy(a).to(self.device)
                for a in (LUMA_WEIGHTS, *ink_colours(pack.thumbnail))
            )
            if pack.monochrome
            else None
        )
        self._canvas_sizes: dict[int, np.ndarray] = {}
        self._references: dict[int, StudentReference] = {}

    def inputs(self, crops: Sequence[AlignedCrop]) -> tuple[np.ndarray, np.ndarray]:
        """The student's inputs: ``(N, 3, S, S)`` RGB -1..1 and ``(N, G, S/4, S/4)`` guides,
        both ``float32``, after the pack's geometry warp.

        ``S`` is the pack's crop size, or half of it for every crop (the live path's "smaller
        crops" step: the student is fully convolutional, the exemplar's side scales along).
        """
        pairs = self._warped_with_guides(crops)
        return to_unit_rgb(np.stack([image for image, _ in pairs])), np.stack(
            [guides for _, guides in pairs]
        )

    def _warped_with_guides(
        self, crops: Sequence[AlignedCrop]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per crop: ``(S, S, 3)`` ``uint8`` after the geometry warp, ``(G, S/4, S/4)``
        ``float32`` guides (see :meth:`inputs`); each crop at its own side ``S``."""
        pairs = []
        for crop in self.reshape(crops):
            reference = self._reference_at(crop.size)
            guides = student_guides(crop.image, crop.landmarks, reference, self.pack.guides)
            pairs.append((crop.image, guides))
        return pairs

    def reshape(self, crops: Sequence[AlignedCrop]) -> list[AlignedCrop]:
        """``crops`` after the pack's geometry warp (:func:`models.geometry.reshape_crops`),
        which the student's output lines up with
        (:class:`pipeline.stylizer.ReshapingStylizer`)."""
        for crop in crops:
            self._reference_at(crop.size)  # refuses a side the pack does not stylize
        return self._reshaper(crops)

    def stylize(self, crops: Sequence[AlignedCrop]) -> Any:
        """``N`` aligned crops → ``(N, S, S, 3)`` ``uint8`` RGB stylized crops, as an array of
        :attr:`backend` (a CuPy array on CUDA, handed over through DLPack with no host copy;
        NumPy otherwise): :meth:`prepare`, :meth:`paint` and :meth:`finish` in turn."""
        return self.finish(self.paint(crops, self.prepare(crops)), crops)

    def prepare(self, crops: Sequence[AlignedCrop]) -> list[_Prepared]:
        """What the student needs of each crop, from the input crops alone: the warped crop,
        its guides, the flow from the track's last crop and the canvas carried along it.

        Call once per frame with all its crops, in frame order: the tracks' last crops are
        kept here. The crops may differ in side (the pack's, or half of it: a crowd's small
        faces); :meth:`paint` takes one side at a time. The restyler calls it on its
        analysing thread, so it overlaps the student's batch of the frame before."""
        if not crops:
            return []
        motions = self._motions(crops)
        canvases: Sequence[np.ndarray | None] = (
            [None] * len(crops) if self._canvas is None else self._carried_canvas(motions)
        )
        self._tracks = {motion.track_id: motion.track for motion in motions}
        return [
            _Prepared(to_unit_rgb(image[None])[0], guides, motion, canvas)
            for (image, guides), motion, canvas in zip(
                self._warped_with_guides(crops), motions, canvases, strict=True
            )
        ]

    def paint(self, crops: Sequence[AlignedCrop], prepared: Sequence[_Prepared]) -> Any:
        """The student on :meth:`prepare`'s items, all crops in one batch, steadied by each
        track's last output: ``(N, S, S, 3)`` ``uint8`` of :attr:`backend`, before
        :meth:`finish`. Call in frame order (the tracks' last outputs are kept), once per
        crop side where a frame's crops differ.

        Raises:
            StyleError: the crops are not all of one side.
        """
        if not crops:
            return self.backend.xp.zeros((0, self.crop_size, self.crop_size, 3), np.uint8)
        if len({crop.size for crop in crops}) > 1:
            raise StyleError(f"pack {self.name!r}: crops painted in one batch must share a side")
        rgb = np.stack([item.rgb for item in prepared])
        guides = np.stack([item.guides for item in prepared])
        canvas = None if self._canvas is None else np.stack([item.canvas for item in prepared])
        motions = [item.motion for item in prepared]
        styled = self.forward(rgb, guides, canvas).round_().clamp_(0, 255)
        if self.smoothing > 0:
            styled = self._smooth(motions, styled)
        for motion, current in zip(motions, styled, strict=True):
            motion.track.styled = current
        painted = {**self._painted, **{motion.track_id: motion.track for motion in motions}}
        # Kept while the track is: a face left out of this frame is painted again next time.
        self._painted = {key: state for key, state in painted.items() if key in self._tracks}
        return self._hand_over(styled)

    def finish(self, painted: Any, crops: Sequence[AlignedCrop]) -> Any:
        """:meth:`paint`'s crops made final, from this frame alone (any thread): a pack that
        keeps skin tone (``pack.keep_tone``) has each face's brightness brought back to the
        person's own (:func:`pipeline.detail.restore_tone`), its hue moved toward theirs by
        ``skin_hue``."""
        if not self.pack.keep_tone or not crops:
            return painted
        content = np.stack([crop.image for crop in crops])
        landmarks = np.stack([crop.landmarks for crop in crops])
        return restore_tone(painted, content, landmarks, self.skin_hue)

    def _motions(self, crops: Sequence[AlignedCrop]) -> list[_Motion]:
        """Each crop's track now, the flow from it to the track's last crop (``None`` for a
        new track, or one whose crop size changed: a live degradation step) and the
        smoothing's weights (see :meth:`_smooth`)."""
        needs_flow = self.smoothing > 0 or self._canvas is not None
        motions = []
        for crop in crops:
            grey = cv2.cvtColor(crop.image, cv2.COLOR_RGB2GRAY)
            track = _TrackState(grey)
            last = self._tracks.get(crop.track_id)
            if last is not None and last.grey.shape != grey.shape:
                last = None
            flow = weight = None
            if last is not None and needs_flow:
                flow = optical_flow(grey, last.grey, fast=True)
            if self.smoothing > 0:
                sigma = grey.shape[0] / 128
                track.luminance = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), sigma)
                if flow is not None and last is not None:
                    weight = self._blend_weight(track, last, flow)
            motions.append(_Motion(crop.track_id, track, last, flow, weight))
        return motions

    def _blend_weight(self, track: _TrackState, last: _TrackState, flow: np.ndarray) -> np.ndarray:
        """``(S, S)`` ``float32``: how much of ``last``'s output :meth:`_smooth` blends into
        ``track``'s, less where the flow does not explain the change of input (both with a
        ``luminance``; ``flow`` from ``track``'s crop to ``last``'s)."""
        change = np.abs(track.luminance - warp_by_flow(last.luminance, flow))  # type: ignore[operator]
        return np.float32(self.smoothing) * np.exp(-((change / _CHANGE_SCALE) ** 2))

    def _carried_canvas(self, motions: Sequence[_Motion]) -> list[np.ndarray]:
        """Per crop ``(C, S, S)`` ``float32``: each track's canvas carried along its face's motion
        since the track began (:func:`models.canvas.advect_shift`)."""
        planes = []
        for motion in motions:
            size = motion.track.grey.shape[0]
            canvas = self._canvas_at(size)
            if motion.flow is None or motion.last is None or motion.last.shift is None:
                motion.track.shift = np.zeros((size, size, 2), np.float32)
                planes.append(canvas)
            else:
                motion.track.shift = advect_shift(motion.last.shift, motion.flow)
                planes.append(shifted_canvas(canvas, motion.track.shift))
        return planes

    def _reference_at(self, size: int) -> StudentReference:
        """The guides' reference for ``size`` px crops (the pack's side, or half of it),
        made once per size.

        Raises:
            StyleError: another side.
        """
        if size not in self._references:
            if size not in (self.crop_size, self.crop_size // 2):
                raise StyleError(
                    f"pack {self.name!r} stylizes {self.crop_size}px crops, got {size}px"
                )
            landmarks = self._reference.landmarks * np.float32(size / self.crop_size)
            self._references[size] = replace(self._reference, landmarks=landmarks, size=size)
        return self._references[size]

    def _canvas_at(self, size: int) -> np.ndarray:
        """The pack's ``(C, size, size)`` canvas (half size on the live path's smaller
        crops), made once per size."""
        if size not in self._canvas_sizes:
            self._canvas_sizes[size] = resize_canvas(self._canvas, size)  # type: ignore[arg-type]
        return self._canvas_sizes[size]

    def _smooth(self, motions: Sequence[_Motion], styled: torch.Tensor) -> torch.Tensor:
        """Blend each track's previous output in, carried along the face's motion, where its
        input did not change.

        The aligned crop cancels the head's motion but not the face's own (a turn, a
        mouth moving, the crop's jitter): optical flow between this input crop and the last
        one carries the previous output and input onto this crop first, so a moving face is
        steadied as much as a still one, and only what the flow cannot explain (a blink,
        an occlusion) fades the blend out.

        ``styled`` and the result: ``(N, S, S, 3)`` ``float32`` 0-255 on :attr:`device`; the
        flow and change weights come from the input crops (:meth:`_motions`), on the host.
        Where the track's last prepared frame was not painted (dropped on the live path, or
        left out of alternate frames), the flow is made here from its last painted one.
        """
        out = torch.empty_like(styled)
        for i, motion in enumerate(motions):
            current = styled[i]
            track, last = motion.track, self._painted.get(motion.track_id)
            flow, weight = (motion.flow, motion.weight) if last is motion.last else (None, None)
            if last is not None and last is not motion.last and last.grey.shape == track.grey.shape:
                flow = optical_flow(track.grey, last.grey, fast=True)
                weight = self._blend_weight(track, last, flow)
            if weight is not None and last is not None:
                current = current + torch.from_numpy(weight).to(self.device)[..., None] * (
                    _warp_crop(last.styled, flow) - current  # type: ignore[arg-type]
                )
            out[i] = current
        return out

    def _hand_over(self, styled: torch.Tensor) -> Any:
        """``(N, S, S, 3)`` ``float32`` 0-255 → ``uint8`` array of :attr:`backend`."""
        crops = (styled + 0.5).floor_().clamp_(0, 255).to(torch.uint8).contiguous()
        if self.backend.xp is np:
            crops = crops.cpu()  # a CUDA student without CuPy: the one host copy
        return self.backend.xp.from_dlpack(crops)

    def forward(
        self, rgb: np.ndarray, guides: np.ndarray, canvas: np.ndarray | None = None
    ) -> torch.Tensor:
        """The student on prepared inputs (see :meth:`inputs`): all crops in one batch on a
        GPU, a few crops a call on the CPU (see ``_CPU_CALL_PIXELS``).

        ``canvas``: ``(N, C, S, S)`` ``float32``; the pack's own, unmoved, when ``None`` (a
        still picture, the adapt preview). A monochrome style's output is recoloured as its
        exemplar (:func:`ink_colours`).

        Returns:
            ``(N, S, S, 3)`` ``float32`` RGB 0-255 (unrounded) on :attr:`device`.
        """

        def tensor(array: np.ndarray) -> torch.Tensor:
            return (
                torch.from_numpy(array)
                .to(self.device, self.dtype)
                .contiguous(memory_format=torch.channels_last)
            )

        if canvas is None and self._canvas is not None:
            still = self._canvas_at(rgb.shape[2])
            canvas = np.repeat(still[None], len(rgb), axis=0)
        on_gpu = self.device.type == "cuda"
        per_call = max(len(rgb) if on_gpu else _CPU_CALL_PIXELS // rgb.shape[2] ** 2, 1)
        calls = range(0, max(len(rgb), 1), per_call)
        with torch.inference_mode():
            parts = [
                self._net(
                    tensor(rgb[i : i + per_call]),
                    tensor(guides[i : i + per_call]),
                    None if canvas is None else tensor(canvas[i : i + per_call]),
                )
                for i in calls
            ]
            # One face, one call: no copy.
            out = (parts[0] if len(parts) == 1 else torch.cat(parts)).float()
        styled = ((out + 1.0) * 127.5).permute(0, 2, 3, 1)
        if self._monochrome is not None:
            luma, gains, offsets = self._monochrome
            styled = (styled * luma).sum(dim=3, keepdim=True) * gains + offsets
        return styled

    def run(self, rgb: np.ndarray, guides: np.ndarray) -> np.ndarray:
        """The student on prepared inputs → ``(N, S, S, 3)`` ``uint8`` RGB on the host."""
        out = self.forward(rgb, guides).round_().clamp_(0, 255).to(torch.uint8)
        return np.ascontiguousarray(out.cpu().numpy())

    def reset(self) -> None:
        """Forget every track's previous frame (call between unrelated clips)."""
        self._tracks = {}
        self._painted = {}
