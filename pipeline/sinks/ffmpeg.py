"""Encode frames with a system ``ffmpeg`` (through ``ffmpeg-python``): NVENC, VAAPI, ProRes...

PyAV's wheels bundle an FFmpeg with software encoders only; a system ffmpeg may have the
hardware and studio encoders a user wants. Raw RGB frames are piped to it and it writes the
video alone, at a constant nominal rate: the input's real timestamps and its audio are put
back when the file is remuxed by :func:`pipeline.segments.join_segments`.

Like every sink, it writes under a temporary name and renames when ffmpeg has finished
successfully; :meth:`FfmpegSink.abort` stops ffmpeg and deletes the temporary file.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import IO

import numpy as np

from pipeline.atomic import discard, publish, reserve_partial
from pipeline.errors import DeviceError, OutputError
from pipeline.frame import Frame
from pipeline.sinks.base import Sink
from pipeline.sinks.file import DEFAULT_CRF, DEFAULT_PRESET

__all__ = ["FfmpegSink", "check_ffmpeg_encoder"]

_INSTALL_HINT = "install it (Debian/Ubuntu: `sudo apt-get install ffmpeg`) or use --encoder pyav"


@cache
def _encoders(binary: str) -> frozenset[str]:
    listing = subprocess.run(
        [binary, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False
    ).stdout
    # Lines look like " V....D libx264   libx264 H.264 / AVC ..." after a "------" rule.
    rows = listing.split("------", 1)[-1].splitlines()
    return frozenset(row.split()[1] for row in rows if len(row.split()) > 1)


def check_ffmpeg_encoder(codec: str) -> str:
    """The path of the system ffmpeg, once it is known to have the video encoder ``codec``.

    Raises:
        DeviceError: there is no ``ffmpeg`` on ``PATH``, or it lacks ``codec``.
    """
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise DeviceError(f"--encoder ffmpeg:{codec} needs a system ffmpeg; {_INSTALL_HINT}")
    if codec not in _encoders(binary):
        raise DeviceError(
            f"the system ffmpeg has no encoder {codec!r}; `ffmpeg -encoders` lists those it has"
        )
    return binary


class FfmpegSink(Sink):
    """Writes RGB frames to a video-only file through a system ffmpeg.

    Args:
        path: final file; ``.mkv`` takes any codec.
        width, height: frame size.
        fps: the nominal rate frames are numbered at (their real timing is restored at the
            join).
        codec: an ffmpeg video encoder name (``libx264``, ``h264_nvenc``, ``prores_ks``...).
        crf, preset: passed on to x264 and x265; other encoders use their own defaults.

    Raises:
        DeviceError: no system ffmpeg, or it lacks ``codec``.
        OutputError: the folder cannot be written.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        *,
        fps: float,
        codec: str,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
    ) -> None:
        import ffmpeg

        self.path = Path(path)
        self.width, self.height = width, height
        self.frames_written = 0
        binary = check_ffmpeg_encoder(codec)
        options: dict[str, object] = {
            "vcodec": codec,
            # 4:2:0 needs even sides; an encoder without it gets its nearest format (ffmpeg
            # picks one and says so), e.g. 4:2:2 for ProRes.
            "pix_fmt": "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p",
            # One output frame per input frame: no frame rate conversion, no drops.
            "fps_mode": "passthrough",
        }
        if codec in ("libx264", "libx265"):
            options |= {"crf": crf, "preset": preset}
        rate = Fraction(fps).limit_denominator(100_000)
        self._process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self._tmp: Path | None = None
        try:
            # Named before it exists, so that a stop at any moment deletes it.
            reserve_partial(self.path, claim=lambda path: setattr(self, "_tmp", path))
            command = (
                ffmpeg.input(
                    "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=rate
                )
                .output(str(self._tmp), an=None, **options)
                .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
                .overwrite_output()
                .compile(cmd=binary)
            )
            # ffmpeg's messages go to a file, not a pipe: a pipe nobody reads while frames are
            # written would fill up and stall both processes.
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close() or abort()
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self._log)
        except BaseException:
            self.abort()
            raise

    def write(self, frame: Frame) -> None:
        if frame.image.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"FfmpegSink.write: expected a {self.width}x{self.height} frame, "
                f"got {frame.width}x{frame.height}"
            )
        assert self._process is not None and self._process.stdin is not None
        try:
            # The array's own buffer: no per-frame copy into a bytes object.
            self._process.stdin.write(np.ascontiguousarray(frame.image).data)
        except BrokenPipeError:
            raise self._failed() from None
        self.frames_written += 1

    def close(self) -> None:
        """Let ffmpeg finish, then move the file into place."""
        if self._process is None:
            return
        try:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
            if self._process.wait() != 0:
                raise self._failed()
            publish(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._tmp = None
        self.abort()  # the file is in place: this only lets go of the process and its log

    def abort(self) -> None:
        """Stop ffmpeg if it runs and delete the temporary file, whatever of them exists
        (also halfway through ``__init__``); the final name is never touched."""
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            discard(self._tmp)
            self._tmp = None

    def _failed(self) -> OutputError:
        """ffmpeg stopped: its last message line says why."""
        assert self._process is not None and self._log is not None
        self._process.wait()
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {self._process.returncode}"
        return OutputError(f"ffmpeg could not write {self.path}: {reason}")
