"""Make the bundled packs' style exemplars from the public-domain photos, with our own code.

Each exemplar is one of :data:`pipeline.samples.FACE_PHOTOS` run through a classical filter,
so facestyle may ship both the exemplar and the pack trained from it::

    python -m models.make_exemplars            # writes models/exemplars/<style>.png

The packs themselves are then trained by ``facestyle adapt`` (see ``models/packs/README.md``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pipeline.samples import face_photo

__all__ = ["EXEMPLARS", "comic", "painterly", "pencil", "write_exemplars"]

EXEMPLARS_DIR = Path(__file__).resolve().parent / "exemplars"


def _brush_texture(grey: np.ndarray, rng: np.random.Generator, length: int = 13) -> np.ndarray:
    """Noise smeared along the image's contours (8 stroke directions), about -1..1: the marks
    a brush leaves when it follows the form."""
    noise = cv2.GaussianBlur(rng.standard_normal(grey.shape).astype(np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=5)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=5)
    # Structure tensor, smoothed: the dominant gradient direction; strokes run across it.
    jxx, jyy, jxy = (cv2.GaussianBlur(a, (0, 0), 4.0) for a in (gx * gx, gy * gy, gx * gy))
    stroke = (0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2) % np.pi
    bins = np.rint(stroke / (np.pi / 8)).astype(int) % 8
    texture = np.zeros_like(grey)
    for b in range(8):
        kernel = np.zeros((length, length), np.float32)
        angle, centre = b * np.pi / 8, length // 2
        dx, dy = centre * np.cos(angle), centre * np.sin(angle)
        ends = np.rint([centre - dx, centre - dy, centre + dx, centre + dy]).astype(int).tolist()
        cv2.line(kernel, ends[:2], ends[2:], 1.0)
        smeared = cv2.filter2D(noise, -1, kernel / kernel.sum())
        texture[bins == b] = smeared[bins == b]
    return texture / (np.abs(texture).max() + 1e-6)


def painterly(image: np.ndarray) -> np.ndarray:
    """Oil-paint look: edge-preserving flattening, warm saturated palette, brush marks that
    follow the form.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB.
    """
    flat = cv2.stylization(image[:, :, ::-1].copy(), sigma_s=30, sigma_r=0.35)[:, :, ::-1]
    hsv = cv2.cvtColor(np.ascontiguousarray(flat), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.35, 0, 255)
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    rgb *= np.array([1.08, 0.98, 0.86], np.float32)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    texture = _brush_texture(grey, np.random.default_rng(0))
    painted = rgb * (1.0 + 0.22 * texture[..., None])
    return np.clip(painted, 0, 255).astype(np.uint8)


def pencil(image: np.ndarray) -> np.ndarray:
    """Graphite sketch on warm paper: a colour-dodge line drawing with hatched shading.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    # Colour dodge of the image by its blurred negative: flat areas go to white paper,
    # edges stay as dark strokes (the classic pencil-sketch trick).
    negative = cv2.GaussianBlur(1.0 - grey, (0, 0), 4.0)
    lines = np.clip(grey / np.maximum(1.0 - negative, 1e-3), 0, 1) ** 2.2
    # Shading: diagonal hatching whose strength follows the smoothed darkness.
    darkness = 1.0 - cv2.GaussianBlur(grey, (0, 0), 3.0)
    ys, xs = np.indices(grey.shape)
    hatch = (np.sin((xs + ys) * 0.8) > 0.3).astype(np.float32)
    hatch = cv2.GaussianBlur(hatch, (0, 0), 0.7)
    shade = 1.0 - 0.45 * np.clip(darkness - 0.25, 0, 1) * hatch
    graphite = lines * shade
    paper = np.array([0.97, 0.94, 0.86], np.float32)
    rgb = (0.12 + 0.88 * graphite)[..., None] * paper[None, None, :]
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def comic(image: np.ndarray) -> np.ndarray:
    """Flat-colour cartoon: smoothed, quantised to a few colours, with bold dark outlines.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB.
    """
    smooth = image.copy()
    for _ in range(4):
        smooth = cv2.bilateralFilter(smooth, 9, 40, 7)
    pixels = smooth.reshape(-1, 3).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(pixels, 9, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    # Brighter, more saturated flat colours than the photo's.
    hsv = cv2.cvtColor(centres.astype(np.uint8)[None], cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.5, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * 1.1 + 10, 0, 255)
    palette = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0]
    flat = palette[labels.ravel()].reshape(image.shape)
    flat = cv2.medianBlur(flat, 5)
    grey = cv2.cvtColor(cv2.medianBlur(image, 5), cv2.COLOR_RGB2GRAY)
    edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 5)
    ink = cv2.erode(255 - edges, np.ones((2, 2), np.uint8)) > 0
    out = flat.copy()
    out[ink] = (30, 25, 35)
    return out


EXEMPLARS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "painterly": ("astronaut", painterly),
    "pencil": ("grace_hopper", pencil),
    "comic": ("astronaut", comic),
}
"""Style name → (public-domain photo it is made from, filter)."""


def write_exemplars(folder: str | Path = EXEMPLARS_DIR) -> dict[str, Path]:
    """Write every exemplar as ``<folder>/<style>.png``; returns style → path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for style, (photo, make) in EXEMPLARS.items():
        path = folder / f"{style}.png"
        cv2.imwrite(str(path), make(face_photo(photo))[:, :, ::-1])
        written[style] = path
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(EXEMPLARS_DIR), help="folder to write into")
    for style, path in write_exemplars(parser.parse_args().out).items():
        print(f"{style}: {path}")


if __name__ == "__main__":
    main()
