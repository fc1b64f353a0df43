"""Small synthetic clips for source/sink tests, written with PyAV: any pts, rotation, size.

Each frame ``i`` is a flat grey of level ``gradient(i)`` with a white block in its top-left
corner, so a reader can check order (the grey level) and orientation (where the block is).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# The samples module's tone writer: the same AAC tone the sample clips carry.
from pipeline.samples import _write_tone

BLOCK = 8  # side of the white orientation marker, pixels


def level(index: int) -> int:
    """The grey level of frame ``index``: distinct for the first 20 frames, far from white."""
    return 20 + (index * 9) % 180


def picture(index: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``index`` of a test clip: ``(H, W, 3)`` ``uint8`` RGB."""
    width, height = size
    image = np.full((height, width, 3), level(index), np.uint8)
    image[:BLOCK, :BLOCK] = 255
    return image


def write_clip(
    path: Path,
    n_frames: int,
    *,
    size: tuple[int, int] = (64, 48),
    pts: Sequence[int] | None = None,
    time_base: Fraction = Fraction(1, 1000),
    rotation: int = 0,
    audio: bool = False,
    video: bool = True,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write a clip of :func:`picture` frames.

    Args:
        pts: each frame's timestamp in ``time_base`` units (irregular for variable frame
            rate); ``None`` gives 25 fps.
        rotation: counter-clockwise display rotation stored in the container.
        audio: add a stereo AAC tone as long as the video.
        video: ``False`` writes an audio-only file.
        container_options: muxer options, e.g. ``{"movflags": "+faststart"}``.
    """
    width, height = size
    stamps = list(pts) if pts is not None else [i * 40 for i in range(n_frames)]
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = None
        if video:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            if rotation:
                stream.set_display_rotation(rotation)
        tone = container.add_stream("aac", rate=48000, layout="stereo") if audio else None
        if stream is not None:
            for index in range(n_frames):
                frame = av.VideoFrame.from_ndarray(picture(index, size), format="rgb24")
                frame.pts, frame.time_base = stamps[index], time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        if tone is not None:
            seconds = float((stamps[-1] + 40) * time_base)
            _write_tone(container, tone, seconds)
    return path


def write_song(path: Path, seconds: float = 2.0) -> Path:
    """Write a music file with album art: a stereo tone (MP3 for ``.mp3``, else AAC in MP4),
    and a PNG cover, which is a one-picture video stream marked ``attached_pic``."""
    mp3 = path.suffix == ".mp3"
    # PyAV refuses a PNG stream in the muxer the .m4a name picks ("ipod"); the mp4 one takes it.
    with av.open(str(path), "w", format=None if mp3 else "mp4") as container:
        tone = container.add_stream("libmp3lame" if mp3 else "aac", rate=48000, layout="stereo")
        cover = container.add_stream("png")
        cover.width, cover.height, cover.pix_fmt = 32, 32, "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        art = av.VideoFrame.from_ndarray(picture(0, (32, 32)), format="rgb24")
        art.pts = 0
        container.mux([*cover.encode(art), *cover.encode()])
        _write_tone(container, tone, seconds)
    return path


def video_timestamps(path: Path) -> list[float]:
    """Presentation time in seconds of every decoded video frame."""
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[float, bytes]]:
    """``(time in seconds, payload)`` of every audio packet, in file order."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        stream = container.streams.audio[0]
        return [
            (float(p.pts * p.time_base), bytes(p))
            for p in container.demux(stream)
            if p.dts is not None
        ]
