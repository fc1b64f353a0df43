"""The benchmark runs end to end and reports every stage (speed itself is not asserted)."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from plugin.bench import format_bench
from plugin.bench_batch import format_batch_bench
from plugin.cli import main


def test_bench_reports_every_stage_and_the_io_floor(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--frames", "12", "--json", "--preset", "ultrafast"]) == 0
    result = json.loads(capsys.readouterr().out)
    stages = result["render"]["stage_ms"]
    order = list(stages)
    assert order[0] == "decode" and order[-1] == "encode"
    assert {"align", "stylize", "composite"} <= stages.keys()
    assert any(name.startswith("track.") for name in stages)
    assert all(ms >= 0 for ms in stages.values())
    assert result["render"]["faces_tracked"] == 1
    assert result["io_floor"]["fps"] > 0 and result["render"]["fps"] > 0
    ratio = result["render"]["fps"] / result["io_floor"]["fps"]
    assert result["fps_vs_io_floor"] == pytest.approx(ratio)
    text = format_bench(result)
    assert "I/O floor" in text and "end to end" in text and "tracking + landmarks" in text
    # The bench clip is judged by the bench clip's targets.
    assert result["targets"]["end_to_end_fps"] == 30.0
    assert {"end_to_end_fps", "track_landmarks_ms"} <= result["meets"].keys()


def test_bench_beside_competing_workers_reports_ratios_to_the_quiet_run(
    capsys: pytest.CaptureFixture,
) -> None:
    args = ["bench", "--faces", "2", "--frames", "8", "--load", "1", "--rounds", "2", "--json"]
    assert main([*args, "--preset", "ultrafast", "--device", "cpu", "--decoder", "pyav"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["clip"]["faces"] == 2 and result["clip"]["frames"] == 8
    assert result["clip"]["video"] == "decoded by PyAV, encoded by PyAV"
    assert result["render"]["faces_tracked"] == 2 and result["student_batch"] == 2
    device = result["device"]
    assert device["device"] == "cpu" and device["omp_wait_policy"] == "PASSIVE"
    assert device["torch_threads"] >= 1 and device["opencv_threads"] >= 1
    loaded, quiet = result["load"], result["render"]
    assert loaded["workers"] == ["torch"]
    # The round of median fps shown whole; each round's loaded run against the quiet run
    # just before it, and the median of those ratios judged.
    assert len(quiet["fps_rounds"]) == len(loaded["fps_rounds"]) == 2
    assert quiet["fps"] == statistics.median_low(quiet["fps_rounds"])
    pairs = zip(loaded["fps_rounds"], quiet["fps_rounds"], strict=True)
    assert loaded["fps_ratios"] == pytest.approx([a / b for a, b in pairs])
    assert loaded["fps_ratio"] == pytest.approx(statistics.median(loaded["fps_ratios"]))
    assert loaded["face_ms_ratio"] > 0
    assert loaded["stage_ms"].keys() == quiet["stage_ms"].keys()
    # Tracking cost is the quiet run's, not the loaded run's.
    quiet_tracking = sum(ms for name, ms in quiet["stage_ms"].items() if name.startswith("track."))
    assert result["track_landmarks_ms"] == pytest.approx(quiet_tracking)
    assert result["parity"] is None and "load_fps_ratio" in result["meets"]
    # Two faces are not the bench clip: their speed is measured, not judged.
    assert "end_to_end_fps" not in result["meets"] and "end_to_end_fps" not in result["targets"]
    text = format_bench(result)
    assert "with load (torch)" in text and "x quiet" in text and "decoded by PyAV" in text
    assert "2 rounds, the median one below" in text


def test_bench_measures_the_users_own_clip(tmp_path, capsys: pytest.CaptureFixture) -> None:
    from plugin.bench import generate_clip

    clip = generate_clip(tmp_path / "mine.mp4", (480, 360), faces=1, frames=10)
    assert main(["bench", str(clip), "--json", "--preset", "ultrafast"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["clip"]["path"] == str(clip) and result["clip"]["size"] == [480, 360]
    assert result["clip"]["frames"] == 10 and result["load"] is None
    # The student is timed on the batch the render gave it: one face, not --max-faces.
    assert result["render"]["faces_tracked"] == 1 and result["student_batch"] == 1
    # A user's footage is held to the real-footage target, and its tracking is not judged.
    assert result["targets"]["end_to_end_fps"] == 25.0
    assert "end_to_end_fps" in result["meets"] and "track_landmarks_ms" not in result["meets"]
    assert "tracking + landmarks" in format_bench(result)


@pytest.mark.parametrize("size", ["640", "641x480", "32x32", "axb"])
def test_a_bad_generated_size_is_a_usage_error(size: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--size", size])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and f"got {size}" in error and "--size: expected" in error


def test_the_parity_check_and_the_student_timing_run_up_to_the_cuda_boundary(tmp_path) -> None:
    from models.pack_stylizer import PackStylizer
    from plugin.bench import _parity, _student_ms_per_crop, generate_clip
    from plugin.settings import RestyleSettings
    from tests.pack_factory import make_pack

    clip = generate_clip(tmp_path / "c.mp4", (640, 480), faces=2, frames=4)
    # On the CPU both sides are the CPU path: bit for bit the same frames.
    same = _parity(RestyleSettings("cartoon", device="cpu"), clip, 3)
    assert same == {"frames": 3, "mean_abs": 0.0, "max_abs": 0, "psnr_db": float("inf")}
    assert _student_ms_per_crop(PackStylizer(make_pack()), 2, "cpu") > 0


@pytest.mark.slow
def test_batch_bench_renders_the_asked_clips_with_each_engine(
    capsys: pytest.CaptureFixture,
) -> None:
    argv = ["bench", "--batch", "--size", "320x240", "--faces", "2", "--clips", "2"]
    argv += ["--frames", "10", "--jobs", "2", "--preset", "ultrafast", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["clips"], result["frames"], result["size"], result["faces"]) == (
        2,
        10,
        [320, 240],
        2,
    )
    runs = result["runs"]
    assert [run["name"] for run in runs] == ["--jobs 1", "--jobs 2", "--engine ray (local)"]
    for run in runs[:2]:
        # The clips' own render time leaves out the workers' start-up, never adds to it.
        assert 0 < run["fps"] <= run["steady_fps"]
    assert runs[0]["vs_jobs_1"] == 1.0 and runs[2]["steady_fps"] is None
    assert result["ray_vs_jobs"] == pytest.approx(runs[2]["fps"] / runs[1]["fps"])
    text = format_batch_bench(result)
    assert "320x240, 2 face(s)" in text and "steady" in text and "--jobs 2" in text


def test_the_gpu_self_check_names_only_files_the_repository_has() -> None:
    # It runs only on a GPU machine, so a renamed exemplar would first show there.
    root = Path(__file__).resolve().parents[1]
    script = (root / "scripts" / "gpu-check").read_text()
    named = re.findall(r"models/[\w/.-]+\.(?:jpg|png|safetensors)", script)
    assert named, "the self-check adapts a bundled exemplar"
    assert [path for path in named if not (root / path).is_file()] == []


@pytest.mark.parametrize("footage", [False, True], ids=["generated", "own clip"])
def test_profile_frames_names_where_a_frame_spends_its_time(tmp_path: Path, footage: bool) -> None:
    from plugin.bench import generate_clip

    root = Path(__file__).resolve().parents[1]
    clip = generate_clip(tmp_path / "mine.mp4", (352, 288), frames=18) if footage else None
    source = ("--clip", str(clip)) if clip else ("--size", "320x240", "--faces", "1")
    run = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "profile-frames"),
            *source,
            *("--frames", "3", "--top", "40"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    first, *rest = run.stdout.splitlines()
    named = f"{clip} 352x288" if clip else "generated 320x240"
    assert first.startswith(f"painterly on cpu, {named}, 1 face(s): ") and "ms a frame" in first
    listing = "\n".join(rest)
    # The restyler's own stages, down to the student's call (on the CPU one traced graph).
    assert "restyle.py" in listing and "(process)" in listing
    assert "pack_stylizer.py" in listing and "(forward)" in listing
    # Then each part timed on its own: the whole frame first, then the student among them.
    parts = listing.split("-- each part, the GPU synchronised around it (ms a frame) --")[1]
    names = [line.split()[0] for line in parts.strip().splitlines()]
    assert names[0] == "whole" and "stylizer.forward" in names and "compositor.masks" in names


def test_rounds_are_judged_by_their_medians_each_loaded_run_against_its_quiet_one() -> None:
    from plugin.rounds import median_ratio, median_round, paired_ratios

    quiet = [
        {"fps": 40.0, "written": 30, "dropped": 0},
        {"fps": 20.0, "written": 24, "dropped": 6},
        {"fps": 30.0, "written": 29, "dropped": 1},
    ]
    # The median round whole, so what adds up in a run still does.
    assert median_round(quiet, "fps") == {"fps": 30.0, "written": 29, "dropped": 1}
    assert median_round(quiet[:2], "fps")["fps"] == 20.0  # of two, the lower
    # A minute when the whole machine ran at half speed halves both runs of its round.
    loaded = [{"fps": 24.0}, {"fps": 12.0}, {"fps": 0.0}]
    assert paired_ratios(loaded, quiet, "fps") == [0.6, 0.6, 0.0]
    assert paired_ratios([{"fps": 1.0}], [{"fps": 0.0}], "fps") == [None]
    assert median_ratio(loaded, quiet, "fps") == 0.6
    assert median_ratio([{"fps": 1.0}], [{"fps": 0.0}], "fps") is None
    with pytest.raises(ValueError, match="no rounds"):
        median_round([], "fps")
