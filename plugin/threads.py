"""How facestyle shares a busy machine: its thread and waiting policy, applied in one place.

What hurts the student beside other work (DESIGN.md, "Threads"; measured again for the
README's Speed section) is OpenMP's idle threads *spinning*: PyTorch's intra-op threads wait
for each other at every convolution, and with the default wait policy each waiting thread
burns a core that the pipeline's other stages, or other programs, need. Measured on 2 shared
cores, the student alone took 140 ms quiet and 490 ms beside a PyTorch job on its default two
spinning threads, 26 and 20 ms with the same two threads waiting passively, and 26 and 63 ms
on one thread. So:

- idle OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``). The variable is read once,
  when the OpenMP runtime loads with ``import torch``, so :func:`wait_passively` runs when
  :mod:`plugin` is imported (the command line and the Python API both import it first); a
  value the user set is kept;
- with passive waiting in force, PyTorch and OpenCV keep their thread counts (beside other
  work, two passive threads kept more of the student's speed than one);
- where it cannot be in force (a host program loaded torch before facestyle could set the
  variable, or the user chose ``ACTIVE``), the student gets one intra-op thread and OpenCV one
  thread per call: a single thread has no one to wait for, so it cannot spin.
"""

from __future__ import annotations

import os
import sys

__all__ = ["WAIT_POLICY", "apply_thread_policy", "passive_waiting", "wait_passively"]

WAIT_POLICY = "PASSIVE"
"""What idle OpenMP threads do: sleep instead of spinning on a core others need."""

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

        if not passive:
            torch.set_num_threads(1)
        torch_threads = torch.get_num_threads()
    return {
        "torch_threads": torch_threads,
        "opencv_threads": cv2.getNumThreads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "passive": passive,
    }
