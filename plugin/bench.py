"""``facestyle bench [CLIP]``: what a render costs per stage, quiet and on a busy machine.

The clip is the user's own footage, or a generated one (public-domain faces moving about;
640x480 with one face unless asked otherwise). It is rendered through the same threaded runner
and encoder as ``facestyle render``: once with a pass-through stage (the I/O floor: decode and
encode only, what no stylization can beat), once with the face stages, and — with ``load`` —
once more beside competing processes (:class:`plugin.bench_load.CompetingLoad`). Speed is
reported as milliseconds per frame per stage and frames per second, and as ratios between runs
of the same invocation (restyled / floor, loaded / quiet), so numbers from different or busy
machines can be compared by their ratios.

On CUDA it also checks the GPU against the CPU path on the clip's first frames (the same
frames restyled both ways) and times the student on a batch of crops.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.runner import Runner, RunSummary
from pipeline.samples import FACE_PHOTOS, FacePath, Pose, face_side, write_moving_face_clip
from pipeline.sinks.file import DEFAULT_PRESET, FileSink
from pipeline.sources import open_source
from pipeline.video_engines import VideoEngines, choose_video_engines
from plugin.bench_load import CompetingLoad, worker_kinds
from plugin.rounds import median_ratio, median_round, paired_ratios
from plugin.settings import RestyleSettings, build_restyler, resolve_device

__all__ = ["BENCH_SIZE", "TARGETS", "format_bench", "generate_clip", "run_bench"]

BENCH_SIZE = (640, 480)
GENERATED_FRAMES = 150
# Frames restyled on both devices for the GPU-vs-CPU parity check.
PARITY_FRAMES = 12
# The issues' targets. On a 2-core CPU: >= 30 fps end to end and tracking within 10 ms on the
# bench clip (640x480, one face), >= 25 fps on real footage, >= 0.6x of the quiet speed beside
# one competing PyTorch worker, the student <= 12 ms a crop. On a GPU: 1080p with four faces
# >= 60 fps and the student <= 1 ms per crop in a batch. A generated clip of another size or
# face count is measured, not judged, on speed.
TARGETS = {
    "cpu": {
        "end_to_end_fps": 30.0,
        "track_landmarks_ms": 10.0,
        "load_fps_ratio": 0.6,
        "student_ms_per_crop": 12.0,
    },
    "cpu footage": {"end_to_end_fps": 25.0, "load_fps_ratio": 0.6, "student_ms_per_crop": 12.0},
    "cpu other": {"load_fps_ratio": 0.6, "student_ms_per_crop": 12.0},
    "cuda": {"end_to_end_fps": 60.0, "student_ms_per_crop": 1.0},
}


def _targets(device: str, clip: str | Path | None, size: tuple[int, int], faces: int) -> dict:
    """The :data:`TARGETS` that judge this run: on the CPU they depend on the clip."""
    if device == "cuda":
        return TARGETS["cuda"]
    if clip is not None:
        return TARGETS["cpu footage"]
    return TARGETS["cpu"] if (size, faces) == (BENCH_SIZE, 1) else TARGETS["cpu other"]


def _face_path(index: int, faces: int, size: tuple[int, int]) -> FacePath:
    """Face ``index`` of ``faces`` side by side, each swaying in its own column."""
    width, height = size
    column = width / faces
    photo = FACE_PHOTOS[index % len(FACE_PHOTOS)]
    # At 640x480 with one face: a face box of 110-145 px swaying 120 px either side.
    side = min(126 * height / 480, 0.42 * column)
    sway = 120 * column / 640

    def pose(frame: int) -> Pose:
        t = frame / 25
        return Pose(
            cx=column * (index + 0.5) + sway * math.sin(0.8 * t + index),
            cy=height / 2 + 30 * height / 480 * math.sin(1.3 * t + index),
            scale=side / face_side(photo) * (1 + 0.14 * math.sin(0.5 * t + index)),
            angle=8 * math.sin(0.9 * t + index),
        )

    return FacePath(photo, pose)


def generate_clip(
    path: Path, size: tuple[int, int] = BENCH_SIZE, faces: int = 1, frames: int = 150
) -> Path:
    """Write the bench's generated clip: ``faces`` public-domain faces moving side by side."""
    paths = [_face_path(i, faces, size) for i in range(faces)]
    write_moving_face_clip(path, paths, frames, size=size, audio=False)
    return path


