"""``facestyle bench --load N``: other programs wanting the CPU while a benchmark runs.

facestyle runs beside OBS, a video call and a browser. :class:`CompetingLoad` starts ``N``
worker processes for the length of a ``with`` block: the first is a PyTorch program running
small convolutions on its default threads (the kind of neighbour that hurt most when
measured: DESIGN.md, "Threads"), the others pure-Python busy loops. Each is its own process
(``python -c``), started with the environment a program that is not
facestyle would have (no ``OMP_WAIT_POLICY``), and ended when the block exits.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from types import TracebackType

__all__ = ["WORKER_KINDS", "CompetingLoad", "worker_kinds"]

WORKER_KINDS = ("torch", "busy")

# A worker that has not said it is ready by then is broken; the benchmark must not wait on.
_READY_SECONDS = 60.0


def worker_kinds(count: int) -> list[str]:
    """The kinds of the first ``count`` workers: one PyTorch worker, then busy loops.

    >>> worker_kinds(3)
    ['torch', 'busy', 'busy']
    """
    if count < 0:
        raise ValueError(f"worker_kinds: expected a count >= 0, got {count}")
    return ["torch", "busy"][:count] + ["busy"] * max(count - 2, 0)


class CompetingLoad:
    """``workers`` competing processes, running from ``__enter__`` (once all are ready) to
    ``__exit__``.

    Args:
        workers: how many (0 starts nothing); see :func:`worker_kinds` for which.

    Raises:
        RuntimeError: a worker exited or stayed silent instead of starting.
    """

    def __init__(self, workers: int) -> None:
        self.kinds = worker_kinds(workers)
        self._processes: list[subprocess.Popen[str]] = []

    def __enter__(self) -> CompetingLoad:
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        try:
            for kind in self.kinds:
                self._processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _WORKERS[kind]],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        text=True,
                        env=env,
                    )
                )
            for process, kind in zip(self._processes, self.kinds, strict=True):
                self._wait_ready(process, kind)
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    @staticmethod
    def _wait_ready(process: subprocess.Popen[str], kind: str) -> None:
        # The worker says "ready" once warm (torch imported, first convolution done); a
        # worker that dies says nothing and its pipe closes.
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], _READY_SECONDS)
        line = process.stdout.readline().strip() if readable else ""
        if line != "ready":
            raise RuntimeError(
                f"the competing {kind} worker did not start (exit status {process.poll()})"
            )

    def _stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self._processes = []


# Run as ``python -c``, not as a module of this package: importing plugin would set the
# wait policy that a program other than facestyle does not have.
_WORKERS = {
    # Small 32-channel convolutions, back to back, on PyTorch's default threads.
    "torch": """
import torch
conv = torch.nn.Conv2d(32, 32, 3, padding=1)
batch = torch.randn(4, 32, 64, 64)
with torch.inference_mode():
    conv(batch)
    print("ready", flush=True)
    while True:
        conv(batch)
""",
    # A pure-Python busy loop: one core's worth of demand.
    "busy": """
print("ready", flush=True)
while True:
    pass
""",
}
