"""A before/after preview sheet: a few frames of a render, input beside output, in one PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from pipeline.atomic import write_image

__all__ = ["SHEET_FRAMES", "pick_sheet_indices", "save_sheet", "sheet_image"]

# How many frames a preview sheet shows, one row each.
SHEET_FRAMES = 3


def pick_sheet_indices(total: int | None, count: int = SHEET_FRAMES) -> list[int]:
    """Frame indices spread over the clip (their centres), or the first seconds if unknown."""
    if not total:
        return [25 * i for i in range(count)]
    count = min(count, total)
    return sorted({int((i + 0.5) * total / count) for i in range(count)})


def sheet_image(pairs: Sequence[tuple[np.ndarray, np.ndarray]], width: int = 480) -> np.ndarray:
    """Lay out ``(before, after)`` pairs as rows, labelled, each image scaled to ``width``.

    Args:
        pairs: ``(H, W, 3)`` ``uint8`` RGB input and output of the same frame.
        width: width of each image on the sheet, pixels.

    Returns:
        ``(rows * h + header, 2 * width, 3)`` ``uint8`` RGB.
    """
    if not pairs:
        raise ValueError("sheet_image: expected at least one (before, after) pair")
    rows = []
    for before, after in pairs:
        height = round(before.shape[0] * width / before.shape[1])
        scaled = [
            cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA) for im in (before, after)
        ]
        rows.append(np.concatenate(scaled, axis=1))
    header = np.full((36, 2 * width, 3), 255, np.uint8)
    for column, label in enumerate(("before", "after")):
        cv2.putText(
            header, label, (column * width + 12, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2
        )
    return np.concatenate([header, *rows], axis=0)


def save_sheet(path: str | Path, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write the sheet of ``pairs`` as an image (format from the suffix, PNG recommended).

    Raises:
        OutputError: the file cannot be written.
    """
    return write_image(path, sheet_image(pairs))
