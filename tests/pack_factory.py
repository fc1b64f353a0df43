"""A small, valid style pack for tests (random student weights, 64px crops)."""

from __future__ import annotations

import numpy as np
import torch

from models.canvas import make_canvas
from models.generator import GeneratorConfig, StudentGenerator
from models.pack import StylePack
from models.student_input import DEFAULT_GUIDES, guide_channels
from pipeline.align import canonical_landmarks


def make_pack(seed: int = 0) -> StylePack:
    torch.manual_seed(seed)
    config = GeneratorConfig(guide_channels(DEFAULT_GUIDES), widths=(8, 16, 24), blocks=1)
    net = StudentGenerator(config)
    # Non-zero output layer so the pack's weights all matter.
    torch.nn.init.normal_(net.out.weight, std=0.05)
    weights = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    rng = np.random.default_rng(seed)
    return StylePack(
        name="test",
        config=config,
        weights=weights,
        crop_size=64,
        guides=DEFAULT_GUIDES,
        exemplar_landmarks=canonical_landmarks(64),
        luminance_quantiles=np.linspace(0.1, 0.9, 65, dtype=np.float32),
        thumbnail=rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        identity=0.5,
        geometry=0.25,
        training={"steps": 10, "seconds": 1.5, "note": "test"},
        canvas=make_canvas(64, config.canvas, seed=seed),
    )
