"""The one threaded runner: source → stages → sinks, for files and for live sources alike.

Threads joined by bounded queues, one thread per processing stage (one or more)::

    source ──► [capture] ──► queue ──► [stage 1] ──► … ──► queue ──► [output] ──► sinks

PyAV, OpenCV, dlib and torch release the GIL while they work, so the threads really overlap
on a multi-core machine. Splitting the per-frame work into stages (``Restyler.analyse``:
track and align, then ``Restyler.render``: stylize and composite) lets one frame be stylized
while the next is tracked, so the frame rate follows the slowest stage rather than their sum.

What differs between a file and a camera is one setting, the queue ``policy``:

- ``"block"`` (files): a full queue makes the stage before it wait; every frame arrives, in
  order. Stopping early (Ctrl-C, :meth:`Runner.stop`) is a failed render for the caller.
- ``"newest"`` (live): a full queue drops its *oldest* frame (counted) instead of waiting,
  so the delay between a frame being captured and it leaving stays about one processing
  time however slow the machine is. Stopping is the normal end of a session.

Shutdown is an end marker passed down the queues plus joins in ``finally``: the source ending,
:meth:`Runner.stop` (Ctrl-C, a signal, a control endpoint) and an error in any thread all
stop every thread; an error is re-raised from :meth:`Runner.run` in the caller's thread, which
only waits and reports status. Every thread started is joined before ``run`` returns: while it
runs, Ctrl-C only asks the threads to stop (a ``KeyboardInterrupt`` raised at the wrong moment
would skip the joins and leave threads inside FFmpeg or dlib as the interpreter exits).
"""

from __future__ import annotations

import collections
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Literal, TypeVar

import numpy as np

from pipeline.frame import Frame
from pipeline.sinks.base import Sink
from pipeline.timings import StageTimings

__all__ = [
    "POLICIES",
    "Progress",
    "RunStats",
    "RunSummary",
    "Runner",
    "StageQueue",
    "ctrl_c_calls",
]

T = TypeVar("T")
Policy = Literal["block", "newest"]
POLICIES: tuple[Policy, ...] = ("block", "newest")
# Frames each queue holds by default: enough to absorb jitter when every frame is kept; one
# (the lowest latency) when stale frames are dropped.
_QUEUE_SIZE: dict[Policy, int] = {"block": 8, "newest": 1}

# How long the capture thread may take to notice a stop: a source blocked in a device read
# returns within a frame or two; past this the thread is left (it is a daemon) and the
# caller's closing of the source ends it.
_CAPTURE_JOIN_SECONDS = 5.0
# How often run()'s thread looks whether it was asked to stop.
_POLL_SECONDS = 0.1


@contextlib.contextmanager
def ctrl_c_calls(handler: Callable[[], None]) -> Iterator[None]:
    """Within the block, Ctrl-C (SIGINT) calls ``handler`` instead of raising
    ``KeyboardInterrupt``; Python's own handler comes back after.

    Only on the main thread (the only one Python raises ``KeyboardInterrupt`` in) and only
    where SIGINT still has Python's default handler: a host program's own handler is left
    alone. ``handler`` must take no lock (see :meth:`Runner.stop`).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    signal.signal(signal.SIGINT, lambda *_: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class StageQueue(Generic[T]):
    """A bounded FIFO between two threads; full, it waits or drops its oldest item.

    ``close()`` is the end marker: once the items already queued are taken, ``get`` returns
    ``None``, and a ``put`` waiting for room gives up. Safe to use from any number of threads.

    Args:
        maxsize: most items held at once.
        keep_newest: when full, ``put`` drops the oldest item (never waits) rather than
            waiting for room.

    Attributes:
        dropped: items discarded so far because a newer one arrived while full.
        high_water: most items ever held at once (never more than ``maxsize``).
    """

    def __init__(self, maxsize: int = 1, keep_newest: bool = True) -> None:
        if maxsize < 1:
            raise ValueError(f"StageQueue: expected maxsize >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.keep_newest = keep_newest
        self.dropped = 0
        self.high_water = 0
        self._items: collections.deque[T] = collections.deque()
        self._closed = False
        self._changed = threading.Condition()

    def put(self, item: T) -> bool:
        """Queue ``item`` (dropping the oldest, or waiting, when full); ``False`` (item
        discarded) once closed."""
        with self._changed:
            while not self.keep_newest and len(self._items) == self.maxsize and not self._closed:
                self._changed.wait()
            if self._closed:
                return False
            if len(self._items) == self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._changed.notify_all()
            return True

    def get(self) -> T | None:
        """The oldest item, waiting for one; ``None`` once closed and empty."""
        with self._changed:
            while not self._items and not self._closed:
                self._changed.wait()
            if not self._items:
                return None
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)


@dataclass(frozen=True)
class RunStats:
    """A snapshot of a running (or finished) run.

    Attributes:
        captured: frames read from the source.
        written: frames that reached every sink.
        dropped: frames discarded because a later stage was busy (``"newest"`` only).
        elapsed: seconds since the run started.
        fps: output frames per second over the last couple of seconds (over the whole run in
            a :class:`RunSummary`).
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
class Progress:
    """How far a run of known length is (what a progress bar shows).

    Attributes:
        frames: frames written so far.
        total: frames expected in all, if the source knows.
        fps: mean frames per second since the run started.
        eta: seconds left at that rate, if ``total`` is known.
    """

    frames: int
    total: int | None
    fps: float
    eta: float | None

    @classmethod
    def of(cls, stats: RunStats, total: int | None) -> Progress:
        fps = stats.written / stats.elapsed if stats.elapsed > 0 else 0.0
        eta = max(total - stats.written, 0) / fps if total and fps > 0 else None
        return cls(stats.written, total, fps, eta)


