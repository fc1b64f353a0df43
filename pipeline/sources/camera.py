"""Frames from a camera (index or device path) or a network stream URL, through OpenCV.

A camera that disappears mid-session (unplugged, taken by another app, a stream that drops) is
reopened with exponential backoff instead of ending the session; only when it stays away for
``reopen_timeout`` seconds does iteration raise :class:`~pipeline.errors.DeviceError`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from pipeline.errors import DeviceError
from pipeline.frame import Frame
from pipeline.sources.base import Source

__all__ = ["CameraSource", "parse_device"]


def parse_device(spec: str | int) -> int | str:
    """A camera index (``"0"`` → ``0``) or the device path / URL unchanged."""
    if isinstance(spec, int):
        return spec
    return int(spec) if spec.strip().isdigit() else spec


def _open_hint(device: int | str) -> str:
    if isinstance(device, str) and "://" in device:
        return "check the URL and that the stream is running"
    if sys.platform.startswith("linux"):
        return (
            "check it is plugged in and not used by another app "
            "(list cameras with `v4l2-ctl --list-devices` or `ls /dev/video*`)"
        )
    return "check it is plugged in, not used by another app, and that this app may use the camera"


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings while probing, so a missing camera is one clear error."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


class CameraSource(Source):
    """Live frames from ``cv2.VideoCapture``, reopened with backoff when the device drops.

    Frames are stamped with seconds since the camera was opened and a running index (no
    ``pts``: a camera has no stream clock facestyle can trust).

    Args:
        device: camera index (``0``), device path (``/dev/video2``) or URL (``rtsp://…``,
            ``udp://…``); a string of digits is an index.
        size: ``(width, height)`` to ask the camera for; frames of another size are resized
            to it, so downstream sinks get what was asked for.
        fps: frame rate to ask the camera for.
        reopen_timeout: seconds a lost camera may stay away before giving up.
        stream_timeout: for URLs, seconds a stream may stay silent (or take to open) before
            it counts as lost; without it a dropped network stream blocks reading for long.
        backoff: ``(first, longest)`` wait in seconds between reopen attempts; the wait doubles
            after each failed attempt.

    Attributes:
        reopens: times the camera was lost and opened again.

    Raises:
        DeviceError: the camera cannot be opened.
    """

    def __init__(
        self,
        device: int | str,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        reopen_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 2.0),
        stream_timeout: float = 2.0,
    ) -> None:
        self.device = parse_device(device)
        self.requested_size = size
        self.requested_fps = fps
        self.reopen_timeout = reopen_timeout
        self.stream_timeout = stream_timeout
        self.backoff = backoff
        self.reopens = 0
        self._closed = threading.Event()
        # Held while reading, so close() from another thread never releases mid-read.
        self._lock = threading.Lock()
        self._capture = self._open()
        if self._capture is None:
            raise DeviceError(
                f"camera {self.device} could not be opened; {_open_hint(self.device)}"
            )
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.width, self.height = size or (width, height)
        reported = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps or (reported if 0 < reported < 240 else 30.0))

    def _open(self) -> cv2.VideoCapture | None:
        if isinstance(self.device, int) and sys.platform.startswith("linux"):
            api = cv2.CAP_V4L2  # skip slower backends that cannot open a local index anyway
        else:
            api = cv2.CAP_ANY
        params: list[int] = []
        if isinstance(self.device, str) and "://" in self.device:
            milliseconds = round(self.stream_timeout * 1000)
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                milliseconds,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                milliseconds,
            ]
        with _quiet_opencv():
            capture = cv2.VideoCapture(self.device, api, params)
            if not capture.isOpened():
                capture.release()
                return None
        if self.requested_size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.requested_size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.requested_size[1])
        if self.requested_fps is not None:
            capture.set(cv2.CAP_PROP_FPS, self.requested_fps)
        # A driver-side queue of old frames is latency the runner cannot drop.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture

    def _read(self) -> np.ndarray | None:
        """The next frame, ``(H, W, 3)`` ``uint8`` RGB at the output size, or ``None``."""
        with self._lock:
            if self._capture is None:
                return None
            with _quiet_opencv():  # a stream timing out is reported by reopening, not a WARN
                ok, bgr = self._capture.read()
        if not ok or bgr is None or bgr.ndim != 3:
            return None
        if (bgr.shape[1], bgr.shape[0]) != (self.width, self.height):
            bgr = cv2.resize(bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _reopen(self) -> bool:
        """Reopen after a loss, waiting ``backoff`` between tries; ``False`` if closed."""
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None
        deadline = time.monotonic() + self.reopen_timeout
        wait, longest = self.backoff
        while not self._closed.is_set():
            capture = self._open()
            if capture is not None:
                with self._lock:
                    if self._closed.is_set():
                        capture.release()
                        return False
                    self._capture = capture
                self.reopens += 1
                return True
            if time.monotonic() + wait > deadline:
                raise DeviceError(
                    f"camera {self.device} stopped delivering frames and did not come back "
                    f"within {self.reopen_timeout:g} s; {_open_hint(self.device)}"
                )
            self._closed.wait(wait)
            wait = min(wait * 2, longest)
        return False

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index = 0
        while not self._closed.is_set():
            image = self._read()
            if image is None:
                if not self._reopen():
                    return
                continue
            yield Frame(image, time.monotonic() - start, index)
            index += 1

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None
