"""The student network, its inputs, the geometry warp and the stylizer that runs a pack."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from pack_factory import make_pack
from torch.utils.flop_counter import FlopCounterMode

from models.generator import (
    ARCHITECTURE,
    ARCHITECTURES,
    GeneratorConfig,
    StudentGenerator,
    count_flops,
)
from models.geometry import Reshaper, reshape_crops, toward_exemplar
from models.pack_stylizer import PackStylizer, _warp_crop, default_dtype
from models.student_input import DEFAULT_GUIDES, StudentReference, guide_channels, student_guides
from models.train import _random_warps, _warp
from pipeline.align import align_face, canonical_landmarks
from pipeline.errors import DeviceError, StyleError
from pipeline.frame import AlignedCrop
from pipeline.landmarks import detect_landmarks


def test_flop_count_matches_pytorch_and_is_about_one_gigamac() -> None:
    config = GeneratorConfig(guide_channels(DEFAULT_GUIDES))
    net = StudentGenerator(config)
    rgb, guides = torch.zeros(1, 3, 256, 256), torch.zeros(1, config.guide_channels, 64, 64)
    with FlopCounterMode(display=False) as counter:
        net(rgb, guides, torch.zeros(1, config.canvas, 256, 256))
    assert counter.get_total_flops() == count_flops(config)
    assert 0.7e9 < count_flops(config) / 2 < 1.3e9


def test_untrained_student_is_the_identity_and_keeps_shape() -> None:
    config = GeneratorConfig(5, widths=(8, 16, 24))
    rgb = torch.rand(2, 3, 64, 64) * 2 - 1
    net = StudentGenerator(config)
    out = net(rgb, torch.zeros(2, 5, 16, 16), torch.randn(2, 1, 64, 64))
    assert out.shape == rgb.shape
    torch.testing.assert_close(out, rgb)
    with pytest.raises(ValueError, match="canvas"):
        net(rgb, torch.zeros(2, 5, 16, 16))


@pytest.mark.parametrize(
    "values",
    [
        {"guide_channels": 3, "widths": [8, 16], "blocks": 1},
        {"guide_channels": "3", "widths": [8, 16, 24], "blocks": 1},
        {"guide_channels": 3, "widths": [8, 16, 24], "blocks": 1, "extra": 0},
        {"guide_channels": 3, "widths": [8, 16, 24], "blocks": 99},
        {"guide_channels": 3, "widths": [8, 16, 24], "blocks": 1},  # v2 without canvas keys
        {"guide_channels": 3, "widths": [8, 16, 24], "blocks": 1, "canvas": 1, "upsample": 2},
        {"guide_channels": 3, "widths": [8, 16, 24], "blocks": 1, "canvas": 9, "upsample": ""},
    ],
)
def test_config_from_metadata_refuses_bad_values(values: dict) -> None:
    with pytest.raises(ValueError):
        GeneratorConfig.from_dict(values)


def test_config_round_trips_through_metadata() -> None:
    config = GeneratorConfig(11, widths=(12, 24, 48), blocks=2)
    assert config.architecture == ARCHITECTURE
    assert GeneratorConfig.from_dict(config.to_dict()) == config
    # A v1 pack's config: no canvas, nearest upsampling, and saved back the same way.
    old = {"guide_channels": 11, "widths": [16, 32, 64], "blocks": 1}
    legacy = GeneratorConfig.from_dict(old, ARCHITECTURES[0])
    assert (legacy.canvas, legacy.upsample) == (0, "nearest")
    assert legacy.architecture == ARCHITECTURES[0] and legacy.to_dict() == old


def test_guides_are_quarter_size_and_in_range(astronaut: np.ndarray) -> None:
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], 128)
    reference = StudentReference(
        canonical_landmarks(128), np.linspace(0, 1, 65, dtype=np.float32), 128
    )
    guides = student_guides(crop.image, crop.landmarks, reference)
    assert guides.shape == (guide_channels(DEFAULT_GUIDES), 32, 32)
    assert guides.dtype == np.float32 and guides.min() >= -1.05 and guides.max() <= 1.05


def test_identity_warp_changes_nothing() -> None:
    images = torch.rand(2, 3, 32, 32)
    theta = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]).repeat(2, 1, 1)
    torch.testing.assert_close(_warp(images, theta), images, atol=1e-5, rtol=0)
    warps = _random_warps(4, 32, torch.Generator().manual_seed(0))
    assert warps.shape == (4, 2, 3) and (warps[:, :, :2] - torch.eye(2)).abs().max() < 0.06


def test_geometry_moves_features_toward_the_exemplar() -> None:
    size = 128
    content = canonical_landmarks(size)
    exemplar = content.copy()
    exemplar[36:48] = (exemplar[36:48] - exemplar[36:48].mean(0)) * 1.3 + exemplar[36:48].mean(0)
    exemplar[48:68, 1] += 6.0  # a lower mouth
    image = np.zeros((size, size, 3), np.uint8)
    x, y = np.rint(content[57]).astype(int)  # lower lip centre, marked with a dot
    image[y - 1 : y + 2, x - 1 : x + 2] = 255
    unchanged, same = toward_exemplar(image, content, exemplar, 0.0)
    assert unchanged is image and np.array_equal(same, content)
    warped, moved = toward_exemplar(image, content, exemplar, 1.0)
    np.testing.assert_allclose(moved, exemplar, atol=1e-4)
    ys, xs = np.nonzero(warped[..., 0] > 100)
    assert abs(ys.mean() - exemplar[57, 1]) < 1.5 and abs(xs.mean() - exemplar[57, 0]) < 1.5
    with pytest.raises(ValueError, match=r"0\.\.1"):
        toward_exemplar(image, content, exemplar, 1.5)


def test_a_frame_s_faces_are_reshaped_once(astronaut: np.ndarray) -> None:
    """The stylizer reshapes a frame's crops as it prepares them and the restyler asks for
    them again to line the output up: the same crops give the very same reshaped ones, with
    no second warp, and a new crop (even of the same face) is warped afresh."""
    pack = replace(make_pack(), geometry=0.5)
    stylizer = PackStylizer(pack)
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], size=pack.crop_size)
    (first,) = stylizer.reshape([crop])
    (again,) = stylizer.reshape([crop])
    assert again is first
    (expected,) = reshape_crops([crop], pack.exemplar_landmarks, pack.crop_size, 0.5)
    np.testing.assert_array_equal(first.image, expected.image)
    (fresh,) = stylizer.reshape([replace(crop)])
    assert fresh is not first
    np.testing.assert_array_equal(fresh.image, expected.image)
    # Only the last crops are kept.
    reshaper = Reshaper(pack.exemplar_landmarks, pack.crop_size, 0.5, keep=2)
    crops = [replace(crop, track_id=k) for k in range(3)]
    made = reshaper(crops)
    assert reshaper(crops[1:]) == made[1:] and reshaper(crops[:1])[0] is not made[0]


def test_bfloat16_and_float32_agree(astronaut: np.ndarray) -> None:
    pack = make_pack()
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], pack.crop_size)
    full = PackStylizer(pack, dtype=torch.float32).stylize([crop, crop])
    half = PackStylizer(pack, dtype=torch.bfloat16).stylize([crop])
    assert full.shape == (2, 64, 64, 3) and np.array_equal(full[0], full[1])
    assert np.abs(full[0].astype(int) - half[0]).mean() < 3.0
    assert PackStylizer(pack).stylize([]).shape == (0, 64, 64, 3)


def test_stylizer_refuses_wrong_crop_size_and_missing_gpu(astronaut: np.ndarray) -> None:
    pack = make_pack()
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], 128)
    with pytest.raises(StyleError, match="64px"):
        PackStylizer(pack).stylize([crop])
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA"):
            PackStylizer(pack, device="cuda")
        assert default_dtype(torch.device("cpu")) in (torch.float32, torch.bfloat16)


def test_saturated_outputs_still_get_a_gradient_while_training() -> None:
    net = StudentGenerator(GeneratorConfig(0, widths=(8, 16, 24), canvas=0))
    torch.nn.init.constant_(net.out.bias, 5.0)  # pushed far past white
    rgb, guides = torch.zeros(1, 3, 32, 32), torch.zeros(1, 0, 8, 8)
    net.train()(rgb, guides).abs().mean().backward()
    assert net.out.bias.grad is not None and net.out.bias.grad.abs().sum() > 0
    assert net.eval()(rgb, guides).max() == 1.0


def test_smoothing_steadies_a_still_face_without_ghosting_a_new_one(
    astronaut: np.ndarray, grace_hopper: np.ndarray
) -> None:
    pack = make_pack()
    first = align_face(astronaut, detect_landmarks(astronaut)[0], 64)
    rng = np.random.default_rng(0)
    shimmer = np.clip(first.image + rng.normal(0, 2, first.image.shape), 0, 255).astype(np.uint8)
    second = AlignedCrop(shimmer, first.matrix, first.landmarks)
    other = align_face(grace_hopper, detect_landmarks(grace_hopper)[0], 64)
    plain = PackStylizer(pack, dtype=torch.float32, smoothing=0.0)
    steady = PackStylizer(pack, dtype=torch.float32, smoothing=0.5)
    a, b = (plain.stylize([c])[0].astype(int) for c in (first, second))
    steady.stylize([first])
    smoothed = steady.stylize([second])[0].astype(int)
    assert np.abs(smoothed - a).mean() < 0.7 * np.abs(b - a).mean()
    # Another person in the same track: at most a trace of the last face stays.
    new_face = steady.stylize([other])[0].astype(int)
    other_alone = plain.stylize([other])[0].astype(int)
    assert np.abs(new_face - other_alone).mean() < 0.05 * np.abs(other_alone - a).mean()
    steady.reset()
    plain.reset()  # its canvas moved with the faces it saw
    assert np.array_equal(steady.stylize([second])[0], plain.stylize([second])[0])


def test_smoothing_follows_a_moving_face_instead_of_smearing_it(astronaut: np.ndarray) -> None:
    pack = make_pack()
    first = align_face(astronaut, detect_landmarks(astronaut)[0], 64)
    # The face moves 2 px right inside its crop (the crop's jitter, a turn), with shimmer.
    moved = cv2.warpAffine(first.image, np.float32([[1, 0, 2], [0, 1, 0]]), (64, 64))
    rng = np.random.default_rng(0)
    moved = np.clip(moved + rng.normal(0, 2, moved.shape), 0, 255).astype(np.uint8)
    second = AlignedCrop(moved, first.matrix, first.landmarks + np.float32([2, 0]))
    plain = PackStylizer(pack, dtype=torch.float32, smoothing=0.0)
    steady = PackStylizer(pack, dtype=torch.float32, smoothing=0.7)
    first_out = plain.stylize([first])[0].astype(np.float32)
    expected = cv2.warpAffine(first_out, np.float32([[1, 0, 2], [0, 1, 0]]), (64, 64))
    inner = (slice(8, -8), slice(8, -8))
    own = plain.stylize([second])[0][inner]
    steady.stylize([first])
    smoothed = steady.stylize([second])[0][inner]
    # Steadier than the frame on its own, and where the face went, not where it was.
    assert np.abs(smoothed - expected[inner]).mean() < 0.8 * np.abs(own - expected[inner]).mean()
    assert np.abs(smoothed - expected[inner]).mean() < np.abs(smoothed - first_out[inner]).mean()


def test_carrying_the_last_output_keeps_its_strokes_sharp() -> None:
    # Vertical strokes 4 px apart, carried half a pixel right and back, as a jittering crop
    # carries them frame after frame: their contrast must survive, not blur away (bilinear
    # sampling halfway keeps cos(pi/4) of it each time, half after the round trip).
    columns = np.arange(64, dtype=np.float32)
    strokes = np.sin(columns * np.float32(np.pi / 2))[None, :, None].repeat(64, 0)
    crop = torch.from_numpy(strokes.copy())
    half_pixel = np.zeros((64, 64, 2), np.float32)
    half_pixel[..., 0] = 0.5
    carried = _warp_crop(_warp_crop(crop, half_pixel), -half_pixel).numpy()[8:-8, 8:-8, 0]
    kept = (carried * strokes[8:-8, 8:-8, 0]).sum() / (strokes[8:-8, 8:-8, 0] ** 2).sum()
    assert kept > 0.9


def test_a_monochrome_style_gives_monochrome_faces(astronaut: np.ndarray) -> None:
    # An untrained student passes the photo's colours through; a pack whose exemplar is a
    # sepia print must still give sepia: every pixel on the print's own grey-to-colour line.
    grey = np.linspace(30, 230, 32 * 32).reshape(32, 32)
    sepia = np.stack([grey, grey * 0.85 + 5, grey * 0.6 + 10], axis=2).astype(np.uint8)
    pack = replace(make_pack(), thumbnail=sepia, monochrome=True)
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], pack.crop_size)
    out = PackStylizer(pack, dtype=torch.float32, smoothing=0.0).stylize([crop])[0]
    red = out[..., 0].astype(np.float32)
    unclipped = (red > 5) & (red < 250)
    np.testing.assert_allclose(out[..., 1][unclipped], red[unclipped] * 0.85 + 5, atol=2.0)
    np.testing.assert_allclose(out[..., 2][unclipped], red[unclipped] * 0.6 + 10, atol=2.0)
    # The pack says whether it is monochrome, not its thumbnail: the same sepia exemplar in
    # a pack made as a colour one (adapt --palette colour) passes the colours through.
    colour = replace(pack, monochrome=False)
    colour = PackStylizer(colour, dtype=torch.float32, smoothing=0.0).stylize([crop])[0]
    assert np.abs(colour[..., 2].astype(np.float32) - (colour[..., 0] * 0.6 + 10)).mean() > 10


def test_stylize_hands_over_exactly_what_the_student_computes(astronaut: np.ndarray) -> None:
    pack = make_pack()
    crop = align_face(astronaut, detect_landmarks(astronaut)[0], pack.crop_size)
    stylizer = PackStylizer(pack, dtype=torch.float32, smoothing=0.0)
    handed = stylizer.stylize([crop, crop])
    # On the CPU the DLPack hand-over gives NumPy (CuPy on a GPU), with the same values.
    assert type(handed) is np.ndarray and handed.dtype == np.uint8
    np.testing.assert_array_equal(handed, stylizer.run(*stylizer.inputs([crop, crop])))


def _drifting_crops(astronaut: np.ndarray, size: int, count: int) -> list[AlignedCrop]:
    """The astronaut's face drifting 2 px a frame inside a crop held still, brightening a
    little: crops of one track that smoothing blends."""
    landmarks = detect_landmarks(astronaut)[0]
    return [
        align_face(np.roll(astronaut, 2 * step, axis=1) + 2 * step, landmarks, size, 7)
        for step in range(count)
    ]


def test_a_pack_prepared_a_frame_ahead_paints_what_it_paints_alone(astronaut: np.ndarray) -> None:
    # The restyler prepares frame t + 1 (its flow from frame t, its canvas carried along it)
    # before it paints frame t, and finishes frame t on another thread: every crop must be
    # what the stylizer alone makes of the same crops, one frame after another.
    pack = replace(make_pack(), keep_tone=True)
    crops = _drifting_crops(astronaut, pack.crop_size, 5)
    staged, whole = PackStylizer(pack), PackStylizer(pack)
    unsmoothed = PackStylizer(pack, smoothing=0.0)
    prepared = [staged.prepare(crops[:1])]
    for t, crop in enumerate(crops):
        if t + 1 < len(crops):
            prepared.append(staged.prepare(crops[t + 1 : t + 2]))
        painted = staged.paint([crop], prepared[t])
        finished = staged.finish(painted, [crop])
        np.testing.assert_array_equal(finished, whole.stylize([crop]))
        alone = unsmoothed.stylize([crop])
        # From the second frame on, the track's last output is blended in: the frames met.
        assert (np.abs(finished.astype(int) - alone).mean() > 0.5) == (t > 0)


def test_a_frame_prepared_and_dropped_does_not_stop_the_smoothing(astronaut: np.ndarray) -> None:
    # Live, a frame can be prepared and then dropped before it is painted: the next frame is
    # still blended with the last one painted, as by a stylizer that never saw the dropped one.
    first, dropped, third = _drifting_crops(astronaut, 64, 3)
    pack = make_pack()
    painted = []
    for stylizer in (PackStylizer(pack), PackStylizer(pack, smoothing=0.0)):
        stylizer.paint([first], stylizer.prepare([first]))
        stylizer.prepare([dropped])  # its canvas is carried along it all the same
        painted.append(stylizer.paint([third], stylizer.prepare([third])).astype(int))
    smoothed, alone = painted
    assert np.abs(smoothed - alone).mean() > 0.5
