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

# Listed here, imported on use, so `facestyle --help` stays fast and one broken optional
# dependency cannot take down unrelated commands.
COMMANDS = (
    "render",
    "batch",
    "bench",
    "stylize_image",
    "eval",
    "adapt",
    "packs",
    "live",
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


def _load(name: str):
    return importlib.import_module(f"plugin.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facestyle",
        description="Restyle every face in a video after ONE reference portrait.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
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
    parser = build_parser()
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
