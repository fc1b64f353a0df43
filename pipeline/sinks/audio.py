"""Copy a media file's audio packets into an output container, untouched and interleaved.

Both writers of finished videos use this: :class:`~pipeline.sinks.file.FileSink` while it
encodes frames, and :func:`pipeline.segments.join_segments` while it joins rendered segments.
The packets are remuxed, never decoded, so the output's audio is the input's byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import av

from pipeline.errors import OutputError

__all__ = ["AudioCopy"]


class AudioCopy:
    """Adds one output stream per audio stream of ``source`` and feeds them its packets.

    Call :meth:`mux_until` with each video frame's time as it is written, so that audio and
    video stay interleaved and the muxer never buffers a whole stream in memory; then
    :meth:`mux_until` with ``None`` for the rest, and :meth:`close`.

    Args:
        output: the open output container; streams are added to it here.
        source: the media file whose audio is copied.
        name: the output's name, for messages.

    Raises:
        OutputError: the output container cannot hold the input's audio codec.
    """

    def __init__(self, output: av.container.OutputContainer, source: str | Path, name: Path):
        self._output = output
        self._input: av.container.InputContainer | None = av.open(str(source))
        try:
            inputs = self._input.streams.audio
            for stream in inputs:
                if stream.codec_context.name not in output.supported_codecs:
                    raise OutputError(
                        f"cannot copy the input's {stream.codec_context.name} audio into a "
                        f"{name.suffix} file; name the output .mkv (it takes any audio)"
                    )
            targets = {s.index: output.add_stream_from_template(s) for s in inputs}
        except BaseException:
            self.close()
            raise
        # demux() with no streams would read every stream: a file without audio has none.
        demuxed = self._input.demux(*inputs) if inputs else iter(())
        self._packets = (
            _retarget(packet, targets[packet.stream.index])
            for packet in demuxed
            if packet.dts is not None
        )

    def mux_until(self, seconds: float | None) -> None:
        """Copy packets up to ``seconds`` (one past it, so the audio is never behind the
        video), or all that are left when ``seconds`` is ``None``."""
        for packet in self._packets:
            ahead = seconds is not None and packet.pts is not None
            ahead = ahead and float(packet.pts * packet.time_base) >= seconds
            self._output.mux(packet)
            if ahead:
                break

    def close(self) -> None:
        """Close the input file; safe to call twice."""
        if self._input is not None:
            self._input.close()
            self._input = None


def _retarget(packet: av.Packet, stream: av.stream.Stream) -> av.Packet:
    """The same packet, addressed to an output stream (``mux`` rescales its timestamps)."""
    packet.stream = stream
    return packet
