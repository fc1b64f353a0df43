"""The student's training terms, on a real painting's brushwork."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional

from models import train
from models.exemplar import load_image
from models.train import _texture_distance, busy_cores, free_cores

EXEMPLARS = Path(__file__).resolve().parents[1] / "models" / "exemplars"


def _brushwork() -> torch.Tensor:
    """``(1, 3, 96, 96)`` a patch of Van Gogh's painted background, -1..1."""
    image = load_image(EXEMPLARS / "painterly.jpg")[40:136, 20:116]
    return torch.from_numpy(image.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]


def _distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(_texture_distance(a, b, torch.Generator().manual_seed(0)))


def test_texture_term_rewards_the_strokes_anywhere_and_punishes_the_wash() -> None:
    strokes = _brushwork()
    elsewhere = torch.roll(strokes, shifts=(17, 29), dims=(2, 3))  # same strokes, moved
    wash = functional.avg_pool2d(strokes, 5, stride=1, padding=2, count_include_pad=False)
    # L1 prefers the wash: it is what a student trained on L1 alone learns.
    assert functional.l1_loss(wash, strokes) < functional.l1_loss(elsewhere, strokes)
    # The texture term prefers the strokes, wherever they fall.
    assert _distance(elsewhere, strokes) < 0.5 * _distance(wash, strokes)
    assert _distance(strokes, strokes) == 0.0


def test_texture_term_sends_gradients_toward_the_strokes() -> None:
    strokes = _brushwork()
    wash = functional.avg_pool2d(strokes, 5, stride=1, padding=2, count_include_pad=False)
    output = wash.clone().requires_grad_()
    optimizer = torch.optim.Adam([output], lr=0.01)
    before = _distance(wash, strokes)
    for step in range(30):
        loss = _texture_distance(output, strokes, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert _distance(output.detach(), strokes) < 0.7 * before


def test_busy_cores_from_two_readings_of_the_cpu_counters() -> None:
    # user nice system idle iowait irq softirq steal, in jiffies; 200 jiffies pass on 2 cores.
    first = "cpu  1000 0 500 8000 100 0 0 0 0 0"
    one_busy = "cpu  1090 0 510 8095 105 0 0 0 0 0"
    assert busy_cores(first, one_busy, 2) == pytest.approx(1.0)
    idle = "cpu  1000 0 500 8190 110 0 0 0 0 0"
    assert busy_cores(first, idle, 2) == pytest.approx(0.0)
    assert busy_cores(first, first, 2) == 0.0  # no time passed


def test_the_cpu_counters_see_a_core_kept_busy_now() -> None:
    if not Path("/proc/stat").is_file():
        pytest.skip("needs Linux's /proc/stat")
    # A process spinning on one core while the counters are read: at least most of a core
    # busy, whatever else the machine is doing (other work only adds to it).
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        busy = train._busy_now(os.cpu_count() or 1)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy >= 0.7, busy


def test_without_cpu_counters_free_cores_discounts_the_callers_own_work(monkeypatch) -> None:
    monkeypatch.setattr(train, "_PROC_STAT", Path("/nonexistent/stat"))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    # One other process busy on a 2-core machine: one core is free, whether the caller has
    # just been busy itself (and says so) or has not started yet.
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert free_cores(own_load=1.0) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert free_cores(own_load=0.0) == 1
    # A quiet machine measured before the caller starts: both cores.
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert free_cores(own_load=0.0) == 2
    # Never fewer than one, never more than the machine has.
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert free_cores(own_load=0.0) == 1
