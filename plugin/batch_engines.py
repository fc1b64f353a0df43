"""Where batch units run: in this process, in local worker processes, or on a Ray cluster.

Every engine takes the same units and yields an :class:`Outcome` for each as it finishes,
reporting progress through a callback meanwhile. Closing the generator (an error or Ctrl-C in
the caller) stops the work still running: local workers are terminated, Ray tasks cancelled;
what they leave is partial files that the batch removes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.managers import SyncManager
from typing import TYPE_CHECKING

from pipeline.errors import Cancelled, DeviceError, FacestyleError
from plugin.batch_work import QueueReporter, RenderUnit, UnitResult, render_unit

if TYPE_CHECKING:
    from plugin.batch import BatchSettings

__all__ = ["ENGINES", "Outcome", "run_local", "run_ray"]

ENGINES = ("local", "ray")
_POLL = 0.2  # seconds between progress checks while waiting for work to finish
# A unit whose worker process dies (killed, out of memory) is tried this many times in all.
_ATTEMPTS = 2

OnProgress = Callable[[RenderUnit, int], None]


@dataclass(frozen=True)
class Outcome:
    """A finished unit: its result, or why it failed (one line)."""

    unit: RenderUnit
    result: UnitResult | None
    error: str | None = None


def _reason(error: BaseException) -> str:
    """The one line a failed unit is reported with."""
    if isinstance(error, FacestyleError | OSError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error}"


def run_local(
    units: Sequence[RenderUnit], settings: BatchSettings, workers: int, on_progress: OnProgress
) -> Iterator[Outcome]:
    """Render ``units`` here (one worker) or in ``workers`` local processes.

    Each process gets an equal share of the cores for OpenCV (the student runs on one thread).
    """
    if workers == 1:
        for unit in units:
            try:
                result = render_unit(unit, settings, on_progress)
            except Cancelled:  # a FacestyleError too, but it stops the batch
                raise
            except Exception as error:  # isolated: the clip fails, the batch goes on
                yield Outcome(unit, None, _reason(error))
            else:
                yield Outcome(unit, result)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # forking a process with threads is unsafe
    manager = SyncManager(ctx=context)
    manager.start(signal.signal, (signal.SIGINT, signal.SIG_IGN))
    with manager:
        reporter = QueueReporter(manager.Queue())
        tries = dict.fromkeys(units, 0)
        pending = list(units)
        while pending:
            retry = []
            for outcome in _run_pool(pending, settings, workers, threads, reporter, on_progress):
                if isinstance(outcome, Outcome):
                    yield outcome
                    continue
                tries[outcome] += 1  # its worker died
                if tries[outcome] < _ATTEMPTS:
                    retry.append(outcome)
                else:
                    reason = "its worker process died (killed, or out of memory)"
                    yield Outcome(outcome, None, reason)
            pending = retry


def _ignore_interrupts(threads: int) -> None:
    """Worker start-up: Ctrl-C is the batch's to handle (it stops the workers), and each
    worker gets its share of the cores."""
    from plugin.batch_work import configure_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_threads(threads)


def _run_pool(
    units: Sequence[RenderUnit],
    settings,
    workers: int,
    threads: int,
    reporter: QueueReporter,
    on_progress: OnProgress,
) -> Iterator[Outcome | RenderUnit]:
    """One pool's run: an :class:`Outcome` per unit, or the unit itself if its worker (or
    another, which breaks the whole pool) died."""
    executor = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_ignore_interrupts,
        initargs=(threads,),
    )
    futures: dict[Future, RenderUnit] = {
        executor.submit(render_unit, unit, settings, reporter): unit for unit in units
    }
    finished = False
    try:
        while futures:
            done, _ = wait(futures, timeout=_POLL, return_when=FIRST_COMPLETED)
            _drain(reporter.queue, queue.Empty, on_progress)
            for future in done:
                unit = futures.pop(future)
                try:
                    yield Outcome(unit, future.result())
                except BrokenProcessPool:
                    yield unit
                except Exception as error:  # isolated: the clip fails, the batch goes on
                    yield Outcome(unit, None, _reason(error))
        finished = True
    finally:
        if finished:
            executor.shutdown()
        else:
            _stop(executor)


def _stop(executor: ProcessPoolExecutor) -> None:
    """Stop a pool's workers now, mid-render (the batch removes their partial files)."""
    # Python 3.14 has ProcessPoolExecutor.terminate_workers(); before it, the pool's own
    # process table is the only handle on its workers (shutdown() empties it: read it first).
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join()


def _drain(messages, empty: type[Exception], on_progress: OnProgress) -> None:
    """Pass on every progress message waiting in ``messages`` (which raises ``empty``)."""
    while True:
        try:
            unit, frames = messages.get_nowait()
        except empty:
            return
        on_progress(unit, frames)


def run_ray(
    units: Sequence[RenderUnit],
    settings: BatchSettings,
    address: str | None,
    gpu: bool,
    on_progress: OnProgress,
) -> Iterator[Outcome]:
    """Render ``units`` as Ray tasks, one CPU (and one GPU if ``gpu``) each.

    Joins the Ray instance this process already has, else the cluster at ``address``, else
    starts a local one (stopped again at the end). Every worker must reach the inputs and the
    output folder under the same paths: a shared filesystem on a cluster. A task whose worker
    or node dies is retried by Ray.

    Raises:
        DeviceError: Ray is not installed, the cluster cannot be reached, or ``gpu`` is
            asked for on a cluster without GPUs.
    """
    try:
        import ray
        from ray.util.queue import Empty, Queue
    except ImportError as error:
        raise DeviceError(
            "--engine ray needs Ray: `pip install 'ray>=2.9'` (or facestyle[cluster])"
        ) from error
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise DeviceError(f"cannot reach the Ray cluster at {address}: {error}") from error
    try:
        if gpu and not ray.cluster_resources().get("GPU"):
            # Tasks asking for a GPU would wait for one for ever.
            raise DeviceError("--device cuda: the Ray cluster has no GPU; use --device cpu")
        messages = Queue()
        reporter = QueueReporter(messages)
        task = ray.remote(render_unit).options(
            num_cpus=1, num_gpus=1 if gpu else 0, max_retries=_ATTEMPTS, retry_exceptions=False
        )
        # One OpenCV thread (the student has one anyway): Ray runs one task per CPU it was given.
        refs = {task.remote(unit, settings, reporter, 1): unit for unit in units}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1, timeout=_POLL)
                _drain(messages, Empty, on_progress)
                for ref in done:
                    unit = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as error:
                        yield Outcome(unit, None, _reason(error.cause or error))
                    except ray.exceptions.RayError as error:  # worker or node lost for good
                        yield Outcome(unit, None, f"its Ray task failed: {error}")
                    else:
                        yield Outcome(unit, result)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()
