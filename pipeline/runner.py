"""Run source → process → sink with decoding, processing and encoding overlapped.

Decoding and encoding run on their own threads, joined to the processing (on the caller's
thread, so Ctrl-C lands where it can stop everything) by bounded queues; an end marker closes
each queue. PyAV, OpenCV, dlib and torch release the GIL while they work, so the three stages
really do overlap on a multi-core machine. Threads are always stopped and joined in
``finally``, and an error raised on any thread is re-raised in the caller.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.frame import Frame
from pipeline.sinks.base import Sink
from pipeline.timings import StageTimings

__all__ = ["Progress", "RunResult", "run_pipeline"]

_END = object()
_POLL = 0.1  # seconds between checks whether another thread has failed


@dataclass(frozen=True)
class Progress:
    """How far a run is, reported after every processed frame.

    Attributes:
        frames: frames processed so far.
        total: frames expected in all, if the source knows.
        fps: mean frames per second since the run started.
        eta: seconds left at that rate, if ``total`` is known.
    """

    frames: int
    total: int | None
    fps: float
    eta: float | None


@dataclass(frozen=True)
class RunResult:
    """What a run did.

    Attributes:
        frames: frames written to the sink.
        seconds: wall time of the whole run.
        timings: seconds spent decoding (``"decode"``) and encoding (``"encode"``) per frame.
    """

    frames: int
    seconds: float
    timings: StageTimings

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Stop(Exception):
    """Raised inside a worker when the run is being torn down."""


class _Worker(threading.Thread):
    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=f"facestyle-{name}", daemon=True)
        self._target_fn = target
        self._stop_event = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except _Stop:
            pass
        except BaseException as error:  # re-raised in the caller's thread
            self.error = error
            self._stop_event.set()


def _put(items: queue.Queue, item: object, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            items.put(item, timeout=_POLL)
            return
        except queue.Full:
            continue


def _get(items: queue.Queue, stop: threading.Event) -> object:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return items.get(timeout=_POLL)
        except queue.Empty:
            continue


def run_pipeline(
    source: Iterable[Frame],
    process: Callable[[Frame], Frame],
    sink: Sink,
    *,
    total: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    queue_size: int = 8,
) -> RunResult:
    """Decode every frame of ``source``, pass it through ``process``, write it to ``sink``.

    The sink is neither closed nor aborted here: the caller owns it (``with sink: ...``), so
    a failed run leaves the caller's context manager to discard the partial output.

    Args:
        source: frames in order (a :class:`~pipeline.sources.base.Source`).
        process: the per-frame work, e.g. :meth:`pipeline.restyle.Restyler.process`.
        sink: where processed frames go.
        total: frames expected, for the progress ETA.
        progress: called on the caller's thread after each processed frame.
        queue_size: frames buffered between stages; bounds memory.

    Raises:
        Whatever the source, ``process`` or the sink raised, on whichever thread.
    """
    timings = StageTimings()
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(queue_size)
    processed: queue.Queue = queue.Queue(queue_size)
    written = 0

    def decode() -> None:
        frames = iter(source)
        while True:
            with timings.measure("decode"):
                frame = next(frames, _END)
            _put(decoded, frame, stop)
            if frame is _END:
                return

    def encode() -> None:
        nonlocal written
        while (frame := _get(processed, stop)) is not _END:
            with timings.measure("encode"):
                sink.write(frame)
            written += 1

    workers = [_Worker("decode", decode, stop), _Worker("encode", encode, stop)]
    start = time.perf_counter()
    try:
        for worker in workers:
            worker.start()
        count = 0
        while (frame := _get(decoded, stop)) is not _END:
            _put(processed, process(frame), stop)
            count += 1
            if progress is not None:
                elapsed = time.perf_counter() - start
                fps = count / elapsed if elapsed > 0 else 0.0
                eta = (total - count) / fps if total and fps > 0 else None
                progress(Progress(count, total, fps, eta))
        _put(processed, _END, stop)
        workers[1].join()
    except _Stop:
        pass  # a worker failed; its error is raised below
    finally:
        stop.set()
        for worker in workers:
            if worker.is_alive():
                worker.join()
    for worker in workers:
        if worker.error is not None:
            raise worker.error
    timings.frames = written
    return RunResult(written, time.perf_counter() - start, timings)
