"""Training the student on the teacher's crops: random patches, L1 + a tiny LSGAN patch
discriminator + a consistency term.

What each term is for (DESIGN.md, step 4):

- L1 to the teacher's crop: the colours and large shapes. Alone it is blurry (it averages
  what it cannot place exactly): ghosted eyes, weaker style than the teacher.
- A tiny least-squares patch discriminator (two strided convs) on output vs teacher patches:
  keeps the strokes and texture sharp.
- Texture: a sliced Wasserstein distance between the output's and the teacher's
  high-passed 5x5 patches, at full and half resolution. The teacher paints a different
  stroke for nearly the same input, so L1 alone learns the average of its strokes: a soft
  wash. This term asks for the same distribution of strokes, wherever they fall (Heitz et
  al., "A Sliced Wasserstein Loss for Neural Texture Synthesis", CVPR 2021).
- Artwork: the same kind of distance between the output's raw 5x5 windows and the
  exemplar's own, part by part (hair, skin, eyes and brows, lips): the teacher's collage
  paints a face with whichever of the artwork's patches match its guides (for Van Gogh
  mostly his pale background), so a student that learns only the teacher is held to the
  teacher's palette; this term asks each part of the face for the artwork's own colours and
  strokes in that part.
- Consistency: the same input slightly warped (sub-pixel shift, small rotation and scale)
  and with a little noise must give the same output warped; this is what keeps the student
  steady on video, where the aligned crop jitters by a fraction of a pixel every frame.

Tensors here follow :mod:`models.generator`: RGB ``(N, 3, S, S)`` in -1..1, guides
``(N, G, S/4, S/4)`` about -1..1, canvas ``(N, C, S, S)``. Every training face sees the same
canvas; the consistency term warps it with the face, as a track's canvas moves with the face
on video (:func:`models.canvas.advect_shift`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from models.generator import GeneratorConfig, StudentGenerator
from models.student_input import GUIDE_SCALE
from pipeline.guides import REGIONS, region_labels

__all__ = [
    "HEAD_PARTS",
    "Artwork",
    "CoreCount",
    "PatchDiscriminator",
    "TrainSettings",
    "TrainingSet",
    "busy_cores",
    "free_cores",
    "head_parts",
    "threads_beside",
    "train_student",
]

HEAD_PARTS = ("hair", "skin", "eyes", "lips")
"""The parts of a head the artwork term compares one by one: hair (with the forehead band),
skin (with the nose), eyes (with the brows), lips (with the inside of the mouth)."""

# Background is no part (-1): the artwork's background is not what a head is painted with.
_PART_OF = {
    "hair": "hair",
    "skin": "skin",
    "nose": "skin",
    "brows": "eyes",
    "eyes": "eyes",
    "lips": "lips",
    "mouth": "lips",
}
_PART_OF_REGION = np.array(
    [HEAD_PARTS.index(_PART_OF[name]) if name in _PART_OF else -1 for name in REGIONS], np.int8
)


def head_parts(landmarks: np.ndarray, size: int, ears: bool = True) -> np.ndarray:
    """``(S, S)`` ``int8``: each pixel's index in :data:`HEAD_PARTS`, -1 for background.

    Args:
        landmarks: ``(68, 2)`` crop pixels.
        size: crop side ``S``.
        ears: as in :func:`pipeline.guides.region_labels` (``False`` for the exemplar).
    """
    return _PART_OF_REGION[region_labels(landmarks, size, ears)]


@dataclass(frozen=True)
class Artwork:
    """The exemplar as the artwork term sees it.

    Attributes:
        image: ``(3, S, S)`` ``float32`` -1..1, the aligned exemplar crop.
        parts: ``(S, S)`` ``int8`` its :func:`head_parts` (its ears not taken as skin).
    """

    image: np.ndarray
    parts: np.ndarray


@dataclass(frozen=True)
class TrainingSet:
    """Aligned content crops with their guides and the teacher's stylized crops.

    Attributes:
        rgb: ``(N, 3, S, S)`` ``float32`` content RGB, -1..1.
        guides: ``(N, G, S/4, S/4)`` ``float32`` their guides.
        targets: ``(N, 3, S, S)`` ``float32`` the teacher's output, -1..1.
        canvas: ``(C, S, S)`` ``float32`` the canvas of every face (:mod:`models.canvas`);
            ``None`` for a student without one.
        parts: ``(N, S, S)`` ``int8`` each content pixel's :func:`head_parts`, for the
            artwork term; ``None`` without it.
        artwork: the exemplar, for the artwork term; ``None`` without it.
    """

    rgb: np.ndarray
    guides: np.ndarray
    targets: np.ndarray
    canvas: np.ndarray | None = None
    parts: np.ndarray | None = None
    artwork: Artwork | None = None

    def __post_init__(self) -> None:
        n, _, s, _ = self.rgb.shape
        if self.targets.shape != self.rgb.shape or self.rgb.shape[1] != 3 or s % GUIDE_SCALE:
            raise ValueError(
                f"TrainingSet: expected rgb and targets (N, 3, S, S) with S divisible by "
                f"{GUIDE_SCALE}, got {self.rgb.shape} and {self.targets.shape}"
            )
        small = s // GUIDE_SCALE
        if self.guides.shape[0] != n or self.guides.shape[2:] != (small, small):
            raise ValueError(
                f"TrainingSet.guides: expected ({n}, G, {small}, {small}), got {self.guides.shape}"
            )
        if self.canvas is not None and self.canvas.shape[1:] != (s, s):
            raise ValueError(f"TrainingSet.canvas: expected (C, {s}, {s}), got {self.canvas.shape}")
        if (self.parts is None) != (self.artwork is None):
            raise ValueError("TrainingSet: parts and artwork come together")
        if (
            self.parts is not None
            and self.artwork is not None
            and (
                self.parts.shape != (n, s, s)
                or self.artwork.image.shape != (3, s, s)
                or self.artwork.parts.shape != (s, s)
            )
        ):
            raise ValueError(
                f"TrainingSet: expected parts ({n}, {s}, {s}) and an artwork (3, {s}, {s}) with "
                f"parts ({s}, {s}), got {self.parts.shape}, {self.artwork.image.shape} and "
                f"{self.artwork.parts.shape}"
            )


@dataclass(frozen=True)
class TrainSettings:
    """How to train.

    Attributes:
        steps: optimisation steps.
        batch: patches per step.
        patch: patch side in pixels (a multiple of 4, at most the crop side).
        lr: Adam learning rate of both networks.
        l1: weight of the L1 term.
        adversarial: weight of the LSGAN term; 0 trains with L1 (and consistency) alone.
        consistency: weight of the warp-consistency term; 0 turns it off.
        texture: weight of the patch-distribution term; 0 turns it off.
        artwork: weight of the artwork term (the output's windows against the exemplar's
            own, part by part); 0, or data without an artwork (``adapt`` gives none for a
            monochrome exemplar), turns it off.
        seed: random seed (patches, warps, initial weights).
        seconds: stop early after this much wall time, if set.
        threads: PyTorch CPU threads while training; ``None``: the free cores
            (:func:`free_cores`), counted again every few seconds while it trains on the CPU
            (:class:`CoreCount`), so a program that starts beside it takes a thread away and
            one that ends gives it back.
        device: where the student trains, ``"cpu"`` or ``"cuda"`` (already resolved; see
            :func:`plugin.settings.resolve_device`); the trained student comes back on the
            CPU either way.
    """

    steps: int = 1500
    batch: int = 8
    patch: int = 96
    lr: float = 2e-3
    l1: float = 4.0
    adversarial: float = 0.5
    consistency: float = 2.0
    texture: float = 4.0
    artwork: float = 2.0
    seed: int = 0
    seconds: float | None = None
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.patch % (4 * GUIDE_SCALE) or self.patch < 16:
            raise ValueError(f"patch: expected a multiple of 16, >= 16, got {self.patch}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps and batch must be >= 1, got {self.steps}, {self.batch}")


# The kernel's CPU time counters, for how busy the cores are now (Linux).
_PROC_STAT = Path("/proc/stat")

# How long free_cores watches the CPU time counters.
_BUSY_WINDOW_SECONDS = 0.5


def busy_cores(first: str, second: str, cores: int) -> float:
    """Cores' worth of work done between two readings of ``/proc/stat``'s first line.

    Args:
        first, second: the ``cpu ...`` summary line, read at the start and the end of a
            window: user, nice, system, idle, iowait, irq, softirq and steal jiffies.
        cores: the machine's cores.

    Returns:
        0 (idle) to ``cores`` (every core busy).
    """

    def idle_and_total(line: str) -> tuple[int, int]:
        values = [int(v) for v in line.split()[1:9]]
        return values[3] + values[4], sum(values)

    idle_first, total_first = idle_and_total(first)
    idle_second, total_second = idle_and_total(second)
    total = total_second - total_first
    if total <= 0:
        return 0.0
    return cores * (1.0 - (idle_second - idle_first) / total)


def _read_stat() -> str | None:
    """``/proc/stat``'s ``cpu`` summary line; ``None`` where it cannot be read (not Linux)."""
    try:
        return _PROC_STAT.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None


