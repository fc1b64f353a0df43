"""The threaded runner with the file policy: every frame kept in order, progress reported,
errors from any thread re-raised in the caller, threads always joined; Ctrl-C during a render
leaves no file. (The live policy is tested in test_live.py.)"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from videoclips import picture, write_clip

from pipeline.errors import InputError
from pipeline.frame import Frame
from pipeline.runner import Progress, Runner, RunStats, StageQueue
from pipeline.sinks.memory import MemorySink
from pipeline.sources import open_source
from plugin.api import render


def _frames(n: int) -> Iterator[Frame]:
    for index in range(n):
        yield Frame(picture(index, (16, 12)), index / 25, index)


def test_every_frame_arrives_in_order_with_progress() -> None:
    sink, steps = MemorySink(), []
    runner = Runner(_frames(40), lambda f: f, [sink], queue_size=2, on_status=steps.append)
    summary = runner.run()
    assert summary.frames == 40 and [f.index for f in sink.frames] == list(range(40))
    assert summary.stats.dropped == 0 and list(summary.indices) == list(range(40))
    # The last report comes when the source has ended: a progress bar ends full.
    assert steps and steps[-1].written == 40
    progress = Progress.of(steps[-1], total=40)
    assert isinstance(steps[-1], RunStats) and progress.fps > 0 and progress.eta == 0
    assert set(summary.timings.ms_per_frame()) == {"decode", "encode"}


def test_slow_stages_make_the_source_wait_and_drop_nothing() -> None:
    def slow(frame: Frame) -> Frame:
        time.sleep(0.01)
        return frame

    sink = MemorySink()
    runner = Runner(_frames(30), (slow, slow), [sink], queue_size=1)
    summary = runner.run()
    assert [f.index for f in sink.frames] == list(range(30))
    assert summary.stats.dropped == 0 and summary.stats.captured == 30
    assert all(queue.high_water == 1 for queue in runner.queues)


def test_a_full_blocking_queue_waits_for_room_and_close_releases_it() -> None:
    queue: StageQueue[int] = StageQueue(1, keep_newest=False)
    assert queue.put(1)
    results: list[bool] = []
    waiting = threading.Thread(target=lambda: results.append(queue.put(2)))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and len(queue) == 1  # it waits rather than drop 1
    assert queue.get() == 1
    waiting.join(5)
    assert results == [True] and queue.get() == 2
    assert queue.put(3)
    stuck = threading.Thread(target=lambda: results.append(queue.put(4)))
    stuck.start()
    queue.close()
    stuck.join(5)
    assert results == [True, False] and queue.dropped == 0


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
    ids=["capture thread", "output thread", "stage thread"],
)
def test_an_error_on_any_thread_reaches_the_caller(source, process, sink, error) -> None:
    before = threading.active_count()
    with pytest.raises(error):
        Runner(source(), process, [sink()], queue_size=2).run()
    assert threading.active_count() == before


def test_ctrl_c_during_a_render_removes_the_partial_file(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mkv", 30, audio=True)
    output = tmp_path / "out.mp4"

    def interrupt(step: Progress) -> None:
        if step.frames >= 1:  # the first report, during the run or at its end
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


def test_ctrl_c_stops_every_thread_and_says_the_run_was_interrupted() -> None:
    def endless() -> Iterator[Frame]:
        index = 0
        while True:
            yield Frame(picture(index, (16, 12)), index / 25, index)
            index += 1

    def ctrl_c(stats: RunStats) -> None:
        if stats.written >= 5:
            raise KeyboardInterrupt

    before = threading.active_count()
    summary = Runner(endless(), lambda f: f, [MemorySink()], on_status=ctrl_c).run()
    assert summary.interrupted and summary.frames >= 5
    assert threading.active_count() == before


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs Python's own SIGINT handler (what a command line has)",
)
def test_ctrl_c_while_the_threads_start_still_joins_every_one() -> None:
    # A real SIGINT as the capture thread begins lands while run() is still starting the
    # others; a KeyboardInterrupt raised there once skipped the joins, leaving threads inside
    # FFmpeg and dlib as the interpreter exited (SIGABRT, SIGSEGV).
    def interrupted_at_once() -> Iterator[Frame]:
        signal.raise_signal(signal.SIGINT)
        yield from _frames(10_000)

    before = threading.active_count()
    stages = [lambda f: f, lambda f: f, lambda f: f]
    try:
        summary = Runner(interrupted_at_once(), stages, [MemorySink()]).run()
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped run() before its threads were joined")
    assert summary.interrupted
    assert threading.active_count() == before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
