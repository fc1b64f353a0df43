"""Cutting a video at keyframes and joining the parts: the plan, the scan, the checks."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from videoclips import write_clip

from pipeline.errors import InputError
from pipeline.frame import Frame
from pipeline.segments import (
    Segment,
    VideoIndex,
    join_segments,
    plan_segments,
    scan_video,
    segment_frames,
)
from pipeline.sources.video import Keyframe, VideoFileSource


def _index(frames: int, keyframes: list[int]) -> VideoIndex:
    stamps = tuple(range(0, 40 * frames, 40))
    return VideoIndex(
        stamps, tuple(Keyframe(i, stamps[i]) for i in keyframes), Fraction(1, 1000), False
    )


# name → (frames, keyframes, length, overlap, align, expected (warm, start, stop) per segment)
PLANS = {
    "never split": (100, [0, 50], 0, 10, 1, [(0, 0, 100)]),
    "too short to split": (59, [0, 30], 30, 10, 1, [(0, 0, 59)]),
    "cut at keyframes only": (100, [0, 25, 45, 70], 30, 10, 1, [(0, 0, 45), (35, 45, 100)]),
    "a short tail joins the last": (
        100,
        [0, 30, 60, 90],
        30,
        10,
        1,
        [(0, 0, 30), (20, 30, 60), (50, 60, 100)],
    ),
    "warm-up on the detector's beat": (
        90,
        [0, 30, 60],
        30,
        12,
        10,
        [(0, 0, 30), (10, 30, 60), (40, 60, 90)],
    ),
    "warm-up stops at the start": (80, [0, 40], 40, 100, 1, [(0, 0, 40), (0, 40, 80)]),
    "no keyframe to cut at": (300, [0], 30, 10, 1, [(0, 0, 300)]),
}


@pytest.mark.parametrize("case", PLANS)
def test_plan(case: str) -> None:
    frames, keyframes, length, overlap, align, expected = PLANS[case]
    index = _index(frames, keyframes)
    segments = plan_segments(index, length, overlap=overlap, align=align)
    assert [(s.warm, s.start, s.stop) for s in segments] == expected
    assert [s.number for s in segments] == list(range(len(segments)))
    for segment in segments:
        # Decoding starts at the last keyframe at or before the warm-up.
        before = [k for k in index.keyframes if k.index <= segment.warm][-1]
        assert segment.seek == (before if before.index else None)


def test_bad_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="expected length >= 0"):
        plan_segments(_index(10, [0]), -1)


def test_scan_reads_every_timestamp_and_keyframe(tmp_path: Path) -> None:
    stamps = [0, 40, 90, 120, 200, 210, 260, 300, 340, 400, 460, 470]  # variable frame rate
    clip = write_clip(tmp_path / "vfr.mkv", len(stamps), pts=stamps, audio=True)
    index = scan_video(clip)
    assert index.frames == len(stamps) and index.has_audio
    assert [float(p * index.time_base) for p in index.pts] == [s / 1000 for s in stamps]
    assert index.keyframes[0] == Keyframe(0, index.pts[0])


def test_scan_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n" * 20)
    with pytest.raises(InputError, match="not a video"):
        scan_video(path)


def test_a_source_starts_at_a_keyframe_with_the_stream_s_indices_and_times(
    tmp_path: Path,
) -> None:
    from pipeline.samples import FacePath, Pose, write_moving_face_clip

    clip = tmp_path / "gop.mp4"
    write_moving_face_clip(
        clip,
        [FacePath("astronaut", lambda i: Pose(100, 80))],
        30,
        size=(160, 120),
        audio=False,
        keyframe_every=10,
    )
    index = scan_video(clip)
    assert [k.index for k in index.keyframes] == [0, 10, 20]
    with VideoFileSource(clip) as whole:
        everything = list(whole)
    with VideoFileSource(clip, start=index.keyframes[1]) as source:
        frames = list(segment_frames(source, Segment(1, index.keyframes[1], 12, 15, 25)))
    assert [f.index for f in frames] == list(range(12, 25))
    assert [(f.time, f.pts) for f in frames] == [(f.time, f.pts) for f in everything[12:25]]
    with pytest.raises(InputError, match="cannot be split"):
        VideoFileSource(clip, start=Keyframe(10, index.pts[10] + 1))


def test_join_refuses_parts_that_do_not_cover_the_video(tmp_path: Path) -> None:
    index = _index(20, [0, 10])
    part = write_clip(tmp_path / "part.mp4", 10)
    with pytest.raises(ValueError, match="cover every frame"):
        join_segments([part], [Segment(0, None, 0, 0, 10)], index, tmp_path / "out.mp4")
    segments = [Segment(0, None, 0, 0, 12), Segment(1, None, 2, 12, 20)]
    with pytest.raises(InputError, match="holds 10 frames, expected 12"):
        join_segments([part, part], segments, index, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["part.mp4"]


def test_frames_outside_a_segment_are_not_processed() -> None:
    import numpy as np

    frames = [Frame(np.zeros((2, 2, 3), np.uint8), i / 25, i) for i in range(10)]
    kept = list(segment_frames(iter(frames), Segment(0, None, 3, 5, 8)))
    assert [f.index for f in kept] == [3, 4, 5, 6, 7]
