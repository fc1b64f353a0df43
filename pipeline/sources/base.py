"""The small interface every frame source shares."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from fractions import Fraction

from pipeline.frame import Frame

__all__ = ["Source"]


class Source(abc.ABC):
    """An iterable of :class:`~pipeline.frame.Frame` that must be closed.

    Use as a context manager::

        with open_source("clip.mp4") as source:
            for frame in source:
                ...

    Attributes:
        width, height: frame size in pixels after rotation metadata is applied.
        fps: nominal frames per second (average rate for variable-frame-rate input).
        frame_count: number of frames if known in advance, else ``None``.
        time_base: unit of the frames' ``pts``, or ``None`` if frames carry none.
    """

    width: int
    height: int
    fps: float
    frame_count: int | None = None
    time_base: Fraction | None = None

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:  # noqa: B027 - sources without resources need not override
        """Release files or devices; safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
