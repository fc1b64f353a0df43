"""How facestyle shares a busy machine: its thread and waiting policy, applied in one place.

What hurts the student beside other work (DESIGN.md, "Threads"; measured again for the
README's Speed section) is PyTorch's intra-op threads: they wait for each other at every
convolution, and a waiting thread either spins on a core that the pipeline's other stages, or
other programs, need (OpenMP's default), or, when a sibling is descheduled, holds the whole
convolution up. So:

- idle OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``). The variable is read once,
  when the OpenMP runtime loads with ``import torch``, so :func:`wait_passively` runs when
  :mod:`plugin` is imported (the command line and the Python API both import it first); a
  value the user set is kept;
- the student runs on one intra-op thread. The pipeline's five stage threads already keep both
  cores of a small machine busy, so a second intra-op thread bought nothing quiet and cost the
  most beside another program: the 640x480 bench clip, interleaved pairs on 2 cores, 30.4 /
  31.7 fps quiet on one thread against 31.6 / 28.8 on two, and beside a PyTorch job 0.88 /
  0.89 of that against 0.61 / 0.65; live at 640x480 beside it, p95 latency 77-94 ms against
  82-99 ms, with fewer dropped frames;
- OpenCV keeps its thread count while passive waiting is in force (one thread per call made
  no measurable difference); where it cannot be in force (a host program loaded torch before
  facestyle could set the variable, or the user chose ``ACTIVE``), OpenCV gets one thread per
  call too, so that no thread has anyone to spin for.
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "STUDENT_THREADS",
    "WAIT_POLICY",
    "apply_thread_policy",
    "passive_waiting",
    "wait_passively",
]

WAIT_POLICY = "PASSIVE"
"""What idle OpenMP threads do: sleep instead of spinning on a core others need."""

STUDENT_THREADS = 1
"""PyTorch intra-op threads for the student: the stage threads are the parallelism."""

# Facts about this process at the moment plugin was first imported: whether torch (and so its
# OpenMP runtime) was loaded already, and whether the user had set a wait policy.
_TORCH_LOADED_FIRST = "torch" in sys.modules
_USER_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")


def wait_passively() -> None:
    """Make OpenMP threads sleep when idle, unless the user chose otherwise."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def passive_waiting() -> bool:
    """Whether this process's OpenMP threads wait passively: the policy is ``PASSIVE`` and
    was in the environment before torch loaded its OpenMP runtime."""
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != WAIT_POLICY:
        return False
    return _USER_WAIT_POLICY is not None or not _TORCH_LOADED_FIRST


def apply_thread_policy() -> dict[str, object]:
    """Apply the policy of the module docstring to this process.

    Thread counts are process-wide: PyTorch's intra-op count reaches threads started
    afterwards (the runner's stage threads), OpenCV's every call. PyTorch is configured only if
    it is loaded (a style pack loads it; the classical style never does).

    Returns:
        What is in force, for the benchmark's report: ``{"torch_threads", "opencv_threads",
        "omp_wait_policy", "passive"}`` (``torch_threads`` is ``None`` when torch is not
        loaded).
    """
    import cv2

    passive = passive_waiting()
    if not passive:
        cv2.setNumThreads(1)
    torch_threads = None
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(STUDENT_THREADS)
        torch_threads = torch.get_num_threads()
    return {
        "torch_threads": torch_threads,
        "opencv_threads": cv2.getNumThreads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "passive": passive,
    }
