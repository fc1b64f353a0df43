"""Helpers shared by the live tests: a small generated clip and a sink that keeps frames."""

from __future__ import annotations

from pathlib import Path

from pipeline.frame import Frame
from pipeline.samples import FacePath, Pose, write_moving_face_clip
from pipeline.sinks.base import Sink


def write_small_clip(
    path: Path, n_frames: int = 30, size: tuple[int, int] = (320, 240), scale: float = 0.4
) -> Path:
    """A 30 fps H.264 clip of one public-domain face drifting right, without audio.

    At the default ``scale`` the face is too small for the detector (fast tests of the
    plumbing); ``scale=1.0`` gives a face of about 90 px that is found and restyled.
    """
    width, height = size
    face = FacePath("astronaut", lambda i: Pose(width * 0.4 + i, height * 0.5, scale=scale))
    write_moving_face_clip(path, [face], n_frames, size=size, fps=30, audio=False)
    return path


class ListSink(Sink):
    """Keeps every frame written, in order; ``fail_at`` makes the n-th write raise."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.frames: list[Frame] = []
        self.fail_at = fail_at
        self.closed = False

    def write(self, frame: Frame) -> None:
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise OSError("disk full (test sink)")
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True
