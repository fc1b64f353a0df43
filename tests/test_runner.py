"""The threaded runner: order kept, progress reported, errors from any thread re-raised in
the caller, threads always joined; Ctrl-C during a render leaves no file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from videoclips import picture, write_clip

from pipeline.errors import InputError
from pipeline.frame import Frame
from pipeline.runner import Progress, run_pipeline
from pipeline.sinks.memory import MemorySink
from pipeline.sources import open_source
from plugin.api import render


def _frames(n: int) -> Iterator[Frame]:
    for index in range(n):
        yield Frame(picture(index, (16, 12)), index / 25, index)


def test_every_frame_arrives_in_order_with_progress() -> None:
    sink, steps = MemorySink(), []
    result = run_pipeline(
        _frames(40), lambda f: f, sink, total=40, progress=steps.append, queue_size=2
    )
    assert result.frames == 40 and [f.index for f in sink.frames] == list(range(40))
    assert [s.frames for s in steps] == list(range(1, 41))
    assert all(isinstance(s, Progress) and s.total == 40 and s.fps > 0 for s in steps)
    assert steps[-1].eta == 0
    assert set(result.timings.ms_per_frame()) == {"decode", "encode"}


def _failing_source(n: int) -> Iterator[Frame]:
    yield from _frames(n)
    raise InputError("source broke")


class _FailingSink(MemorySink):
    def write(self, frame: Frame) -> None:
        if frame.index == 5:
            raise OSError("disk full")
        super().write(frame)


def _failing_process(frame: Frame) -> Frame:
    if frame.index == 7:
        raise RuntimeError("stage broke")
    return frame


@pytest.mark.parametrize(
    ("source", "process", "sink", "error"),
    [
        (lambda: _failing_source(6), lambda f: f, MemorySink, InputError),
        (lambda: _frames(30), lambda f: f, _FailingSink, OSError),
        (lambda: _frames(30), _failing_process, MemorySink, RuntimeError),
    ],
    ids=["decode thread", "encode thread", "caller thread"],
)
def test_an_error_on_any_thread_reaches_the_caller(source, process, sink, error) -> None:
    before = threading.active_count()
    with pytest.raises(error):
        run_pipeline(source(), process, sink(), queue_size=2)
    assert threading.active_count() == before


def test_ctrl_c_during_a_render_removes_the_partial_file(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mkv", 30, audio=True)
    output = tmp_path / "out.mp4"

    def interrupt(step: Progress) -> None:
        if step.frames == 10:
            raise KeyboardInterrupt

    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        render(clip, output, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]
    assert threading.active_count() == before


def test_rotated_variable_rate_input_renders_upright_with_its_timing(tmp_path: Path) -> None:
    stamps = [0, 40, 50, 130, 170, 300]
    clip = write_clip(tmp_path / "phone.mov", len(stamps), pts=stamps, rotation=90)
    output = tmp_path / "out.mkv"
    render(clip, output)
    with open_source(output) as source:
        frames = list(source)
    assert (source.width, source.height) == (48, 64)  # turned upright, no metadata needed
    assert [f.time for f in frames] == pytest.approx([s / 1000 for s in stamps], abs=1e-3)
    with open_source(clip) as original:
        first = next(iter(original)).image
    assert abs(frames[0].image.astype(int) - first).mean() < 3
