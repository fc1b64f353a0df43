"""A sink that keeps every frame in a list: for tests and for hosts that want the frames."""

from __future__ import annotations

from pipeline.frame import Frame
from pipeline.sinks.base import Sink

__all__ = ["MemorySink"]


class MemorySink(Sink):
    """Collects frames in :attr:`frames`.

    Attributes:
        frames: every frame written, in order.
        closed: ``close()`` was called (the output finished cleanly).
        aborted: ``abort()`` was called (the job failed).
    """

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.closed = False
        self.aborted = False

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True
