"""Split a long video at keyframes into segments rendered apart, and join them back.

A segment is rendered from a keyframe (where decoding can start without the frames before
it) and its video is written alone; :func:`join_segments` remuxes the segments' packets into
one file, in order, with the input's own timestamps and its audio copied untouched, so the
result has the frames, timing and audio of a render of the whole file. Nothing is
re-encoded at the join.

Face tracking carries state from frame to frame (tracks, smoothing, the detection schedule),
so a segment starting cold would restyle its first frames differently from a whole render: a
seam. Each segment therefore starts ``overlap`` frames early, on a frame where the detector
runs in a whole render too, and drops those warm-up frames after processing them::

    frames   0 ........ 120 ........ 240 ........ 360
    seg 0    [write..............)
    seg 1          [warm)[write..............)          warm-up: processed, not written
    seg 2                       [warm)[write...........)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise, takewhile
from pathlib import Path

import av

from pipeline.atomic import partial_file, publish
from pipeline.errors import InputError, OutputError
from pipeline.frame import Frame
from pipeline.sinks.audio import AudioCopy
from pipeline.sinks.base import Sink
from pipeline.sources.video import Keyframe, VideoFileSource, video_stream

__all__ = [
    "Segment",
    "VideoIndex",
    "WarmUpSink",
    "join_segments",
    "plan_segments",
    "scan_video",
    "segment_frames",
]


@dataclass(frozen=True)
class VideoIndex:
    """Every frame's timestamp and where decoding can start, read without decoding.

    Attributes:
        pts: ``pts[i]`` is frame ``i``'s presentation timestamp in ``time_base`` units, in
            presentation order, strictly increasing.
        keyframes: the frames decoding can start at, in order; the first is frame 0.
        time_base: unit of ``pts`` in seconds.
        has_audio: the file carries an audio stream.
    """

    pts: tuple[int, ...]
    keyframes: tuple[Keyframe, ...]
    time_base: Fraction
    has_audio: bool

    @property
    def frames(self) -> int:
        return len(self.pts)


def scan_video(path: str | Path) -> VideoIndex:
    """Read the timestamps and keyframes of a video file's video stream (:func:`video_stream`).

    Only packets are read (a few seconds for an hour of video); the first frame is decoded
    once to check that the file is a usable video at all.

    Raises:
        InputNotFoundError, InputError: as :class:`VideoFileSource` for a missing or unusable
            file, and for a stream whose packets carry no timestamps.
    """
    path = Path(path)
    VideoFileSource(path).close()  # the same checks and messages as a render
    with av.open(str(path)) as container:
        stream = video_stream(container)
        stamps: list[int] = []
        starts: set[int] = set()
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                if packet.pts is None:
                    raise InputError(
                        f"{path} has video packets without timestamps; re-export it, e.g. "
                        f"`ffmpeg -i {path.name} -c copy fixed.mkv`"
                    )
                stamps.append(packet.pts)
                if packet.is_keyframe:
                    starts.add(packet.pts)
        except av.error.FFmpegError as error:
            raise InputError(f"{path} is damaged: {error.strerror}") from error
        has_audio = bool(container.streams.audio)
        time_base = stream.time_base
    stamps.sort()
    if len(set(stamps)) != len(stamps):
        raise InputError(f"{path} has two frames with the same timestamp; re-export it")
    keyframes = tuple(Keyframe(i, pts) for i, pts in enumerate(stamps) if pts in starts)
    if not keyframes or keyframes[0].index != 0:
        raise InputError(f"{path} does not start with a keyframe; re-export it")
    return VideoIndex(tuple(stamps), keyframes, time_base, has_audio)


@dataclass(frozen=True)
class Segment:
    """A run of frames rendered on its own.

    Frames ``warm`` to ``start - 1`` are processed but not written (they warm the tracker
    up); frames ``start`` to ``stop - 1`` are written.

    Attributes:
        number: 0-based position among the clip's segments.
        seek: the keyframe decoding begins at (at or before ``warm``); ``None`` for the
            start of the file.
        warm, start, stop: frame indices, ``warm <= start < stop``.
    """

    number: int
    seek: Keyframe | None
    warm: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        """Frames written."""
        return self.stop - self.start


def plan_segments(
    index: VideoIndex, length: int, *, overlap: int = 30, align: int = 1
) -> tuple[Segment, ...]:
    """Cut a video into segments of at least ``length`` frames, each starting at a keyframe.

    A video shorter than two segments is one segment; the last segment takes the rest (up to
    twice ``length`` less one frame).

    Args:
        index: the video's frames (see :func:`scan_video`).
        length: fewest frames per segment; 0 means never split.
        overlap: warm-up frames rendered and dropped before each segment but the first.
        align: warm-up starts on a multiple of this (the tracker's ``detect_every``), so the
            detector runs on the same frames as in a whole render.

    >>> index = VideoIndex(tuple(range(100)), tuple(Keyframe(i, i) for i in (0, 40, 80)),
    ...                    Fraction(1, 25), False)
    >>> [(s.warm, s.start, s.stop) for s in plan_segments(index, 30, overlap=12, align=10)]
    [(0, 0, 40), (20, 40, 100)]
    """
    if length < 0 or overlap < 0 or align < 1:
        raise ValueError(
            f"plan_segments: expected length >= 0, overlap >= 0, align >= 1, got "
            f"{length}, {overlap}, {align}"
        )
    total = index.frames
    if length == 0 or total < 2 * length:
        return (Segment(0, None, 0, 0, total),)
    starts = [0]
    for keyframe in index.keyframes:
        if keyframe.index - starts[-1] >= length and total - keyframe.index >= length:
            starts.append(keyframe.index)
    segments = []
    for number, (start, stop) in enumerate(pairwise([*starts, total])):
        warm = max(0, (start - overlap) // align * align)
        seek = max((k for k in index.keyframes if k.index <= warm), key=lambda k: k.index)
        segments.append(Segment(number, seek if seek.index else None, warm, start, stop))
    return tuple(segments)


def segment_frames(source: Iterable[Frame], segment: Segment) -> Iterator[Frame]:
    """The frames of ``source`` a segment processes: ``warm`` up to ``stop``."""
    frames = takewhile(lambda frame: frame.index < segment.stop, source)
    return (frame for frame in frames if frame.index >= segment.warm)


class WarmUpSink(Sink):
    """Passes frames from index ``start`` on to ``sink``; drops the warm-up frames before.

    Closing or aborting it closes or aborts ``sink``.
    """

    def __init__(self, sink: Sink, start: int) -> None:
        self.sink = sink
        self.start = start

    def write(self, frame: Frame) -> None:
        if frame.index >= self.start:
            self.sink.write(frame)

    def close(self) -> None:
        self.sink.close()

    def abort(self) -> None:
        self.sink.abort()


def join_segments(
    parts: Sequence[Path],
    segments: Sequence[Segment],
    index: VideoIndex,
    output: str | Path,
    *,
    audio_from: str | Path | None = None,
) -> Path:
    """Remux rendered segments into one video with the input's timestamps and audio.

    Each part's packets are given the input's own timestamps by position: the ``k``-th
    frame of a part that holds frames ``start`` to ``stop - 1`` is shown at
    ``index.pts[start + k]``. So a part may come from an encoder that knows nothing of the
    input's timing (a system ffmpeg fed raw frames). Decode timestamps are rebuilt for the
    whole, because each part's encoder started its own.

    Args:
        parts: the segments' video files, one video stream each, same codec parameters.
        segments: what each part holds, in order, covering every frame of ``index`` once.
        index: the input's frames (see :func:`scan_video`).
        output: the video to write; it appears only when complete.
        audio_from: the media file whose audio is copied in (the input).

    Raises:
        InputError: a part holds another number of frames than its segment.
        OutputError: the parts' codec parameters differ, the container cannot hold the
            codec, or the output cannot be written.
    """
    output = Path(output)
    bounds = [(s.start, s.stop) for s in segments]
    edges = [0, *(s.stop for s in segments)]
    if len(parts) != len(segments) or bounds != list(pairwise(edges)) or edges[-1] != index.frames:
        raise ValueError("join_segments: the segments must cover every frame once, in order")
    shown = [_frame_order(part, segment) for part, segment in zip(parts, segments, strict=True)]
    positions = [frame for part in shown for frame in part]
    # How many places a packet may come ahead of its frame's turn (the encoder's reorder
    # delay); giving each packet the pts of the frame that many places earlier as its dts
    # keeps every dts at or before its pts and strictly increasing across the joins.
    depth = max([0, *(position - frame for position, frame in enumerate(positions))])
    step = index.pts[1] - index.pts[0] if index.frames > 1 else 1
    decode_times = [
        index.pts[k] if k >= 0 else index.pts[0] + k * step
        for k in range(-depth, len(positions) - depth)
    ]
    inputs: list[av.container.InputContainer] = []
    audio = None
    try:
        with partial_file(output) as partial:
            inputs.extend(av.open(str(part)) for part in parts)
            streams = [container.streams.video[0] for container in inputs]
            first = streams[0].codec_context
            for part, stream in zip(parts, streams, strict=True):
                context = stream.codec_context
                if (context.name, context.extradata) != (first.name, first.extradata):
                    raise OutputError(
                        f"cannot join {part.name}: it was encoded with other parameters than "
                        f"{parts[0].name}"
                    )
            with av.open(str(partial), "w") as container:
                if first.name not in container.supported_codecs:
                    raise OutputError(
                        f"a {output.suffix} file cannot hold {first.name} video; use "
                        "--container mkv or mov"
                    )
                video = container.add_stream_from_template(streams[0])
                video.time_base = index.time_base
                if audio_from is not None:
                    audio = AudioCopy(container, audio_from, output)
                packets = (p for c, s in zip(inputs, streams, strict=True) for p in _packets(c, s))
                for packet, frame, dts in zip(packets, positions, decode_times, strict=True):
                    duration = packet.duration * packet.time_base if packet.duration else None
                    packet.stream = video
                    packet.time_base = index.time_base
                    packet.pts, packet.dts = index.pts[frame], dts
                    if duration is not None:
                        packet.duration = round(duration / index.time_base)
                    if audio is not None:
                        audio.mux_until(float(dts * index.time_base))
                    container.mux(packet)
                if audio is not None:
                    audio.mux_until(None)
            publish(partial, output)
    except OSError as error:
        if isinstance(error, OutputError):
            raise
        raise OutputError(f"cannot write {output}: {error.strerror or error}") from error
    finally:
        if audio is not None:
            audio.close()
        for container in inputs:
            container.close()
    return output


def _packets(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.Packet]:
    """A video stream's packets in decode order, without the demuxer's empty end marker."""
    return (packet for packet in container.demux(stream) if packet.size and packet.pts is not None)


def _frame_order(part: Path, segment: Segment) -> list[int]:
    """The frame index each of ``part``'s packets holds, in decode order.

    Raises:
        InputError: ``part`` holds another number of frames than ``segment``.
    """
    with av.open(str(part)) as container:
        stamps = [packet.pts for packet in _packets(container, container.streams.video[0])]
    if len(stamps) != segment.frames:
        raise InputError(
            f"segment {segment.number} holds {len(stamps)} frames, expected {segment.frames} "
            f"(frames {segment.start}-{segment.stop - 1}); the input may have changed"
        )
    rank = {pts: segment.start + r for r, pts in enumerate(sorted(stamps))}
    return [rank[pts] for pts in stamps]
