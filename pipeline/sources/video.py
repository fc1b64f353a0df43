"""Frames from any video file FFmpeg reads (mp4, mov, mkv, webm, ...), through PyAV.

Each frame keeps the stream's own ``pts`` and time base, so variable-frame-rate input keeps
its timing, and rotation metadata (the container's display matrix) is applied to the pixels,
so a phone clip shot upright comes out upright.

A truncated or damaged file is an error, not a shorter video: decoding stops at the first
frame that cannot be read, or when the stream ends before the frame count its header
promises, and :class:`~pipeline.errors.InputError` says so. A renderer writing to a temporary
file then discards it, so a damaged input never turns into a silently shortened output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.codec.hwaccel import HWAccel

from pipeline.errors import DeviceError, InputError, InputNotFoundError
from pipeline.frame import Frame
from pipeline.sources.base import Source
from pipeline.video_engines import HARDWARE_DECODE_DEVICE, nvdec_error

__all__ = ["Keyframe", "VideoFileSource", "rotate_upright", "video_stream"]

_REPAIR_HINT = "re-export it, or try `ffmpeg -i IN -c copy repaired.mkv`"


def rotate_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation to decoded pixels.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB as stored in the stream.
        rotation: counter-clockwise degrees the picture must be turned to be shown upright,
            as PyAV reports it in ``VideoFrame.rotation`` (a multiple of 90).

    Returns:
        ``(H, W, 3)`` or ``(W, H, 3)`` ``uint8`` RGB, C-contiguous.
    """
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


@dataclass(frozen=True)
class Keyframe:
    """A frame decoding can start at (see :func:`pipeline.segments.scan_video`).

    Attributes:
        index: its 0-based position in presentation order.
        pts: its presentation timestamp in the video stream's time base.
    """

    index: int
    pts: int


def video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The container's first video stream that is moving pictures, if it has one.

    Cover art (a song's album picture, a video's thumbnail) is stored as a video stream of one
    picture marked ``attached_pic``; taken for the video, it made a song with a cover a
    "truncated" video of one frame.
    """
    attached = av.stream.Disposition.attached_pic
    return next((s for s in container.streams.video if not s.disposition & attached), None)


def _stream_duration(stream: av.VideoStream) -> float | None:
    """The video stream's duration in seconds as its header states it, if it does."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    # Matroska keeps per-stream durations as an "HH:MM:SS.nnnnnnnnn" tag.
    tag = stream.metadata.get("DURATION")
    if tag:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def _nvdec() -> HWAccel:
    # Decoded frames are brought to the host: tracking and landmarks run on the CPU.
    return HWAccel(device_type=HARDWARE_DECODE_DEVICE, allow_software_fallback=True)


class VideoFileSource(Source):
    """Decodes the video stream of a file (:func:`video_stream`) into RGB :class:`Frame` objects.

    Args:
        path: the video file.
        start: begin decoding at this keyframe instead of the first frame; frames keep their
            indices and times in the whole stream, so a segment rendered from here is timed
            as in a render of the whole file.
        hardware: decode on the GPU's video engine (NVDEC, see
            :mod:`pipeline.video_engines`); a codec it lacks is decoded in software.

    Raises:
        InputNotFoundError: the file does not exist.
        InputError: the file is empty, not a video, or has no video stream (audio only), or
            decoding does not start at ``start``.
        DeviceError: ``hardware`` on a machine where NVDEC does not open.
    """

    def __init__(
        self, path: str | Path, *, start: Keyframe | None = None, hardware: bool = False
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputNotFoundError(f"{self.path}: no such file; check the path")
        if self.path.is_dir():
            raise InputError(f"{self.path} is a folder, not a video file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path} is empty (0 bytes); give a video file with frames in it")
        try:
            self._container = av.open(str(self.path), hwaccel=_nvdec() if hardware else None)
        except av.error.FFmpegError as error:
            if hardware and nvdec_error() is not None:
                raise DeviceError(
                    f"{self.path}: {nvdec_error()}; decode it with --decoder pyav"
                ) from error
            raise InputError(
                f"{self.path} is not a video FFmpeg can read ({error.strerror}); "
                f"give an mp4, mov, mkv or webm file, or if it is damaged, {_REPAIR_HINT}"
            ) from error
        stream = video_stream(self._container)
        if stream is None:
            audio_only = bool(self._container.streams.audio)
            self._container.close()
            if audio_only:
                raise InputError(f"{self.path} is audio only; give a file with a video stream")
            raise InputError(
                f"{self.path} has no video stream FFmpeg can find: it is not a video, or it is "
                f"damaged ({_REPAIR_HINT})"
            )
        stream.thread_type = "AUTO"
        self._stream = stream
        self.time_base: Fraction | None = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else 25.0
        self.frame_count = stream.frames or None
        self._duration = _stream_duration(stream)
        self._decoded = self._decode(start or Keyframe(0, 0))
        # The first frame tells the displayed size (rotation is per-frame side data); it is
        # kept and yielded first rather than re-read, since damaged files may not seek.
        try:
            if start is not None:
                self._seek(start)
            self._first = next(self._decoded, None)
            if self._first is None:
                raise InputError(
                    f"{self.path} has a video stream but no frame decodes; {_REPAIR_HINT}"
                )
            if start is not None and self._first.pts != start.pts:
                raise InputError(
                    f"{self.path}: decoding from frame {start.index} began at pts "
                    f"{self._first.pts}, not {start.pts}; this file cannot be split, render it "
                    "whole"
                )
        except BaseException:
            self._container.close()
            raise
        self.height, self.width = self._first.image.shape[:2]

    def _seek(self, start: Keyframe) -> None:
        try:
            self._container.seek(start.pts, stream=self._stream)
        except av.error.FFmpegError as error:
            raise InputError(
                f"{self.path} cannot seek to frame {start.index} ({error.strerror}); render it "
                f"whole, or if it is damaged, {_REPAIR_HINT}"
            ) from error

    @property
    def has_audio(self) -> bool:
        """Whether the file carries at least one audio stream (for a sink to copy)."""
        return bool(self._container.streams.audio)

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise RuntimeError(f"VideoFileSource({self.path}) can be iterated only once")
        first, self._first = self._first, None
        yield first
        yield from self._decoded

    def _decode(self, start: Keyframe) -> Iterator[Frame]:
        index, end = start.index, 0.0
        frames = self._container.decode(self._stream)
        while True:
            try:
                decoded = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as error:
                raise InputError(
                    f"{self.path} is damaged or truncated: decoding stopped after {index} "
                    f"frames ({error.strerror}); {_REPAIR_HINT}"
                ) from error
            image = rotate_upright(decoded.to_ndarray(format="rgb24"), decoded.rotation)
            time = float(decoded.time) if decoded.time is not None else index / self.fps
            yield Frame(image, time, index, decoded.pts, self.time_base)
            index += 1
            shown = decoded.duration * self.time_base if decoded.duration else 1 / self.fps
            end = time + float(shown)
        if self.frame_count is not None and index < self.frame_count:
            raise InputError(
                f"{self.path} is truncated: {index} of the {self.frame_count} frames its "
                f"header lists decode; {_REPAIR_HINT}"
            )
        # Containers without a frame count (mkv, webm) still state the stream's duration; a
        # margin of two frames keeps rounding in real files from being taken for damage.
        if self._duration is not None and end < self._duration - 2.0 / self.fps:
            raise InputError(
                f"{self.path} is truncated: video ends at {end:.2f} s of the "
                f"{self._duration:.2f} s its header states; {_REPAIR_HINT}"
            )

    def close(self) -> None:
        self._container.close()
