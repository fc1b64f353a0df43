"""The virtual camera: on machines without one, a one-line error naming the fix."""

from __future__ import annotations

import glob

import pytest

from pipeline.errors import DeviceError
from pipeline.sinks.vcam import VirtualCameraSink, virtual_camera_fix

HAS_VIDEO_DEVICES = bool(glob.glob("/dev/video*"))


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux", "sudo modprobe v4l2loopback exclusive_caps=1 card_label=facestyle"),
        ("win32", "start its Virtual Camera once"),
        ("darwin", "start its Virtual Camera once"),
        ("freebsd14", "Linux, Windows and macOS only"),
    ],
)
def test_fix_names_what_to_do_on_each_os(platform: str, expected: str) -> None:
    assert expected in virtual_camera_fix(platform)


@pytest.mark.skipif(HAS_VIDEO_DEVICES, reason="this machine has video devices; a vcam may exist")
def test_no_virtual_camera_is_a_one_line_device_error(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DeviceError) as raised:
        VirtualCameraSink(640, 480, 30)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("no virtual camera available")
    assert virtual_camera_fix() in message
    # pyvirtualcam's own words on what it tried are kept, so the cause is visible.
    assert "v4l2loopback" in message
    _, err = capfd.readouterr()
    assert "Traceback" not in err
