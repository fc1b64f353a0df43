"""`facestyle batch` on real generated clips: isolation of bad clips, the manifest, resuming
after SIGKILL, split renders that equal whole ones, the system-ffmpeg encoder."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ctrl_c import ctrl_c_when_writing
from videoclips import audio_packets, video_timestamps, write_clip

import plugin.batch
from pipeline.errors import DeviceError, InputError
from pipeline.samples import FacePath, Pose, write_moving_face_clip
from pipeline.sources import open_source
from plugin.batch import BatchJob, BatchSettings, ClipProgress, plan_jobs, run_batch
from plugin.cli import main
from plugin.manifest import MANIFEST_NAME
from plugin.settings import RestyleSettings

SIZE = (320, 240)
FRAMES = 30
CARTOON = RestyleSettings(style="cartoon")


def test_public_api_is_pinned() -> None:
    assert sorted(plugin.batch.__all__) == [
        "BatchJob",
        "BatchSettings",
        "BatchSummary",
        "ClipProgress",
        "ClipSummary",
        "OUTPUT_SUFFIXES",
        "VIDEO_SUFFIXES",
        "plan_jobs",
        "run_batch",
    ]


def _pose(index: int) -> Pose:
    return Pose(150 + 2 * index, 120 + 6 * math.sin(index / 5), 0.75, 3 * math.sin(index / 7))


def _clip(path: Path, frames: int = FRAMES, seed: int = 0, photo: str = "astronaut") -> Path:
    write_moving_face_clip(
        path, [FacePath(photo, _pose)], frames, size=SIZE, seed=seed, keyframe_every=10
    )
    return path


def _truncated_mkv(path: Path) -> Path:
    """An mkv cut short: it opens and scans, and fails while it is being rendered."""
    data = write_clip(path, 40, size=(96, 64)).read_bytes()
    path.write_bytes(data[: int(len(data) * 0.7)])
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three good clips (different faces and backgrounds) and a damaged one."""
    folder = tmp_path_factory.mktemp("batch-in")
    _clip(folder / "a.mp4", seed=1)
    _clip(folder / "b.mp4", seed=2, photo="grace_hopper")
    _clip(folder / "c.mkv", seed=3)
    _truncated_mkv(folder / "damaged.mkv")
    return folder


def _frames(path: Path) -> list[np.ndarray]:
    with open_source(path) as source:
        return [frame.image for frame in source]


def _leftovers(folder: Path) -> list[Path]:
    """Partial files and work folders a batch should not leave behind."""
    return [p for p in folder.rglob("*") if ".part" in p.name or p.name == ".facestyle-work"]


