"""Argument types shared by the subcommands: numbers in a range, with one message shape."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["number_in"]


def number_in(
    kind: type[int] | type[float], low: float | None = None, high: float | None = None
) -> Callable[[str], int | float]:
    """An argparse ``type=`` that parses ``kind`` and checks ``low <= value <= high``.

    >>> number_in(int, 1)("3")
    3
    >>> number_in(float, 0, 1)("1.5")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: expected a number from 0 to 1, got 1.5
    """
    what = "a whole number" if kind is int else "a number"
    if high is None:
        expected = f"{what} >= {low}"
    elif low is None:
        expected = f"{what} <= {high}"
    else:
        expected = f"{what} from {low} to {high}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid ..." message
    return parse
