"""Write a file under a temporary name beside it, then rename: never a half-written file.

Every output facestyle makes (rendered videos, style packs, the cached sample clip) goes
through these two steps, so a crash, a full disk or Ctrl-C leaves the final name untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["partial_path", "publish"]


def partial_path(final: str | Path) -> Path:
    """Create an empty hidden file in ``final``'s folder to write into.

    The name keeps ``final``'s suffix, so writers that pick a format from the suffix (PyAV,
    OpenCV) still do. The rename in :func:`publish` is atomic because both names are in the
    same folder.

    Raises:
        OSError: the folder does not exist or cannot be written.
    """
    final = Path(final)
    handle, name = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=f".part{final.suffix}", dir=final.parent
    )
    os.close(handle)
    return Path(name)


def publish(partial: str | Path, final: str | Path) -> None:
    """Move a finished ``partial`` file to ``final``, replacing any file there.

    ``mkstemp`` creates files readable by their owner only; the published file gets the
    permissions any new file would get under the current umask.

    Raises:
        OSError: the rename failed (``partial`` is left for the caller to delete).
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)
    os.replace(partial, final)