def test_good_clips_finish_a_damaged_one_fails_alone_and_a_rerun_does_nothing(
    clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    command = ["batch", str(clips), "--out-dir", str(out), "--style", "cartoon", "--jobs", "1"]
    assert main([*command, "--preset", "ultrafast"]) == 1
    captured = capsys.readouterr()
    failures = captured.err.strip().splitlines()
    assert len(failures) == 1 and "damaged.mkv" in failures[0] and "truncated" in failures[0]
    assert "3 done, 0 skipped, 1 failed" in captured.out
    for name in ("a", "b", "c"):
        source = clips / f"{name}.{'mkv' if name == 'c' else 'mp4'}"
        output = out / f"{name}-styled{source.suffix}"
        assert video_timestamps(output) == pytest.approx(video_timestamps(source), abs=1e-4)
        assert audio_packets(output) == audio_packets(source)
        # The faces are restyled: the output is not the input.
        diff = [
            np.abs(x.astype(int) - y).mean()
            for x, y in zip(_frames(source), _frames(output), strict=True)
        ]
        assert max(diff) > 1.0
    assert not (out / "damaged-styled.mkv").exists()
    assert sorted(json.loads((out / MANIFEST_NAME).read_text())["clips"]) == [
        "a-styled.mp4",
        "b-styled.mp4",
        "c-styled.mkv",
    ]
    assert _leftovers(out) == []

    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main([*command, "--preset", "ultrafast", "-q"]) == 1
    assert "0 done, 3 skipped, 1 failed" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_a_changed_pack_setting_or_input_redoes_its_clips(clips: Path, tmp_path: Path) -> None:
    from pack_factory import make_pack

    from models.pack import save_pack

    pack = save_pack(make_pack(seed=0), tmp_path / "style.safetensors")
    _clip(tmp_path / "a.mp4", frames=8, seed=1)
    _clip(tmp_path / "b.mp4", frames=8, seed=2)
    jobs = plan_jobs([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "out")

    def statuses(identity: float | None = None, device: str = "auto", **options) -> list[str]:
        restyle = RestyleSettings(style=pack, identity=identity, device=device)
        settings = BatchSettings(restyle, preset="ultrafast", **options)
        return [clip.status for clip in run_batch(jobs, settings).clips]

    assert statuses() == ["done", "done"]
    assert statuses() == ["skipped", "skipped"]
    # Where and how it runs does not change what comes out.
    assert statuses(device="cpu", segment_frames=5) == ["skipped", "skipped"]
    save_pack(make_pack(seed=1), pack)  # another pack under the same name
    assert statuses() == ["done", "done"]
    assert statuses(identity=0.9) == ["done", "done"]
    assert statuses(identity=0.9, crf=30) == ["done", "done"]
    shutil.copy(clips / "c.mkv", tmp_path / "b.mp4")  # one input changes: only it is redone
    assert statuses(identity=0.9, crf=30) == ["skipped", "done"]


def test_a_damaged_output_is_redone_and_an_older_manifest_still_counts(tmp_path: Path) -> None:
    _clip(tmp_path / "a.mp4", frames=8, seed=1)
    jobs = plan_jobs([tmp_path / "a.mp4"], tmp_path / "out")
    output, manifest = jobs[0].output, tmp_path / "out" / MANIFEST_NAME

    def statuses() -> list[str]:
        settings = BatchSettings(CARTOON, preset="ultrafast")
        return [clip.status for clip in run_batch(jobs, settings).clips]

    assert statuses() == ["done"]
    output.write_bytes(output.read_bytes()[:1000])  # what a copy cut short leaves
    assert statuses() == ["done"]
    assert len(_frames(output)) == 8
    assert statuses() == ["skipped"]
    # A manifest written before sizes were recorded: the output need only be there.
    data = json.loads(manifest.read_text())
    del data["clips"][output.name]["output_bytes"]
    manifest.write_text(json.dumps(data))
    assert statuses() == ["skipped"]


def test_audio_the_container_cannot_hold_fails_before_the_work_naming_the_option(
    clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    command = ["batch", str(clips / "a.mp4"), "--out-dir", str(out), "--container", "webm"]
    assert main([*command, "--style", "cartoon"]) == 1
    err = capsys.readouterr().err
    assert "a .webm file cannot hold the input's aac audio; use --container mkv" in err
    assert [p.name for p in out.iterdir()] == []


def test_output_names_never_collide(tmp_path: Path) -> None:
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        write_clip(tmp_path / folder / "take.mp4", 2)
    write_clip(tmp_path / "x" / "take.MP4.avi", 2)
    write_clip(tmp_path / "x" / "Take.mkv", 2)
    (tmp_path / "x" / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    jobs = plan_jobs([tmp_path / "x", str(tmp_path / "y" / "*.mp4"), tmp_path / "x"], out)
    names = [job.output.name for job in jobs]
    assert len(jobs) == 4  # the folder named twice counts once; the text file is not a video
    assert len({name.lower() for name in names}) == 4
    assert all(job.output.parent == out for job in jobs)
    assert "take.MP4-styled.mkv" in names  # .avi is not kept: .mkv takes any audio
    # The same inputs give the same names on a rerun.
    assert plan_jobs([tmp_path / "x", str(tmp_path / "y" / "*.mp4")], out) == jobs
    assert [j.output.suffix for j in plan_jobs([tmp_path / "y"], out, container="mov")] == [".mov"]
    with pytest.raises(InputError, match="output folder"):
        plan_jobs([out.parent / "x"], tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        plan_jobs([str(tmp_path / "*.webm")], out)


def test_a_killed_batch_resumes_and_loses_nothing(clips: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(clips / name, inputs / name)
    _clip(inputs / "long.mp4", frames=90, seed=4)  # three segments of 30
    out = tmp_path / "out"
    command = [
        *("batch", str(inputs), "--out-dir", str(out), "--style", "cartoon", "--jobs", "1"),
        *("--preset", "ultrafast", "--segment-frames", "30", "--overlap", "10"),
    ]
    batch = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob(".facestyle-work/*/part-0000.mp4")):  # a, b done; long begun
            assert batch.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(batch.pid, signal.SIGKILL)
        batch.wait()
    # Whatever is under a final name is complete.
    for output in out.glob("*-styled.mp4"):
        assert len(video_timestamps(output)) == len(
            video_timestamps(inputs / output.name.replace("-styled", ""))
        )
    assert not (out / "long-styled.mp4").exists()

    first_report: list[int] = []

    def progress(step: ClipProgress) -> None:
        if step.job.input.name == "long.mp4" and not first_report:
            first_report.append(step.frames)

    jobs = plan_jobs([inputs], out)
    settings = BatchSettings(CARTOON, preset="ultrafast", segment_frames=30, overlap=10)
    summary = run_batch(jobs, settings, progress=progress)
    assert summary.failed == 0 and summary.done + summary.skipped == 3
    assert first_report[0] >= 30, "the finished first segment was rendered again"
    for job in jobs:
        assert video_timestamps(job.output) == pytest.approx(video_timestamps(job.input), abs=1e-4)
        assert audio_packets(job.output) == audio_packets(job.input)
    assert _leftovers(out) == []
    assert len(json.loads((out / MANIFEST_NAME).read_text())["clips"]) == 3


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clip(tmp_path_factory.mktemp("long") / "long.mp4", frames=60, seed=5)


def _render(clip: Path, out: Path, **options) -> Path:
    """Render ``clip`` losslessly (CRF 0), so that frames differ only where the restyling
    did, not by the encoder's noise."""
    job = BatchJob(clip, out / f"{clip.stem}-styled.mp4")
    settings = BatchSettings(CARTOON, **{"crf": 0, "preset": "ultrafast", **options})
    summary = run_batch([job], settings)
    assert summary.done == 1, summary
    assert summary.clips[0].segments == (3 if options.get("segment_frames") else 1)
    return job.output


def _differences(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Mean absolute difference of each pair of frames."""
    return np.array([np.abs(x.astype(int) - y).mean() for x, y in zip(a, b, strict=True)])


def test_a_split_render_equals_a_single_render(long_clip: Path, tmp_path: Path) -> None:
    single = _render(long_clip, tmp_path / "single")
    split = _render(long_clip, tmp_path / "split", segment_frames=20, overlap=20)
    assert video_timestamps(split) == video_timestamps(single)
    assert len(video_timestamps(split)) == 60
    assert audio_packets(split) == audio_packets(single) == audio_packets(long_clip)
    whole, source = _frames(single), _frames(long_clip)
    restyled = _differences(whole, source)
    assert restyled[10:].min() > restyled[0] + 0.3  # the face has faded in: restyling shows
    # No seam. Measured: 0 in the second segment, at most 0.04 in the third. The smoothing
    # filters remember long, so a small residual stays after any warm-up: made with
    # OpenCV's chroma instead of swscale's (a level apart), the same clip gives 0.15.
    assert _differences(whole, _frames(split)).max() < 0.25

    # Without warm-up the faces fade in again at each cut: 1.4 on the cut's frame here.
    cold = _render(long_clip, tmp_path / "cold", segment_frames=20, overlap=0)
    assert _differences(whole[20:22], _frames(cold)[20:22]).min() > 0.5


@pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="needs a system ffmpeg: apt-get install ffmpeg"
)
def test_the_ffmpeg_encoder_keeps_timing_and_audio(long_clip: Path, tmp_path: Path) -> None:
    single = _render(long_clip, tmp_path / "pyav")
    output = _render(long_clip, tmp_path / "ffmpeg", encoder="ffmpeg:libx264", segment_frames=20)
    assert video_timestamps(output) == video_timestamps(long_clip)
    assert audio_packets(output) == audio_packets(long_clip)
    # Both lossless x264: the same frames up to the colour conversions of two encoders.
    assert _differences(_frames(single), _frames(output)).max() < 1.0


def test_an_unknown_ffmpeg_encoder_fails_before_any_work(long_clip: Path, tmp_path: Path) -> None:
    job = BatchJob(long_clip, tmp_path / "out.mp4")
    with pytest.raises(DeviceError, match="ffmpeg"):
        run_batch([job], BatchSettings(CARTOON, encoder="ffmpeg:no_such_codec"))
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    for option in (["--encoder", "x264"], ["--jobs", "0"], ["--engine", "spark"]):
        with pytest.raises(SystemExit) as caught:
            main(["batch", "in.mp4", "--out-dir", str(tmp_path), *option])
        assert caught.value.code == 2


def test_ctrl_c_stops_with_status_130_and_leaves_no_partial_file(
    clips: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    command = ["batch", str(clips / "a.mp4"), "--out-dir", str(out), "--style", "cartoon"]
    # Five in a row, each the moment the render begins: a Ctrl-C landing while the runner
    # started its threads once crashed the exit (SIGABRT or SIGSEGV) about one run in two.
    for _ in range(5):
        status, err = ctrl_c_when_writing(
            [*command, "--jobs", "1", "--preset", "ultrafast"], out, ".a-styled.*.part.mp4"
        )
        assert status == 130, err
        assert "facestyle: stopped" in err and "Traceback" not in err
        assert list(out.iterdir()) == []
