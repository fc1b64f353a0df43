"""Several runs of one measurement as one, for the benches' ``--rounds``.

On a shared machine one run's figures move with whatever else the machine did that minute;
the median of a few runs, each loaded run paired with the quiet run just before it, does not
follow one bad minute.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["median_of", "median_ratio", "paired_ratios"]


def median_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``rows``, dicts of the same keys (the first row's are kept), as one: each number the
    median over the rows (a count the lower median, so it stays a count), each nested dict
    likewise, anything else the most common value (on a tie, the earliest).

    >>> median_of([{"fps": 30.0, "dropped": 1}, {"fps": 20.0, "dropped": 4}])
    {'fps': 25.0, 'dropped': 1}
    """
    if not rows:
        raise ValueError("median_of: no rows")
    merged: dict[str, Any] = {}
    for key, first in rows[0].items():
        values = [row[key] for row in rows if key in row]
        if isinstance(first, Mapping):
            merged[key] = median_of(values)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            merged[key] = statistics.median_low(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            merged[key] = statistics.median(values)
        else:
            merged[key] = Counter(values).most_common(1)[0][0]
    return merged


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
