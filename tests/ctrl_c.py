"""Ctrl-C a ``facestyle`` command as a terminal does (or send it another stop signal), at the
moment its render begins."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def ctrl_c_when_writing(
    args: Sequence[str],
    folder: Path,
    partial: str,
    timeout: float = 60.0,
    number: int = signal.SIGINT,
) -> tuple[int, str]:
    """Run ``python -m plugin.cli ARGS`` and send SIGINT (or signal ``number``: SIGTERM as
    ``timeout`` and ``kill`` send, SIGHUP as a closed terminal does) to its process group as
    soon as a file matching ``partial`` appears in ``folder``.

    The partial output file is created just before the runner starts its threads, so the
    signal lands while they start: where a ``KeyboardInterrupt`` once skipped their joins and
    the process crashed as it exited (SIGABRT or SIGSEGV) about one run in two.

    Returns:
        The exit status (negative: killed by that signal) and what it wrote on stderr.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a group of its own, like a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + timeout
        while not list(folder.glob(partial)):
            assert process.poll() is None, f"it ended ({process.returncode}) before writing"
            assert time.monotonic() < deadline, f"no {partial} in {folder} after {timeout} s"
            time.sleep(0.005)
        os.killpg(process.pid, number)
        _, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, err
