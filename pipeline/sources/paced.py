"""A video file played at real time: a camera stand-in for tests, benchmarks and demos.

A camera hands out frames when they happen, whatever the reader is doing; a file decoder hands
them out as fast as it is asked. This source sleeps until each frame is due, so the live
runner sees the same pressure as from a camera, and stamps frames the way a camera source does
(seconds since opening, a running index, no ``pts``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2

from pipeline.frame import Frame
from pipeline.sources.base import Source
from pipeline.sources.video import VideoFileSource

__all__ = ["PacedSource"]


class PacedSource(Source):
    """Frames of a video file, each released at its presentation time.

    Args:
        path: the video file.
        loop: start again from the beginning at the end of the file, until closed.
        speed: playback rate; 2.0 releases frames twice as fast as recorded.
        max_frames: stop after this many frames (``None``: the file's length, or forever when
            looping).
        size: ``(width, height)`` to resize frames to, as a camera asked for a size would
            deliver; ``None`` keeps the file's size.

    Raises:
        InputNotFoundError, InputError: as :class:`~pipeline.sources.video.VideoFileSource`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        loop: bool = False,
        speed: float = 1.0,
        max_frames: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"PacedSource: expected speed > 0, got {speed}")
        self.path = Path(path)
        self.loop = loop
        self.speed = speed
        self.max_frames = max_frames
        self._file = VideoFileSource(self.path)
        self.width, self.height = size or (self._file.width, self._file.height)
        self.fps = self._file.fps
        self.frame_count = None if loop else self._file.frame_count
        if max_frames is not None:
            self.frame_count = min(self.frame_count or max_frames, max_frames)
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index = 0
        offset = 0.0  # seconds of the file already played in earlier loops
        while not self._closed.is_set():
            first: float | None = None
            played = 0.0
            for frame in self._file:
                if self.max_frames is not None and index >= self.max_frames:
                    return
                first = frame.time if first is None else first
                played = frame.time - first + 1.0 / self.fps
                due = start + (offset + frame.time - first) / self.speed
                # Waiting on the close event rather than sleeping lets close() end a pause.
                if self._closed.wait(max(0.0, due - time.monotonic())):
                    return
                image = frame.image
                if (frame.width, frame.height) != (self.width, self.height):
                    image = cv2.resize(
                        image, (self.width, self.height), interpolation=cv2.INTER_AREA
                    )
                yield Frame(image, time.monotonic() - start, index)
                index += 1
            if not self.loop or index == 0:
                return
            offset += played
            self._file.close()
            self._file = VideoFileSource(self.path)

    def close(self) -> None:
        self._closed.set()
        self._file.close()
