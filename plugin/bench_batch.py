"""``facestyle bench --batch``: batch throughput per engine, as ratios to one worker.

A few generated 640x480 one-face clips are rendered as one batch three times in the same run,
each time into a fresh folder: in this process (``--jobs 1``), in two local worker
processes (``--jobs 2``) and as tasks of a local Ray instance. Throughput is the frames of
the batch over its wall time, worker start-up included, so the ratios say what a user gets.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from pipeline.samples import FACE_PHOTOS, FacePath, Pose, write_moving_face_clip
from plugin.batch import BatchSettings, plan_jobs, run_batch
from plugin.bench import BENCH_SIZE

__all__ = ["ENGINE_RUNS", "format_batch_bench", "run_batch_bench"]

# (name, run_batch arguments) of the runs compared, the first being the reference.
ENGINE_RUNS: tuple[tuple[str, dict], ...] = (
    ("--jobs 1", {"workers": 1}),
    ("--jobs 2", {"workers": 2}),
    ("--engine ray (local)", {"engine": "ray"}),
)


def _clip(path: Path, number: int, frames: int) -> Path:
    def pose(index: int) -> Pose:
        t = index / 25 + number
        return Pose(320 + 120 * math.sin(0.8 * t), 240 + 30 * math.sin(1.3 * t), 1.4, 0.0)

    photo = FACE_PHOTOS[number % len(FACE_PHOTOS)]
    write_moving_face_clip(
        path, [FacePath(photo, pose)], frames, size=BENCH_SIZE, audio=False, seed=number
    )
    return path


def run_batch_bench(settings: BatchSettings, clips: int = 4, frames: int = 150) -> dict:
    """Render the same generated batch with each of :data:`ENGINE_RUNS`.

    Returns:
        ``{"clips", "frames", "style", "runs": [{"name", "fps", "seconds", "vs_jobs_1"}],
        "ray_vs_jobs_2"}``; ``ray_vs_jobs_2`` is Ray's overhead against local processes
        with as many workers as this machine has cores for Ray (2 here).
    """
    runs = []
    with tempfile.TemporaryDirectory(prefix="facestyle-bench-batch-") as folder:
        inputs = Path(folder) / "in"
        inputs.mkdir()
        for number in range(clips):
            _clip(inputs / f"clip{number}.mp4", number, frames)
        for name, options in ENGINE_RUNS:
            out = Path(folder) / f"out{len(runs)}"
            summary = run_batch(plan_jobs([inputs], out), settings, **options)
            if summary.failed:
                reasons = "; ".join(c.error or "" for c in summary.clips if c.error)
                raise RuntimeError(f"bench --batch: {name} failed: {reasons}")
            runs.append({"name": name, "fps": summary.fps, "seconds": summary.seconds})
    reference = runs[0]["fps"]
    for run in runs:
        run["vs_jobs_1"] = run["fps"] / reference if reference else 0.0
    return {
        "clips": clips,
        "frames": frames,
        "style": str(settings.restyle.style),
        "runs": runs,
        "ray_vs_jobs_2": runs[2]["fps"] / runs[1]["fps"] if runs[1]["fps"] else 0.0,
    }


def format_batch_bench(result: dict) -> str:
    """The result of :func:`run_batch_bench` as a short table."""
    width, height = BENCH_SIZE
    lines = [
        f"bench --batch: {result['clips']} clips of {result['frames']} frames, {width}x{height}, "
        f"one face each, style {result['style']}",
        "",
        "  engine                      fps   seconds   vs --jobs 1",
    ]
    for run in result["runs"]:
        lines.append(
            f"  {run['name']:<24} {run['fps']:6.1f}   {run['seconds']:7.1f}   {run['vs_jobs_1']:6.2f} x"
        )
    lines += ["", f"  Ray local against --jobs 2: {result['ray_vs_jobs_2']:.2f} x"]
    return "\n".join(lines)