@dataclass(frozen=True)
class RunSummary:
    """What a finished run did, with per-frame timings for benchmarks.

    Attributes:
        stats: the totals, with fps and latency over the whole run.
        timings: seconds spent reading the source (``"decode"``) and writing the sinks
            (``"encode"``), per written frame.
        output_times: ``(N,)`` ``float64`` seconds since start at which each written frame
            left, in order.
        latencies: ``(N,)`` ``float64`` added latency in seconds of each written frame.
        indices: ``(N,)`` ``int64`` the source ``Frame.index`` of each written frame.
        interrupted: stopped by :meth:`Runner.stop` or Ctrl-C rather than by the source
            ending.
    """

    stats: RunStats
    timings: StageTimings
    output_times: np.ndarray
    latencies: np.ndarray
    indices: np.ndarray
    interrupted: bool

    @property
    def frames(self) -> int:
        """Frames written to every sink."""
        return self.stats.written

    @property
    def seconds(self) -> float:
        """Wall time of the run."""
        return self.stats.elapsed

    @property
    def fps(self) -> float:
        """Mean frames per second over the run."""
        return self.stats.fps


@dataclass(frozen=True)
class _Item:
    """What travels between threads: a frame or a stage's partial result, and when the
    frame it came from was captured."""

    value: Any
    captured_at: float


