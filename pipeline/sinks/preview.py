"""A preview window on the local screen (OpenCV's HighGUI)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import cv2

from pipeline.errors import DeviceError
from pipeline.frame import Frame
from pipeline.sinks.base import Sink

__all__ = ["PreviewSink"]

_QUIT_KEYS = (ord("q"), 27)  # q, Esc


class PreviewSink(Sink):
    """Shows each frame in a window; ``q`` or Esc in the window calls ``on_quit``.

    Args:
        title: window title.
        on_quit: called (once per key press) when the user asks to stop from the window.

    Raises:
        DeviceError: there is no display to open a window on.
    """

    def __init__(self, title: str = "facestyle", on_quit: Callable[[], None] | None = None) -> None:
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise DeviceError(
                "--preview needs a display and there is none (no DISPLAY); run it on a desktop "
                "session, or drop --preview and watch the --stream output instead"
            )
        self.title = title
        self.on_quit = on_quit
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as error:
            raise DeviceError(f"cannot open a preview window: {error.msg}") from error

    def write(self, frame: Frame) -> None:
        cv2.imshow(self.title, cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
        # HighGUI only draws while it handles events; 1 ms is the shortest wait it takes.
        if (cv2.waitKey(1) & 0xFF) in _QUIT_KEYS and self.on_quit is not None:
            self.on_quit()

    def close(self) -> None:
        cv2.destroyWindow(self.title)
