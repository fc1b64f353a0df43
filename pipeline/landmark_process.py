"""dlib's 68-point landmark fit in a process of its own, so that it does not hold the lock.

dlib's shape predictor holds the interpreter's lock for its whole call. In a render the fit
runs on the tracking thread for every face of every frame, and on two busy cores a call that
takes 0.9 ms alone held the lock for about 3 ms (py-spy, four faces at 720p), while the
stylizing thread, which sets the pace, waited to take the lock back after each student call.
In a process of its own the fit holds no lock of ours: the tracking thread hands it the
frame and the box and sleeps until the points come back, bit for bit dlib's own.

The frame travels through a socket once per frame however many faces are fitted on it (0.9
MB at 720p), then a box and 68 points for each face. The process is started as a plain
``python -m`` (not by :mod:`multiprocessing`, whose ``spawn`` re-imports the caller's main
script), once per facestyle process, and ends when its socket closes. Where it cannot start
or dies, the fit runs in this process again: the points are the same, only slower to get.

A fork of facestyle's process (``multiprocessing``'s default start on Linux before Python
3.14) inherits the socket but not the process: two processes sharing one socket would read
each other's points, or both wait for ever. So the child forgets it at the fork: its copy of
the socket is closed, fits already set up there run in the child itself, and the child's
next :func:`shared_landmark_process` starts a process of its own.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import threading
import weakref
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from pipeline.landmarks import LandmarkFit, predict_landmarks

__all__ = ["LandmarkProcess", "shared_landmark_process"]

# How long the process may take to import dlib and load the 68-point model (about a second).
_START_TIMEOUT_S = 30.0


def _serve(connection: Connection) -> None:
    """The fitting process's loop: a shape is followed by a frame's bytes, an array is a box
    to fit on the last frame; EOF ends it."""
    from pipeline.landmarks import preload_models

    preload_models()
    grey: np.ndarray | None = None
    connection.send("ready")
    try:
        while True:
            message = connection.recv()
            if isinstance(message, tuple):
                grey = np.frombuffer(connection.recv_bytes(), np.uint8).reshape(message)
            else:
                connection.send(predict_landmarks(grey, message))
    except (EOFError, KeyboardInterrupt):
        pass


class LandmarkProcess:
    """:func:`pipeline.landmarks.predict_landmarks` in another process; thread-safe.

    Raises:
        OSError: the process could not be started, or did not say it was ready.
    """

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        root = Path(__file__).resolve().parents[1]
        with theirs:
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "pipeline.landmark_process", str(theirs.fileno())],
                    cwd=root,
                    pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    # What goes wrong there is handled here (the fit comes back home).
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C is for facestyle; its socket ends this
                )
            except (OSError, ValueError) as error:  # ValueError: no pass_fds on Windows
                ours.close()
                raise OSError(f"the landmark process could not start: {error}") from error
        self._connection = Connection(ours.detach())
        self._owner = os.getpid()  # a fork's child must not talk on this socket
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None  # the grey frame last sent
        try:
            ready = self._connection.poll(_START_TIMEOUT_S) and self._connection.recv()
        except (EOFError, OSError):
            ready = False  # it ended before it was ready
        if ready != "ready":
            self.close()
            raise OSError("the landmark process did not start")
        _LIVE.add(self)

    def __call__(self, grey: np.ndarray, box: np.ndarray) -> np.ndarray:
        """``(68, 2)`` ``float32`` landmarks of the face in ``box`` on ``grey``, as
        :func:`pipeline.landmarks.predict_landmarks`.

        Args:
            grey: ``(H, W)`` ``uint8`` frame: pass the same array for every face of a frame,
                and do not change it in place between calls (it is sent once).
            box: ``(4,)`` ``x0, y0, x1, y1`` in image pixels.

        Raises:
            OSError: the process has ended (see :func:`shared_landmark_process`).
        """
        if grey.dtype != np.uint8 or grey.ndim != 2:
            return predict_landmarks(grey, box)  # its own check says what is wrong
        if os.getpid() != self._owner:
            # Checked before the lock, which another thread may have held at the fork.
            raise OSError("the landmark process belongs to the process this one forked from")
        with self._lock:
            try:
                if grey is not self._frame:
                    self._share(grey)
                self._connection.send(np.asarray(box, np.float32))
                return self._connection.recv()
            except (EOFError, OSError) as error:
                raise OSError("the landmark process has ended") from error

    def _share(self, grey: np.ndarray) -> None:
        self._connection.send(grey.shape)
        self._connection.send_bytes(np.ascontiguousarray(grey).reshape(-1))
        self._frame = grey

    def close(self) -> None:
        """End the process (idempotent); in a fork's child, only drop this copy of the socket."""
        self._connection.close()  # the process sees EOF and returns
        if os.getpid() != self._owner:
            return  # the parent's to end, when it closes its own copy
        try:
            self._process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._frame = None


class _FitAnywhere:
    """The process while it lives, this process's own predictor after."""

    def __init__(self, process: LandmarkProcess) -> None:
        self.process: LandmarkProcess | None = process

    def __call__(self, grey: np.ndarray, box: np.ndarray) -> np.ndarray:
        process = self.process
        if process is not None:
            try:
                return process(grey, box)
            except OSError:
                self.process = None  # killed, say: the rest of the run fits here
        return predict_landmarks(grey, box)


_SHARED_LOCK = threading.Lock()

_LIVE: weakref.WeakSet[LandmarkProcess] = weakref.WeakSet()
"""Every started process, for a fork's child to let go of."""


def _forget_after_fork() -> None:
    """In a fork's child: close the inherited sockets (so each process still ends when its
    parent lets go of it) and start afresh at the next :func:`shared_landmark_process`."""
    global _SHARED_LOCK
    _SHARED_LOCK = threading.Lock()  # another thread may have held it at the fork
    for process in list(_LIVE):
        process._connection.close()
    _LIVE.clear()
    _first_landmark_process.cache_clear()


def shared_landmark_process() -> LandmarkFit:
    """The landmark fit every tracker of this process shares: in a process of its own,
    started at the first call (about a second, waited for; two threads asking at once get
    the same one), or :func:`predict_landmarks` itself where that process cannot start.
    Where it dies later, the fit continues in this process."""
    with _SHARED_LOCK:
        return _first_landmark_process()


@cache
def _first_landmark_process() -> LandmarkFit:
    if getattr(sys, "frozen", False) or not sys.executable:
        return predict_landmarks  # a frozen app's executable is the app, not Python
    try:
        process = LandmarkProcess()
    except OSError:
        return predict_landmarks
    atexit.register(process.close)
    return _FitAnywhere(process)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_after_fork)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
