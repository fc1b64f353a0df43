"""The small interface every frame sink shares."""

from __future__ import annotations

import abc

from pipeline.frame import Frame

__all__ = ["Sink"]


class Sink(abc.ABC):
    """Takes frames in order; ``close()`` finishes the output, ``abort()`` discards it.

    Use as a context manager: a clean exit calls :meth:`close`, an exception calls
    :meth:`abort`, so a failed job never leaves a half-written file under the final name::

        with FileSink("out.mp4", ...) as sink:
            for frame in frames:
                sink.write(frame)
    """

    @abc.abstractmethod
    def write(self, frame: Frame) -> None:
        """Send one frame."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and finish the output (for files: rename to the final name)."""

    def abort(self) -> None:
        """Stop and discard partial output; the default just closes."""
        self.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
