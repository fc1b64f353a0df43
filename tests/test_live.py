"""The threaded live runner, driven by a file paced at real time standing in for a camera."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from live_support import ListSink, write_small_clip

from pipeline.frame import Frame
from pipeline.live import LatestQueue, LiveRunner, LiveStats
from pipeline.sources.paced import PacedSource
from pipeline.sources.video import VideoFileSource

N_FRAMES = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_clip(tmp_path_factory.mktemp("live") / "clip.mp4", N_FRAMES)


def _live_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("facestyle-")]


def test_latest_queue_keeps_newest_in_order_and_counts_drops() -> None:
    queue: LatestQueue[int] = LatestQueue(2)
    for item in range(5):
        assert queue.put(item)
    assert (queue.dropped, queue.high_water, len(queue)) == (3, 2, 2)
    queue.close()
    assert not queue.put(99)
    assert [queue.get(), queue.get(), queue.get()] == [3, 4, None]


def test_latest_queue_rejects_zero_size() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        LatestQueue(0)


def test_paced_source_releases_frames_at_their_time(clip: Path) -> None:
    with PacedSource(clip, speed=2.0) as source:
        start = time.monotonic()
        frames = list(source)
        took = time.monotonic() - start
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert all(f.pts is None for f in frames)
    # At double speed the last frame is due at (N-1)/30/2 s: it cannot come out earlier.
    assert took >= (N_FRAMES - 1) / 30 / 2
    assert np.all(np.diff([f.time for f in frames]) > 0)


def test_paced_source_loops_with_running_index(clip: Path) -> None:
    with PacedSource(clip, loop=True, speed=8.0, max_frames=N_FRAMES + 5) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(N_FRAMES + 5))
    assert np.array_equal(frames[N_FRAMES].image, frames[0].image)


def test_frames_leave_in_order_and_all_are_accounted_for(clip: Path) -> None:
    sink = ListSink()
    statuses: list[LiveStats] = []
    with PacedSource(clip) as source:
        runner = LiveRunner(
            source,
            lambda f: f.with_image(255 - f.image),
            [sink],
            on_status=statuses.append,
            status_interval=0.1,
        )
        summary = runner.run()
    indices = [f.index for f in sink.frames]
    assert indices == sorted(set(indices))
    assert summary.stats.captured == N_FRAMES
    assert summary.stats.written + summary.stats.dropped == N_FRAMES
    assert list(summary.indices) == indices
    assert not summary.interrupted
    assert summary.latencies.shape == (len(indices),) and np.all(summary.latencies > 0)
    # What left is the stage's output for that very frame.
    with VideoFileSource(clip) as source:
        originals = [f.image for f in source]
    for frame in sink.frames:
        assert np.array_equal(frame.image, 255 - originals[frame.index])
    assert statuses and "fps" in statuses[-1].line()
    assert _live_threads() == []


def test_slow_stage_drops_stale_frames_and_queues_stay_bounded(clip: Path) -> None:
    def slow(frame: Frame) -> Frame:
        time.sleep(0.1)  # three frame intervals at 30 fps
        return frame

    sink = ListSink()
    with PacedSource(clip) as source:
        runner = LiveRunner(source, slow, [sink], queue_size=1)
        summary = runner.run()
    stats = summary.stats
    assert stats.captured == N_FRAMES
    assert stats.dropped > 0
    assert stats.written + stats.dropped == N_FRAMES
    assert runner.captured_queue.high_water == 1 and runner.processed_queue.high_water == 1
    indices = [f.index for f in sink.frames]
    assert indices == sorted(set(indices)) and len(indices) < N_FRAMES
    # The newest frames are kept: the source's last frame is always shown.
    assert indices[-1] == N_FRAMES - 1


@pytest.mark.parametrize("where", ["process", "sink"])
def test_an_error_in_any_thread_stops_all_and_is_reraised(clip: Path, where: str) -> None:
    def stage(frame: Frame) -> Frame:
        if where == "process" and frame.index == 3:
            raise ValueError("stage broke on frame 3")
        return frame

    sink = ListSink(fail_at=2 if where == "sink" else None)
    expected = ValueError if where == "process" else OSError
    with PacedSource(clip, loop=True) as source:
        runner = LiveRunner(source, stage, [sink])
        with pytest.raises(expected):
            runner.run()
    assert len(sink.frames) <= 3
    assert _live_threads() == []


def test_stop_from_another_thread_ends_an_endless_source(clip: Path) -> None:
    sink = ListSink()
    with PacedSource(clip, loop=True) as source:
        runner = LiveRunner(source, lambda f: f, [sink])
        timer = threading.Timer(0.4, runner.stop)
        timer.start()
        summary = runner.run()
        timer.join()
    assert summary.interrupted
    assert 0 < summary.stats.written <= summary.stats.captured
    assert _live_threads() == []
