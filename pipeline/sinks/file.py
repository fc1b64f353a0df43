"""Encode frames into a video file with PyAV, copying the input's audio through untouched.

What a user gets out equals what went in apart from the faces: the same size, the same number
of frames with the same timestamps (each frame's ``pts`` is written in the input's time base,
so variable frame rate survives), and the same audio packets, remuxed without re-encoding.

The file is written under a temporary name in the output's own folder (so the final rename is
atomic) and renamed only when everything is flushed; :meth:`FileSink.abort`, which the context
manager calls on any exception including Ctrl-C, removes the temporary file, so a failed
render never leaves a broken file under the final name.
"""

from __future__ import annotations

import contextlib
import io
from fractions import Fraction
from pathlib import Path

import av

from pipeline.atomic import discard, publish, reserve_partial
from pipeline.errors import DeviceError, OutputError
from pipeline.frame import Frame
from pipeline.sinks.audio import AudioCopy
from pipeline.sinks.base import Sink
from pipeline.sinks.picture import video_frame
from pipeline.sources.base import Source
from pipeline.video_engines import HARDWARE_ENCODER

__all__ = ["CONTAINERS", "DEFAULT_CRF", "DEFAULT_PRESET", "FileSink", "audio_misfit"]

# CRF fixes the quality; the preset trades encoding time for file size. 18 looks visually
# lossless, and "veryfast" costs a fraction of "medium"'s time on a 2-core CPU for files
# about a third larger: the render's speed matters more here than its size.
DEFAULT_CRF = 18
DEFAULT_PRESET = "veryfast"

# Suffix -> FFmpeg muxer of the containers render and batch write: those that keep the input's
# timestamps (AVI, for one, reorders them) and that the tests cover.
_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
CONTAINERS = tuple(_FORMATS)
"""The suffixes of the videos render and batch write."""


def _write_failed(path: Path, error: Exception) -> OutputError:
    """An :class:`OutputError` for ``path`` that says what to do about common causes."""
    errno = getattr(error, "errno", None)
    if errno == 28:  # ENOSPC; PyAV's errors carry the same number as OSError's
        advice = "the disk is full; free some space or write to another disk"
    elif errno == 13:  # EACCES
        advice = "permission denied; choose a folder you can write to"
    else:
        advice = str(error)
    return OutputError(f"cannot write {path}: {advice}")


