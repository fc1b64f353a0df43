"""The neck below the crop's square: stylized down to the collar, the collar and suit left."""

from __future__ import annotations

import types

import cv2
import numpy as np
import pytest
import scipy.ndimage
from face_crops import photo_face

from pipeline.align import align_face, invert_affine, transform_points
from pipeline.composite import Compositor
from pipeline.frame import CHIN, JAW, AlignedCrop, Face
from pipeline.guides import REGIONS, region_labels, to_lab
from pipeline.matte import fade_width
from pipeline.neck import face_palette, neck_colour_map, neck_strip, recolour
from pipeline.xp import ArrayBackend

SKIN_FROM_CHIN = 45  # frame pixels from the chin to the collar: 30 past the square


def _neck_frame(
    shadow: float = 1.0, lit: bool = False, collar: tuple[int, int, int] = (235, 235, 235)
) -> tuple[np.ndarray, AlignedCrop, dict[str, np.ndarray]]:
    """Known truth: the astronaut's face above a neck of her own skin colour that goes on
    past the aligned square's bottom edge down to a collar, a dark suit either side.

    Args:
        shadow: the neck's colour is her skin's times this (a neck in the chin's shadow).
        lit: the neck's right half below the square is her skin's own colour, lit as her
            cheeks are, the rest in shadow.
        collar: the collar's colour (white, or a tie's knot meeting the neck).

    Returns the frame, its aligned crop, and the regions (frame pixels, ``bool``, away from
    every region's edge) ``neck`` (below the square), ``collar``, ``suit`` and, with
    ``lit``, ``lit`` (the lit half of ``neck``).
    """
    photo, astronaut, first = photo_face("astronaut")
    landmarks = astronaut.landmarks
    margin = 120
    frame = np.zeros((photo.shape[0] + margin, photo.shape[1], 3), np.uint8)
    frame[: photo.shape[0]] = photo
    face = np.zeros(first.image.shape[:2], np.uint8)
    cv2.fillPoly(face, [np.rint(first.landmarks[JAW]).astype(np.int32)], 1)
    skin = np.median(first.image[face.astype(bool)], axis=0)
    chin = landmarks[CHIN, 1] + 2
    collar_row = chin + SKIN_FROM_CHIN
    rows, columns = np.mgrid[: frame.shape[0], : frame.shape[1]]
    below = rows > chin
    column = (columns > landmarks[5, 0]) & (columns < landmarks[11, 0])
    noise = np.random.default_rng(0).normal(0.0, 6.0, frame.shape)
    regions = {
        "neck": below & column & (rows < collar_row),
        "collar": below & column & (rows >= collar_row),
        "suit": below & ~column,
    }
    paint = {"neck": skin * shadow, "collar": collar, "suit": (30, 35, 60)}
    for name, region in regions.items():
        frame[region] = np.clip(np.asarray(paint[name]) + noise, 0, 255)[region]
    # Frame pixels under the square.
    crop = align_face(frame, landmarks)
    under = cv2.warpAffine(
        np.full(crop.image.shape[:2], 255, np.uint8),
        crop.matrix,
        frame.shape[1::-1],
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
    )
    if lit:
        middle = (landmarks[5, 0] + landmarks[11, 0]) / 2
        regions["lit"] = regions["neck"] & (under == 0) & (columns > middle)
        frame[regions["lit"]] = np.clip(skin + noise, 0, 255)[regions["lit"]]
        crop = align_face(frame, landmarks)
    under = cv2.erode(255 - under, np.ones((9, 9), np.uint8)) > 0
    under[rows > frame.shape[0] - 4] = False
    kernel = np.ones((9, 9), np.uint8)
    inner = {
        k: cv2.erode(v.astype(np.uint8), kernel).astype(bool) & under for k, v in regions.items()
    }
    return frame, crop, inner


@pytest.fixture(scope="module")
def long_neck() -> tuple[np.ndarray, AlignedCrop, dict[str, np.ndarray]]:
    """The astronaut's neck in her skin's colour down to a white collar
    (:func:`_neck_frame`)."""
    return _neck_frame()