def _render(
    clip: Path,
    output: Path,
    stages: Sequence[Callable[[Any], Any]],
    preset: str,
    frames: int | None,
    engines: VideoEngines,
) -> RunSummary:
    with (
        open_source(clip, hardware=engines.hardware_decode) as source,
        FileSink.matching(output, source, preset=preset, hardware=engines.hardware_encode) as sink,
    ):
        frames_in = source if frames is None else itertools.islice(source, frames)
        return Runner(frames_in, stages, [sink]).run()


def _stage_ms(run: RunSummary, restyler: Any) -> dict[str, float]:
    """Decode, the tracker's own parts, the face stages and encode, in ms per frame."""
    face_ms = restyler.timings.ms_per_frame()
    # The tracker reports its parts (detect, landmarks, ...): they replace "track".
    face_ms.pop("track", None)
    io_ms = run.timings.ms_per_frame()
    return {
        "decode": io_ms.get("decode", 0.0),
        **{f"track.{name}": ms for name, ms in restyler.tracker.timings.ms_per_frame().items()},
        **face_ms,
        "encode": io_ms.get("encode", 0.0),
    }


def _measured(run: RunSummary, restyler: Any) -> dict:
    stage_ms = _stage_ms(run, restyler)
    return {
        "fps": run.fps,
        "stage_ms": stage_ms,
        # The face work a frame waits for (what restyling adds to its latency).
        "face_ms": sum(ms for name, ms in stage_ms.items() if name not in ("decode", "encode")),
        "faces_tracked": len(restyler.track_ids),
    }


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _rounds_as_one(runs: Sequence[dict]) -> dict:
    """Rounds of :func:`_measured` as one: the round of median fps
    (:func:`plugin.rounds.median_round`), with each round's fps as ``fps_rounds``."""
    return {**median_round(runs, "fps"), "fps_rounds": [run["fps"] for run in runs]}


def _student_ms_per_crop(stylizer: Any, batch: int, device: str) -> float | None:
    """Median ms per crop of the student alone on ``batch`` crops in one call (waiting for
    the GPU to finish on CUDA); ``None`` for a stylizer without a student."""
    from models.pack_stylizer import PackStylizer

    if not isinstance(stylizer, PackStylizer):
        return None
    import torch

    from models.benchmark import median_ms
    from pipeline.align import align_face
    from pipeline.landmarks import detect_landmarks
    from pipeline.samples import face_photo

    # The student's cost does not depend on the face: a bundled photo will do.
    photo = face_photo("astronaut")
    crop = align_face(photo, detect_landmarks(photo)[0], stylizer.crop_size)
    rgb, guides = stylizer.inputs([crop] * batch)

    def once() -> None:
        stylizer.forward(rgb, guides)
        if device == "cuda":
            torch.cuda.synchronize()

    return median_ms(once, repeats=30) / batch


def _parity(settings: RestyleSettings, clip: Path, frames: int) -> dict:
    """The first ``frames`` frames restyled on the CPU and on ``settings.device``: how far
    apart the output frames are (0-255 RGB)."""
    from pipeline.frame import Frame

    restylers = [build_restyler(replace(settings, device="cpu")), build_restyler(settings)]
    diffs: list[np.ndarray] = []
    with open_source(clip) as source:
        for frame in itertools.islice(source, frames):
            cpu, gpu = (r.process(Frame(frame.image, frame.time, frame.index)) for r in restylers)
            diffs.append(np.abs(cpu.image.astype(np.int16) - gpu.image.astype(np.int16)))
    errors = np.stack(diffs).astype(np.float64)
    mse = float(np.mean(errors**2))
    return {
        "frames": len(diffs),
        "mean_abs": float(errors.mean()),
        "max_abs": int(errors.max()),
        "psnr_db": float("inf") if mse == 0 else 10 * math.log10(255**2 / mse),
    }


