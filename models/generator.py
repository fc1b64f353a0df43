"""The student: a small, fast encoder-decoder that stylizes an aligned face crop.

Designed for speed on a CPU (DESIGN.md, step 4): few channels at full resolution, the heavy
work at a quarter of the resolution, no normalisation layers (nothing depends on per-frame
statistics, so a face does not flicker when the background changes), channels_last memory.
At 256x256 with the default widths (16, 32, 64) it costs about 1 GFLOP.

The guides (where on the face, which part, how bright; :mod:`models.student_input`) are
smooth, so they enter at quarter resolution, where they cost almost nothing to compute or to
convolve; the full-resolution path sees only RGB.

Tensor conventions (every tensor here):
    rgb: ``(N, 3, S, S)`` float, the crop's RGB scaled to -1..1, ``S`` divisible by 4.
    guides: ``(N, G, S/4, S/4)`` float, about -1..1.
    output: ``(N, 3, S, S)`` float RGB in -1..1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["ARCHITECTURE", "GeneratorConfig", "StudentGenerator", "count_flops"]

ARCHITECTURE = "facestyle-student-v1"


@dataclass(frozen=True)
class GeneratorConfig:
    """The student's hyper-parameters; stored in every pack.

    Attributes:
        guide_channels: guide channels entering at quarter resolution.
        widths: channels at full, half and quarter resolution.
        blocks: residual blocks at quarter resolution.
    """

    guide_channels: int = 0
    widths: tuple[int, int, int] = (16, 32, 64)
    blocks: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.guide_channels <= 64:
            raise ValueError(f"guide_channels: expected 0..64, got {self.guide_channels}")
        if len(self.widths) != 3 or not all(4 <= w <= 256 for w in self.widths):
            raise ValueError(f"widths: expected three values in 4..256, got {self.widths}")
        if not 0 <= self.blocks <= 16:
            raise ValueError(f"blocks: expected 0..16, got {self.blocks}")

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> GeneratorConfig:
        """Build from a pack's metadata; raises ``ValueError`` on unknown or bad values."""
        known = {"guide_channels", "widths", "blocks"}
        if set(values) != known:
            raise ValueError(
                f"generator config: expected keys {sorted(known)}, got {sorted(values)}"
            )
        widths = values["widths"]
        if not isinstance(widths, list) or not all(type(w) is int for w in widths):
            raise ValueError(f"widths: expected a list of ints, got {widths!r}")
        for key in ("guide_channels", "blocks"):
            if type(values[key]) is not int:
                raise ValueError(f"{key}: expected an int, got {values[key]!r}")
        return cls(int(values["guide_channels"]), tuple(widths), int(values["blocks"]))  # type: ignore[arg-type]


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
        self.enc1 = nn.Sequential(_conv(3, c1), act)
        self.enc2 = nn.Sequential(_conv(c1, c2, stride=2), act)
        self.enc3 = nn.Sequential(_conv(c2, c3, stride=2), act)
        self.fuse = nn.Sequential(nn.Conv2d(c3 + config.guide_channels, c3, 1), act)
        self.body = nn.Sequential(*(_Residual(c3) for _ in range(config.blocks)))
        # Narrow the channels before upsampling, so the expensive resolution sees few channels.
        self.up2 = nn.Sequential(_conv(c3, c2), act, nn.Upsample(scale_factor=2, mode="nearest"))
        self.dec2 = nn.Sequential(_conv(c2, c2), act)
        self.up1 = nn.Sequential(_conv(c2, c1), act, nn.Upsample(scale_factor=2, mode="nearest"))
        self.dec1 = nn.Sequential(_conv(c1, c1), act)
        self.out = nn.Conv2d(c1, 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, rgb: torch.Tensor, guides: torch.Tensor) -> torch.Tensor:
        """Stylize: see the module docstring for shapes and ranges."""
        f1 = self.enc1(rgb)
        f2 = self.enc2(f1)
        f3 = self.body(self.fuse(torch.cat([self.enc3(f2), guides], dim=1)))
        d2 = self.dec2(self.up2(f3) + f2)
        d1 = self.dec1(self.up1(d2) + f1)
        styled = rgb + self.out(d1)
        # Clamping while training would zero the gradient of every saturated pixel; a
        # student pushed past white on a mostly white style (pencil on paper) then never
        # comes back. L1 keeps training outputs in range; inference clamps.
        return styled if self.training else torch.clamp(styled, -1.0, 1.0)


def count_flops(config: GeneratorConfig, size: int = 256) -> int:
    """Multiply-adds x 2 of one forward pass on an ``size`` x ``size`` crop (convs only)."""
    c1, c2, c3 = config.widths
    full, half, quarter = size * size, (size // 2) ** 2, (size // 4) ** 2
    macs = 9 * (
        full * 3 * c1
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
