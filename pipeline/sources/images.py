"""Frames from still images: one image, a folder of images, or a glob pattern.

Images are read in natural order (``frame2.png`` before ``frame10.png``) and shown at a
nominal ``fps``; they carry no ``pts``. All images of a sequence must share one size, since
they become the frames of one video.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import InputError, InputNotFoundError
from pipeline.frame import Frame
from pipeline.sources.base import Source

__all__ = ["IMAGE_SUFFIXES", "ImageSource", "image_paths", "read_image"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def _natural_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def image_paths(spec: str | Path) -> list[Path]:
    """The image files a spec names, in natural order.

    Args:
        spec: an image file, a folder (its images, not recursive), or a glob pattern.

    Raises:
        InputNotFoundError: nothing exists under ``spec``.
        InputError: the folder or pattern holds no image files.
    """
    text = str(spec)
    if glob.has_magic(text):
        found = [Path(p) for p in glob.glob(text)]
        if not found:
            raise InputNotFoundError(f"no file matches the pattern {text!r}; check the pattern")
    else:
        path = Path(text)
        if not path.exists():
            raise InputNotFoundError(f"{path}: no such file or folder; check the path")
        found = sorted(path.iterdir()) if path.is_dir() else [path]
    images = sorted((p for p in found if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not images:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise InputError(f"{text} holds no image files ({kinds}); give images or a video file")
    return images


def read_image(path: str | Path) -> np.ndarray:
    """Read one image as ``(H, W, 3)`` ``uint8`` RGB (alpha dropped, grey expanded).

    Raises:
        InputError: the file is not an image OpenCV can decode.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path} is not a readable image; re-save it as PNG or JPEG")
    return np.ascontiguousarray(image[:, :, ::-1])


class ImageSource(Source):
    """Still images as frames.

    Args:
        paths: image files, in the order they are shown.
        fps: nominal frame rate, used for the frames' ``time``.

    Raises:
        InputError: the images do not all have the size of the first one.
    """

    def __init__(self, paths: Sequence[Path], fps: float = 25.0) -> None:
        self.paths = list(paths)
        self.fps = fps
        self.frame_count = len(self.paths)
        self.height, self.width = read_image(self.paths[0]).shape[:2]

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image = read_image(path)
            if image.shape[:2] != (self.height, self.width):
                raise InputError(
                    f"{path} is {image.shape[1]}x{image.shape[0]} but the sequence started at "
                    f"{self.width}x{self.height}; give images of one size"
                )
            yield Frame(image, index / self.fps, index)
