"""``facestyle bench --live``: sustained frame rate and added latency of the live path.

For each size a clip of one public-domain face moving about is generated, played at real time
(30 fps, as a camera would deliver it) into a :class:`plugin.live.LiveSession` — the session
``facestyle live`` runs — and streamed as MPEG-TS to a loopback UDP port, the way
``facestyle live --stream`` feeds OBS. The same run with a
pass-through stage is the baseline: capture, colour conversion and encoding alone, measured in
the same conditions, so the numbers can be read as the cost of restyling.

Targets (issue 5, on a 2-core CPU): 640x480 at >= 30 fps with p95 added latency <= 80 ms;
1280x720 at >= 20 fps.
"""

from __future__ import annotations

import contextlib
import math
import socket
import tempfile
from pathlib import Path

import numpy as np

from pipeline.runner import Runner, RunSummary
from pipeline.samples import FacePath, Pose, write_moving_face_clip
from plugin.live import LiveOutputs, LiveSession, open_camera
from plugin.settings import RestyleSettings

__all__ = ["LIVE_TARGETS", "format_live_bench", "run_live_bench"]

# (width, height) -> (minimum fps, maximum p95 added latency in ms or None)
LIVE_TARGETS: dict[tuple[int, int], tuple[float, float | None]] = {
    (640, 480): (30.0, 80.0),
    (1280, 720): (20.0, None),
}
CAMERA_FPS = 30
# Seconds at the start of each run left out of the numbers: the tracker's first detection and
# the encoder's first keyframe are start-up, not sustained behaviour.
SETTLE_SECONDS = 0.5


def _clip(folder: Path, size: tuple[int, int], seconds: float) -> Path:
    width, height = size
    # A face box a quarter of the frame high, as in a video call (the astronaut photo's face
    # box is about 90 px).
    side = height * 0.25 / 90

    def pose(index: int) -> Pose:
        t = index / CAMERA_FPS
        return Pose(
            width / 2 + width * 0.1 * math.sin(t),
            height / 2,
            scale=side,
            angle=5 * math.sin(t * 0.7),
        )

    path = folder / f"live-{width}x{height}.mp4"
    write_moving_face_clip(
        path,
        [FacePath("astronaut", pose)],
        round(seconds * CAMERA_FPS),
        size=size,
        fps=CAMERA_FPS,
        audio=False,
    )
    return path


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stream() -> LiveOutputs:
    return LiveOutputs(stream=f"udp://127.0.0.1:{_free_udp_port()}")


def _pass_through(clip: Path) -> RunSummary:
    """The baseline: the live session's source, queue policy and stream, no face stages."""
    with open_camera(str(clip)) as source, contextlib.ExitStack() as stack:
        sinks = _stream().open(source, stack, stop=lambda: None)
        return Runner(source, lambda frame: frame, sinks, policy="newest").run()


def _measure(summary: RunSummary) -> dict:
    """Sustained fps and latency percentiles after the settling time."""
    times, latencies = summary.output_times, summary.latencies
    steady = times >= SETTLE_SECONDS
    span = times[steady][-1] - times[steady][0] if steady.sum() > 1 else 0.0
    fps = (steady.sum() - 1) / span if span > 0 else 0.0
    p50, p95 = np.percentile(latencies[steady], [50, 95]) * 1000 if steady.any() else (np.nan,) * 2
    return {
        "fps": round(float(fps), 1),
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "captured": summary.stats.captured,
        "written": summary.stats.written,
        "dropped": summary.stats.dropped,
    }


def run_live_bench(settings: RestyleSettings, seconds: float = 8.0) -> dict:
    """Measure the live path at every size in :data:`LIVE_TARGETS`.

    Args:
        settings: the restyler to measure (a fresh one per size).
        seconds: length of each run.

    Returns:
        ``{"style": name, "seconds": s, "sizes": {"640x480": {...}, ...}}`` where each size
        has ``fps``, ``p50_ms``, ``p95_ms``, ``captured``, ``written``, ``dropped``,
        ``stage_ms`` (per face stage), ``baseline`` (the same numbers for a pass-through
        stage), ``fps_vs_baseline``, the targets and ``meets_target``.
    """
    result: dict = {
        "seconds": seconds,
        "detect_every": settings.detect_every,
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="facestyle-bench-live-") as folder:
        for size, (target_fps, target_p95) in LIVE_TARGETS.items():
            clip = _clip(Path(folder), size, seconds)
            baseline = _measure(_pass_through(clip))
            session = LiveSession(str(clip), settings, _stream())
            measured = _measure(session.run())
            restyler = session.restyler
            result["style"] = restyler.stylizer.name
            meets = measured["fps"] >= target_fps and (
                target_p95 is None or measured["p95_ms"] <= target_p95
            )
            result["sizes"][f"{size[0]}x{size[1]}"] = {
                **measured,
                "stage_ms": {k: round(v, 1) for k, v in restyler.timings.ms_per_frame().items()},
                "baseline": baseline,
                "fps_vs_baseline": round(measured["fps"] / baseline["fps"], 2)
                if baseline["fps"]
                else None,
                "target_fps": target_fps,
                "target_p95_ms": target_p95,
                "meets_target": meets,
            }
    return result


def format_live_bench(result: dict) -> str:
    """The result of :func:`run_live_bench` as a few aligned lines for the terminal."""
    lines = [
        f"live ({result['style']}, {result['seconds']:g} s per size, camera {CAMERA_FPS} fps, "
        f"detector every {result['detect_every']} frames):"
    ]
    for name, row in result["sizes"].items():
        target = f">= {row['target_fps']:g} fps" + (
            f", p95 <= {row['target_p95_ms']:g} ms" if row["target_p95_ms"] is not None else ""
        )
        base = row["baseline"]
        stages = " ".join(f"{k} {v:g}" for k, v in row["stage_ms"].items())
        lines.append(
            f"  {name:>9}: {row['fps']:5.1f} fps  latency p50 {row['p50_ms']:5.1f} ms  "
            f"p95 {row['p95_ms']:5.1f} ms  dropped {row['dropped']}/{row['captured']}  "
            f"[{'met' if row['meets_target'] else 'MISSED'}: {target}]"
        )
        lines.append(
            f"  {'':>9}  pass-through baseline {base['fps']:.1f} fps, p95 {base['p95_ms']:.1f} ms;"
            f" restyled/baseline fps {row['fps_vs_baseline']}; stage ms/frame: {stages}"
        )
    return "\n".join(lines)
