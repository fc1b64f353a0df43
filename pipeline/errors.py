"""The errors facestyle raises, in one place.

Every error subclasses :class:`FacestyleError` *and* the Python built-in that a caller would
already catch for the same kind of problem, so ``except ValueError`` or ``except OSError``
keeps working::

    FacestyleError
    ├── InputNotFoundError   (FileNotFoundError)  input path does not exist
    ├── InputError           (ValueError)         not a video, truncated, no video stream, ...
    │   └── NoFaceError                           a style or content image without a face
    ├── StyleError           (ValueError)         unknown style name, bad or hostile pack
    ├── OutputError          (OSError)            cannot write the output (permissions, disk full)
    ├── DeviceError          (RuntimeError)       camera, virtual camera, GPU, ffmpeg or Ray missing
    ├── UsageError           (ValueError)         a command line that lacks what it needs
    └── Cancelled            (KeyboardInterrupt)  the user stopped the job (Ctrl-C)

Library code raises these with a message that says what went wrong and what to do; only the
command line turns them into a one-line message and an exit status.
"""

from __future__ import annotations

__all__ = [
    "Cancelled",
    "DeviceError",
    "FacestyleError",
    "InputError",
    "InputNotFoundError",
    "NoFaceError",
    "OutputError",
    "StyleError",
    "UsageError",
]


class FacestyleError(Exception):
    """Base class of every error facestyle raises on purpose."""


class InputNotFoundError(FacestyleError, FileNotFoundError):
    """An input file or folder does not exist."""


class InputError(FacestyleError, ValueError):
    """An input exists but cannot be used (not a video, truncated, audio only, ...)."""


class NoFaceError(InputError):
    """An image that must show a face (a style exemplar, a content photo) shows none."""


class StyleError(FacestyleError, ValueError):
    """A style cannot be used: unknown name, missing, corrupt or hostile style pack."""


class OutputError(FacestyleError, OSError):
    """The output cannot be written (no permission, no space, not a directory)."""


class DeviceError(FacestyleError, RuntimeError):
    """A device or tool is not available: camera, virtual camera, GPU, a system ffmpeg or one
    of its encoders, a Ray cluster."""


class UsageError(FacestyleError, ValueError):
    """A command line is incomplete or contradictory in a way argparse cannot see (exit 2)."""


class Cancelled(FacestyleError, KeyboardInterrupt):
    """The user stopped the job; partial output has been removed."""
