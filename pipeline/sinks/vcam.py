"""A virtual camera that Zoom, Meet, Teams or OBS can pick as a webcam, through pyvirtualcam.

pyvirtualcam drives v4l2loopback on Linux and OBS's Virtual Camera on Windows and macOS. Where
neither exists it fails; this sink turns that into a :class:`~pipeline.errors.DeviceError`
whose one-line message names the fix for the user's operating system.
"""

from __future__ import annotations

import sys

from pipeline.errors import DeviceError
from pipeline.frame import Frame
from pipeline.sinks.base import Sink

__all__ = ["VirtualCameraSink", "virtual_camera_fix"]

_LINUX_FIX = (
    "load the v4l2loopback kernel module: "
    "`sudo modprobe v4l2loopback exclusive_caps=1 card_label=facestyle` "
    "(install it first with `sudo apt install v4l2loopback-dkms` or your distribution's package)"
)
_OBS_FIX = (
    "install OBS Studio (https://obsproject.com), then start its Virtual Camera once "
    "(Controls > Start Virtual Camera) and stop it again"
)


def virtual_camera_fix(platform: str = sys.platform) -> str:
    """What a user on ``platform`` (a ``sys.platform`` value) does to get a virtual camera."""
    if platform.startswith("linux"):
        return _LINUX_FIX
    if platform in ("win32", "cygwin", "darwin"):
        return _OBS_FIX
    return f"pyvirtualcam supports Linux, Windows and macOS only, not {platform}"


class VirtualCameraSink(Sink):
    """Sends frames to a virtual webcam.

    Args:
        width, height: frame size in pixels; every frame must have it.
        fps: frame rate the camera announces to apps.
        device: a specific device (``/dev/video10`` on Linux), or ``None`` for the first free one.

    Attributes:
        device: the device in use (e.g. ``/dev/video10`` or ``OBS Virtual Camera``).

    Raises:
        DeviceError: pyvirtualcam is not installed, or there is no virtual camera to drive.
    """

    def __init__(self, width: int, height: int, fps: float, *, device: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError as error:
            raise DeviceError(
                "the virtual camera needs pyvirtualcam: `pip install pyvirtualcam`"
            ) from error
        self.width, self.height = width, height
        try:
            self._camera = pyvirtualcam.Camera(
                width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device
            )
        except RuntimeError as error:
            # pyvirtualcam lists one line per backend it tried; keep them on one line.
            tried = "; ".join(str(error).splitlines())
            raise DeviceError(
                f"no virtual camera available ({tried}); to fix, {virtual_camera_fix()}"
            ) from error
        self.device = self._camera.device

    def write(self, frame: Frame) -> None:
        if (frame.width, frame.height) != (self.width, self.height):
            raise ValueError(
                f"VirtualCameraSink: expected {self.width}x{self.height} frames, got "
                f"{frame.width}x{frame.height}"
            )
        self._camera.send(frame.image)

    def close(self) -> None:
        self._camera.close()
