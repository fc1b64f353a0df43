"""The ``facestyle`` command line: a thin layer over :mod:`plugin`'s API.

Each subcommand lives in its own module under :mod:`plugin.commands` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``. Only this module turns facestyle's errors
into a one-line message and an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

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

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


def _load(name: str):
    return importlib.import_module(f"plugin.commands.{name}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``facestyle`` parser with every command's options, or only ``command``'s (the
    others listed by name and summary, their modules not imported)."""
    parser = argparse.ArgumentParser(
        prog="facestyle",
        description="Restyle every face in a video after ONE reference portrait.",
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
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (Cancelled, KeyboardInterrupt):
        print("facestyle: stopped; nothing was written under the output name", file=sys.stderr)
        return EXIT_CANCELLED
    except UsageError as error:
        print(f"facestyle {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except FacestyleError as error:
        print(f"facestyle: error: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