def run_bench(
    settings: RestyleSettings,
    clip: str | Path | None = None,
    *,
    frames: int | None = None,
    preset: str = DEFAULT_PRESET,
    decoder: str = "auto",
    encoder: str = "auto",
    load: int = 0,
    size: tuple[int, int] = BENCH_SIZE,
    faces: int = 1,
    rounds: int = 1,
) -> dict:
    """Measure the I/O floor, the render, and the render beside ``load`` competing workers.

    Args:
        settings: the restyler to measure (its device included).
        clip: a video to render; ``None`` generates one of ``size`` with ``faces`` faces.
        frames: most frames rendered (``None``: all of ``clip``, or 150 generated).
        preset: x264 preset of every run.
        decoder, encoder: what decodes and encodes every run (see
            :func:`pipeline.video_engines.choose_video_engines`).
        load: competing worker processes for the loaded run (0: no loaded run).
        size, faces: the generated clip's ``(width, height)`` and number of faces.
        rounds: quiet renders, each followed by a loaded one with ``load``; the figures are
            those of the round with the median fps, the ratios the medians of the rounds'.

    Returns:
        ``{"clip", "device", "io_floor": {"fps", "stage_ms"}, "render": {"fps", "stage_ms",
        "face_ms", "faces_tracked", "fps_rounds"}, "fps_vs_io_floor", "track_landmarks_ms",
        "student_ms_per_crop", "load", "parity", "targets", "meets"}`` where ``stage_ms`` maps
        stage name to milliseconds per frame and ``fps_rounds`` lists each round's fps;
        ``load`` (``None`` without workers) holds the loaded runs' numbers with
        ``fps_ratio`` and ``face_ms_ratio``, the medians of each round's loaded / quiet, and
        ``fps_ratios``, each round's; ``parity`` (``None`` on the CPU) compares the GPU's
        output frames to the CPU's.
    """
    from plugin.live import warm_up

    device = resolve_device(settings.device)
    engines = choose_video_engines(device, decoder, encoder)
    restyler = build_restyler(settings)
    with tempfile.TemporaryDirectory(prefix="facestyle-bench-") as folder:
        if clip is None:
            frames = frames or GENERATED_FRAMES
            path = generate_clip(Path(folder) / "bench.mp4", size, faces, frames)
        else:
            path = Path(clip)
        with open_source(path) as source:
            clip_size = (source.width, source.height)
        output = Path(folder) / "out.mp4"
        floor = _render(path, output, [lambda frame: frame], preset, frames, engines)
        warm_up(restyler)  # model loading is start-up, not per-frame cost
        # The same stages as `facestyle render`: track and align, stylize, composite.
        stages = list(restyler.stages)
        quiet_rounds: list[dict] = []
        loaded_rounds: list[dict] = []
        batch = 1  # the student's batch as the render ran it: the most faces in one frame
        for _ in range(rounds):
            restyler.reset()
            run = _render(path, output, stages, preset, frames, engines)
            quiet_rounds.append(_measured(run, restyler))
            batch = max(batch, restyler.most_faces)
            if load:
                with CompetingLoad(load):
                    restyler.reset()
                    run = _render(path, output, stages, preset, frames, engines)
                    loaded_rounds.append(_measured(run, restyler))
        quiet = _rounds_as_one(quiet_rounds)
        loaded = None
        if load:
            # Each loaded round against the quiet one just before it: a pair shares the
            # machine's state of that minute.
            loaded = {
                **_rounds_as_one(loaded_rounds),
                "workers": worker_kinds(load),
                "fps_ratio": median_ratio(loaded_rounds, quiet_rounds, "fps"),
                "fps_ratios": [r or 0.0 for r in paired_ratios(loaded_rounds, quiet_rounds, "fps")],
                "face_ms_ratio": median_ratio(loaded_rounds, quiet_rounds, "face_ms"),
            }
        student_ms = _student_ms_per_crop(restyler.stylizer, batch, device)
        parity = _parity(settings, path, PARITY_FRAMES) if device == "cuda" else None

    from plugin.threads import apply_thread_policy

    # From the quiet runs: the tracker's timings are a loaded run's once one has run.
    track_landmarks = sum(ms for name, ms in quiet["stage_ms"].items() if name.startswith("track."))
    targets = _targets(device, clip, size, faces)
    meets = {}
    if "end_to_end_fps" in targets:
        meets["end_to_end_fps"] = quiet["fps"] >= targets["end_to_end_fps"]
    if "track_landmarks_ms" in targets:
        meets["track_landmarks_ms"] = track_landmarks <= targets["track_landmarks_ms"]
    if loaded is not None and "load_fps_ratio" in targets:
        meets["load_fps_ratio"] = (loaded["fps_ratio"] or 0.0) >= targets["load_fps_ratio"]
    if student_ms is not None and "student_ms_per_crop" in targets:
        meets["student_ms_per_crop"] = student_ms <= targets["student_ms_per_crop"]
    return {
        "clip": {
            "path": "generated" if clip is None else str(clip),
            "size": list(clip_size),
            "frames": floor.frames,
            "faces": faces if clip is None else None,
            "style": restyler.stylizer.name,
            "preset": preset,
            "video": engines.describe(),
        },
        "device": {"device": device, **apply_thread_policy()},
        "io_floor": {"fps": floor.fps, "stage_ms": floor.timings.ms_per_frame()},
        "render": quiet,
        "fps_vs_io_floor": _ratio(quiet["fps"], floor.fps) or 0.0,
        "track_landmarks_ms": track_landmarks,
        "student_ms_per_crop": student_ms,
        "student_batch": batch,
        "load": loaded,
        "parity": parity,
        "targets": targets,
        "meets": meets,
    }


