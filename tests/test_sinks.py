"""File sink: frames, timestamps, size and audio survive a decode → encode round trip;
failures leave nothing under the final name."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from skimage import data
from videoclips import audio_packets, level, picture, video_timestamps, write_clip

from pipeline.errors import OutputError
from pipeline.frame import Frame
from pipeline.sinks.file import FileSink
from pipeline.sinks.memory import MemorySink
from pipeline.sinks.picture import video_frame
from pipeline.sources import open_source


def _copy(src: Path, dst: Path, **options: object) -> list[Frame]:
    """Decode ``src`` and encode every frame unchanged to ``dst``; return the input frames."""
    with open_source(src) as source:
        frames = []
        sink = FileSink.matching(
            dst, source, audio_from=src if source.has_audio else None, **options
        )
        with sink:
            for frame in source:
                frames.append(frame)
                sink.write(frame)
    return frames


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_round_trip_keeps_frames_timestamps_and_audio(tmp_path: Path, suffix: str) -> None:
    stamps = [0, 40, 80, 150, 160, 240, 400, 440, 480, 520]  # variable frame rate
    src = write_clip(tmp_path / f"in{suffix}", len(stamps), pts=stamps, audio=True)
    dst = tmp_path / f"out{suffix}"
    _copy(src, dst)
    assert video_timestamps(dst) == pytest.approx(video_timestamps(src), abs=1e-3)
    assert len(video_timestamps(dst)) == len(stamps)
    src_audio, dst_audio = audio_packets(src), audio_packets(dst)
    assert len(dst_audio) == len(src_audio) > 0
    assert [p for _, p in dst_audio] == [p for _, p in src_audio]  # bytes copied, not re-encoded
    assert [t for t, _ in dst_audio] == pytest.approx([t for t, _ in src_audio], abs=1e-3)
    assert not list(tmp_path.glob(".*part*")), "temporary file left behind"


def test_pixels_survive_within_codec_noise(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "in.mp4", 6)
    _copy(src, tmp_path / "out.mp4", crf=12)
    with open_source(tmp_path / "out.mp4") as source:
        for frame in source:
            expected = picture(frame.index, (64, 48)).astype(int)
            assert np.abs(frame.image.astype(int) - expected).mean() < 3
            assert abs(int(np.median(frame.image)) - level(frame.index)) <= 3


def test_odd_size_output_has_the_input_size(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "odd.mp4", 3, size=(63, 47))
    _copy(src, tmp_path / "out.mp4")
    with open_source(tmp_path / "out.mp4") as source:
        assert (source.width, source.height) == (63, 47)
        assert sum(1 for _ in source) == 3


def test_frames_without_pts_are_timed_by_fps(tmp_path: Path) -> None:
    dst = tmp_path / "out.mkv"
    with FileSink(dst, 32, 24, fps=10) as sink:
        for index in range(5):
            sink.write(Frame(picture(index, (32, 24)), index / 10, index))
    assert video_timestamps(dst) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-3)


def test_failure_mid_write_leaves_no_file(tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="stop here"), FileSink(dst, 32, 24) as sink:
        sink.write(Frame(picture(0, (32, 24)), 0.0, 0))
        raise RuntimeError("stop here")
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_size_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match="expected a 32x24 frame"), FileSink(dst, 32, 24) as sink:
        sink.write(Frame(picture(0, (64, 48)), 0.0, 0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda d: d / "missing" / "out.mp4", "does not exist"),
        (lambda d: _file(d / "plain") / "out.mp4", "does not exist"),
        (lambda d: d / "out.notacontainer", "cannot write"),
    ],
    ids=["missing folder", "parent is a file", "unknown suffix"],
)
def test_unwritable_output_is_an_output_error(tmp_path: Path, make, pattern: str) -> None:
    dst = make(tmp_path)
    with pytest.raises(OutputError, match=pattern) as caught:
        FileSink(dst, 32, 24)
    assert "\n" not in str(caught.value)
    assert not dst.exists()
    assert not list(tmp_path.glob(".*part*"))


def _file(path: Path) -> Path:
    path.write_text("a file, not a folder")
    return path


def test_memory_sink_keeps_frames_and_records_how_it_ended() -> None:
    frame = Frame(picture(0, (8, 8)), 0.0, 0)
    with MemorySink() as sink:
        sink.write(frame)
    assert sink.frames == [frame] and sink.closed and not sink.aborted
    with pytest.raises(KeyError), MemorySink() as failed:
        raise KeyError("x")
    assert failed.aborted and not failed.closed


def test_webm_is_encoded_vp9_and_refuses_audio_it_cannot_hold(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "in.mkv", 5, pts=[0, 40, 100, 140, 200])
    _copy(src, tmp_path / "out.webm")
    assert video_timestamps(tmp_path / "out.webm") == pytest.approx(video_timestamps(src), abs=1e-3)
    with_aac = write_clip(tmp_path / "aac.mkv", 5, audio=True)
    with pytest.raises(OutputError, match=r"cannot copy the input's aac audio.*\.mkv"):
        _copy(with_aac, tmp_path / "aac.webm")
    assert not (tmp_path / "aac.webm").exists()
    assert not list(tmp_path.glob(".*part*"))


def test_timestamps_that_do_not_increase_are_nudged_not_fatal(tmp_path: Path) -> None:
    dst = tmp_path / "out.mkv"
    with FileSink(dst, 32, 24, fps=10) as sink:
        for index, time in enumerate([0.0, 0.1, 0.1, 0.05, 0.3]):  # a damaged input's times
            sink.write(Frame(picture(index, (32, 24)), time, index))
    times = video_timestamps(dst)
    assert len(times) == 5 and times == sorted(times) and len(set(times)) == 5


def test_opencv_yuv_conversion_matches_the_encoders_own() -> None:
    # The file and stream sinks hand the encoder yuv420p made by OpenCV (much faster than
    # swscale from rgb24); decoded back it must be as close to the photo as PyAV's own.
    photo = data.astronaut()[:256, :192]
    ours = video_frame(photo, "yuv420p")
    theirs = av.VideoFrame.from_ndarray(photo, format="rgb24").reformat(format="yuv420p")
    assert ours.format.name == "yuv420p"
    ours_error, their_error = (
        np.abs(f.to_ndarray(format="rgb24").astype(int) - photo).mean() for f in (ours, theirs)
    )
    # OpenCV averages each 2x2 block's chroma, swscale filters it: a fifth of a level apart.
    assert ours_error < their_error + 0.5
    odd = video_frame(data.astronaut()[:255, :191], "yuv420p")
    assert odd.format.name == "rgb24"  # odd sides cannot halve: left to the encoder
