"""How facestyle shares a busy machine: its thread and waiting policy, applied in one place.

Measured (DESIGN.md, "Threads"; the README's Speed section): PyTorch's default intra-op
threads (one per core, OpenMP) slow the student 5-17x as soon as another process or the
pipeline's own threads want a core, because every convolution waits for its slowest thread
and idle OpenMP threads spin instead of sleeping. The pipeline already runs its stages on
threads of its own, so the student gets one intra-op thread per stylizing worker, OpenCV's
per-call worker pool is off, and idle OpenMP threads wait passively.

``OMP_WAIT_POLICY`` is read once, when the OpenMP runtime loads with ``import torch``, so
:func:`wait_passively` runs when :mod:`plugin` is imported (the command line's entry point
and the Python API both import it before anything imports torch).
"""

from __future__ import annotations

import os
import sys

__all__ = ["OPENCV_THREADS", "STUDENT_THREADS", "WAIT_POLICY", "apply_thread_policy"]

STUDENT_THREADS = 1
"""PyTorch intra-op threads of the stage that runs the student (per stylizing worker)."""

OPENCV_THREADS = 1
"""OpenCV's worker threads per call: its resizes and blurs are on 256² crops, too small to
split, and the stages already run side by side on their own threads."""

WAIT_POLICY = "PASSIVE"
"""What idle OpenMP threads do: sleep (``PASSIVE``) instead of spinning on a core that the
pipeline's other stages, or other programs, need."""


def wait_passively() -> None:
    """Make OpenMP threads sleep when idle, unless the user chose otherwise; a no-op once
    torch is loaded (its OpenMP runtime has read the variable by then)."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def apply_thread_policy() -> dict[str, object]:
    """Apply :data:`STUDENT_THREADS` and :data:`OPENCV_THREADS` to this process.

    Both are process-wide: PyTorch's intra-op count reaches threads started afterwards (the
    runner's stage threads), OpenCV's every call. PyTorch is configured only if it is loaded
    (a style pack loads it; the classical style never does).

    Returns:
        What is in force, for the benchmark's report: ``{"torch_threads", "opencv_threads",
        "omp_wait_policy"}`` (``torch_threads`` is ``None`` when torch is not loaded).
    """
    import cv2

    cv2.setNumThreads(OPENCV_THREADS)
    torch_threads = None
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(STUDENT_THREADS)
        torch_threads = torch.get_num_threads()
    return {
        "torch_threads": torch_threads,
        "opencv_threads": cv2.getNumThreads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
    }
