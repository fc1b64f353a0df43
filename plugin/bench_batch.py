"""``facestyle bench --batch``: batch throughput per engine, as ratios to one worker.

One generated clip (640x480 with one face, or the size and faces asked for), copied ``clips``
times, is rendered as one batch once per run, each time into a fresh folder: in this
process (``--jobs 1``), in ``jobs`` local worker processes, and as tasks of a local Ray
instance. Each run's throughput is given two ways: over its wall time, worker start-up
included (what a short batch gets), and steady: the frames over the clips' own render
time shared among the workers (what a batch of long clips approaches; on a GPU machine with
many cores, where one render is held by its per-face CPU work, it is the figure that says how
many renders the machine carries at once).
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from pipeline.errors import FacestyleError
from plugin.batch import BatchSettings, BatchSummary, plan_jobs, run_batch
from plugin.bench import BENCH_SIZE, generate_clip

__all__ = ["format_batch_bench", "run_batch_bench"]


def _steady_fps(summary: BatchSummary, workers: int) -> float:
    """Frames over the clips' render seconds shared among ``workers`` (at most one a clip)."""
    seconds = sum(clip.seconds for clip in summary.clips)
    busy = seconds / min(workers, len(summary.clips))
    return summary.frames / busy if busy > 0 else 0.0


def run_batch_bench(
    settings: BatchSettings,
    clips: int = 4,
    frames: int = 150,
    *,
    size: tuple[int, int] = BENCH_SIZE,
    faces: int = 1,
    jobs: int = 2,
) -> dict:
    """Render the same generated batch with ``--jobs 1``, ``--jobs jobs`` and local Ray.

    Returns:
        ``{"clips", "frames", "size", "faces", "style", "runs": [{"name", "fps",
        "steady_fps", "seconds", "vs_jobs_1"}], "ray_vs_jobs"}``. ``steady_fps`` is ``None``
        for Ray (its worker count is Ray's); a Ray run where Ray is not installed is
        ``{"name", "skipped"}`` and ``ray_vs_jobs`` ``None``; ``ray_vs_jobs`` is Ray's
        throughput against ``jobs`` local processes.
    """
    runs: list[dict] = []
    plans: list[tuple[str, dict, int | None]] = [
        ("--jobs 1", {"workers": 1}, 1),
        (f"--jobs {jobs}", {"workers": jobs}, jobs),
    ]
    plans.append(("--engine ray (local)", {"engine": "ray"}, None))  # Ray's own worker count
    with tempfile.TemporaryDirectory(prefix="facestyle-bench-batch-") as folder:
        inputs = Path(folder) / "in"
        inputs.mkdir()
        first = generate_clip(inputs / "clip0.mp4", size, faces, frames)
        for number in range(1, clips):
            shutil.copyfile(first, inputs / f"clip{number}.mp4")
        for name, options, workers in plans:
            if options.get("engine") == "ray" and importlib.util.find_spec("ray") is None:
                runs.append({"name": name, "skipped": "Ray is not installed"})
                continue
            summary = run_batch(
                plan_jobs([inputs], Path(folder) / f"out{len(runs)}"), settings, **options
            )
            if summary.failed:
                reasons = "; ".join(c.error or "" for c in summary.clips if c.error)
                raise FacestyleError(f"bench --batch: {name} failed: {reasons}")
            runs.append(
                {
                    "name": name,
                    "fps": summary.fps,
                    "steady_fps": None if workers is None else _steady_fps(summary, workers),
                    "seconds": summary.seconds,
                }
            )
    reference = runs[0]["fps"]
    for run in runs:
        if "fps" in run:
            run["vs_jobs_1"] = run["fps"] / reference if reference else 0.0
    ray, local = runs[2], runs[1]
    return {
        "clips": clips,
        "frames": frames,
        "size": list(size),
        "faces": faces,
        "style": str(settings.restyle.style),
        "runs": runs,
        "ray_vs_jobs": ray["fps"] / local["fps"] if "fps" in ray and local["fps"] else None,
    }


def format_batch_bench(result: dict) -> str:
    """The result of :func:`run_batch_bench` as a short table."""
    width, height = result["size"]
    lines = [
        f"bench --batch: {result['clips']} clips of {result['frames']} frames, {width}x{height}, "
        f"{result['faces']} face(s) each, style {result['style']}",
        "",
        "  engine                  fps over wall   steady fps   seconds   vs --jobs 1",
    ]
    for run in result["runs"]:
        if "skipped" in run:
            lines.append(f"  {run['name']:<24} skipped: {run['skipped']}")
            continue
        steady = "-" if run["steady_fps"] is None else f"{run['steady_fps']:.1f}"
        lines.append(
            f"  {run['name']:<24} {run['fps']:13.1f}   {steady:>10}   {run['seconds']:7.1f}   "
            f"{run['vs_jobs_1']:6.2f} x"
        )
    local = result["runs"][1]["name"]
    if result["ray_vs_jobs"] is not None:
        lines += ["", f"  Ray local against {local}: {result['ray_vs_jobs']:.2f} x"]
    lines += [
        "",
        "  (over wall: worker start-up included; steady: the clips' own render time, shared",
        "  among the workers — what a batch of long clips approaches)",
    ]
    return "\n".join(lines)