def _busy_now(cores: int) -> float | None:
    """Busy cores over the next half second from ``/proc/stat``; ``None`` where it cannot
    be read (not Linux)."""
    first = _read_stat()
    time.sleep(_BUSY_WINDOW_SECONDS)
    second = _read_stat()
    if first is None or second is None:
        return None
    return busy_cores(first, second, cores)


def threads_beside(others: float, cores: int) -> int:
    """PyTorch threads to use beside ``others`` cores' worth of other programs' work: the
    cores they leave, at least 1 and at most ``cores``."""
    return max(1, min(cores, round(cores - max(others, 0.0))))


def free_cores(own_load: float = 1.0) -> int:
    """CPU cores not busy with other work (at least 1).

    PyTorch's CPU threads wait for each other at every op; when another process holds one of
    them, a step can take ten times longer than on fewer threads (measured on 2 busy cores:
    190 ms a step on 1 thread, 0.1-1.5 s on 2), so training uses only the free cores.

    Measured from the CPU time counters over half a second where the kernel shows them
    (Linux); elsewhere from the 1-minute load average. The load average trails what is
    running by a minute and counts tasks waiting on the disk: on this project's 2-core
    machine it read 1.2 while the counters showed no core busy, and a pack was trained on one
    thread (589 steps instead of about 980).

    Args:
        own_load: for the load average only: how much of it is the caller's own recent
            work, which is over before training starts (about one core for a caller that has
            just been busy; 0 for one measuring before it starts working).
    """
    cores = os.cpu_count() or 1
    busy = _busy_now(cores)
    if busy is None:
        busy = max(os.getloadavg()[0] - own_load, 0.0)
    return threads_beside(busy, cores)