class Runner:
    """Runs ``source → stages → sinks`` on threads joined by bounded queues.

    Args:
        source: frames in order (a file, a camera, a paced file); iterated on the capture
            thread. The caller opens and closes it.
        process: the per-frame work, called on its own thread one frame at a time (so it
            need not be thread-safe), e.g. ``Restyler.process``; or a sequence of stages, each
            on its own thread, the first taking the :class:`Frame`, each next one the previous
            one's result, the last returning a :class:`Frame` (e.g. ``Restyler.analyse`` then
            ``Restyler.render``).
        sinks: where output frames go, written in order on the output thread. The caller opens
            and closes them (a ``with`` block aborts them when :meth:`run` raises).
        policy: what a full queue does: ``"block"`` waits (files: every frame), ``"newest"``
            drops the oldest frame (live: bounded latency). See the module docstring.
        queue_size: frames each queue may hold; ``None``: 8 for ``"block"``, 1 for
            ``"newest"``.
        on_status: called from :meth:`run`'s thread every ``status_interval`` seconds, and
            once more when the source has ended, with a :class:`RunStats` (a status line, a
            progress bar). What it raises ends the run; ``KeyboardInterrupt`` stops it as
            Ctrl-C does.
        status_interval: seconds between status calls.
        clock: monotonic seconds; replaceable for tests that need a fixed time base.
    """

    def __init__(
        self,
        source: Iterable[Frame],
        process: Callable[[Frame], Frame] | Sequence[Callable[[Any], Any]],
        sinks: Sequence[Sink],
        *,
        policy: Policy = "block",
        queue_size: int | None = None,
        on_status: Callable[[RunStats], None] | None = None,
        status_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"Runner: expected policy 'block' or 'newest', got {policy!r}")
        self.source = source
        self.stages: list[Callable[[Any], Any]] = [process] if callable(process) else list(process)
        if not self.stages:
            raise ValueError("Runner: expected at least one processing stage")
        self.sinks = list(sinks)
        self.policy = policy
        self.queue_size = _QUEUE_SIZE[policy] if queue_size is None else queue_size
        self.on_status = on_status
        self.status_interval = status_interval
        self._clock = clock
        # A plain flag, not an Event: stop() must take no lock (see its docstring).
        self._stopping = False
        self.reset()

    def reset(self) -> None:
        """Forget the previous run's queues, counters and error."""
        # queues[0] feeds the first stage; queues[-1] feeds the output thread.
        self.queues: list[StageQueue[_Item]] = [
            StageQueue(self.queue_size, keep_newest=self.policy == "newest")
            for _ in range(len(self.stages) + 1)
        ]
        self.timings = StageTimings()
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._captured = 0
        self._start = self._clock()
        # (seconds since start, added latency, source index) per written frame; one list so
        # that a snapshot taken from another thread is consistent.
        self._written: list[tuple[float, float, int]] = []

    @property
    def captured_queue(self) -> StageQueue[_Item]:
        """Frames waiting for the first stage."""
        return self.queues[0]

    @property
    def processed_queue(self) -> StageQueue[_Item]:
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

    def run(self) -> RunSummary:
        """Run until the source ends, :meth:`stop` is called, Ctrl-C, or a thread fails.

        Ctrl-C and :meth:`stop` end the run early and return the summary with
        ``interrupted`` set: the caller decides what that means (a live session keeps its
        recording; a render discards its output).

        Raises:
            Exception: the first error raised by the source, a stage, a sink or
                ``on_status``.
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
        interrupted = False
        next_status = self._clock() + self.status_interval
        # Ctrl-C must never come between starting a thread and the finally that joins it: a
        # KeyboardInterrupt raised inside Thread.start() (which waits for the new thread to
        # run) once left the threads already started decoding and detecting while the caller
        # closed the source and the interpreter exited under them (SIGSEGV, or SIGABRT from
        # C++ "terminate called without an active exception"). So while threads run, Ctrl-C
        # only asks them to stop, as stop() does.
        with ctrl_c_calls(self.stop):
            try:
                for thread in threads:
                    thread.start()
                while downstream[-1].is_alive() and not self._stopping:
                    downstream[-1].join(_POLL_SECONDS)
                    if self.on_status is not None and self._clock() >= next_status:
                        next_status += self.status_interval
                        self.on_status(self.stats())
            except KeyboardInterrupt:  # from on_status, or Ctrl-C under a host's own handler
                interrupted = True
            except BaseException as error:
                self._keep_error(error)
            finally:
                interrupted = interrupted or (self._stopping and self._error is None)
                self._stopping = True
                # Unblock a capture thread waiting to put and stages waiting to get.
                self._close_queues()
                for thread in downstream:
                    if thread.ident is not None:
                        thread.join()
                if capture.ident is not None:
                    capture.join(_CAPTURE_JOIN_SECONDS)
                self._stopping = False
        if self._error is not None:
            raise self._error
        written = np.asarray(self._written, np.float64).reshape(-1, 3)
        elapsed = self._clock() - self._start
        stats = self._stats(elapsed, len(written) / elapsed, written[:, 1], len(written))
        if self.on_status is not None and not interrupted:
            self.on_status(stats)
        self.timings.frames = len(written)
        return RunSummary(
            stats=stats,
            timings=self.timings,
            output_times=written[:, 0],
            latencies=written[:, 1],
            indices=written[:, 2].astype(np.int64),
            interrupted=interrupted,
        )

    def stats(self, window: float = 2.0) -> RunStats:
        """Totals so far, with fps and latency over the last ``window`` seconds."""
        count = len(self._written)
        recent = np.asarray(self._written[-512:], np.float64).reshape(-1, 3)
        now = self._clock() - self._start
        recent = recent[recent[:, 0] >= now - window]
        span = min(window, now)
        fps = len(recent) / span if span > 0 else 0.0
        return self._stats(now, fps, recent[:, 1], count)

    def _stats(self, elapsed: float, fps: float, latencies: np.ndarray, written: int) -> RunStats:
        p50, p95 = np.percentile(latencies, [50, 95]) if latencies.size else (np.nan, np.nan)
        return RunStats(
            captured=self._captured,
            written=written,
            dropped=sum(queue.dropped for queue in self.queues),
            elapsed=float(elapsed),
            fps=float(fps),
            latency_p50=float(p50),
            latency_p95=float(p95),
        )

    def _keep_error(self, error: BaseException) -> None:
        """Remember the first error of the run and make every thread stop."""
        with self._error_lock:
            if self._error is None:
                self._error = error
        self._stopping = True
        self._close_queues()

    def _guard(self, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as error:  # re-raised in the caller's thread
            self._keep_error(error)

    def _close_queues(self) -> None:
        for queue in self.queues:
            queue.close()

    def _capture(self) -> None:
        frames = iter(self.source)
        try:
            while not self._stopping:
                with self.timings.measure("decode"):
                    frame = next(frames, None)
                if frame is None or not self.captured_queue.put(_Item(frame, self._clock())):
                    break
                self._captured += 1
        finally:
            self.captured_queue.close()

    def _stage(self, index: int) -> None:
        stage, inbox, outbox = self.stages[index], self.queues[index], self.queues[index + 1]
        try:
            while not self._stopping and (item := inbox.get()) is not None:
                outbox.put(_Item(stage(item.value), item.captured_at))
        finally:
            outbox.close()

    def _output(self) -> None:
        while not self._stopping and (item := self.processed_queue.get()) is not None:
            with self.timings.measure("encode"):
                for sink in self.sinks:
                    sink.write(item.value)
            now = self._clock()
            self._written.append((now - self._start, now - item.captured_at, item.value.index))
