"""Compiled kernels of guided patch synthesis: PatchMatch with an occupancy penalty, and voting.

Conventions stated once: a *nearest-neighbour field* (NNF) is an ``(Ht, Wt, 2)`` ``int32``
array whose entry ``[y, x]`` is the source (exemplar) pixel ``sy, sx`` at the centre of the
patch matched to the target patch centred at ``y, x``. Feature arrays are ``float32``
``(H + 2r, W + 2r, C)``, edge-padded by the patch radius ``r`` so every patch is in bounds:
the patch centred at unpadded ``(y, x)`` is ``padded[y : y + 2r + 1, x : x + 2r + 1]``.
The distance between two patches is the plain sum of squared feature differences; weight the
channels by scaling them before padding.

The occupancy penalty (the uniformity term) adds ``penalty x occupancy[s]`` to the cost of
matching a target patch to source pixel ``s``, where ``occupancy`` counts the target patches
currently matched to ``s``. Coherent copying uses each source pixel about once; a flat patch
reused all over the face piles up occupancy and gets pushed away.

The kernels release the GIL, so faces can be synthesized on several threads at once; each
call seeds its own thread's generator, so a face's result does not depend on the thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["occupancy", "pad_features", "patchmatch", "vote"]


def pad_features(features: np.ndarray, radius: int) -> np.ndarray:
    """``(H, W, C)`` features edge-padded to ``(H + 2r, W + 2r, C)`` ``float32``."""
    padded = np.pad(features, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    return np.ascontiguousarray(padded, dtype=np.float32)


def occupancy(nnf: np.ndarray, source_shape: tuple[int, int]) -> np.ndarray:
    """How many target patches use each source pixel: ``(Hs, Ws)`` ``int32``."""
    flat = nnf[..., 0].astype(np.int64) * source_shape[1] + nnf[..., 1]
    counts = np.bincount(flat.ravel(), minlength=source_shape[0] * source_shape[1])
    return counts.astype(np.int32).reshape(source_shape)


@njit(cache=True, fastmath=True, nogil=True)
def _distance(source, target, sy, sx, ty, tx, size, limit):  # pragma: no cover - compiled
    total = 0.0
    channels = source.shape[2]
    for dy in range(size):
        for dx in range(size):
            for c in range(channels):
                diff = source[sy + dy, sx + dx, c] - target[ty + dy, tx + dx, c]
                total += diff * diff
        # Early exit per patch row: most candidates lose long before the last row.
        if total > limit:
            return total
    return total


@njit(cache=True, nogil=True)
def patchmatch(
    source: np.ndarray,
    target: np.ndarray,
    nnf: np.ndarray,
    occupancy: np.ndarray,
    radius: int,
    penalty: float,
    iterations: int,
    search_radius: int,
    seed: int,
) -> np.ndarray:  # pragma: no cover - compiled
    """Improve ``nnf`` in place by PatchMatch (propagation + random search).

    Args:
        source: ``(Hs + 2r, Ws + 2r, C)`` ``float32`` padded exemplar features.
        target: ``(Ht + 2r, Wt + 2r, C)`` ``float32`` padded target features.
        nnf: ``(Ht, Wt, 2)`` ``int32``, the starting field; updated in place.
        occupancy: ``(Hs, Ws)`` ``int32`` consistent with ``nnf``; updated in place.
        radius: patch radius ``r`` (patches are ``2r + 1`` square).
        penalty: cost added per target patch already using a source pixel.
        iterations: scans over the image, alternating direction.
        search_radius: largest random-search jump in source pixels.
        seed: random seed, so results are reproducible.

    Returns:
        ``(Ht, Wt)`` ``float32`` each target patch's final distance (penalty excluded).
    """
    np.random.seed(seed)
    size = 2 * radius + 1
    hs = source.shape[0] - 2 * radius
    ws = source.shape[1] - 2 * radius
    ht = target.shape[0] - 2 * radius
    wt = target.shape[1] - 2 * radius
    dist = np.empty((ht, wt), np.float32)
    for y in range(ht):
        for x in range(wt):
            dist[y, x] = _distance(source, target, nnf[y, x, 0], nnf[y, x, 1], y, x, size, np.inf)
    for it in range(iterations):
        step = 1 if it % 2 == 0 else -1
        y0, y1 = (0, ht) if step == 1 else (ht - 1, -1)
        x0, x1 = (0, wt) if step == 1 else (wt - 1, -1)
        for y in range(y0, y1, step):
            for x in range(x0, x1, step):
                by = nnf[y, x, 0]
                bx = nnf[y, x, 1]
                # Own use excluded: staying put should not be charged for itself.
                best = dist[y, x] + penalty * (occupancy[by, bx] - 1)
                oy, ox = by, bx
                for k in range(2 + 16):
                    if k == 0:
                        py = y - step
                        if py < 0 or py >= ht:
                            continue
                        cy = nnf[py, x, 0] + step
                        cx = nnf[py, x, 1]
                    elif k == 1:
                        px = x - step
                        if px < 0 or px >= wt:
                            continue
                        cy = nnf[y, px, 0]
                        cx = nnf[y, px, 1] + step
                    else:
                        reach = search_radius >> (k - 2)
                        if reach < 1:
                            break
                        cy = by + np.random.randint(-reach, reach + 1)
                        cx = bx + np.random.randint(-reach, reach + 1)
                    cy = min(max(cy, 0), hs - 1)
                    cx = min(max(cx, 0), ws - 1)
                    if cy == by and cx == bx:
                        continue
                    extra = penalty * occupancy[cy, cx]
                    if extra >= best:
                        continue
                    d = _distance(source, target, cy, cx, y, x, size, best - extra)
                    if d + extra < best:
                        best = d + extra
                        by, bx = cy, cx
                        dist[y, x] = d
                if by != oy or bx != ox:
                    occupancy[oy, ox] -= 1
                    occupancy[by, bx] += 1
                    nnf[y, x, 0] = by
                    nnf[y, x, 1] = bx
    return dist


@njit(cache=True, nogil=True)
def vote(style: np.ndarray, nnf: np.ndarray, radius: int) -> np.ndarray:  # pragma: no cover
    """Each target pixel as the mean of what the overlapping matched patches say it is.

    Args:
        style: ``(Hs, Ws, K)`` ``float32`` exemplar values to transfer (e.g. RGB 0-1).
        nnf: ``(Ht, Wt, 2)`` ``int32`` field.
        radius: patch radius ``r``.

    Returns:
        ``(Ht, Wt, K)`` ``float32``.
    """
    hs, ws, channels = style.shape
    ht, wt = nnf.shape[0], nnf.shape[1]
    total = np.zeros((ht, wt, channels), np.float32)
    count = np.zeros((ht, wt), np.float32)
    for y in range(ht):
        for x in range(wt):
            sy = nnf[y, x, 0]
            sx = nnf[y, x, 1]
            for dy in range(-radius, radius + 1):
                ty = y + dy
                if ty < 0 or ty >= ht:
                    continue
                qy = min(max(sy + dy, 0), hs - 1)
                for dx in range(-radius, radius + 1):
                    tx = x + dx
                    if tx < 0 or tx >= wt:
                        continue
                    qx = min(max(sx + dx, 0), ws - 1)
                    for c in range(channels):
                        total[ty, tx, c] += style[qy, qx, c]
                    count[ty, tx] += 1.0
    for y in range(ht):
        for x in range(wt):
            for c in range(channels):
                total[y, x, c] /= count[y, x]
    return total
