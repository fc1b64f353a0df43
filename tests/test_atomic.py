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
