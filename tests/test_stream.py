"""The MPEG-TS stream output, read back over loopback UDP by PyAV as a player would."""

from __future__ import annotations

import socket
import threading

import av
import numpy as np
import pytest
from live_support import write_small_clip

from pipeline.errors import OutputError
from pipeline.sinks.stream import StreamSink
from pipeline.sources.video import VideoFileSource

N_FRAMES = 30


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list:
    clip = write_small_clip(tmp_path_factory.mktemp("stream") / "clip.mp4", N_FRAMES)
    with VideoFileSource(clip) as source:
        return list(source)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-9))


def test_stream_reads_back_over_udp(frames: list) -> None:
    port = _free_udp_port()
    received: list[av.VideoFrame] = []
    failures: list[BaseException] = []
    listening = threading.Event()

    def player() -> None:
        try:
            url = f"udp://127.0.0.1:{port}?timeout=1000000&fifo_size=1000000&overrun_nonfatal=1"
            listening.set()
            with av.open(url, format="mpegts", timeout=10) as container:
                for decoded in container.decode(video=0):
                    received.append(decoded)
                    if len(received) == N_FRAMES:
                        break
        except av.error.FFmpegError as error:
            # The sender closing ends the stream with a timeout; frames read so far count.
            if not received:
                failures.append(error)

    reader = threading.Thread(target=player)
    reader.start()
    listening.wait()
    height, width = frames[0].image.shape[:2]
    with StreamSink(f"udp://127.0.0.1:{port}", width, height, 30) as sink:
        assert "pkt_size=1316" in sink.url
        for frame in frames:
            sink.write(frame)
    reader.join(15)
    assert not failures and not reader.is_alive()
    assert len(received) >= N_FRAMES - 2
    # Every frame that arrived is the frame that was sent at that time.
    for decoded in received:
        index = round(decoded.time * 30)
        assert _psnr(decoded.to_ndarray(format="rgb24"), frames[index].image) > 30


@pytest.mark.parametrize(
    ("url", "size", "message"),
    [
        ("/tmp/out.ts", (320, 240), "not a stream URL"),
        ("http://example.com/x", (320, 240), "not a stream URL"),
        ("udp://127.0.0.1:9", (321, 240), "must be even"),
    ],
)
def test_bad_stream_settings_are_output_errors(
    url: str, size: tuple[int, int], message: str
) -> None:
    with pytest.raises(OutputError, match=message):
        StreamSink(url, *size, 30)


def test_wrong_frame_size_is_refused(frames: list) -> None:
    with (
        StreamSink(f"udp://127.0.0.1:{_free_udp_port()}", 640, 480, 30) as sink,
        pytest.raises(ValueError, match="expected 640x480"),
    ):
        sink.write(frames[0])
