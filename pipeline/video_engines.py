"""Which engines decode and encode video files: PyAV's software codecs, or the GPU's own video
engines (NVIDIA's NVDEC and NVENC).

PyAV's wheels carry an FFmpeg built with NVDEC (``hwaccel`` ``cuda``) and NVENC
(``h264_nvenc``), so the GPU's engines are reached through the same
:class:`~pipeline.sources.video.VideoFileSource` and :class:`~pipeline.sinks.file.FileSink`
as the CPU's: timestamps, rotation, audio copy and the atomic write are the same code, and no
system ffmpeg is needed. On a GPU host they take a 1080p frame's decoding (11-20 ms of CPU
time) and encoding (17-29 ms) off the cores that the per-face work needs.

Whether an engine works is known only by opening it: a driver, a container or a GPU may lack
one. Each is tried once per process (:func:`nvdec_error`, :func:`nvenc_error`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import av

from pipeline.errors import DeviceError, UsageError

__all__ = [
    "DECODERS",
    "ENCODERS",
    "HARDWARE_DECODE_DEVICE",
    "HARDWARE_ENCODER",
    "VideoEngines",
    "check_hardware_output",
    "choose_video_engines",
    "nvdec_error",
    "nvenc_error",
    "open_nvenc",
]

DECODERS = ("auto", "pyav", "nvdec")
"""``--decoder`` values: ``auto`` (NVDEC when the restyling runs on CUDA and NVDEC opens,
else PyAV's software decoder), ``pyav``, ``nvdec`` (or an error saying why not)."""

ENCODERS = ("auto", "pyav", "nvenc")
"""``--encoder`` values: ``auto`` (NVENC when the restyling runs on CUDA and NVENC opens,
else PyAV's x264), ``pyav``, ``nvenc`` (or an error saying why not)."""

HARDWARE_ENCODER = "h264_nvenc"
"""The GPU encoder: H.264, which every container render writes holds but WebM (VP9 there)."""

HARDWARE_DECODE_DEVICE = "cuda"
"""The FFmpeg hardware device type NVDEC decodes through."""


@cache
def nvdec_error() -> str | None:
    """Why NVDEC cannot decode on this machine, or ``None`` when it can (tried once)."""
    from av.codec.hwaccel import HWAccel

    try:
        HWAccel(device_type=HARDWARE_DECODE_DEVICE).create(av.Codec("h264", "r"))
    except (av.error.FFmpegError, OSError, ValueError) as error:
        return f"NVDEC does not open on this machine ({_reason(error)})"
    return None


def open_nvenc(options: dict[str, str] | None = None) -> None:
    """Open NVENC on a small frame size with encoder ``options``, and let it go.

    Raises:
        av.error.FFmpegError: it does not open; FFmpeg parses ``options`` first, so a value
            it does not take is ``EINVAL`` whether or not there is a GPU.
    """
    context = av.CodecContext.create(HARDWARE_ENCODER, "w")
    context.width, context.height = 256, 256
    context.pix_fmt = "yuv420p"
    context.time_base = Fraction(1, 25)
    context.options = options or {}
    context.open()


@cache
def nvenc_error() -> str | None:
    """Why NVENC cannot encode on this machine, or ``None`` when it can (tried once)."""
    try:
        open_nvenc()
    except (av.error.FFmpegError, OSError, ValueError) as error:
        return f"NVENC ({HARDWARE_ENCODER}) does not open on this machine ({_reason(error)})"
    return None


def _reason(error: Exception) -> str:
    # FFmpeg says "Operation not permitted" where there is no NVIDIA GPU or driver at all.
    return f"{getattr(error, 'strerror', None) or error}; is there an NVIDIA GPU and driver?"


@dataclass(frozen=True)
class VideoEngines:
    """How a render's video file is decoded and encoded.

    Attributes:
        hardware_decode: through NVDEC (a codec NVDEC lacks falls back to software).
        hardware_encode: H.264 through NVENC (a WebM output stays VP9 in software).
    """

    hardware_decode: bool = False
    hardware_encode: bool = False

    def describe(self) -> str:
        """One phrase for a summary line, e.g. ``"decoded by NVDEC, encoded by PyAV"``."""
        decode = "NVDEC" if self.hardware_decode else "PyAV"
        encode = "NVENC" if self.hardware_encode else "PyAV"
        return f"decoded by {decode}, encoded by {encode}"


def choose_video_engines(device: str, decoder: str = "auto", encoder: str = "auto") -> VideoEngines:
    """The engines for a render whose restyling runs on ``device`` (``"cpu"`` or ``"cuda"``,
    resolved).

    ``auto`` takes the GPU's engine on CUDA when it opens, PyAV's software codec otherwise
    (on the CPU a second process for encoding measured no faster: the cores are full).

    Raises:
        ValueError: ``decoder`` or ``encoder`` is not one of :data:`DECODERS` / :data:`ENCODERS`.
        DeviceError: ``nvdec`` or ``nvenc`` was asked for and does not open here.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder: expected {', '.join(DECODERS)}, got {decoder!r}")
    if encoder not in ENCODERS:
        raise ValueError(f"encoder: expected {', '.join(ENCODERS)}, got {encoder!r}")
    return VideoEngines(
        _wanted(decoder, "nvdec", device, nvdec_error),
        _wanted(encoder, "nvenc", device, nvenc_error),
    )


def check_hardware_output(encoder: str, outputs: Iterable[Path]) -> None:
    """Refuse ``--encoder nvenc`` for a WebM output, which holds VP9 and NVENC writes H.264
    (``auto`` encodes such a file with VP9 in software instead).

    Raises:
        UsageError: ``encoder`` is ``"nvenc"`` and an output is a ``.webm`` file.
    """
    webm = [path for path in outputs if path.suffix.lower() == ".webm"]
    if encoder == "nvenc" and webm:
        raise UsageError(
            f"--encoder nvenc writes H.264, which {webm[0].name} (WebM) cannot hold; name an "
            ".mp4, .mov or .mkv output, or use --encoder auto (VP9 in software)"
        )


def _wanted(choice: str, hardware: str, device: str, error_of) -> bool:
    if choice == "pyav":
        return False
    if choice == "auto":
        return device == "cuda" and error_of() is None
    error = error_of()
    if error is not None:
        flag = "--decoder" if hardware == "nvdec" else "--encoder"
        raise DeviceError(f"{flag} {hardware}: {error}; use {flag} pyav or auto")
    return True
