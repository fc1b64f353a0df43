"""Several runs of one measurement as one, for the benches' ``--rounds``.

On a shared machine one run's figures move with whatever else the machine did that minute;
the median of a few runs, each loaded run paired with the quiet run just before it, does not
follow one bad minute.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["median_ratio", "median_round", "paired_ratios"]


def median_round(rounds: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any]:
    """The round whose ``key`` is the median of the rounds' (the lower middle one for an
    even count), whole: every figure then comes from one run, so figures that add up (frames
    written and dropped, a frame's stages) still do, as they would not if each were a median
    of its own.

    >>> median_round([{"fps": 30.0, "dropped": 1}, {"fps": 20.0, "dropped": 4}], "fps")
    {'fps': 20.0, 'dropped': 4}
    """
    if not rounds:
        raise ValueError("median_round: no rounds")
    # By position, not by value: a run too short to measure has NaN figures, equal to none.
    ordered = sorted(rounds, key=lambda row: row[key])
    return dict(ordered[(len(ordered) - 1) // 2])


def paired_ratios(
    loaded: Sequence[Mapping[str, Any]], quiet: Sequence[Mapping[str, Any]], key: str
) -> list[float | None]:
    """``loaded[i][key] / quiet[i][key]`` for each round (``None`` where the quiet one is 0)."""
    return [a[key] / b[key] if b[key] else None for a, b in zip(loaded, quiet, strict=True)]


def median_ratio(
    loaded: Sequence[Mapping[str, Any]], quiet: Sequence[Mapping[str, Any]], key: str
) -> float | None:
    """The median over the rounds of :func:`paired_ratios`; ``None`` if a quiet round
    measured 0."""
    ratios = paired_ratios(loaded, quiet, key)
    if any(ratio is None for ratio in ratios):
        return None
    return statistics.median(ratios)