class CoreCount:
    """The free cores counted again while training runs, from what other programs used.

    A count taken once at the start holds for the whole training: a program that starts
    beside it later (a browser, a render) leaves PyTorch's threads waiting on each other at
    every op, and a short burst at the start would hold it to one thread throughout. Each
    recount takes the cores busy since the last one (``/proc/stat``) minus this process's own
    CPU time over the same while, so its own training does not count as another program.

    Args:
        every: seconds between counts.
        cores: the machine's cores (default ``os.cpu_count()``).
        read_stat: reads ``/proc/stat``'s summary line, ``None`` where it cannot.
        own_seconds: this process's CPU seconds so far, all its threads.
        clock: wall-clock seconds.
    """

    def __init__(
        self,
        every: float = 5.0,
        *,
        cores: int | None = None,
        read_stat: Callable[[], str | None] = _read_stat,
        own_seconds: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.cores = cores or os.cpu_count() or 1
        self._read_stat, self._own_seconds, self._clock = read_stat, own_seconds, clock
        self._last = self._reading()

    def _reading(self) -> tuple[float, str | None, float]:
        return self._clock(), self._read_stat(), self._own_seconds()

    def recount(self) -> int | None:
        """Threads to use now, or ``None`` until ``every`` seconds have passed since the
        last count (and where ``/proc/stat`` cannot be read)."""
        if self._clock() - self._last[0] < self.every:
            return None
        (start, first, own_first), (end, second, own_second) = self._last, self._reading()
        self._last = (end, second, own_second)
        if first is None or second is None:
            return None
        own = (own_second - own_first) / max(end - start, 1e-9)
        return threads_beside(busy_cores(first, second, self.cores) - own, self.cores)


class PatchDiscriminator(nn.Module):
    """Two strided convs (12 and 24 filters) and a 1-channel head: one score per ~10 px patch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 12, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(12, 24, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(24, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Batch(NamedTuple):
    """Random patches of the training set, on the training device.

    Attributes:
        rgb: ``(B, 3, P, P)`` content.
        guides: ``(B, G, P/4, P/4)``.
        target: ``(B, 3, P, P)`` the teacher's.
        canvas: ``(B, C, P, P)``, or ``None``.
        parts: ``(B, P, P)`` ``int64`` head parts, or ``None``.
    """

    rgb: torch.Tensor
    guides: torch.Tensor
    target: torch.Tensor
    canvas: torch.Tensor | None
    parts: torch.Tensor | None


def _sample_patches(
    data: TrainingSet, count: int, patch: int, rng: np.random.Generator, device: torch.device
) -> Batch:
    """Random patches at positions on the guides' grid, so guides and RGB stay aligned, with
    the targets, canvas and head parts under them."""
    n, _, s, _ = data.rgb.shape
    small = patch // GUIDE_SCALE
    index = rng.integers(0, n, count)
    ys = rng.integers(0, (s - patch) // GUIDE_SCALE + 1, count)
    xs = rng.integers(0, (s - patch) // GUIDE_SCALE + 1, count)
    picks = list(zip(index, ys * GUIDE_SCALE, xs * GUIDE_SCALE, strict=True))

    def cut(array: np.ndarray, side: int, scale: int = 1) -> np.ndarray:
        return np.stack(
            [
                array[i, ..., y // scale : y // scale + side, x // scale : x // scale + side]
                for i, y, x in picks
            ]
        )

    # channels_last: several times faster for these thin convs on a CPU, training included.
    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(device).contiguous(memory_format=torch.channels_last)

    canvas = None
    if data.canvas is not None:
        canvas = tensor(
            np.stack([data.canvas[:, y : y + patch, x : x + patch] for _, y, x in picks])
        )
    parts = None
    if data.parts is not None:
        parts = torch.from_numpy(cut(data.parts, patch).astype(np.int64)).to(device)
    return Batch(
        tensor(cut(data.rgb, patch)),
        tensor(cut(data.guides, small, GUIDE_SCALE)),
        tensor(cut(data.targets, patch)),
        canvas,
        parts,
    )


def _random_warps(count: int, patch: int, generator: torch.Generator) -> torch.Tensor:
    """``(count, 2, 3)`` small affine warps in ``affine_grid``'s normalised coordinates:
    up to 2 degrees, 2 % scale and 1.5 px shift, what landmark jitter does to a crop."""
    angle = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(2.0)
    scale = 1 + (torch.rand(count, generator=generator) * 2 - 1) * 0.02
    shift = (torch.rand(count, 2, generator=generator) * 2 - 1) * (1.5 * 2 / patch)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    return torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )


def _high_pass(images: torch.Tensor) -> torch.Tensor:
    """``images`` minus their 5x5 box blur: strokes and lines without the shading under them
    (raw windows are dominated by their mean, so a distance on them barely sees texture)."""
    return images - functional.avg_pool2d(images, 5, stride=1, padding=2, count_include_pad=False)


def _directions(generator: torch.Generator, patch: int, like: torch.Tensor) -> torch.Tensor:
    """``(24, 3, patch, patch)`` random unit directions in window space, as convolution
    kernels of ``like``'s device and dtype."""
    directions = torch.randn(24, 3 * patch * patch, generator=generator)
    directions = (directions / directions.norm(dim=1, keepdim=True)).view(24, 3, patch, patch)
    return directions.to(like.device, like.dtype)


def _texture_distance(
    output: torch.Tensor, target: torch.Tensor, generator: torch.Generator, *, patch: int = 5
) -> torch.Tensor:
    """Sliced Wasserstein distance between the ``patch`` x ``patch`` windows of each output
    and those of its target, at full and half resolution (mean over images and scales).

    ``output`` and ``target``: ``(N, 3, P, P)``. The windows of one image are projected on
    24 random unit directions, shared by the batch and drawn anew each step; per direction
    the sorted projections are compared (an exact 1-D optimal transport).
    """
    # Projecting every window on a direction is a strided convolution with that direction
    # as its kernel: far cheaper, forward and backward, than unfolding the windows.
    directions = _directions(generator, patch, output)
    total = output.new_zeros(())
    # Every third window at full resolution, every second at half: plenty for 24 quantile
    # curves, and sorting (backward included) is what this term costs.
    for scale, stride in ((1, 3), (2, 2)):
        if scale > 1:
            output = functional.avg_pool2d(output, scale)
            target = functional.avg_pool2d(target, scale)
        windows = [
            functional.conv2d(_high_pass(image), directions, stride=stride).flatten(2)
            for image in (output, target)
        ]
        sorted_out, sorted_target = (w.sort(dim=2).values for w in windows)
        total = total + (sorted_out - sorted_target).abs().mean()
    return total / 2


def _artwork_distance(
    output: torch.Tensor,
    parts: torch.Tensor,
    artwork: torch.Tensor,
    artwork_parts: torch.Tensor,
    generator: torch.Generator,
    *,
    patch: int = 5,
) -> torch.Tensor:
    """Sliced Wasserstein distance between the output's ``patch`` x ``patch`` windows and the
    artwork's, within each head part, weighted by the output's windows in it.

    Raw windows, not high-passed: a part's colours are what the teacher's collage gets wrong
    (a face painted with the background's patches). Windows are taken every second pixel,
    each labelled by the part of its centre; a part with fewer than 64 windows on either side
    is left out. The two sides' sorted projections are compared at the output's quantiles
    (the counts differ).

    Args:
        output: ``(B, 3, P, P)`` the student's output.
        parts: ``(B, P, P)`` ``int64`` its head parts (-1 background).
        artwork: ``(1, 3, S, S)`` the exemplar.
        artwork_parts: ``(S, S)`` ``int64`` its head parts.
        generator: draws the 24 projection directions.
    """
    directions = _directions(generator, patch, output)
    half = patch // 2

    def centres(labels: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """The part of each window's centre pixel."""
        height, width = windows.shape[-2:]
        return labels[..., half : half + 2 * height : 2, half : half + 2 * width : 2]

    mine = functional.conv2d(output, directions, stride=2).permute(1, 0, 2, 3)  # (24, B, h, w)
    theirs = functional.conv2d(artwork, directions, stride=2)[0]  # (24, h, w)
    my_parts, their_parts = centres(parts, mine), centres(artwork_parts, theirs)
    total, windows = output.new_zeros(()), 0
    for part in range(len(HEAD_PARTS)):
        here, there = my_parts == part, their_parts == part
        count = int(here.sum())
        if count < 64 or int(there.sum()) < 64:
            continue
        sorted_mine = mine[:, here].sort(dim=1).values
        sorted_theirs = theirs[:, there].sort(dim=1).values
        quantiles = torch.linspace(0, sorted_theirs.shape[1] - 1, count, device=output.device)
        matched = sorted_theirs[:, quantiles.round().long()]
        total = total + (sorted_mine - matched).abs().mean() * count
        windows += count
    return total / max(windows, 1)


def _warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    return functional.grid_sample(
        images, grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def train_student(
    data: TrainingSet,
    config: GeneratorConfig,
    settings: TrainSettings,
    progress: Callable[[float, dict[str, float]], None] | None = None,
) -> tuple[StudentGenerator, dict[str, float | int]]:
    """Train a student from scratch to match the teacher.

    Args:
        data: content crops, guides and teacher targets.
        config: the student's hyper-parameters (``guide_channels`` must match ``data``).
        settings: steps, batch, loss weights.
        progress: called after every step with the fraction done (0..1, by steps or by
            ``settings.seconds``, whichever runs out first) and the running losses.

    Returns:
        The trained student (eval mode, float32) and training figures (steps, seconds,
        final smoothed losses).
    """
    if data.guides.shape[1] != config.guide_channels:
        raise ValueError(
            f"the data has {data.guides.shape[1]} guide channels, the student takes "
            f"{config.guide_channels}"
        )
    canvas_channels = 0 if data.canvas is None else data.canvas.shape[0]
    if canvas_channels != config.canvas:
        raise ValueError(
            f"the data has {canvas_channels} canvas channels, the student takes {config.canvas}"
        )
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads or free_cores())
    on_cpu = torch.device(settings.device).type == "cpu"
    count = CoreCount() if settings.threads is None and on_cpu else None
    try:
        return _train(data, config, settings, progress, count)
    finally:
        torch.set_num_threads(previous)


def _train(
    data: TrainingSet,
    config: GeneratorConfig,
    settings: TrainSettings,
    progress: Callable[[float, dict[str, float]], None] | None,
    count: CoreCount | None = None,
) -> tuple[StudentGenerator, dict[str, float | int]]:
    patch = min(settings.patch, data.rgb.shape[2])
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    device = torch.device(settings.device)
    student = StudentGenerator(config).train().to(device, memory_format=torch.channels_last)
    critic = PatchDiscriminator().train().to(device, memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(student.parameters(), lr=settings.lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(critic.parameters(), lr=settings.lr, betas=(0.5, 0.99))
    margin = 6  # pixels at the patch border where a warped input has no true counterpart
    running: dict[str, float] = {}
    artwork: tuple[torch.Tensor, torch.Tensor] | None = None
    if settings.artwork > 0 and data.artwork is not None:
        artwork = (
            torch.from_numpy(data.artwork.image[None]).to(device),
            torch.from_numpy(data.artwork.parts.astype(np.int64)).to(device),
        )
    start = time.perf_counter()
    step, done = 0, 0.0
    threads_used = {torch.get_num_threads()}
    while done < 1.0:
        step += 1
        threads = count.recount() if count is not None else None
        if threads is not None and threads != torch.get_num_threads():
            torch.set_num_threads(threads)
            threads_used.add(threads)
        # Cosine decay to a tenth over the budget (steps or seconds, whichever ends first):
        # the last steps polish instead of hopping between minima.
        lr = settings.lr * (0.55 + 0.45 * math.cos(math.pi * done))
        for optimizer in (opt_g, opt_d):
            for group in optimizer.param_groups:
                group["lr"] = lr
        rgb, guides, target, canvas, parts = _sample_patches(
            data, settings.batch, patch, rng, device
        )
        output = student(rgb, guides, canvas)
        losses = {"l1": functional.l1_loss(output, target)}
        total = settings.l1 * losses["l1"]
        if settings.adversarial > 0:
            losses["adversarial"] = ((critic(output) - 1) ** 2).mean()
            total = total + settings.adversarial * losses["adversarial"]
        if settings.texture > 0:
            losses["texture"] = _texture_distance(output, target, generator)
            total = total + settings.texture * losses["texture"]
        if artwork is not None and parts is not None:
            losses["artwork"] = _artwork_distance(output, parts, *artwork, generator)
            total = total + settings.artwork * losses["artwork"]
        if settings.consistency > 0:
            theta = _random_warps(settings.batch, patch, generator).to(device)
            noise = (torch.randn(rgb.shape, generator=generator) * (2.0 / 255.0)).to(device)
            moved = student(
                _warp(rgb, theta) + noise,
                _warp(guides, theta),
                None if canvas is None else _warp(canvas, theta),
            )
            expected = _warp(output.detach(), theta)
            inner = (slice(None), slice(None), slice(margin, -margin), slice(margin, -margin))
            losses["consistency"] = functional.l1_loss(moved[inner], expected[inner])
            total = total + settings.consistency * losses["consistency"]
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        opt_g.step()
        if settings.adversarial > 0:
            real, fake = critic(target), critic(output.detach())
            loss_d = ((real - 1) ** 2).mean() + (fake**2).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            losses["critic"] = loss_d
        for key, value in losses.items():
            running[key] = 0.95 * running.get(key, value.item()) + 0.05 * value.item()
        done = step / settings.steps
        if settings.seconds is not None:
            done = max(done, (time.perf_counter() - start) / settings.seconds)
        if progress is not None:
            progress(min(done, 1.0), running)
    figures: dict[str, float | int] = {
        "steps": step,
        "train_seconds": round(time.perf_counter() - start, 2),
        "train_threads": torch.get_num_threads(),
        # Several when the count changed while it trained.
        "train_threads_used": ",".join(str(t) for t in sorted(threads_used)),
        "train_device": device.type,
        **{f"loss_{k}": round(v, 5) for k, v in running.items()},
    }
    return student.cpu().eval(), figures
