"""Shared fixtures: public-domain faces and small generated clips with known truth."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from pipeline.samples import face_photo


def pytest_configure(config: pytest.Config) -> None:
    """Let the commands the tests start take Ctrl-C and hangups as a terminal's job would.

    A shell starts a background job (``cmd &``, or under ``nohup``) with SIGINT, and under
    ``nohup`` SIGHUP, ignored, and a process inherits an ignored signal through ``exec``:
    Python then installs no ``KeyboardInterrupt``, and every Ctrl-C test of a suite run that
    way failed. A handler of our own is reset to the default in each child at ``exec``.
    """
    for number in (signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(number) == signal.SIG_IGN:
            # SIGINT stops the suite as Python's own handler would; a hangup stays ignored here.
            handler = signal.default_int_handler if number == signal.SIGINT else _ignore
            signal.signal(number, handler)


def _ignore(number: int, frame: object) -> None:
    """A hangup while the suite runs in the background changes nothing (as ``nohup`` asked)."""


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """NASA's portrait of Eileen Collins, ``(512, 512, 3)`` ``uint8`` RGB."""
    return face_photo("astronaut")


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """The U.S. Navy's portrait of Grace Hopper, ``(600, 512, 3)`` ``uint8`` RGB."""
    return face_photo("grace_hopper")
