"""The choice of video engines: the CPU's codecs, or the GPU's NVDEC and NVENC, reached through
PyAV's own FFmpeg.

Where no NVIDIA GPU is present (this project's CI), the engines really are tried and really do
not open: everything up to that boundary is tested here, and ``tests/test_gpu.py`` decodes and
encodes on the GPU itself.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from videoclips import write_clip

from pipeline.errors import DeviceError, UsageError
from pipeline.frame import Frame
from pipeline.sinks.file import FileSink, encoder_for
from pipeline.sources import VideoFileSource
from pipeline.video_engines import (
    HARDWARE_ENCODER,
    VideoEngines,
    choose_video_engines,
    nvdec_error,
    nvenc_error,
    open_nvenc,
)
from plugin.batch import BatchSettings
from plugin.commands._args import PRESETS
from plugin.settings import RestyleSettings

no_gpu_engines = pytest.mark.skipif(
    nvdec_error() is None or nvenc_error() is None, reason="this machine has an NVIDIA GPU"
)


def test_on_the_cpu_auto_takes_the_software_codecs_and_says_so() -> None:
    engines = choose_video_engines("cpu")
    assert engines == VideoEngines(hardware_decode=False, hardware_encode=False)
    assert engines.describe() == "decoded by PyAV, encoded by PyAV"
    assert choose_video_engines("cuda", "pyav", "pyav") == VideoEngines()


def test_unknown_engine_names_are_refused() -> None:
    with pytest.raises(ValueError, match="decoder"):
        choose_video_engines("cpu", "cuvid")
    with pytest.raises(ValueError, match="encoder"):
        choose_video_engines("cpu", encoder="x264")
    with pytest.raises(ValueError, match="decoder"):
        BatchSettings(decoder="gpu")


@no_gpu_engines
def test_without_a_gpu_auto_falls_back_and_a_named_engine_says_why_in_one_line() -> None:
    assert choose_video_engines("cuda") == VideoEngines()
    for decoder, encoder, flag in (("nvdec", "auto", "--decoder"), ("auto", "nvenc", "--encoder")):
        with pytest.raises(DeviceError) as caught:
            choose_video_engines("cpu", decoder, encoder)
        message = str(caught.value)
        assert "\n" not in message and f"use {flag} pyav" in message and "NVIDIA" in message


@no_gpu_engines
def test_without_a_gpu_a_hardware_source_fails_before_any_frame(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", 3)
    with pytest.raises(DeviceError, match="--decoder pyav"):
        VideoFileSource(clip, hardware=True)


@no_gpu_engines
def test_an_nvenc_sink_that_cannot_start_says_so_and_leaves_no_file(tmp_path: Path) -> None:
    """The encoder opens at the first frame: where it does not (here, no GPU; on a GPU, one
    session too many), the error names the engine and what to do, not the disk."""
    output = tmp_path / "out.mp4"
    with pytest.raises(DeviceError, match=r"NVENC did not start.*--encoder pyav"):  # noqa: SIM117
        with FileSink(output, 64, 48, codec=HARDWARE_ENCODER) as sink:
            sink.write(Frame(np.zeros((48, 64, 3), np.uint8), 0.0, 0))
    assert list(tmp_path.iterdir()) == []


@no_gpu_engines
def test_the_command_asked_for_nvenc_without_a_gpu_fails_cleanly(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", 3, size=(96, 64))
    output = tmp_path / "out.mp4"
    command = [sys.executable, "-m", "plugin.cli", "render", str(clip), "-o", str(output)]
    done = subprocess.run(
        [*command, "--encoder", "nvenc", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("facestyle: error: --encoder")
    assert not output.exists() and list(tmp_path.iterdir()) == [clip]


def test_nvenc_takes_x264s_quality_and_its_preset_at_the_same_place_on_its_scale() -> None:
    from pipeline.sinks.file import _encoder_options

    levels = [int(_encoder_options(HARDWARE_ENCODER, 23, p)["preset"][1:]) for p in PRESETS]
    assert levels == sorted(levels) and levels[0] == 1 and levels[-1] == 7
    options = _encoder_options(HARDWARE_ENCODER, 23, "veryfast")
    # Constant quality, and no bitrate cap to override it.
    assert options["rc"] == "vbr" and options["cq"] == "23" and options["b"] == "0"
    assert encoder_for(Path("a.webm"), hardware=True) == "libvpx-vp9"
    assert encoder_for(Path("a.mkv"), hardware=True) == HARDWARE_ENCODER
    assert encoder_for(Path("a.mkv")) == "libx264"


@no_gpu_engines
@pytest.mark.parametrize("command", ["batch", "bench"])
def test_batch_and_bench_asked_for_nvdec_without_a_gpu_say_why_in_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from plugin.cli import main

    clip = write_clip(tmp_path / "in.mp4", 3, size=(96, 64))
    args = ["--out-dir", str(tmp_path / "styled"), "--quiet"] if command == "batch" else []
    assert main([command, str(clip), *args, "--decoder", "nvdec", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--decoder nvdec: NVDEC" in err
    assert not (tmp_path / "styled").exists()


def _open_nvenc(options: dict[str, str]) -> int:
    """0 when NVENC opens with ``options``, else FFmpeg's error number."""
    try:
        open_nvenc(options)
    except av.error.FFmpegError as error:
        return error.errno
    return 0


def test_nvencs_options_are_values_its_ffmpeg_accepts() -> None:
    """FFmpeg parses the options before it looks for the GPU: a value it does not take fails
    with EINVAL, a missing GPU with another error (or none, on a GPU machine)."""
    from pipeline.sinks.file import _encoder_options

    assert _open_nvenc({"preset": "p9"}) == errno.EINVAL  # the check can fail
    for preset in PRESETS:
        assert _open_nvenc(_encoder_options(HARDWARE_ENCODER, 18, preset)) != errno.EINVAL


def test_nvenc_is_refused_for_a_webm_output_before_any_work(tmp_path: Path) -> None:
    from plugin.api import render
    from plugin.batch import plan_jobs, run_batch

    clip = write_clip(tmp_path / "in.mp4", 3, size=(96, 64))
    with pytest.raises(UsageError, match="WebM"):
        render(clip, tmp_path / "out.webm", style="cartoon", encoder="nvenc", device="cpu")
    jobs = plan_jobs([clip], tmp_path / "styled", container="webm")
    with pytest.raises(UsageError, match=r"in-styled\.webm"):
        run_batch(jobs, BatchSettings(RestyleSettings("cartoon", device="cpu"), encoder="nvenc"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.mp4"]


def test_a_batch_settles_auto_once_where_it_is_planned() -> None:
    cpu = BatchSettings().with_engines("cpu")
    assert (cpu.decoder, cpu.encoder) == ("pyav", "pyav")
    # For a Ray cluster the named engine is checked on the nodes, not on this machine.
    remote = BatchSettings(decoder="nvdec", encoder="nvenc").with_engines("cuda", check=False)
    assert (remote.decoder, remote.encoder) == ("nvdec", "nvenc")
    # A system ffmpeg's encoder is kept as it is.
    studio = BatchSettings(encoder="ffmpeg:prores_ks").with_engines("cpu")
    assert studio.encoder == "ffmpeg:prores_ks" and studio.codec == "prores_ks"
