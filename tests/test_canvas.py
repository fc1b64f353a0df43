"""The canvas the student paints strokes from, and how it moves with a face on video."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import torch
from pack_factory import make_pack

from models.canvas import (
    CANVAS_STRENGTH,
    advect_shift,
    make_canvas,
    resize_canvas,
    shifted_canvas,
    smear_along,
    stroke_directions,
)
from models.pack_stylizer import PackStylizer
from pipeline.align import align_face
from pipeline.frame import AlignedCrop
from pipeline.landmarks import detect_landmarks


def test_canvas_is_seeded_noise_of_the_chosen_stroke_width() -> None:
    canvas = make_canvas(128, channels=2, seed=3)
    assert canvas.shape == (2, 128, 128) and canvas.dtype == np.float32
    assert np.array_equal(canvas, make_canvas(128, channels=2, seed=3))
    assert not np.array_equal(canvas, make_canvas(128, channels=2, seed=4))
    assert abs(float(canvas.std()) - CANVAS_STRENGTH) < 0.01
    # Wider strokes: smoother noise at the same contrast.
    fine, wide = (make_canvas(256, stroke=s)[0] for s in (1.0, 4.0))
    assert np.abs(np.diff(wide)).mean() < 0.5 * np.abs(np.diff(fine)).mean()
    small = resize_canvas(canvas, 64)
    assert small.shape == (2, 64, 64) and abs(float(small.std()) - CANVAS_STRENGTH) < 0.02


def test_strokes_follow_the_exemplars_own() -> None:
    # An exemplar of vertical stripes: its strokes run up and down, and so must the canvas
    # made from it (long correlation down a column, short along a row).
    columns = (np.arange(128) // 3 % 2 * 200 + 30).astype(np.uint8)
    stripes = np.repeat(np.repeat(columns[None, :, None], 128, axis=0), 3, axis=2)
    directions = stroke_directions(stripes)
    assert np.abs(directions[16:-16, 16:-16, 1]).mean() > 0.99
    canvas = make_canvas(128, exemplar=stripes)[0]
    assert abs(float(canvas.std()) - CANVAS_STRENGTH) < 0.01
    down = np.corrcoef(canvas[:-2].ravel(), canvas[2:].ravel())[0, 1]
    across = np.corrcoef(canvas[:, :-2].ravel(), canvas[:, 2:].ravel())[0, 1]
    assert down > 0.7 and abs(across) < 0.2


def test_smearing_draws_streaks_along_the_directions() -> None:
    noise = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    along_x = np.zeros((64, 64, 2), np.float32)
    along_x[..., 0] = 1.0
    streaks = smear_along(noise, along_x, 6)
    assert streaks.shape == noise.shape and streaks.dtype == np.float32
    # Each pixel the mean of 13 along its row: rows stay varied, columns turn smooth.
    inner = streaks[:, 8:-8]
    assert np.abs(np.diff(inner, axis=1)).mean() < 0.3 * np.abs(np.diff(inner, axis=0)).mean()


def test_shifts_compose_along_the_flow_and_fade_slowly() -> None:
    step = np.zeros((32, 32, 2), np.float32)
    step[..., 0] = 1.5  # every pixel was 1.5 px to the right in the last crop
    shift = np.zeros_like(step)
    for _ in range(3):
        shift = advect_shift(shift, step, decay=1.0)
    np.testing.assert_allclose(shift[..., 0], 4.5, atol=1e-4)
    faded = np.zeros_like(step)
    for _ in range(3):
        faded = advect_shift(faded, step, decay=0.9)
    np.testing.assert_allclose(faded[..., 0], 0.9 * 1.5 + 0.81 * 1.5 + 0.729 * 1.5, atol=1e-4)


def test_shifted_canvas_samples_where_the_face_was() -> None:
    canvas = make_canvas(64)
    shift = np.zeros((64, 64, 2), np.float32)
    shift[..., 1] = 3.0
    moved = shifted_canvas(canvas, shift)
    np.testing.assert_allclose(moved[0, 8:-8, 8:-8], canvas[0, 11:-5, 8:-8], atol=1e-5)


def test_the_canvas_moves_with_a_moving_face(astronaut: np.ndarray) -> None:
    # The face moves 2 px right inside its crop: the canvas the student paints it from must
    # move along (a fixed one would leave the strokes behind, swimming over the skin).
    pack = make_pack()
    assert pack.canvas is not None
    first = align_face(astronaut, detect_landmarks(astronaut)[0], 64)
    moved = cv2.warpAffine(first.image, np.float32([[1, 0, 2], [0, 1, 0]]), (64, 64))
    second = AlignedCrop(moved, first.matrix, first.landmarks + np.float32([2, 0]))
    stylizer = PackStylizer(pack, dtype=torch.float32, smoothing=0.0)
    given: list[np.ndarray] = []
    forward = stylizer.forward

    def recording(rgb: np.ndarray, guides: np.ndarray, canvas: np.ndarray) -> torch.Tensor:
        given.append(canvas)
        return forward(rgb, guides, canvas)

    stylizer.forward = recording  # type: ignore[method-assign]
    stylizer.stylize([first])
    stylizer.stylize([second])
    assert np.array_equal(given[0][0], pack.canvas)  # a new track starts on the canvas as is
    inner = (0, slice(16, -16), slice(16, -16))
    expected = np.roll(pack.canvas, 2, axis=2)[inner]
    assert (
        np.abs(given[1][0][inner] - expected).mean()
        < 0.3 * np.abs(pack.canvas[inner] - expected).mean()
    )


def test_stroke_strength_scales_the_canvas_the_student_sees(astronaut: np.ndarray) -> None:
    pack = make_pack()
    assert pack.canvas is not None
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], pack.crop_size)

    def run(stylizer: PackStylizer) -> np.ndarray:
        return stylizer.run(*stylizer.inputs([crop]))

    none = run(PackStylizer(pack, dtype=torch.float32, strokes=0.0))
    blank = replace(pack, canvas=np.zeros_like(pack.canvas))
    assert np.array_equal(none, run(PackStylizer(blank, dtype=torch.float32)))
    bold = run(PackStylizer(pack, dtype=torch.float32, strokes=2.0))
    doubled = replace(pack, canvas=pack.canvas * np.float32(2))
    assert np.array_equal(bold, run(PackStylizer(doubled, dtype=torch.float32)))
    assert not np.array_equal(bold, none)
