"""The student's training terms, on a real painting's brushwork."""

from __future__ import annotations

import functools
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
from models.exemplar import load_image, prepare_exemplar
from models.generator import GeneratorConfig
from models.train import (
    HEAD_PARTS,
    CoreCount,
    TrainingSet,
    TrainSettings,
    _artwork_distance,
    _texture_distance,
    busy_cores,
    free_cores,
    head_parts,
    threads_beside,
    train_student,
)

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


@functools.cache
def _van_gogh() -> tuple[torch.Tensor, torch.Tensor]:
    """The aligned Van Gogh crop ``(1, 3, S, S)`` -1..1 and its head parts ``(S, S)`` (found
    once: callers copy before changing them)."""
    exemplar = prepare_exemplar(load_image(EXEMPLARS / "painterly.jpg"))
    image = torch.from_numpy(exemplar.image.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)
    parts = head_parts(exemplar.landmarks, exemplar.size, ears=False)
    return image[None].contiguous(), torch.from_numpy(parts.astype(np.int64))


def _artwork(output: torch.Tensor, parts: torch.Tensor, seed: int = 0) -> float:
    artwork, artwork_parts = _van_gogh()
    generator = torch.Generator().manual_seed(seed)
    return float(_artwork_distance(output, parts[None], artwork, artwork_parts, generator))


def test_artwork_term_asks_each_part_of_the_head_for_the_artworks_own_colours() -> None:
    artwork, parts = _van_gogh()
    assert _artwork(artwork, parts) == 0.0
    skin = parts == HEAD_PARTS.index("skin")
    background = parts == -1
    rng = np.random.default_rng(0)
    flat = artwork[0].reshape(3, -1)
    # Both faces are pixels scattered at random; only where they come from differs.
    own = artwork.clone()
    own[0][:, skin] = flat[:, rng.permutation(np.flatnonzero(skin.numpy().ravel()))]
    from_background = artwork.clone()
    picks = rng.choice(np.flatnonzero(background.numpy().ravel()), int(skin.sum()))
    from_background[0][:, skin] = flat[:, picks]
    assert _artwork(from_background, parts) > 2 * _artwork(own, parts)


def test_artwork_term_paints_the_skin_in_the_artworks_skin_colour() -> None:
    artwork, parts = _van_gogh()
    skin = parts == HEAD_PARTS.index("skin")
    output = torch.zeros_like(artwork).requires_grad_()
    optimizer = torch.optim.Adam([output], lr=0.02)
    for step in range(40):
        loss = _artwork_distance(
            output, parts[None], artwork, parts, torch.Generator().manual_seed(step)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    target = artwork[0][:, skin].mean(dim=1)
    before = target.norm()  # the grey start's distance from the skin's mean colour
    after = (output.detach()[0][:, skin].mean(dim=1) - target).norm()
    assert after < 0.3 * before


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


def _stat(busy: float, idle: float) -> str:
    """A ``/proc/stat`` summary line with ``busy`` user and ``idle`` idle jiffies."""
    return f"cpu  {busy:.0f} 0 0 {idle:.0f} 0 0 0 0 0 0"


def test_threads_beside_other_programs() -> None:
    assert threads_beside(0.0, 2) == 2
    assert threads_beside(0.9, 2) == 1
    assert threads_beside(1.6, 2) == 1  # never none
    assert threads_beside(-0.3, 2) == 2  # never more than the machine has
    assert threads_beside(2.4, 8) == 6


def test_the_core_count_follows_other_programs_not_its_own_training() -> None:
    """2 cores, counted every 5 s: a program that starts beside the training takes a thread
    away and gives it back when it ends; the training's own CPU time is not another's."""
    now, own, readable = [0.0], [0.0], [True]
    stat = [_stat(0, 0)]
    count = CoreCount(
        5.0,
        cores=2,
        read_stat=lambda: stat[0] if readable[0] else None,
        own_seconds=lambda: own[0],
        clock=lambda: now[0],
    )

    def wait(seconds: float, busy_cores_: float, own_cores: float) -> int | None:
        # 100 jiffies a second a core: ``busy_cores_`` of the 2 cores busy for ``seconds``.
        busy, idle = (int(v) for v in stat[0].split()[1:5:3])
        stat[0] = _stat(
            busy + 100 * seconds * busy_cores_, idle + 100 * seconds * (2 - busy_cores_)
        )
        now[0] += seconds
        own[0] += seconds * own_cores
        return count.recount()

    assert wait(1.0, 2.0, 2.0) is None  # too soon to count again
    assert wait(4.0, 2.0, 2.0) == 2  # both cores busy, all of it the training's own
    assert wait(5.0, 2.0, 1.1) == 1  # another program took most of a core
    assert wait(5.0, 1.0, 1.0) == 2  # it ended: the one busy core is the training's
    readable[0] = False
    assert wait(5.0, 1.0, 1.0) is None  # no counters to read: no change


def test_training_takes_the_threads_the_count_gives(monkeypatch) -> None:
    """Threads left to the training are counted again as it runs; fixed ones are not."""
    answers = iter([None, 1, None, 2, 2])

    class Counted:
        def recount(self) -> int | None:
            return next(answers, None)

    monkeypatch.setattr(train, "CoreCount", Counted)
    monkeypatch.setattr(train, "free_cores", lambda own_load=1.0: 2)
    rng = np.random.default_rng(0)
    rgb = rng.uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    data = TrainingSet(rgb, np.zeros((2, 2, 8, 8), np.float32), rgb.copy())
    config = GeneratorConfig(guide_channels=2, canvas=0)
    before = torch.get_num_threads()
    quick = TrainSettings(steps=6, batch=2, patch=32, adversarial=0, texture=0, consistency=0)
    _, figures = train_student(data, config, quick)
    assert figures["train_threads_used"] == "1,2" and figures["train_threads"] == 2
    _, figures = train_student(data, config, TrainSettings(**{**quick.__dict__, "threads": 1}))
    assert figures["train_threads_used"] == "1"
    assert torch.get_num_threads() == before  # given back as it was
