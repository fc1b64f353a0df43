"""The bundled sample clip: generated on first use from public-domain photos, then cached.

No media is committed to the repository; the clip is drawn deterministically by
:func:`pipeline.samples.write_moving_face_clip` (two faces, one entering from the right,
moving, zooming and tilting over 7 seconds, with an audio tone) into the user's cache folder.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from pipeline.atomic import partial_file, publish
from pipeline.errors import OutputError
from pipeline.samples import FacePath, Pose, write_moving_face_clip

__all__ = ["SAMPLE_FRAMES", "SAMPLE_NAME", "cache_dir", "sample_clip", "sample_path"]

SAMPLE_NAME = "sample"
SAMPLE_FRAMES = 175  # 7 s at 25 fps
# Bump when the clip's recipe changes, so stale caches are not reused.
_VERSION = 1


def cache_dir() -> Path:
    """Where generated media is cached: ``$FACESTYLE_CACHE``, else ``~/.cache/facestyle``."""
    explicit = os.environ.get("FACESTYLE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facestyle"


def _astronaut(index: int) -> Pose:
    t = index / SAMPLE_FRAMES
    return Pose(
        cx=170 + 140 * t + 15 * math.sin(2 * math.pi * 1.5 * t),
        cy=250 + 25 * math.sin(2 * math.pi * t),
        scale=1.35 + 0.25 * math.sin(2 * math.pi * 0.8 * t),
        angle=10 * math.sin(2 * math.pi * 1.2 * t),
    )


def _hopper(index: int) -> Pose:
    enter = min(max((index - 35) / 40, 0.0), 1.0)  # slides in from the right edge
    t = index / SAMPLE_FRAMES
    return Pose(
        cx=760 - 270 * enter + 20 * math.sin(2 * math.pi * 2 * t),
        cy=215 + 20 * math.cos(2 * math.pi * 1.3 * t),
        scale=0.7 + 0.08 * math.sin(2 * math.pi * t),
        angle=-8 * math.sin(2 * math.pi * 0.9 * t),
    )


def sample_path() -> Path:
    """Where the sample clip is cached (it may not exist yet)."""
    return cache_dir() / f"sample-v{_VERSION}.mp4"


def sample_clip() -> Path:
    """The sample clip's path, generating it (10-20 s) if it is not cached yet.

    Raises:
        OutputError: the cache folder cannot be written.
    """
    path = sample_path()
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial_file(path) as name:
            faces = [FacePath("astronaut", _astronaut), FacePath("grace_hopper", _hopper)]
            write_moving_face_clip(name, faces, SAMPLE_FRAMES, seed=7)
            publish(name, path)
    except OSError as error:
        raise OutputError(
            f"cannot create the sample clip in {path.parent} ({error.strerror or error}); "
            "set FACESTYLE_CACHE to a writable folder"
        ) from error
    return path
