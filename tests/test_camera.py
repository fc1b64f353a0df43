"""The camera source: a clear error for a missing camera, and reopening with backoff.

There is no camera on the test machines, but OpenCV opens a video file through the same
``VideoCapture`` the camera path uses, and reading past its end or moving it away is a device
that fails mid-stream for real.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from live_support import write_small_clip

from pipeline.errors import DeviceError
from pipeline.runner import Runner
from pipeline.sinks.stream import StreamSink
from pipeline.sources.camera import CameraSource, parse_device
from pipeline.sources.paced import PacedSource

N_FRAMES = 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_clip(tmp_path_factory.mktemp("camera") / "cam.mp4", N_FRAMES)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0", 0),
        ("12", 12),
        (3, 3),
        ("/dev/video2", "/dev/video2"),
        ("udp://1.2.3.4:5", "udp://1.2.3.4:5"),
    ],
)
def test_parse_device(spec: str | int, expected: int | str) -> None:
    assert parse_device(spec) == expected


@pytest.mark.parametrize("device", [7, "/dev/video63", "/no/such/stream.mp4"])
def test_missing_camera_is_one_clear_error(
    device: int | str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(DeviceError, match=f"camera {device} could not be opened; check"):
        CameraSource(device)
    _, err = capfd.readouterr()
    assert "WARN" not in err and "ERROR" not in err


def test_frames_are_rgb_at_the_requested_size(clip: Path) -> None:
    with CameraSource(str(clip), size=(160, 120)) as camera:
        frame = next(iter(camera))
    assert (camera.width, camera.height) == (160, 120)
    assert frame.image.shape == (120, 160, 3) and frame.pts is None
    # The face sprite sits on a muted background: red, not blue, dominates skin in RGB order.
    centre = frame.image[50:70, 55:75].reshape(-1, 3).mean(axis=0)
    assert centre[0] > centre[2]


def test_a_camera_that_ends_is_reopened(clip: Path) -> None:
    with CameraSource(str(clip)) as camera:
        frames = []
        for frame in camera:
            frames.append(frame)
            if len(frames) == 2 * N_FRAMES + 3:
                break
    assert camera.reopens == 2
    assert [f.index for f in frames] == list(range(2 * N_FRAMES + 3))


def test_a_camera_that_goes_away_is_reopened_with_backoff(clip: Path, tmp_path: Path) -> None:
    device = tmp_path / "device.mp4"
    device.write_bytes(clip.read_bytes())
    away = tmp_path / "unplugged.mp4"
    camera = CameraSource(str(device), backoff=(0.05, 0.2), reopen_timeout=5.0)
    frames = []
    with camera:
        for frame in camera:
            frames.append(frame)
            if len(frames) == 1:
                # Unplugged now, plugged back in 0.4 s later: several attempts must fail first.
                device.rename(away)
                threading.Timer(0.4, away.rename, args=(device,)).start()
            if len(frames) == 2 * N_FRAMES:
                break
    assert camera.reopens == 1
    gap = frames[N_FRAMES].time - frames[N_FRAMES - 1].time
    assert gap >= 0.3


def test_a_camera_that_never_comes_back_is_an_error(clip: Path, tmp_path: Path) -> None:
    device = tmp_path / "device.mp4"
    device.write_bytes(clip.read_bytes())
    with CameraSource(str(device), backoff=(0.05, 0.1), reopen_timeout=0.5) as camera:
        frames = iter(camera)
        next(frames)
        device.unlink()
        with pytest.raises(DeviceError, match=r"did not come back within 0\.5 s"):
            for _ in frames:
                pass


class _Sender:
    """facestyle streaming a looping clip to ``url`` on a thread, until stopped."""

    def __init__(self, clip: Path, url: str) -> None:
        self._source = PacedSource(clip, loop=True)
        self._sink = StreamSink(url, self._source.width, self._source.height, self._source.fps)
        self._runner = Runner(self._source, lambda frame: frame, [self._sink], policy="newest")
        self._thread = threading.Thread(target=self._runner.run)
        self._thread.start()

    def stop(self) -> None:
        self._runner.stop()
        self._thread.join()
        self._sink.close()
        self._source.close()


def test_a_network_stream_that_drops_is_reopened(clip: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"udp://127.0.0.1:{probe.getsockname()[1]}"
    senders = [_Sender(clip, url)]
    try:
        camera = CameraSource(url, stream_timeout=1.0, backoff=(0.2, 0.5), reopen_timeout=20)
        frames = []
        with camera:
            for frame in camera:
                frames.append(frame)
                if len(frames) == 10:
                    senders[0].stop()  # the stream drops; it comes back 1.5 s later
                    restart = threading.Timer(1.5, lambda: senders.append(_Sender(clip, url)))
                    restart.start()
                if camera.reopens and len(frames) >= 30:
                    break
        restart.join()
    finally:
        for sender in senders:
            sender.stop()
    assert camera.reopens >= 1
    assert [f.index for f in frames] == list(range(len(frames)))
    gaps = np.diff([f.time for f in frames])
    assert gaps.max() >= 1.0  # the silence, bridged without ending the session
    assert frames[-1].image.shape == (240, 320, 3)