def _verdict(result: dict, key: str) -> str:
    if key not in result["meets"]:
        return ""
    word = "meets" if result["meets"][key] else "MISSES"
    return f"  ({word} the {result['targets'][key]:g} target)"


def format_bench(result: dict) -> str:
    """The result of :func:`run_bench` as one table for the terminal."""
    clip, device = result["clip"], result["device"]
    faces = f", {clip['faces']} face(s)" if clip["faces"] else ""
    lines = [
        f"bench: {clip['path']}, {clip['size'][0]}x{clip['size'][1]}, {clip['frames']} frames"
        f"{faces}, style {clip['style']}, x264 preset {clip['preset']}, video "
        f"{clip['video']}",
        f"device {device['device']}: torch threads {device['torch_threads']}, OpenCV threads "
        f"{device['opencv_threads']}, OMP_WAIT_POLICY {device['omp_wait_policy']} "
        f"({'in force' if device['passive'] else 'not in force: one thread each'})",
        "",
    ]
    loaded = result["load"]
    header = "  stage                      ms/frame"
    if loaded:
        header += f"   with load ({', '.join(loaded['workers'])})"
    lines.append(header)
    for name, ms in result["render"]["stage_ms"].items():
        row = f"  {name:<26} {ms:8.2f}"
        if loaded:
            row += f"   {loaded['stage_ms'].get(name, 0.0):8.2f}"
        lines.append(row)
    floor, full = result["io_floor"], result["render"]
    lines += ["", "  (stages run on five threads, so their sum exceeds the wall time per frame)"]
    if len(full["fps_rounds"]) > 1:
        rounds = f"  {len(full['fps_rounds'])} rounds, the median one below: quiet " + " / ".join(
            f"{fps:.1f}" for fps in full["fps_rounds"]
        )
        if loaded:
            rounds += " fps, with load " + " / ".join(f"{r:.2f}" for r in loaded["fps_ratios"])
            rounds += " x quiet"
        else:
            rounds += " fps"
        lines.append(rounds)
    lines += [
        f"  I/O floor (decode + encode only)  {floor['fps']:7.1f} fps",
        f"  end to end                        {full['fps']:7.1f} fps  "
        f"= {result['fps_vs_io_floor']:.2f} x the I/O floor{_verdict(result, 'end_to_end_fps')}",
    ]
    lines.append(
        f"  tracking + landmarks              {result['track_landmarks_ms']:7.2f} ms/frame"
        f"{_verdict(result, 'track_landmarks_ms')}"
    )
    if result["student_ms_per_crop"] is not None:
        lines.append(
            f"  student alone                     {result['student_ms_per_crop']:7.2f} ms/crop "
            f"(full size) in batches of {result['student_batch']}"
            f"{_verdict(result, 'student_ms_per_crop')}"
        )
    if loaded:
        lines += [
            f"  with load: end to end             {loaded['fps']:7.1f} fps  "
            f"= {loaded['fps_ratio']:.2f} x quiet{_verdict(result, 'load_fps_ratio')}",
            f"  with load: face stages            {loaded['face_ms']:7.1f} ms/frame "
            f"= {loaded['face_ms_ratio']:.2f} x quiet ({full['face_ms']:.1f})",
        ]
    parity = result["parity"]
    if parity:
        lines.append(
            f"  parity with the CPU path          {parity['psnr_db']:7.1f} dB PSNR  "
            f"(mean |diff| {parity['mean_abs']:.2f}, max {parity['max_abs']}, "
            f"{parity['frames']} frames)"
        )
    return "\n".join(lines)
