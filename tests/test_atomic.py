"""Outputs appear under their final name only when finished, with ordinary permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.atomic import partial_path, publish
from pipeline.frame import Frame
from pipeline.sinks.file import FileSink


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_partial_file_is_hidden_beside_the_final_and_keeps_its_suffix(tmp_path: Path) -> None:
    partial = partial_path(tmp_path / "out.mp4")
    assert partial.parent == tmp_path and partial.name.startswith(".out.")
    assert partial.suffix == ".mp4" and partial.exists()


def test_published_files_get_umask_permissions(tmp_path: Path, umask_022: None) -> None:
    final = tmp_path / "pack.safetensors"
    partial = partial_path(final)
    partial.write_bytes(b"data")
    publish(partial, final)
    assert not partial.exists() and final.read_bytes() == b"data"
    assert stat.S_IMODE(final.stat().st_mode) == 0o644


def test_a_rendered_video_is_readable_by_others(tmp_path: Path, umask_022: None) -> None:
    final = tmp_path / "clip.mp4"
    with FileSink(final, 32, 24, fps=10) as sink:
        for index in range(3):
            sink.write(Frame(np.full((24, 32, 3), 40 * index, np.uint8), index / 10, index))
    assert stat.S_IMODE(final.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_images_round_trip_and_unknown_types_leave_nothing(
    tmp_path: Path, grace_hopper: np.ndarray
) -> None:
    from pipeline.atomic import write_image
    from pipeline.errors import OutputError

    path = write_image(tmp_path / "sub" / "face.png", grace_hopper)
    assert np.array_equal(cv2.imread(str(path))[:, :, ::-1], grace_hopper)
    with pytest.raises(OutputError, match="unknown image type"):
        write_image(tmp_path / "face.notanimage", grace_hopper)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["face.png", "sub"]


def _ctrl_c_once_made(monkeypatch: pytest.MonkeyPatch, module: object) -> None:
    """``module.partial_path`` makes the file, then Ctrl-C lands before its name is
    returned: the moment a render stopped as it began once left a partial file behind."""
    made = partial_path

    def interrupted(final: Path, claim=None) -> Path:
        made(final, claim=claim)
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "partial_path", interrupted)


def test_ctrl_c_as_the_partial_file_is_made_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.atomic as atomic
    from pipeline.sinks.ffmpeg import FfmpegSink

    _ctrl_c_once_made(monkeypatch, atomic)  # both video sinks make it through there too
    with pytest.raises(KeyboardInterrupt):
        FileSink(tmp_path / "clip.mp4", 32, 24, fps=10)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        FfmpegSink(tmp_path / "clip.mp4", 32, 24, fps=10, codec="libx264")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomically(tmp_path / "pack.safetensors", b"data")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_partial_file_is_created_deletes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed: list[Path] = []
    close = os.close

    def close_then_ctrl_c(fd: int) -> None:
        close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr("pipeline.atomic.os.close", close_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        partial_path(tmp_path / "out.mp4", claim=claimed.append)
    # The name was handed over before the file existed; the file itself is gone.
    assert len(claimed) == 1 and claimed[0].parent == tmp_path
    assert list(tmp_path.iterdir()) == []
