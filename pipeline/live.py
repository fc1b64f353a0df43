"""The threaded live runner: capture, process and output overlap, latency stays bounded.

Threads joined by small queues, one thread per processing stage (one or more)::

    source ──► [capture] ──► LatestQueue ──► [stage 1] ──► … ──► LatestQueue ──► [output] ──► sinks

Splitting the per-frame work into stages (e.g. ``Restyler.analyse`` then ``Restyler.render``)
lets one frame be stylized while the next is tracked: the frame rate then follows the slowest
stage rather than their sum, on a machine with a core to spare.

The queues keep the *newest* frames: when a stage cannot keep up, the oldest waiting frame is
dropped (and counted) instead of waiting, so the delay between a frame being captured and it
leaving stays about one processing time however slow the machine is. That is what a camera
user wants; a renderer of files wants every frame and does not use this module.

Shutdown is an end marker passed down the queues plus joins in ``finally``: the source ending,
:meth:`LiveRunner.stop` (Ctrl-C, a signal, a control endpoint) and an error in any thread all
stop every thread; an error is re-raised from :meth:`LiveRunner.run` in the caller's thread.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import numpy as np

from pipeline.frame import Frame
from pipeline.sinks.base import Sink

__all__ = ["LatestQueue", "LiveRunner", "LiveStats", "LiveSummary"]

T = TypeVar("T")

# How long the capture thread may take to notice a stop: a source blocked in a device read
# returns within a frame or two; past this the thread is left (it is a daemon) and the
# caller's closing of the source ends it.
_CAPTURE_JOIN_SECONDS = 5.0
# How often run()'s thread looks whether it was asked to stop.
_POLL_SECONDS = 0.1


class LatestQueue(Generic[T]):
    """A bounded FIFO that drops its oldest item to make room, so ``put`` never blocks.

    ``close()`` is the end marker: once the items already queued are taken, ``get`` returns
    ``None``. Safe to use from any number of threads.

    Attributes:
        maxsize: most items held at once.
        dropped: items discarded so far because a newer one arrived while full.
        high_water: most items ever held at once (never more than ``maxsize``).
    """

    def __init__(self, maxsize: int = 1) -> None:
        if maxsize < 1:
            raise ValueError(f"LatestQueue: expected maxsize >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.dropped = 0
        self.high_water = 0
        self._items: collections.deque[T] = collections.deque()
        self._closed = False
        self._ready = threading.Condition()

    def put(self, item: T) -> bool:
        """Queue ``item``, dropping the oldest if full; ``False`` (item discarded) once closed."""
        with self._ready:
            if self._closed:
                return False
            if len(self._items) == self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._ready.notify()
            return True

    def get(self) -> T | None:
        """The oldest item, waiting for one; ``None`` once closed and empty."""
        with self._ready:
            while not self._items and not self._closed:
                self._ready.wait()
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)


@dataclass(frozen=True)
class LiveStats:
    """A snapshot of a running (or finished) live session.

    Attributes:
        captured: frames read from the source.
        written: frames that reached every sink.
        dropped: frames discarded because a later stage was busy (stale frames).
        elapsed: seconds since the runner started.
        fps: output frames per second over the last couple of seconds.
        latency_p50, latency_p95: added latency in seconds, from the moment a frame was
            captured to the moment every sink had it, over the same window; NaN before the
            first frame.
    """

    captured: int
    written: int
    dropped: int
    elapsed: float
    fps: float
    latency_p50: float
    latency_p95: float

    def line(self) -> str:
        """One short status line, e.g. ``29.8 fps  latency p50 41 ms  p95 55 ms  dropped 3``."""
        p50, p95 = (
            "  --" if np.isnan(value) else f"{value * 1000:4.0f}"
            for value in (self.latency_p50, self.latency_p95)
        )
        return f"{self.fps:5.1f} fps  latency p50 {p50} ms  p95 {p95} ms  dropped {self.dropped}"


@dataclass(frozen=True)
class LiveSummary:
    """What a finished live session did, with per-frame timings for benchmarks.

    Attributes:
        stats: the totals, with fps and latency over the whole session.
        output_times: ``(N,)`` ``float64`` seconds since start at which each written frame
            left, in order.
        latencies: ``(N,)`` ``float64`` added latency in seconds of each written frame.
        indices: ``(N,)`` ``int64`` the source ``Frame.index`` of each written frame.
        interrupted: stopped by :meth:`LiveRunner.stop` or Ctrl-C rather than by the source
            ending.
    """

    stats: LiveStats
    output_times: np.ndarray
    latencies: np.ndarray
    indices: np.ndarray
    interrupted: bool


@dataclass(frozen=True)
class _Item:
    """What travels between threads: a frame or a stage's partial result, and when the
    frame it came from was captured."""

    value: Any
    captured_at: float


class LiveRunner:
    """Runs ``source → process → sinks`` on threads, dropping stale frames.

    Args:
        source: frames as they happen (a camera, a paced file); iterated on the capture
            thread. The caller opens and closes it.
        process: the per-frame work, e.g. ``Restyler.process``, called on its own thread one
            frame at a time (so it need not be thread-safe); or a sequence of stages, each on
            its own thread, the first taking the :class:`Frame`, each next one the previous
            one's result, the last returning a :class:`Frame` (e.g. ``(restyler.analyse,
            restyler.render)``).
        sinks: where output frames go, written in order on the output thread. The caller opens
            and closes them (a ``with`` block aborts them when :meth:`run` raises).
        queue_size: frames each queue may hold; 1 gives the lowest latency.
        on_status: called from :meth:`run`'s thread every ``status_interval`` seconds with a
            :class:`LiveStats`, e.g. to refresh a status line.
        status_interval: seconds between status calls.
        clock: monotonic seconds; replaceable for tests that need a fixed time base.
    """

    def __init__(
        self,
        source: Iterable[Frame],
        process: Callable[[Frame], Frame] | Sequence[Callable[[Any], Any]],
        sinks: Sequence[Sink],
        *,
        queue_size: int = 1,
        on_status: Callable[[LiveStats], None] | None = None,
        status_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.stages: list[Callable[[Any], Any]] = [process] if callable(process) else list(process)
        if not self.stages:
            raise ValueError("LiveRunner: expected at least one processing stage")
        self.sinks = list(sinks)
        self.queue_size = queue_size
        self.on_status = on_status
        self.status_interval = status_interval
        self._clock = clock
        # A plain flag, not an Event: stop() must take no lock (see its docstring).
        self._stopping = False
        self.reset()

    def reset(self) -> None:
        """Forget the previous session's queues, counters and error."""
        # queues[0] feeds the first stage; queues[-1] feeds the output thread.
        self.queues: list[LatestQueue[_Item]] = [
            LatestQueue(self.queue_size) for _ in range(len(self.stages) + 1)
        ]
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._captured = 0
        self._start = self._clock()
        # (seconds since start, added latency, source index) per written frame; one list so
        # that a snapshot taken from another thread is consistent.
        self._written: list[tuple[float, float, int]] = []

    @property
    def captured_queue(self) -> LatestQueue[_Item]:
        """Frames waiting for the first stage."""
        return self.queues[0]

    @property
    def processed_queue(self) -> LatestQueue[_Item]:
        """Frames waiting for the sinks."""
        return self.queues[-1]

    def stop(self) -> None:
        """Ask every thread to finish; safe from any thread and from signal handlers.

        It only sets a flag: a signal handler runs on the main thread in between any two
        steps of the code it interrupts, so a handler that took a lock (``Event.set`` does)
        would deadlock if it interrupted that same lock's holder. :meth:`run` notices within
        a tenth of a second. A stop asked for before :meth:`run` (e.g. while models load)
        makes the next run return at once."""
        self._stopping = True

    def run(self) -> LiveSummary:
        """Run until the source ends, :meth:`stop` is called, Ctrl-C, or a thread fails.

        Ctrl-C is a normal way to end a live session: it stops the threads and returns the
        summary (``interrupted`` set), so the caller's sinks close cleanly and a recording is
        kept.

        Raises:
            Exception: the first error raised by the source, ``process`` or a sink.
        """
        self.reset()
        bodies = [
            ("facestyle-capture", self._capture),
            *((f"facestyle-stage-{i}", partial(self._stage, i)) for i in range(len(self.stages))),
            ("facestyle-output", self._output),
        ]
        threads = [
            threading.Thread(target=self._guard, args=(body,), name=name, daemon=True)
            for name, body in bodies
        ]
        capture, *downstream = threads
        for thread in threads:
            thread.start()
        interrupted = False
        next_status = self._clock() + self.status_interval
        try:
            while downstream[-1].is_alive() and not self._stopping:
                downstream[-1].join(_POLL_SECONDS)
                if self.on_status is not None and self._clock() >= next_status:
                    next_status += self.status_interval
                    self.on_status(self.stats())
        except KeyboardInterrupt:
            interrupted = True
        finally:
            interrupted = interrupted or (self._stopping and self._error is None)
            self._stopping = True
            # Unblock a capture thread waiting to put and stages waiting to get.
            self._close_queues()
            for thread in downstream:
                thread.join()
            capture.join(_CAPTURE_JOIN_SECONDS)
            self._stopping = False
        if self._error is not None:
            raise self._error
        written = np.asarray(self._written, np.float64).reshape(-1, 3)
        elapsed = self._clock() - self._start
        return LiveSummary(
            stats=self._stats(elapsed, len(written) / elapsed, written[:, 1], len(written)),
            output_times=written[:, 0],
            latencies=written[:, 1],
            indices=written[:, 2].astype(np.int64),
            interrupted=interrupted,
        )

    def stats(self, window: float = 2.0) -> LiveStats:
        """Totals so far, with fps and latency over the last ``window`` seconds."""
        count = len(self._written)
        recent = np.asarray(self._written[-512:], np.float64).reshape(-1, 3)
        now = self._clock() - self._start
        recent = recent[recent[:, 0] >= now - window]
        span = min(window, now)
        fps = len(recent) / span if span > 0 else 0.0
        return self._stats(now, fps, recent[:, 1], count)

    def _stats(self, elapsed: float, fps: float, latencies: np.ndarray, written: int) -> LiveStats:
        p50, p95 = np.percentile(latencies, [50, 95]) if latencies.size else (np.nan, np.nan)
        return LiveStats(
            captured=self._captured,
            written=written,
            dropped=sum(queue.dropped for queue in self.queues),
            elapsed=float(elapsed),
            fps=float(fps),
            latency_p50=float(p50),
            latency_p95=float(p95),
        )

    def _guard(self, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as error:
            with self._error_lock:
                if self._error is None:
                    self._error = error
            self._stopping = True
            self._close_queues()

    def _close_queues(self) -> None:
        for queue in self.queues:
            queue.close()

    def _capture(self) -> None:
        try:
            for frame in self.source:
                if self._stopping:
                    break
                if not self.captured_queue.put(_Item(frame, self._clock())):
                    break
                self._captured += 1
        finally:
            self.captured_queue.close()

    def _stage(self, index: int) -> None:
        stage, inbox, outbox = self.stages[index], self.queues[index], self.queues[index + 1]
        try:
            while (item := inbox.get()) is not None and self._error is None:
                outbox.put(_Item(stage(item.value), item.captured_at))
        finally:
            outbox.close()

    def _output(self) -> None:
        while (item := self.processed_queue.get()) is not None and self._error is None:
            for sink in self.sinks:
                sink.write(item.value)
            now = self._clock()
            self._written.append((now - self._start, now - item.captured_at, item.value.index))
