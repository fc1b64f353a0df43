"""The same batch through each engine — this process, local worker processes, Ray's local
mode — gives the same files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_batch import CARTOON, _clip, _frames
from videoclips import audio_packets, video_timestamps

from plugin.batch import BatchSettings, plan_jobs, run_batch

# Lossless, so that equal restyling means equal pixels; one clip long enough to be split.
SETTINGS = BatchSettings(CARTOON, crf=0, preset="ultrafast", segment_frames=20)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("engines-in")
    _clip(folder / "short.mp4", frames=12, seed=6)
    _clip(folder / "long.mp4", frames=50, seed=7, photo="grace_hopper")
    return folder


@pytest.fixture(scope="module")
def in_process(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    jobs = plan_jobs([inputs], tmp_path_factory.mktemp("one"))
    summary = run_batch(jobs, SETTINGS)
    assert [c.segments for c in summary.clips] == [2, 1] and summary.done == 2
    return [job.output for job in jobs]


def _same_files(outputs: list[Path], reference: list[Path]) -> None:
    for output, expected in zip(outputs, reference, strict=True):
        assert output.name == expected.name
        assert video_timestamps(output) == video_timestamps(expected)
        assert audio_packets(output) == audio_packets(expected)
        for a, b in zip(_frames(output), _frames(expected), strict=True):
            assert np.array_equal(a, b)


def test_local_worker_processes_give_the_same_files(
    inputs: Path, in_process: list[Path], tmp_path: Path
) -> None:
    jobs = plan_jobs([inputs], tmp_path)
    summary = run_batch(jobs, SETTINGS, workers=2)
    assert summary.done == 2 and summary.failed == 0
    _same_files([job.output for job in jobs], in_process)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module: starting one takes several seconds."""
    ray = pytest.importorskip("ray", reason="needs Ray: pip install 'ray>=2.9'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_files(
    ray_local, inputs: Path, in_process: list[Path], tmp_path: Path
) -> None:
    jobs = plan_jobs([inputs], tmp_path)
    reports = []
    summary = run_batch(jobs, SETTINGS, engine="ray", progress=reports.append)
    assert summary.done == 2 and summary.failed == 0
    _same_files([job.output for job in jobs], in_process)
    # Progress came back from the Ray workers, not only the final summaries.
    assert any(report.summary is None and report.frames > 0 for report in reports)
    assert run_batch(jobs, SETTINGS, engine="ray").skipped == 2


def test_local_workers_refuse_cuda_on_a_machine_without_one_before_any_work(
    inputs: Path, tmp_path: Path
) -> None:
    import torch

    from pipeline.errors import DeviceError
    from plugin.settings import RestyleSettings

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    out = tmp_path / "out"
    settings = BatchSettings(RestyleSettings(style="cartoon", device="cuda"))
    # Once, in one line, not once a clip after planning and starting every worker.
    with pytest.raises(DeviceError, match=r"no CUDA device .* use --device cpu"):
        run_batch(plan_jobs([inputs], out), settings, workers=2)
    assert not out.exists()


def test_ray_refuses_cuda_on_a_cluster_without_gpus(
    ray_local, inputs: Path, tmp_path: Path
) -> None:
    from pipeline.errors import DeviceError
    from plugin.settings import RestyleSettings

    jobs = plan_jobs([inputs], tmp_path)
    settings = BatchSettings(RestyleSettings(style="cartoon", device="cuda"))
    with pytest.raises(DeviceError, match="no GPU"):
        run_batch(jobs, settings, engine="ray")
    assert [p.name for p in tmp_path.iterdir()] == []