class FileSink(Sink):
    """Writes RGB frames to a video file.

    Args:
        path: final output file; the container follows its suffix (``.mp4``, ``.mkv``,
            ``.mov``; ``.webm`` is encoded VP9, the rest H.264).
        width, height: frame size; odd sizes are kept exactly by encoding 4:4:4 chroma
            (4:2:0 needs even sides), which every FFmpeg-based player shows but some hardware
            decoders do not.
        fps: nominal frame rate (rate control, and the time base of frames without ``pts``).
        time_base: unit of the frames' ``pts``; give the source's so timestamps are copied
            exactly. ``None`` means ``1/fps``.
        audio_from: a media file whose audio streams are copied into the output.
        crf: x264 constant-rate factor, 0 (lossless) to 51; 18 looks visually lossless (NVENC
            takes it as its constant-quality target, VP9 on its own scale).
        preset: x264 speed/size trade-off, ``ultrafast`` ... ``veryslow``; slower presets
            give smaller files of the same quality (NVENC: the matching ``p1`` ... ``p7``).
        codec: FFmpeg encoder name; ``None`` picks by suffix (see :func:`encoder_for`).

    Raises:
        OutputError: the output is a folder, its folder does not exist or cannot be written,
            the suffix names no container FFmpeg knows, or the disk fills up.
        DeviceError: (from :meth:`write`) NVENC does not start on the first frame.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        *,
        fps: float = 25.0,
        time_base: Fraction | None = None,
        audio_from: str | Path | None = None,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        codec: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.fps = fps
        self.time_base = time_base or Fraction(1) / Fraction(fps).limit_denominator(100_000)
        self.frames_written = 0
        self._last_pts: int | None = None
        self._audio: AudioCopy | None = None
        self._tmp: Path | None = None
        try:
            # Named before it exists, so that abort() deletes it whenever the sink is stopped.
            reserve_partial(self.path, claim=lambda path: setattr(self, "_tmp", path))
            self._container = av.open(str(self._tmp), "w")
            self._video = self._add_video(codec or encoder_for(self.path), crf, preset)
            if audio_from is not None:
                self._audio = AudioCopy(self._container, audio_from, self.path)
        except BaseException as error:
            self.abort()
            if isinstance(error, (OSError, ValueError)) and not isinstance(error, OutputError):
                raise _write_failed(self.path, error) from error
            raise

    @classmethod
    def matching(
        cls,
        path: str | Path,
        source: Source,
        *,
        audio_from: str | Path | None = None,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        hardware: bool = False,
    ) -> FileSink:
        """A sink with ``source``'s size, frame rate and time base, so its pts carry over;
        ``hardware`` encodes on the GPU's video engine (see :func:`encoder_for`)."""
        return cls(
            path,
            source.width,
            source.height,
            fps=source.fps,
            time_base=source.time_base,
            audio_from=audio_from,
            crf=crf,
            preset=preset,
            codec=encoder_for(Path(path), hardware),
        )

    def _add_video(self, codec: str, crf: int, preset: str) -> av.VideoStream:
        even = self.width % 2 == 0 and self.height % 2 == 0
        options = _encoder_options(codec, crf, preset)
        rate = Fraction(self.fps).limit_denominator(100_000)
        stream = self._container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        return stream

    def write(self, frame: Frame) -> None:
        """Encode one frame; its ``pts`` is kept when it is in this sink's time base."""
        if frame.image.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"FileSink.write: expected a {self.width}x{self.height} frame, "
                f"got {frame.width}x{frame.height}"
            )
        if frame.pts is not None and frame.time_base == self.time_base:
            pts = frame.pts
        else:
            pts = round(frame.time / self.time_base)
        # Encoders refuse a timestamp that does not increase; only a damaged input (or
        # rounding of frames without pts) can produce one, and one tick later is the fix.
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        picture = video_frame(frame.image, self._video.pix_fmt)
        picture.pts = pts
        picture.time_base = self.time_base
        try:
            if self._audio is not None:
                self._audio.mux_until(frame.time)
            self._container.mux(self._video.encode(picture))
        except (OSError, av.error.FFmpegError) as error:
            context = self._video.codec_context
            if context.name == HARDWARE_ENCODER and not context.is_open:
                # The encoder opens at the first frame; a GPU that opened it for the probe
                # may still refuse another session (consumer cards run a few at once).
                raise DeviceError(
                    f"NVENC did not start encoding {self.path} "
                    f"({getattr(error, 'strerror', None) or error}): render fewer videos at "
                    "once on this GPU, or use --encoder pyav"
                ) from error
            raise _write_failed(self.path, error) from error
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio, and move the file into place."""
        if self._tmp is None:
            return
        try:
            self._container.mux(self._video.encode())
            if self._audio is not None:
                self._audio.mux_until(None)
            self._container.close()
            self._close_audio()
            publish(self._tmp, self.path)
        except BaseException as error:
            self.abort()
            if isinstance(error, OSError):
                raise _write_failed(self.path, error) from error
            raise
        self._tmp = None

    def abort(self) -> None:
        """Stop and delete the temporary file; the final name is never touched."""
        if self._tmp is None:
            return
        container = getattr(self, "_container", None)
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()
        self._close_audio()
        discard(self._tmp)
        self._tmp = None

    def _close_audio(self) -> None:
        if self._audio is not None:
            self._audio.close()


def audio_misfit(source: str | Path, suffix: str) -> str | None:
    """The codec of the first audio stream of ``source`` that a file with ``suffix`` (one of
    :data:`CONTAINERS`) cannot hold, or ``None`` when all of its audio fits; found from the
    files' headers, before any work."""
    with (
        av.open(str(source)) as media,
        av.open(io.BytesIO(), "w", format=_FORMATS[suffix.lower()]) as probe,
    ):
        names = (stream.codec_context.name for stream in media.streams.audio)
        return next((name for name in names if name not in probe.supported_codecs), None)


def encoder_for(path: Path, hardware: bool = False) -> str:
    """The video encoder a file name calls for: VP9 for WebM (it allows nothing else worth
    using), H.264 for every other container: x264, or NVENC when ``hardware``."""
    if path.suffix.lower() == ".webm":
        return "libvpx-vp9"
    return HARDWARE_ENCODER if hardware else "libx264"


# x264's presets to NVENC's p1 (fastest) ... p7 (best): the same place on each scale.
_NVENC_PRESETS = {
    "ultrafast": "p1",
    "superfast": "p1",
    "veryfast": "p2",
    "faster": "p3",
    "fast": "p4",
    "medium": "p5",
    "slow": "p6",
    "slower": "p7",
    "veryslow": "p7",
}


def _encoder_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    if codec == "libx264":
        return {"crf": str(crf), "preset": preset}
    if codec == "libvpx-vp9":
        # VP9's quality scale runs 0-63 and needs a zero bitrate to mean "quality only";
        # realtime with cpu-used 8 is its fast mode, close to x264 veryfast in cost.
        return {
            "crf": str(round(crf * 63 / 51)),
            "b:v": "0",
            "deadline": "realtime",
            "cpu-used": "8",
        }
    if codec == HARDWARE_ENCODER:
        # Constant quality on x264's 0-51 scale: variable bitrate with a quality target and no
        # bitrate cap (FFmpeg's default cap, 200 kb/s, would override the target).
        return {
            "preset": _NVENC_PRESETS.get(preset, preset),
            "tune": "hq",
            "rc": "vbr",
            "cq": str(crf),
            "b": "0",
        }
    return {}
