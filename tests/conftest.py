"""Shared fixtures: public-domain faces and small generated clips with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.samples import face_photo


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """NASA's portrait of Eileen Collins, ``(512, 512, 3)`` ``uint8`` RGB."""
    return face_photo("astronaut")


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """The U.S. Navy's portrait of Grace Hopper, ``(600, 512, 3)`` ``uint8`` RGB."""
    return face_photo("grace_hopper")
