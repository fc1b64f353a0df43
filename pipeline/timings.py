"""Wall-clock time spent per pipeline stage, for the benchmark and the render summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StageTimings"]


class StageTimings:
    """Accumulates seconds per named stage and counts frames.

    Stages running on different threads overlap in time, so their milliseconds add up to
    more than the wall time of a threaded run; each one is what that stage costs a frame.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.frames = 0

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        """Add the time spent inside the ``with`` block to ``stage``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def ms_per_frame(self) -> dict[str, float]:
        """Milliseconds per frame for every stage, in the order stages first ran."""
        frames = max(self.frames, 1)
        return {stage: 1000.0 * total / frames for stage, total in self.seconds.items()}

    def reset(self) -> None:
        self.seconds.clear()
        self.frames = 0
