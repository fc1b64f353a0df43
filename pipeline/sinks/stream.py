"""A low-latency local network stream (H.264 in MPEG-TS) that OBS, VLC or ffplay can open.

Default use is UDP on loopback: ``udp://127.0.0.1:9999``. In OBS add a Media Source with
"Local File" unticked and input ``udp://127.0.0.1:9999``; with VLC open that network URL
(``udp://@:9999``); with ffplay run ``ffplay -fflags nobuffer udp://127.0.0.1:9999``.

The encoder is tuned for delay, not size: x264 ``ultrafast`` + ``zerolatency`` (no lookahead,
no B-frames) and a keyframe every second so a player that joins late starts within a second.
Frames are timed by their capture time (``Frame.time``), so frames the runner dropped
show as gaps in time rather than as the stream running fast.
"""

from __future__ import annotations

from fractions import Fraction
from urllib.parse import urlsplit

import av

from pipeline.errors import OutputError
from pipeline.frame import Frame
from pipeline.sinks.base import Sink
from pipeline.sinks.picture import video_frame

__all__ = ["StreamSink"]

# MPEG-TS packets are 188 bytes; 7 of them fill an Ethernet-sized UDP datagram.
_UDP_PACKET_SIZE = 1316
_TIME_BASE = Fraction(1, 1000)
_SCHEMES = ("udp", "srt", "tcp", "rtp")


def _with_packet_size(url: str) -> str:
    if urlsplit(url).scheme != "udp" or "pkt_size=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}pkt_size={_UDP_PACKET_SIZE}"


class StreamSink(Sink):
    """Encodes frames to H.264 and sends them as MPEG-TS to a URL.

    Args:
        url: where to send, e.g. ``udp://127.0.0.1:9999`` (``pkt_size=1316`` is added for
            UDP), ``srt://127.0.0.1:9000?mode=listener``, ``tcp://127.0.0.1:9000?listen=1``.
        width, height: frame size in pixels (even).
        fps: nominal frame rate, used for the keyframe interval and rate control.
        crf: x264 quality (lower is better and bigger).

    Raises:
        OutputError: the URL is not a stream URL or cannot be opened.
    """

    def __init__(self, url: str, width: int, height: int, fps: float, *, crf: int = 23) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise OutputError(
                f"{url!r} is not a stream URL; give one of {', '.join(s + '://' for s in _SCHEMES)}"
                ", e.g. udp://127.0.0.1:9999"
            )
        if width % 2 or height % 2:
            raise OutputError(f"stream size must be even for H.264, got {width}x{height}")
        self.url = _with_packet_size(url)
        self.width, self.height = width, height
        try:
            self._container = av.open(
                self.url, "w", format="mpegts", options={"flush_packets": "1"}, timeout=5.0
            )
        except (av.error.FFmpegError, OSError) as error:
            raise OutputError(f"cannot open stream {url}: {error}; check the URL") from error
        gop = max(1, round(fps))
        self._stream = self._container.add_stream(
            "libx264",
            rate=Fraction(fps).limit_denominator(1001),
            options={"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "crf": str(crf)},
        )
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = _TIME_BASE
        self._first_time: float | None = None
        self._last_pts = -1
        self._open = True

    def write(self, frame: Frame) -> None:
        if (frame.width, frame.height) != (self.width, self.height):
            raise ValueError(
                f"StreamSink: expected {self.width}x{self.height} frames, got "
                f"{frame.width}x{frame.height}"
            )
        if self._first_time is None:
            self._first_time = frame.time
        # Timestamps must rise strictly; two frames within a millisecond get adjacent ones.
        pts = max(round((frame.time - self._first_time) / _TIME_BASE), self._last_pts + 1)
        self._last_pts = pts
        video = video_frame(frame.image, self._stream.pix_fmt)
        video.pts, video.time_base = pts, _TIME_BASE
        self._send(self._stream.encode(video))

    def _send(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except (av.error.FFmpegError, OSError) as error:
            raise OutputError(f"stream {self.url} stopped accepting data: {error}") from error

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            self._send(self._stream.encode())
        finally:
            self._container.close()

    def abort(self) -> None:
        """A stream has nothing to discard: stop sending without flushing the encoder."""
        if self._open:
            self._open = False
            self._container.close()
