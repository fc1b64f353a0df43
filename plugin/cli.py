"""The ``facestyle`` command line: a thin layer over :mod:`plugin`'s API.

Each subcommand lives in its own module under :mod:`plugin.commands` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``. Only this module turns facestyle's errors
into a one-line message and an exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from pipeline.errors import Cancelled, FacestyleError, UsageError

__all__ = ["main"]

# Module under plugin.commands -> the one line `facestyle --help` shows. Only the module of the
# command being run is imported, so `facestyle --help` stays fast (no PyAV, torch, numba) and
# one broken optional dependency cannot take down unrelated commands.
COMMANDS = {
    "render": "restyle every face in a video file",
    "batch": "restyle many clips into a folder, resumably, here or on a Ray cluster",
    "bench": "measure render speed per stage, quiet and under load",
    "stylize_image": "paint the faces of one photo after a style portrait (slow, exact)",
    "eval": "measure identity, style fidelity and temporal stability of styles on a clip",
    "adapt": "make a style pack from one style portrait",
    "packs": "list the bundled style packs",
    "live": "restyle a camera live: virtual camera, stream or recording out",
}

DISTRIBUTION = "facestyle"  # the name setup.cfg installs the package under

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130  # 128 + SIGINT, as a shell reports a job Ctrl-C ended
EXIT_BROKEN_PIPE = 128 + getattr(signal, "SIGPIPE", 13)  # as a writer whose reader left ends
# What else asks a job to stop: `kill` and `timeout` (SIGTERM), a closed terminal (SIGHUP).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def _stop_signals_act_as_ctrl_c(received: list[int]) -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP do what Ctrl-C would do at that moment, and their
    numbers are appended to ``received`` (for the exit status, 128 + the number).

    Their default action ends the process on the spot, leaving partial files behind. Instead
    SIGINT's handler of the moment runs: Python's raises ``KeyboardInterrupt``, and a running
    :class:`pipeline.runner.Runner` has swapped in one that asks its threads to stop; so every
    command cleans up along the path its Ctrl-C already takes. Handlers can only be set on the
    main thread (where Python runs them all); a signal that is ignored (``nohup``) or already
    handled is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def as_ctrl_c(number: int, frame: FrameType | None) -> None:
        received.append(number)
        handler = signal.getsignal(signal.SIGINT)
        # SIGINT is ignored in a background job of a non-interactive shell: still stop.
        (handler if callable(handler) else signal.default_int_handler)(number, frame)

    replaced = [number for number in STOP_SIGNALS if signal.getsignal(number) is signal.SIG_DFL]
    for number in replaced:
        signal.signal(number, as_ctrl_c)
    try:
        yield
    finally:
        for number in replaced:
            signal.signal(number, signal.SIG_DFL)


class _VersionAction(argparse.Action):
    """``--version``: prints the installed version and exits. Looked up only when asked for,
    so that no other command line reads package metadata, nor fails where it is missing."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        try:
            version = importlib.metadata.version(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            version = "(not installed: run from a source tree)"
        print(f"{parser.prog} {version}")
        parser.exit()


def _load(name: str):
    return importlib.import_module(f"plugin.commands.{name}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``facestyle`` parser with every command's options, or only ``command``'s (the
    others listed by name and summary, their modules not imported)."""
    parser = argparse.ArgumentParser(
        prog="facestyle",
        description="Restyle every face in a video after ONE reference portrait.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="print facestyle's version and exit"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        spelled = name.replace("_", "-")
        if command is not None and spelled != command:
            subparsers.add_parser(spelled, help=summary)
            continue
        try:
            module = _load(name)
        except ModuleNotFoundError as error:
            if error.name != f"plugin.commands.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # The top level has no option that takes a value: the first word is the command.
    command = next((word for word in argv if not word.startswith("-")), "")
    stop_signals: list[int] = []
    try:
        # Inside the try: importing the command's module takes a while (PyAV, torch), and a
        # Ctrl-C there is a Ctrl-C like any other.
        args = build_parser(command).parse_args(argv)
        with _stop_signals_act_as_ctrl_c(stop_signals):
            return int(args.run(args) or 0)
    except (Cancelled, KeyboardInterrupt):
        print(
            "facestyle: stopped; no half-written file is left under an output name", file=sys.stderr
        )
        return 128 + stop_signals[-1] if stop_signals else EXIT_CANCELLED
    except UsageError as error:
        print(f"facestyle {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except FacestyleError as error:
        print(f"facestyle: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`facestyle packs | head`): stop as a shell pipeline's writer
        # does. Python flushes stdout once more at exit, and that write would fail again and
        # print a traceback, so what is left goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
