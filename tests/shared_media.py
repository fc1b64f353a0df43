"""The public-domain artworks and footage in ../shared/media/, beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_MEDIA = Path(__file__).resolve().parents[1] / ".." / "shared" / "media"


def shared_media(name: str) -> Path:
    """The path of one shared file; skips the calling test where it is not there."""
    path = SHARED_MEDIA / name
    if not path.is_file():
        pytest.skip(f"{name} is not in {SHARED_MEDIA}")
    return path
