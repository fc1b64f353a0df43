"""The student: a small, fast encoder-decoder that stylizes an aligned face crop.

Designed for speed on a CPU (DESIGN.md, step 4): few channels at full resolution, the heavy
work at a quarter of the resolution, no normalisation layers (nothing depends on per-frame
statistics, so a face does not flicker when the background changes), channels_last memory.
At 256x256 with the default widths (16, 32, 48) it costs 1.6 GFLOPs (multiply-adds x 2).

The guides (where on the face, which part, how bright; :mod:`models.student_input`) are
smooth, so they enter at quarter resolution, where they cost almost nothing to compute or to
convolve; the full-resolution path sees RGB and the canvas (:mod:`models.canvas`), the noise
the student paints its strokes from.

Tensor conventions (every tensor here):
    rgb: ``(N, 3, S, S)`` float, the crop's RGB scaled to -1..1, ``S`` divisible by 4.
    guides: ``(N, G, S/4, S/4)`` float, about -1..1.
    canvas: ``(N, C, S, S)`` float, about -1..1 (``C`` = ``config.canvas``; none when 0).
    output: ``(N, 3, S, S)`` float RGB in -1..1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["ARCHITECTURE", "ARCHITECTURES", "GeneratorConfig", "StudentGenerator", "count_flops"]

ARCHITECTURE = "facestyle-student-v2"
"""What new packs are: a canvas input and bilinear upsampling."""

ARCHITECTURES = ("facestyle-student-v1", ARCHITECTURE)
"""What this version reads: v1 packs (no canvas, nearest-neighbour upsampling) still load."""


@dataclass(frozen=True)
class GeneratorConfig:
    """The student's hyper-parameters; stored in every pack.

    Attributes:
        guide_channels: guide channels entering at quarter resolution.
        widths: channels at full, half and quarter resolution.
        blocks: residual blocks at quarter resolution.
        canvas: canvas channels entering at full resolution (0 in v1 packs).
        upsample: ``"bilinear"``, or ``"nearest"`` (v1 packs: its 2x2 blocks left a faint
            diagonal grain on faces).
    """

    guide_channels: int = 0
    # 48 rather than 64 channels at quarter resolution: 0.76x the time per crop in
    # `facestyle bench` (11.4-12.1 against 15.3-15.9 ms, three interleaved pairs) for the
    # same look. Van Gogh, one cached set of teacher targets, 850 steps, the three shared
    # clips: style 0.48 / 0.87 / 0.55 against 0.50 / 0.88 / 0.55, sharpness 0.57 / 0.29 /
    # 0.41 against 0.59 / 0.28 / 0.43, warping error 0.84 / 1.09 / 1.19 against 0.82 / 1.01
    # / 1.19. 24 channels at half resolution instead lost sharpness (0.53 / 0.27 / 0.38) and
    # saved less (0.94x).
    widths: tuple[int, int, int] = (16, 32, 48)
    blocks: int = 1
    canvas: int = 1
    upsample: str = "bilinear"

    def __post_init__(self) -> None:
        if not 0 <= self.guide_channels <= 64:
            raise ValueError(f"guide_channels: expected 0..64, got {self.guide_channels}")
        if len(self.widths) != 3 or not all(4 <= w <= 256 for w in self.widths):
            raise ValueError(f"widths: expected three values in 4..256, got {self.widths}")
        if not 0 <= self.blocks <= 16:
            raise ValueError(f"blocks: expected 0..16, got {self.blocks}")
        if not 0 <= self.canvas <= 4:
            raise ValueError(f"canvas: expected 0..4, got {self.canvas}")
        if self.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample: expected 'nearest' or 'bilinear', got {self.upsample!r}")

    @property
    def architecture(self) -> str:
        """The pack architecture this config is: v1 without canvas and with nearest
        upsampling (so older packs are saved as they were read), v2 otherwise."""
        legacy = self.canvas == 0 and self.upsample == "nearest"
        return ARCHITECTURES[0] if legacy else ARCHITECTURE

    def to_dict(self) -> dict[str, object]:
        values = {**asdict(self), "widths": list(self.widths)}
        if self.architecture == ARCHITECTURES[0]:
            del values["canvas"], values["upsample"]
        return values

    @classmethod
    def from_dict(
        cls, values: dict[str, object], architecture: str = ARCHITECTURE
    ) -> GeneratorConfig:
        """Build from a pack's metadata; raises ``ValueError`` on unknown or bad values.

        A v1 pack's config has no ``canvas`` or ``upsample``: it had none and upsampled by
        nearest neighbour."""
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}")
        legacy = architecture == ARCHITECTURES[0]
        known = {"guide_channels", "widths", "blocks"} | (
            set() if legacy else {"canvas", "upsample"}
        )
        if set(values) != known:
            raise ValueError(
                f"generator config: expected keys {sorted(known)}, got {sorted(values)}"
            )
        widths = values["widths"]
        if not isinstance(widths, list) or not all(type(w) is int for w in widths):
            raise ValueError(f"widths: expected a list of ints, got {widths!r}")
        extra = {"canvas": 0, "upsample": "nearest"} if legacy else values
        checks = (
            ("guide_channels", values, int),
            ("blocks", values, int),
            ("canvas", extra, int),
            ("upsample", extra, str),
        )
        for key, source, kind in checks:
            if type(source[key]) is not kind:
                raise ValueError(f"{key}: expected {kind.__name__}, got {source[key]!r}")
        return cls(
            int(values["guide_channels"]),  # type: ignore[arg-type]
            tuple(widths),  # type: ignore[arg-type]
            int(values["blocks"]),  # type: ignore[arg-type]
            int(extra["canvas"]),  # type: ignore[arg-type]
            str(extra["upsample"]),
        )


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels)
        self.conv2 = _conv(channels, channels)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class StudentGenerator(nn.Module):
    """Encoder (full → half → quarter resolution), residual body, decoder with skips.

    The output is the input RGB plus a learned correction, so an untrained student starts
    near the identity and training only has to learn the style's departure from the photo.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.widths
        act = nn.LeakyReLU(0.2, inplace=True)
        self.enc1 = nn.Sequential(_conv(3 + config.canvas, c1), act)
        self.enc2 = nn.Sequential(_conv(c1, c2, stride=2), act)
        self.enc3 = nn.Sequential(_conv(c2, c3, stride=2), act)
        self.fuse = nn.Sequential(nn.Conv2d(c3 + config.guide_channels, c3, 1), act)
        self.body = nn.Sequential(*(_Residual(c3) for _ in range(config.blocks)))
        # Narrow the channels before upsampling, so the expensive resolution sees few channels.
        up = config.upsample
        self.up2 = nn.Sequential(_conv(c3, c2), act, nn.Upsample(scale_factor=2, mode=up))
        self.dec2 = nn.Sequential(_conv(c2, c2), act)
        self.up1 = nn.Sequential(_conv(c2, c1), act, nn.Upsample(scale_factor=2, mode=up))
        self.dec1 = nn.Sequential(_conv(c1, c1), act)
        self.out = nn.Conv2d(c1, 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, rgb: torch.Tensor, guides: torch.Tensor, canvas: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Stylize: see the module docstring for shapes and ranges (``canvas`` is required
        when ``config.canvas`` > 0)."""
        if self.config.canvas:
            if canvas is None or canvas.shape[1] != self.config.canvas:
                raise ValueError(f"the student takes a {self.config.canvas}-channel canvas")
            f1 = self.enc1(torch.cat([rgb, canvas], dim=1))
        else:
            f1 = self.enc1(rgb)
        f2 = self.enc2(f1)
        f3 = self.body(self.fuse(torch.cat([self.enc3(f2), guides], dim=1)))
        # In place: a new full-resolution tensor per sum cost more than the sum (the student
        # 0.85-0.97x the time a batch of four, bfloat16, one thread, three interleaved
        # rounds; autograd needs none of these tensors kept).
        d2 = self.dec2(self.up2(f3).add_(f2))
        d1 = self.dec1(self.up1(d2).add_(f1))
        styled = self.out(d1).add_(rgb)
        # Clamping while training would zero the gradient of every saturated pixel; a
        # student pushed past white on a mostly white style (pencil on paper) then never
        # comes back. L1 keeps training outputs in range; inference clamps.
        return styled if self.training else torch.clamp(styled, -1.0, 1.0)


def count_flops(config: GeneratorConfig, size: int = 256) -> int:
    """Multiply-adds x 2 of one forward pass on an ``size`` x ``size`` crop (convs only)."""
    c1, c2, c3 = config.widths
    full, half, quarter = size * size, (size // 2) ** 2, (size // 4) ** 2
    macs = 9 * (
        full * (3 + config.canvas) * c1
        + half * c1 * c2
        + quarter * c2 * c3
        + quarter * c3 * c3 * 2 * config.blocks
        + quarter * c3 * c2
        + half * c2 * c2
        + half * c2 * c1
        + full * c1 * c1
    )
    macs += full * c1 * 3 + quarter * (c3 + config.guide_channels) * c3
    return 2 * macs
