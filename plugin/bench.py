"""``facestyle bench``: what a render costs per stage, against the I/O floor of the same run.

A 640x480 clip with one moving face is generated, then rendered twice through the same
threaded runner and the same encoder: once with a pass-through stage (the I/O floor: decode
and encode only, what no stylization can beat) and once with the face stages. Speed is
reported as milliseconds per frame per stage, end-to-end frames per second, and the ratio of
the two runs' fps, so numbers from different machines can be compared by their ratio.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path

from pipeline.frame import Frame
from pipeline.restyle import Restyler
from pipeline.runner import RunResult, run_pipeline
from pipeline.samples import FacePath, Pose, write_moving_face_clip
from pipeline.sinks.file import DEFAULT_PRESET, FileSink
from pipeline.sources import open_source
from plugin.styles import resolve_style

__all__ = ["BENCH_SIZE", "TARGETS", "format_bench", "run_bench"]

BENCH_SIZE = (640, 480)
# The targets on a 2-core CPU with the classical style.
TARGETS = {"end_to_end_fps": 30.0, "track_landmarks_ms": 10.0}


def _pose(index: int) -> Pose:
    t = index / 25
    return Pose(
        cx=320 + 120 * math.sin(0.8 * t),
        cy=240 + 30 * math.sin(1.3 * t),
        scale=1.4 + 0.2 * math.sin(0.5 * t),  # a face box of 110-145 px
        angle=8 * math.sin(0.9 * t),
    )


def _render(clip: Path, output: Path, stage: Callable[[Frame], Frame], preset: str) -> RunResult:
    with open_source(clip) as source:
        sink = FileSink.matching(output, source, preset=preset)
        with sink:
            return run_pipeline(source, stage, sink, total=source.frame_count)


def run_bench(
    frames: int = 150,
    style: str = "cartoon",
    preset: str = DEFAULT_PRESET,
    clip: str | Path | None = None,
) -> dict:
    """Measure the I/O floor and the full render on a generated clip or the user's.

    Args:
        frames: generated clip length (25 fps).
        style: the style to render with (the targets are for ``"cartoon"``).
        preset: x264 preset of both runs (the render default unless given).
        clip: a video to measure instead of the generated clip (all of it).

    Returns:
        ``{"clip": {...}, "io_floor": {"fps", "stage_ms"}, "render": {"fps", "stage_ms",
        "faces_tracked"}, "fps_vs_io_floor", "track_landmarks_ms", "targets", "meets"}``
        where ``stage_ms`` maps stage name to milliseconds per frame.
    """
    from plugin.commands.live import warm_up

    stylizer = resolve_style(style)
    name = "generated" if clip is None else str(clip)
    with tempfile.TemporaryDirectory(prefix="facestyle-bench-") as folder:
        if clip is None:
            clip = Path(folder) / "bench.mp4"
            write_moving_face_clip(
                clip, [FacePath("astronaut", _pose)], frames, size=BENCH_SIZE, audio=False
            )
        with open_source(clip) as source:
            size, frames = (source.width, source.height), source.frame_count or frames
        floor = _render(clip, Path(folder) / "floor.mp4", lambda frame: frame, preset)
        restyler = Restyler(stylizer)
        warm_up(restyler)  # model loading is start-up, not per-frame cost
        full = _render(clip, Path(folder) / "full.mp4", restyler.process, preset)

    io_ms = full.timings.ms_per_frame()
    tracker_ms = restyler.tracker.timings.ms_per_frame()
    face_ms = restyler.timings.ms_per_frame()
    # Split the Restyler's "track" stage into the tracker's own parts when it reports them.
    face_ms.pop("track", None)
    stage_ms = {
        "decode": io_ms.get("decode", 0.0),
        **{f"track.{name}": ms for name, ms in tracker_ms.items()},
        **face_ms,
        "encode": io_ms.get("encode", 0.0),
    }
    track_landmarks = sum(tracker_ms.values())
    result = {
        "clip": {
            "path": name,
            "size": list(size),
            "frames": frames,
            "style": stylizer.name,
            "preset": preset,
        },
        "io_floor": {"fps": floor.fps, "stage_ms": floor.timings.ms_per_frame()},
        "render": {
            "fps": full.fps,
            "stage_ms": stage_ms,
            "faces_tracked": len(restyler.track_ids),
        },
        "fps_vs_io_floor": full.fps / floor.fps if floor.fps else 0.0,
        "track_landmarks_ms": track_landmarks,
        "targets": TARGETS,
        "meets": {
            "end_to_end_fps": full.fps >= TARGETS["end_to_end_fps"],
            "track_landmarks_ms": track_landmarks <= TARGETS["track_landmarks_ms"],
        },
    }
    return result


def format_bench(result: dict) -> str:
    """The result of :func:`run_bench` as a short table for the terminal."""
    clip = result["clip"]
    lines = [
        f"bench: {clip['path']}, {clip['size'][0]}x{clip['size'][1]}, {clip['frames']} frames, "
        f"style {clip['style']}, x264 preset {clip['preset']}",
        "",
        "  stage                      ms/frame",
    ]
    lines += [f"  {name:<26} {ms:8.2f}" for name, ms in result["render"]["stage_ms"].items()]
    floor, full = result["io_floor"], result["render"]
    verdict = {True: "meets", False: "misses"}
    lines += [
        "",
        "  (stages run on three threads, so their sum exceeds the wall time per frame)",
        f"  I/O floor (decode + encode only)  {floor['fps']:7.1f} fps",
        f"  end to end                        {full['fps']:7.1f} fps  "
        f"= {result['fps_vs_io_floor']:.2f} x the I/O floor  "
        f"({verdict[result['meets']['end_to_end_fps']]} the "
        f"{result['targets']['end_to_end_fps']:g} fps target)",
        f"  tracking + landmarks              {result['track_landmarks_ms']:7.2f} ms/frame "
        f"({verdict[result['meets']['track_landmarks_ms']]} the "
        f"{result['targets']['track_landmarks_ms']:g} ms target)",
    ]
    return "\n".join(lines)
