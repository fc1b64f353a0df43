"""The compositor: exact pass-through outside the mask, the stylized crop inside, known geometry."""

from __future__ import annotations

import importlib.util
import types

import cv2
import numpy as np
import pytest
import scipy.ndimage
from face_crops import photo_face

from models.metrics import pixel_detail
from pipeline.align import align_face, canonical_landmarks, invert_affine, transform_points
from pipeline.cartoon import CartoonStylizer
from pipeline.composite import (
    FINE_DETAIL_FROM,
    Compositor,
    blend,
    crop_mask,
    face_mask,
    fine_detail_gain,
    magnification,
    warp_crop_ndimage,
    warp_crop_opencv,
)
from pipeline.errors import DeviceError
from pipeline.frame import AlignedCrop, Face
from pipeline.xp import ArrayBackend, select_backend

GREEN = np.array([0, 255, 0], np.uint8)
HAS_CUPY = importlib.util.find_spec("cupy") is not None


def _solid(colour: np.ndarray, count: int = 1, size: int = 256) -> np.ndarray:
    return np.broadcast_to(colour, (count, size, size, 3)).copy()


def _polygon_mask(points: np.ndarray, shape: tuple[int, ...], grow: int) -> np.ndarray:
    """``(H, W)`` bool: the convex hull of ``points`` (frame pixels), grown by ``grow`` px."""
    mask = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(np.rint(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(mask, kernel).astype(bool)


def _face_outline(face: Face, forehead: float) -> np.ndarray:
    """Jaw and brows plus the brows raised toward the hairline, frame pixels."""
    points = face.landmarks.astype(np.float64)
    brows = points[17:27]
    raised = brows + forehead * (brows.mean(axis=0) - points[8])
    return np.concatenate([points[:17], brows, raised])


@pytest.fixture(scope="module")
def astronaut_face() -> tuple[np.ndarray, Face, AlignedCrop]:
    return photo_face("astronaut")


def test_face_mode_touches_only_pixels_inside_the_face_outline(astronaut_face):
    photo, face, crop = astronaut_face
    out = Compositor("face", forehead=0.3).process(photo, [crop], _solid(GREEN), [face])
    changed = np.any(out != photo, axis=2)
    outline = _polygon_mask(_face_outline(face, 0.3), photo.shape, grow=1)
    assert changed.sum() > 0.5 * outline.sum()
    assert not np.any(changed & ~outline)
    np.testing.assert_array_equal(out[~outline], photo[~outline])


def test_crop_mode_touches_only_pixels_inside_the_crop_footprint(astronaut_face):
    photo, face, crop = astronaut_face
    out = Compositor("crop").process(photo, [crop], _solid(GREEN), [face])
    changed = np.any(out != photo, axis=2)
    corners = np.array([[0, 0], [255, 0], [0, 255], [255, 255]], np.float64)
    footprint = _polygon_mask(transform_points(invert_affine(crop.matrix), corners), photo.shape, 1)
    face_only = Compositor("face").process(photo, [crop], _solid(GREEN), [face])
    assert changed.sum() > 1.5 * np.any(face_only != photo, axis=2).sum()
    assert not np.any(changed & ~footprint)


@pytest.mark.parametrize("mode", ["face", "crop"])
def test_inside_the_mask_the_stylized_crop_shows_through(astronaut_face, mode):
    photo, face, crop = astronaut_face
    out = Compositor(mode).process(photo, [crop], _solid(GREEN), [face])
    # Where the crop-space mask is solid (with a pixel to spare), the frame is pure stylized.
    mask = face_mask(crop.landmarks, 256, 0.03, 0.3) if mode == "face" else crop_mask(256, 0.03)
    solid = cv2.erode((mask == 255).astype(np.uint8), np.ones((5, 5), np.uint8))
    solid_in_frame = cv2.warpAffine(
        solid, invert_affine(crop.matrix), photo.shape[1::-1], flags=cv2.INTER_NEAREST
    ).astype(bool)
    touched_in_frame = cv2.warpAffine(
        (mask > 0).astype(np.uint8), invert_affine(crop.matrix), photo.shape[1::-1]
    ).astype(bool)
    assert solid_in_frame.sum() > 0.4 * touched_in_frame.sum()
    assert np.all(out[solid_in_frame] == GREEN)


def test_the_aligned_crop_itself_composites_back_onto_the_face(astronaut_face):
    photo, face, crop = astronaut_face
    out = Compositor("face").process(photo, [crop], crop.image[None], [face])
    outline = _polygon_mask(face.landmarks, photo.shape, grow=0)
    error = np.abs(out.astype(np.float32) - photo)[outline].mean()
    # Resampled twice (frame -> crop -> frame), so slightly soft, but in place: a crop put
    # back two pixels off would differ far more.
    shifted = crop.matrix.copy()
    shifted[0, 2] += 2.0
    moved = AlignedCrop(crop.image, shifted, crop.landmarks)
    off = Compositor("face").process(photo, [moved], crop.image[None], [face])
    assert error < 2.5
    assert np.abs(off.astype(np.float32) - photo)[outline].mean() > 2 * error


def test_a_crop_lands_where_its_known_similarity_puts_it():
    # Frame -> crop similarity built by hand: rotate 30 degrees, scale 0.8, then shift.
    angle, scale = np.deg2rad(30.0), 0.8
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = np.hstack([linear, [[-200.0], [-150.0]]])
    marker = np.array([100.0, 150.0])
    stylized = np.zeros((1, 256, 256, 3), np.uint8)
    cv2.circle(stylized[0], (100, 150), 6, (255, 255, 255), -1)
    crop = AlignedCrop(np.zeros((256, 256, 3), np.uint8), matrix, canonical_landmarks())
    face = Face(0, np.zeros(4, np.float32), transform_points(invert_affine(matrix), crop.landmarks))
    frame = np.zeros((480, 640, 3), np.uint8)

    out = Compositor("crop", feather=0.02).process(frame, [crop], stylized, [face])

    weight = out[:, :, 0].astype(np.float64)
    ys, xs = np.mgrid[: frame.shape[0], : frame.shape[1]]
    centroid = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
    expected = transform_points(invert_affine(matrix), marker[None])[0]
    assert 0 < expected[0] < 640 and 0 < expected[1] < 480
    np.testing.assert_allclose(centroid, expected, atol=0.3)
    # The disc keeps its size: radius 6 in the crop is 6 / 0.8 in the frame.
    assert abs((weight > 127).sum() - np.pi * (6 / scale) ** 2) < 0.15 * np.pi * (6 / scale) ** 2


def test_visibility_scales_the_blend_and_zero_leaves_the_frame_alone(astronaut_face):
    photo, face, crop = astronaut_face
    compositor = Compositor("crop")
    hidden = Face(face.track_id, face.box, face.landmarks, visibility=0.0)
    assert compositor.process(photo, [crop], _solid(GREEN), [hidden]) is photo

    full = compositor.process(photo, [crop], _solid(GREEN), [face])
    half = Face(face.track_id, face.box, face.landmarks, visibility=0.5)
    halfway = compositor.process(photo, [crop], _solid(GREEN), [half])
    inside = np.all(full == GREEN, axis=2)
    expected = (photo[inside].astype(np.float32) + GREEN) / 2
    assert np.abs(halfway[inside] - expected).max() <= 0.5 + 1e-6


def test_no_faces_pass_the_frame_through(astronaut_face):
    photo, _, _ = astronaut_face
    out = Compositor().process(photo, [], np.zeros((0, 256, 256, 3), np.uint8), [])
    assert out is photo


def test_the_input_frame_is_never_modified(astronaut_face):
    photo, face, crop = astronaut_face
    before = photo.copy()
    Compositor().process(photo, [crop], _solid(GREEN), [face])
    np.testing.assert_array_equal(photo, before)


def test_a_face_cut_by_the_frame_edge_is_composited_up_to_the_edge(astronaut_face):
    photo, face, _ = astronaut_face
    left = int(face.landmarks[:, 0].mean())  # cut the face in half, down the nose
    frame = np.ascontiguousarray(photo[:, left:])
    cut = Face(0, np.zeros(4, np.float32), face.landmarks - np.float32([left, 0]))
    crop = align_face(frame, cut)
    out = Compositor("face").process(frame, [crop], _solid(GREEN), [cut])
    changed = np.any(out != frame, axis=2)
    outline = _polygon_mask(_face_outline(cut, 0.3), frame.shape, grow=1)
    assert changed[:, 0].sum() > 20  # reaches the cut edge
    assert not np.any(changed & ~outline)


def test_a_face_entirely_outside_the_frame_changes_nothing(astronaut_face):
    photo, face, crop = astronaut_face
    far = crop.matrix.copy()
    far[:, 2] += crop.matrix[:, :2] @ np.array([5000.0, 0.0])
    gone = AlignedCrop(crop.image, far, crop.landmarks)
    assert Compositor().process(photo, [gone], _solid(GREEN), [face]) is photo


def test_two_faces_are_both_composited():
    _, face_a, crop_a = photo_face("astronaut")
    photo_b, face_b, crop_b = photo_face("grace_hopper")
    out = Compositor("face").process(
        photo_b, [crop_a, crop_b], np.concatenate([_solid(GREEN), _solid(GREEN)]), [face_a, face_b]
    )
    for face in (face_a, face_b):
        inside = _polygon_mask(face.landmarks[:17], photo_b.shape, grow=0)
        assert np.all(out[inside] == GREEN, axis=1).mean() > 0.5


def test_the_gpu_warp_matches_opencv_when_run_on_numpy(astronaut_face):
    _, _, crop = astronaut_face
    rgba = np.dstack([crop.image, face_mask(crop.landmarks, 256, 0.03, 0.3)])
    region = (150, 60, 220, 260)  # x0, y0, width, height around the face
    scipy_backend = ArrayBackend("numpy", np, scipy.ndimage)
    by_ndimage = warp_crop_ndimage(scipy_backend, rgba, crop.matrix, region).astype(np.int16)
    by_opencv = warp_crop_opencv(rgba, crop.matrix, region).astype(np.int16)
    assert by_ndimage.shape == by_opencv.shape == (260, 220, 4)
    # OpenCV interpolates in fixed point (1/32 pixel), scipy in floating point: a level apart
    # at most, and they agree on where the mask is empty.
    assert np.abs(by_ndimage - by_opencv).max() <= 1
    np.testing.assert_array_equal(by_ndimage[..., 3] == 0, by_opencv[..., 3] == 0)
    assert (by_opencv[..., 3] > 0).sum() > 5000


@pytest.mark.parametrize("mode", ["face", "crop"])
def test_the_gpu_code_path_run_on_numpy_composites_like_the_cpu_path(mode):
    photo, face, crop = photo_face("grace_hopper")
    stylized = CartoonStylizer().stylize([crop])
    half = Face(face.track_id, face.box, face.landmarks, visibility=0.6)
    on_cpu = Compositor(mode).process(photo, [crop], stylized, [half])
    gpu_path = Compositor(mode, device=ArrayBackend("numpy-ndimage", np, scipy.ndimage))
    on_gpu_path = gpu_path.process(photo, [crop], stylized, [half])
    # The face is magnified, so its fine detail goes through OpenCV's rounded grey on one
    # path and float luma on the other: one more grey level of rounding.
    assert magnification(crop.matrix) >= FINE_DETAIL_FROM
    assert np.abs(on_gpu_path.astype(np.int16) - on_cpu).max() <= 2
    mask = Compositor(mode).masks([crop])[0]
    footprint = cv2.warpAffine(
        mask, crop.matrix, photo.shape[1::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    untouched = footprint == 0
    np.testing.assert_array_equal(on_cpu[untouched], photo[untouched])
    np.testing.assert_array_equal(on_gpu_path[untouched], photo[untouched])
    assert (~untouched).sum() > 10000


def test_blend_is_exact_at_both_ends():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    colour = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    mask = np.zeros((40, 50, 1), np.uint8)
    mask[10:30, 10:40] = 255
    mask[20, :] = 128
    mixed = blend(np, base, np.dstack([colour, mask]), 1.0)
    np.testing.assert_array_equal(mixed[mask[..., 0] == 0], base[mask[..., 0] == 0])
    np.testing.assert_array_equal(mixed[mask[..., 0] == 255], colour[mask[..., 0] == 255])
    np.testing.assert_array_equal(blend(np, base, np.dstack([colour, mask]), 0.0), base)
    # In between, the weighted mean the GPU path computes, to within rounding.
    half = base[20].astype(np.float32) + (colour[20].astype(np.float32) - base[20]) * 128 / 255
    assert np.abs(mixed[20].astype(np.float32) - half).max() <= 1.0


@pytest.mark.skipif(HAS_CUPY, reason="CuPy is installed here; the fallback cannot be seen")
def test_without_cupy_the_backend_falls_back_to_numpy():
    backend = select_backend("auto")
    assert backend.name == "numpy" and backend.xp is np and backend.ndimage is scipy.ndimage
    assert Compositor().backend.name == "numpy"
    with pytest.raises(DeviceError, match=r"pip install \"facestyle\[gpu\]\""):
        select_backend("cuda")
    with pytest.raises(DeviceError, match="CuPy"):
        Compositor(device="cuda")


def test_cpu_is_always_numpy():
    assert select_backend("cpu").xp is np


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: select_backend("tpu"), "device must be"),
        (lambda: Compositor("ellipse"), "mode must be"),
        (lambda: Compositor(feather=0.0), "feather"),
    ],
)
def test_bad_settings_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_mismatched_batches_are_refused(astronaut_face):
    photo, face, crop = astronaut_face
    with pytest.raises(ValueError, match="as many crops"):
        Compositor().process(photo, [crop, crop], _solid(GREEN), [face])
    with pytest.raises(ValueError, match="stylized crop is"):
        Compositor().process(photo, [crop], _solid(GREEN, size=128), [face])


def test_the_gpu_warp_asks_for_few_output_shapes(astronaut_face):
    # CuPy compiles a kernel per output shape: regions a few pixels apart must share one.
    _, _, crop = astronaut_face
    rgba = np.dstack([crop.image, face_mask(crop.landmarks, 256, 0.03, 0.3)])
    shapes = []

    def recording_affine_transform(*args, output_shape, **kwargs):
        shapes.append(output_shape)
        return scipy.ndimage.affine_transform(*args, output_shape=output_shape, **kwargs)

    ndimage = types.SimpleNamespace(affine_transform=recording_affine_transform)
    backend = ArrayBackend("numpy", np, ndimage)
    sizes = [(150, 60, 200 + i, 250 - i) for i in range(0, 20, 3)]
    warped = [warp_crop_ndimage(backend, rgba, crop.matrix, region) for region in sizes]
    assert [w.shape[:2] for w in warped] == [(h, w) for _, _, w, h in sizes]
    assert len(set(shapes)) == 1


def test_a_magnified_face_gets_the_frames_fine_detail_back():
    # A 128 px crop (the size live paints at under load) of Grace Hopper's face is magnified
    # about 2.6 times on the way back; a style that keeps the photo as it is shows what the
    # crop's resolution loses.
    photo, face, _ = photo_face("grace_hopper")
    crop = align_face(photo, face.landmarks, size=128)
    assert magnification(crop.matrix) > 2.4
    inside = _polygon_mask(face.landmarks, photo.shape, grow=0)
    soft = Compositor("face", fine_detail=False).process(photo, [crop], crop.image[None], [face])
    sharp = Compositor("face").process(photo, [crop], crop.image[None], [face])

    own = pixel_detail(photo, inside)
    assert pixel_detail(soft, inside) < 0.6 * own
    assert pixel_detail(sharp, inside) > 0.85 * own
    soft_error, sharp_error = (
        np.abs(v.astype(np.float32) - photo)[inside].mean() for v in (soft, sharp)
    )
    assert sharp_error < 0.6 * soft_error
    gpu_path = Compositor("face", device=ArrayBackend("numpy-ndimage", np, scipy.ndimage))
    on_gpu_path = gpu_path.process(photo, [crop], crop.image[None], [face])
    assert np.abs(on_gpu_path.astype(np.int16) - sharp).max() <= 2


def test_flat_colour_gets_none_of_the_photos_detail():
    photo, face, crop = photo_face("grace_hopper")
    plain = Compositor("crop", fine_detail=False).process(photo, [crop], _solid(GREEN), [face])
    np.testing.assert_array_equal(
        Compositor("crop").process(photo, [crop], _solid(GREEN), [face]), plain
    )


def test_a_face_no_larger_than_its_crop_stays_as_the_crop_paints_it():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    matrix = np.array([[1 / 1.2, 0.0, 10.0], [0.0, 1 / 1.2, 10.0]])
    crop = AlignedCrop(cv2.warpAffine(frame, matrix, (256, 256)), matrix, canonical_landmarks())
    face = Face(0, np.zeros(4, np.float32), transform_points(invert_affine(matrix), crop.landmarks))
    assert magnification(matrix) < FINE_DETAIL_FROM
    both = [
        Compositor("crop", fine_detail=k).process(frame, [crop], crop.image[None], [face])
        for k in (True, False)
    ]
    np.testing.assert_array_equal(*both)


def _smooth_texture(seed: int) -> np.ndarray:
    """``(64, 64, 3)`` ``uint8`` grey texture with structure a few pixels wide, contrast ~40."""
    noise = np.random.default_rng(seed).normal(0.0, 1.0, (64, 64)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 1.5)
    grey = np.clip(128 + 40 * texture / texture.std(), 0, 255).astype(np.uint8)
    return np.dstack([grey] * 3)


@pytest.mark.parametrize(
    ("make_style", "expected"),
    [
        (lambda photo: photo, 1.0),
        (lambda photo: (photo * 0.5 + 60).astype(np.uint8), 0.5),
        (lambda photo: 255 - photo, 0.0),
    ],
    ids=["kept", "half-contrast", "inverted"],
)
def test_the_gain_is_the_share_of_the_photos_contrast_the_style_keeps(make_style, expected):
    photo = _smooth_texture(1)
    stylized = make_style(photo)
    layers = fine_detail_gain(select_backend("cpu"), photo, stylized)
    assert layers.shape == (64, 64, 4) and layers.dtype == np.uint8
    np.testing.assert_allclose(np.median(layers[..., 0]) / 255, expected, atol=0.06)
    np.testing.assert_array_equal(layers[..., 1], photo[..., 0])
    gpu_backend = ArrayBackend("numpy-ndimage", np, scipy.ndimage)
    on_gpu_path = fine_detail_gain(gpu_backend, photo, stylized)
    assert np.abs(on_gpu_path.astype(np.int16) - layers).max() <= 1
