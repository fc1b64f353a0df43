"""Where frames come from: video files, image folders, single images, cameras.

:func:`open_source` picks the right source for what a user typed.
"""

from __future__ import annotations

import glob
from pathlib import Path

from pipeline.sources.base import Source
from pipeline.sources.images import IMAGE_SUFFIXES, ImageSource, image_paths
from pipeline.sources.video import VideoFileSource

__all__ = ["ImageSource", "Source", "VideoFileSource", "open_source"]


def open_source(spec: str | Path, *, image_fps: float = 25.0, hardware: bool = False) -> Source:
    """Open a video file, an image folder, a glob pattern of images, or one image.

    Args:
        spec: what to read. A folder or a pattern (``"shots/*.png"``) gives its images in
            natural order; a file with an image suffix gives one frame; any other file is
            decoded as video.
        image_fps: nominal frame rate given to image sequences.
        hardware: decode a video on the GPU's video engine (see :class:`VideoFileSource`).

    Raises:
        InputNotFoundError: nothing exists under ``spec``.
        InputError: it exists but is not usable (not a video, audio only, no images, ...).
    """
    path = Path(spec)
    if glob.has_magic(str(spec)) or path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(image_paths(spec), fps=image_fps)
    return VideoFileSource(path, hardware=hardware)
