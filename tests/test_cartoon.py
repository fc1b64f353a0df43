"""The classical cartoon stylizer on the public-domain portraits: flat bands, ink, steadiness."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from face_crops import photo_face

from models.metrics import clip_tracks, temporal_report
from pipeline.cartoon import CartoonStylizer, soft_quantize
from pipeline.frame import AlignedCrop
from pipeline.samples import FacePath, Pose, write_moving_face_clip
from pipeline.sources import open_source
from pipeline.stylizer import Stylizer

PHOTOS = ("astronaut", "grace_hopper")


@pytest.fixture(scope="module")
def crops() -> list[AlignedCrop]:
    return [photo_face(name, track_id=i)[2] for i, name in enumerate(PHOTOS)]


def _face_luminance(image: np.ndarray, crop: AlignedCrop) -> np.ndarray:
    """Luminance inside the cheeks, brows to chin."""
    points = crop.landmarks
    x0, x1 = int(points[2:15, 0].min()), int(points[2:15, 0].max())
    y0, y1 = int(points[17:27, 1].min()), int(points[8, 1])
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1]


def _level_spread(luminance: np.ndarray, share: float = 0.8) -> float:
    """How many luminance levels hold ``share`` of the pixels, over the luminance range.

    Flat bands put most pixels on few levels; a photo spreads them over its whole range. A
    ratio of the range, so a dim, low-contrast face is judged like a bright one.
    """
    low, high = np.percentile(luminance, (2, 98))
    counts = np.sort(np.bincount(luminance.ravel(), minlength=256))[::-1]
    levels = int(np.searchsorted(np.cumsum(counts), share * luminance.size)) + 1
    return levels / max(high - low, 1.0)


def _gradient(image: np.ndarray) -> np.ndarray:
    y = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1))


def test_it_is_a_stylizer_that_returns_one_crop_per_input(crops):
    stylizer = CartoonStylizer()
    assert isinstance(stylizer, Stylizer)
    assert (stylizer.name, stylizer.crop_size) == ("cartoon", 256)
    out = stylizer.stylize(crops)
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.uint8
    assert stylizer.stylize([]).shape == (0, 256, 256, 3)


@pytest.mark.parametrize("index", range(len(PHOTOS)))
def test_faces_come_out_in_few_flat_luminance_bands(crops, index):
    crop = crops[index]
    out = CartoonStylizer().stylize([crop])[0]
    before = _level_spread(_face_luminance(crop.image, crop))
    blurred = _level_spread(_face_luminance(cv2.GaussianBlur(crop.image, (0, 0), 3.0), crop))
    after = _level_spread(_face_luminance(out, crop))
    # Blurring alone does not gather the levels; banding does.
    assert after < 0.8 * min(before, blurred), (before, blurred, after)


@pytest.mark.parametrize("index", range(len(PHOTOS)))
def test_regions_are_flat_and_edges_are_inked(crops, index):
    crop = crops[index]
    out = CartoonStylizer().stylize([crop])[0]
    before, after = _gradient(crop.image), _gradient(out)
    assert (after < 8).mean() > 1.5 * (before < 8).mean()
    assert (after > 200).mean() > 1.2 * (before > 200).mean()


@pytest.mark.parametrize("dimming", [1.0, 0.4])
@pytest.mark.parametrize("index", range(len(PHOTOS)))
def test_ink_darkens_the_faces_strongest_edges(crops, index, dimming):
    crop = crops[index]
    image = (crop.image * dimming).astype(np.uint8)
    out = CartoonStylizer().stylize([AlignedCrop(image, crop.matrix, crop.landmarks)])[0]
    strength = _face_luminance(np.repeat(_gradient(image)[:, :, None], 3, axis=2), crop)
    edges = strength >= np.percentile(strength, 95)
    before, after = _face_luminance(image, crop), _face_luminance(out, crop)
    edge_ratio = after[edges].mean() / before[edges].mean()
    overall_ratio = after.mean() / before.mean()
    assert edge_ratio < overall_ratio - 0.05, (edge_ratio, overall_ratio)


def test_sensor_noise_changes_the_output_less_than_the_input(crops):
    soft, hard = [], []
    for index, crop in enumerate(crops):
        rng = np.random.default_rng(index)
        noisy_image = np.clip(crop.image + rng.normal(0.0, 2.0, crop.image.shape), 0, 255)
        noisy = AlignedCrop(noisy_image.astype(np.uint8), crop.matrix, crop.landmarks)
        input_change = np.abs(noisy.image.astype(np.float32) - crop.image).mean()
        for sharpness, changes in ((4.0, soft), (60.0, hard)):
            clean = CartoonStylizer(sharpness=sharpness).stylize([crop])[0]
            shaken = CartoonStylizer(sharpness=sharpness).stylize([noisy])[0]
            changes.append(float(np.abs(shaken.astype(np.float32) - clean).mean()))
        assert soft[-1] < input_change
    # The soft band edges are the point: hard steps flip whole bands on noise.
    assert sum(soft) < 0.9 * sum(hard), (soft, hard)


@pytest.mark.parametrize("index", range(len(PHOTOS)))
def test_a_one_pixel_shift_shifts_the_output(crops, index):
    crop = crops[index]
    shifted = AlignedCrop(
        np.ascontiguousarray(np.roll(crop.image, 1, axis=1)),
        crop.matrix,
        crop.landmarks + np.float32([1, 0]),
    )
    out = CartoonStylizer().stylize([crop])[0].astype(np.float32)
    out_shifted = CartoonStylizer().stylize([shifted])[0].astype(np.float32)
    inner = np.s_[8:-8, 8:-8]
    mismatch = np.abs(out_shifted - np.roll(out, 1, axis=1))[inner].mean()
    motion = np.abs(shifted.image.astype(np.float32) - crop.image)[inner].mean()
    assert mismatch < 0.4 * motion, (mismatch, motion)


def test_a_dim_face_still_gets_every_band(crops):
    crop = crops[0]
    dim = AlignedCrop((crop.image * 0.4).astype(np.uint8), crop.matrix, crop.landmarks)
    bright_out, dim_out = (CartoonStylizer().stylize([c])[0] for c in (crop, dim))
    bright_spread = _level_spread(_face_luminance(bright_out, crop))
    dim_spread = _level_spread(_face_luminance(dim_out, crop))
    assert dim_spread < 0.8 * _level_spread(_face_luminance(dim.image, crop))
    assert abs(dim_spread - bright_spread) < 0.1 * bright_spread
    # The tones stay where they were: a dim face is not brightened.
    assert _face_luminance(dim_out, crop).mean() < 0.6 * _face_luminance(bright_out, crop).mean()


def test_tracks_keep_separate_tone_memory_and_reset_forgets_it(crops):
    astronaut, hopper = crops
    alone = CartoonStylizer()
    expected = [alone.stylize([astronaut])[0] for _ in range(3)]
    interleaved = CartoonStylizer()
    got = []
    for _ in range(3):
        got.append(interleaved.stylize([astronaut, hopper])[0])
    np.testing.assert_array_equal(np.stack(got), np.stack(expected))

    # A dimmer frame moves the track's remembered tone range only part of the way.
    dim = AlignedCrop(
        (astronaut.image * 0.7).astype(np.uint8), astronaut.matrix, astronaut.landmarks
    )
    remembered = interleaved.stylize([dim])[0]
    interleaved.reset()
    fresh = interleaved.stylize([dim])[0]
    np.testing.assert_array_equal(fresh, CartoonStylizer().stylize([dim])[0])
    assert not np.array_equal(fresh, remembered)


def test_soft_quantize_is_monotonic_and_flat_inside_bands():
    values = np.linspace(-40.0, 300.0, 3401)
    banded = soft_quantize(values, levels=5, sharpness=6.0)
    assert np.all(np.diff(banded) >= 0)
    step = 255 / 5
    centres = (np.arange(5) + 0.5) * step
    slope_at_centres = soft_quantize(centres + 0.5, 5, 6.0) - soft_quantize(centres - 0.5, 5, 6.0)
    np.testing.assert_allclose(soft_quantize(centres, 5, 6.0), centres, atol=1e-9)
    assert np.all(slope_at_centres < 0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crop_size": 63}, "crop_size"),
        ({"levels": 1}, "levels"),
        ({"tone_memory": 1.0}, "tone_memory"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CartoonStylizer(**kwargs)


def test_crops_of_the_wrong_size_are_refused(crops):
    with pytest.raises(ValueError, match="expected 128x128 crops, got 256x256"):
        CartoonStylizer(crop_size=128).stylize(crops)


def test_on_a_tracked_video_clip_it_is_about_as_steady_as_its_input(tmp_path):
    # A real H.264 clip of a face drifting, turning and zooming, tracked as the pipeline
    # tracks it; steadiness is the flow warping error of the stylized crops over time.
    def path(index: int) -> Pose:
        return Pose(cx=260 + 3.0 * index, cy=240, scale=0.9 + 0.004 * index, angle=0.4 * index)

    clip = tmp_path / "drift.mp4"
    write_moving_face_clip(clip, [FacePath("astronaut", path)], 24, audio=False)
    with open_source(clip) as source:
        (track,) = clip_tracks(source)
    assert len(track.crops) >= 20
    inputs = np.stack([crop.image for crop in track.crops])

    def ratio(stylizer: CartoonStylizer) -> float:
        outputs = np.stack([stylizer.stylize([crop])[0] for crop in track.crops])
        return temporal_report(inputs, outputs).ratio

    soft, hard = ratio(CartoonStylizer()), ratio(CartoonStylizer(sharpness=60.0))
    assert soft < 1.3, soft
    assert soft < 0.9 * hard, (soft, hard)