def _grey(crop: AlignedCrop) -> np.ndarray:
    """``(1, S, S, 3)``: the crop in grey, a monochrome style known exactly."""
    return cv2.cvtColor(cv2.cvtColor(crop.image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)[None]


def _chroma(pixels: np.ndarray) -> float:
    """Mean CIELAB chroma of ``(N, 3)`` ``uint8`` RGB pixels."""
    return float(np.hypot(*to_lab(pixels)[:, 1:].T).mean())


def test_the_neck_below_the_square_takes_the_style_down_to_the_collar(long_neck) -> None:
    frame, crop, regions = long_neck
    neck, collar, suit = regions["neck"], regions["collar"], regions["suit"]
    assert neck.sum() > 300 and collar.sum() > 300 and suit.sum() > 300
    face = Face(0, np.zeros(4, np.float32), crop.landmarks)
    shown = Compositor("head").process(frame, [crop], _grey(crop), [face])
    # The photo's skin is strongly coloured; the style's neck is grey like its face.
    assert _chroma(frame[neck]) > 15.0
    assert _chroma(shown[neck]) < 0.2 * _chroma(frame[neck])
    # Its shading is the photo's own: lightness moves with the photo's.
    lightness = to_lab(shown[neck])[:, 0], to_lab(frame[neck])[:, 0]
    assert np.corrcoef(*lightness)[0, 1] > 0.8
    assert np.abs(shown[collar].astype(int) - frame[collar]).mean() < 3.0
    np.testing.assert_array_equal(shown[suit], frame[suit])


def test_the_neck_inside_the_square_takes_the_face_s_palette_not_the_background_s(
    long_neck,
) -> None:
    """A student paints what lies under the jaw as background (its region guide says so):
    Van Gogh's sky-blue on a neck. Shown, the neck is painted as the face is."""
    frame, crop, _ = long_neck
    size = crop.size
    background = region_labels(crop.landmarks, size) == REGIONS.index("background")
    stylized = _grey(crop)[0].copy()
    stylized[background] = (60, 120, 230)
    mask = Compositor("head").masks([crop])[0]
    face = Face(0, np.zeros(4, np.float32), crop.landmarks)
    shown = Compositor("head").process(frame, [crop], stylized[None], [face])
    # Back in the crop's pixels: the neck between the chin and the matte's fade, where the
    # matte shows it fully.
    shown_crop = cv2.warpAffine(shown, crop.matrix, (size, size), flags=cv2.INTER_LINEAR)
    rows = np.arange(size)[:, None]
    columns = np.arange(size)[None, :]
    neck = (
        background
        & (rows > crop.landmarks[CHIN, 1] + 8)
        & (rows < size - fade_width(size))
        & (columns > crop.landmarks[6, 0])
        & (columns < crop.landmarks[10, 0])
        & (mask > 240)
    )
    assert neck.sum() > 200
    assert _chroma(stylized[neck]) > 40.0
    assert _chroma(shown_crop[neck]) < 8.0
    # The photo's own shading, as on the neck below the square.
    lightness = to_lab(shown_crop[neck])[:, 0], to_lab(crop.image[neck])[:, 0]
    assert np.corrcoef(*lightness)[0, 1] > 0.8


def test_a_neck_lit_like_the_cheeks_below_its_shadow_is_the_neck_a_tie_knot_is_not() -> None:
    """The neck's own colour is measured in the square's last rows, in the chin's shadow;
    below them half of it is lit as the cheeks are, and a dark red tie knot meets it with
    no white collar between."""
    frame, crop, regions = _neck_frame(shadow=0.7, lit=True, collar=(120, 20, 40))
    lit, knot = regions["lit"], regions["collar"]
    assert lit.sum() > 100 and knot.sum() > 300
    face = Face(0, np.zeros(4, np.float32), crop.landmarks)
    shown = Compositor("head").process(frame, [crop], _grey(crop), [face])
    assert _chroma(shown[lit]) < 0.2 * _chroma(frame[lit])
    assert np.abs(shown[knot].astype(int) - frame[knot]).mean() < 3.0


def test_the_square_s_bottom_edge_over_the_neck_is_painted_as_the_neck(long_neck) -> None:
    """The matte fades out over the square's border, which is not the head's edge: the photo
    goes on past it. Laid over a background estimated there (as the head's soft edge is,
    :func:`pipeline.matte.behind_the_edge`), the fade drew a line across the neck in the
    photo's colours (on the shared clip 3, the red of the tie below)."""
    frame, crop, _ = long_neck
    size, fade = crop.size, fade_width(crop.size)
    bottom = np.zeros((size, size), np.uint8)
    jaw = crop.landmarks[JAW]
    bottom[size - fade :, round(jaw[6, 0]) : round(jaw[10, 0])] = 255
    edge = cv2.warpAffine(
        bottom, crop.matrix, frame.shape[1::-1], flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    ).astype(bool)
    assert edge.sum() > 100
    face = Face(0, np.zeros(4, np.float32), crop.landmarks)
    shown = Compositor("head").process(frame, [crop], _grey(crop), [face])
    # Grey as the neck below it (chroma 3.5): the edge 3.0, and 6.5 with the fade laid over
    # the background (the photo there 20.7).
    assert _chroma(shown[edge]) < 4.5


def test_without_the_head_matte_the_neck_stays_the_photos(long_neck) -> None:
    frame, crop, regions = long_neck
    face = Face(0, np.zeros(4, np.float32), crop.landmarks)
    for mode in ("face", "crop"):
        shown = Compositor(mode).process(frame, [crop], _grey(crop), [face])
        np.testing.assert_array_equal(shown[regions["neck"]], frame[regions["neck"]])


def test_a_matte_that_stops_above_the_square_edge_adds_no_strip(long_neck) -> None:
    frame, crop, _ = long_neck
    mask = np.full((crop.size, crop.size), 255, np.uint8)
    mask[crop.size * 3 // 4 :] = 0
    palette = face_palette(crop, _grey(crop)[0])
    assert palette is not None
    assert neck_strip(frame, crop, mask, palette) is None


def test_the_strip_lies_under_the_square_in_the_crops_own_pixels(long_neck) -> None:
    frame, crop, _ = long_neck
    mask = Compositor("head").masks([crop])[0]
    palette = face_palette(crop, _grey(crop)[0])
    assert palette is not None
    strip = neck_strip(frame, crop, mask, palette)
    assert strip is not None
    rows, columns = strip.opacity.shape
    assert strip.opacity.dtype == np.uint8 and 0 < columns < crop.size // 2 and rows > 0
    # The crop's matrix shifted down to the matte's fade and across to the neck.
    np.testing.assert_allclose(strip.matrix[:, :2], crop.matrix[:, :2])
    corner = transform_points(invert_affine(strip.matrix), np.zeros((1, 2)))
    left = crop.matrix[0, 2] - strip.matrix[0, 2]
    top = crop.size - fade_width(crop.size)
    np.testing.assert_allclose(transform_points(crop.matrix, corner), [[left, top]], atol=1e-3)


def test_the_gpu_code_path_run_on_numpy_places_the_neck_like_the_cpu_path(long_neck) -> None:
    frame, crop, regions = long_neck
    face = Face(0, np.zeros(4, np.float32), crop.landmarks)
    on_cpu = Compositor("head").process(frame, [crop], _grey(crop), [face])
    ndimage = ArrayBackend("numpy-ndimage", np, scipy.ndimage)
    on_gpu_path = Compositor("head", device=ndimage).process(frame, [crop], _grey(crop), [face])
    neck = regions["neck"]
    assert np.abs(on_gpu_path[neck].astype(int) - on_cpu[neck]).max() <= 2


def test_the_colour_map_recovers_a_known_affine_map() -> None:
    photo = np.random.default_rng(1).uniform(0, 255, (500, 3))
    known = np.array([[0.3, 0.3, 0.3], [0.5, 0.6, 0.5], [0.1, 0.1, 0.2], [10.0, -5.0, 20.0]])
    stylized = np.concatenate([photo, np.ones((500, 1))], axis=1) @ known
    fitted = neck_colour_map(photo, stylized, ridge=0.0)
    np.testing.assert_allclose(fitted, known, atol=1e-9)


def test_one_colour_moves_by_the_difference_of_the_means() -> None:
    photo = np.tile([[180.0, 120.0, 90.0]], (100, 1))
    stylized = np.random.default_rng(2).normal(128.0, 10.0, (100, 3))
    fitted = neck_colour_map(photo, stylized)
    mapped = np.array([200.0, 90.0, 60.0, 1.0]) @ fitted
    shift = stylized.mean(axis=0) - photo[0]
    np.testing.assert_allclose(mapped, np.array([200.0, 90.0, 60.0]) + shift, atol=1e-9)


def test_an_unchanged_face_gives_the_identity() -> None:
    photo = np.random.default_rng(4).normal(150.0, 20.0, (300, 3))
    np.testing.assert_allclose(neck_colour_map(photo, photo), np.eye(4, 3), atol=1e-9)


def test_the_gpu_recolouring_run_on_numpy_matches_opencvs() -> None:
    """The CuPy branch of :func:`recolour` is plain array arithmetic; run on NumPy through
    a stand-in module it must round and clip as OpenCV's transform does."""
    image = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    colour_map = np.array([[0.5, 0.2, 0.1], [0.4, 0.9, 0.1], [0.1, 0.1, 1.3], [8.0, -30.0, 2.5]])
    like_cupy = types.SimpleNamespace(
        **{n: getattr(np, n) for n in dir(np) if not n.startswith("_")}
    )
    on_gpu_path = recolour(like_cupy, image, colour_map)
    assert on_gpu_path.dtype == np.uint8 and on_gpu_path.max() == 255 and on_gpu_path.min() == 0
    assert np.abs(on_gpu_path.astype(int) - recolour(np, image, colour_map)).max() <= 1
