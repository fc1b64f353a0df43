"""Sources: real clips written with PyAV read back frame for frame; bad input named clearly."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from videoclips import BLOCK, level, picture, write_clip, write_song

from pipeline.errors import InputError, InputNotFoundError
from pipeline.sources import ImageSource, VideoFileSource, open_source
from pipeline.sources.video import rotate_upright


def _read(spec: str | Path) -> tuple[object, list]:
    with open_source(spec) as source:
        return source, list(source)


def test_video_frames_keep_order_pts_and_size(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", 12)
    source, frames = _read(clip)
    assert isinstance(source, VideoFileSource)
    assert (source.width, source.height, source.frame_count) == (64, 48, 12)
    assert [f.index for f in frames] == list(range(12))
    # mp4 picks its own time base; the frames carry it with their pts.
    assert all(f.time_base == source.time_base for f in frames)
    assert [f.pts * f.time_base for f in frames] == [Fraction(40 * i, 1000) for i in range(12)]
    assert [f.time for f in frames] == pytest.approx([0.04 * i for i in range(12)])
    # Frame i is grey level(i): the decoder gave the frames back in presentation order.
    greys = [int(np.median(f.image[BLOCK:, BLOCK:])) for f in frames]
    assert all(abs(g - level(i)) <= 3 for i, g in enumerate(greys)), greys


def test_variable_frame_rate_keeps_each_frames_timestamp(tmp_path: Path) -> None:
    stamps = [0, 33, 40, 100, 117, 300, 301, 420]
    clip = write_clip(tmp_path / "vfr.mkv", len(stamps), pts=stamps)
    _, frames = _read(clip)
    assert [f.pts for f in frames] == stamps
    assert [f.time for f in frames] == pytest.approx([s / 1000 for s in stamps])


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_applied_to_pixels(tmp_path: Path, rotation: int) -> None:
    clip = write_clip(tmp_path / f"rot{rotation}.mp4", 3, rotation=rotation)
    source, frames = _read(clip)
    expected = rotate_upright(picture(0, (64, 48)), rotation)
    assert (source.height, source.width) == expected.shape[:2] == frames[0].image.shape[:2]
    # The white marker block ends up in the corner the rotation puts it in.
    white = frames[0].image.min(axis=2) > 200
    assert np.array_equal(white, expected.min(axis=2) > 200)


def test_rotate_upright_turns_counter_clockwise() -> None:
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, 2] = 255  # top-right
    turned = rotate_upright(image, 90)
    assert turned.shape == (3, 2, 3)
    assert turned[0, 0, 0] == 255  # top-right goes to top-left when turned counter-clockwise


def test_odd_size_is_kept(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "odd.mp4", 4, size=(63, 47))
    source, frames = _read(clip)
    assert (source.width, source.height) == (63, 47)
    assert frames[0].image.shape == (47, 63, 3)


def test_image_folder_glob_and_single_image(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    # Natural order: frame2 before frame10, whatever the listing order.
    for index in (10, 2, 1):
        cv2.imwrite(str(folder / f"frame{index}.png"), picture(index, (32, 24))[:, :, ::-1])
    (folder / "notes.txt").write_text("not an image")
    for spec in (folder, folder / "frame*.png"):
        source, frames = _read(spec)
        assert isinstance(source, ImageSource)
        assert [int(f.image[-1, -1, 0]) for f in frames] == [level(1), level(2), level(10)]
        assert [f.index for f in frames] == [0, 1, 2]
        assert frames[1].time == pytest.approx(1 / source.fps)
    _, frames = _read(folder / "frame2.png")
    assert len(frames) == 1 and frames[0].image.shape == (24, 32, 3)


def test_image_sequence_of_mixed_sizes_is_refused(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((24, 32, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((30, 32, 3), np.uint8))
    with pytest.raises(InputError, match="one size"):
        _read(tmp_path)


def _truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name(f"cut-{path.name}")
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


def _audio_only(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "tone.m4a", 10, audio=True, video=False)


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.mp4", InputNotFoundError, "no such file"),
    "missing pattern": (lambda d: d / "none*.png", InputNotFoundError, "no file matches"),
    "zero-length": (lambda d: _touch(d / "empty.mp4"), InputError, "empty"),
    "not a video": (lambda d: _text(d / "notes.mp4"), InputError, "not a video"),
    "audio only": (_audio_only, InputError, "audio only"),
    # Album art is a one-picture video stream: once taken for the video, "truncated".
    "mp3 with cover art": (lambda d: write_song(d / "song.mp3"), InputError, "audio only"),
    "m4a with cover art": (lambda d: write_song(d / "song.m4a"), InputError, "audio only"),
    "folder without images": (lambda d: d, InputError, "no image files"),
    # mp4 keeps its index at the end by default: cut, it no longer opens at all.
    "truncated mp4": (
        lambda d: _truncate(write_clip(d / "c.mp4", 20), 0.6),
        InputError,
        "damaged",
    ),
    # With the index first (faststart) the frame count is known and the shortfall caught.
    "truncated faststart mp4": (
        lambda d: _truncate(
            write_clip(d / "c.mp4", 20, container_options={"movflags": "+faststart"}), 0.6
        ),
        InputError,
        "truncated",
    ),
    # Matroska states the duration up front; a cut file ends early.
    "truncated mkv": (
        lambda d: _truncate(write_clip(d / "c.mkv", 20), 0.5),
        InputError,
        "truncated",
    ),
}


def _touch(path: Path) -> Path:
    path.touch()
    return path


def _text(path: Path) -> Path:
    path.write_text("hello, this is not a video\n" * 20)
    return path


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_clear_one_line_error(tmp_path: Path, case: str) -> None:
    make, error_type, pattern = BAD_INPUTS[case]
    spec = make(tmp_path)
    with pytest.raises(error_type, match=pattern) as caught:
        _read(spec)
    message = str(caught.value)
    assert ("\n" not in message and str(Path(spec).name) in message) or "pattern" in message


def test_truncated_file_decodes_a_prefix_before_failing(tmp_path: Path) -> None:
    # The frames before the cut are the real frames: nothing is invented or reordered.
    cut = _truncate(write_clip(tmp_path / "c.mkv", 40), 0.7)
    seen = []
    with pytest.raises(InputError), open_source(cut) as source:
        seen.extend(source)
    assert 0 < len(seen) < 40
    assert [f.index for f in seen] == list(range(len(seen)))


def test_av_reads_what_the_helper_wrote(tmp_path: Path) -> None:
    # Guard against the helper silently writing something else than asked.
    clip = write_clip(tmp_path / "r.mp4", 2, rotation=90)
    with av.open(str(clip)) as container:
        assert next(container.decode(video=0)).rotation == 90
