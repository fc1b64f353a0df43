"""A disk that fills up mid-render: one clear line, exit 1, nothing under the output name."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.samples import FacePath, Pose, write_moving_face_clip
from plugin.cli import main


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: room for the start of a video, not for all of it."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, tiny_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "in.mp4"
    write_moving_face_clip(clip, [FacePath("astronaut", lambda i: Pose(200 + 5 * i, 240))], 40)
    output = tiny_disk / "out.mp4"
    assert main(["render", str(clip), "-o", str(output), "--style", "cartoon", "--crf", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the disk is full" in err
    assert list(tiny_disk.iterdir()) == []
