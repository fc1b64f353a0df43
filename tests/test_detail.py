"""restore_detail: the identity <-> style lever on real stylized crops."""

from __future__ import annotations

import itertools
from dataclasses import replace

import cv2
import numpy as np
import pytest
from face_crops import photo_face
from pack_factory import make_pack

from models.pack_stylizer import PackStylizer
from pipeline.align import align_face
from pipeline.cartoon import CartoonStylizer
from pipeline.composite import FINE_DETAIL_FROM, Compositor, magnification
from pipeline.detail import inner_face, restore_detail, restore_tone
from pipeline.frame import Frame
from pipeline.restyle import Analysis, Restyler


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """Cartoon-stylized crops and their content crops, ``(2, 256, 256, 3)`` ``uint8`` each."""
    crops = [photo_face(name, i)[2] for i, name in enumerate(("astronaut", "grace_hopper"))]
    return CartoonStylizer().stylize(crops), np.stack([c.image for c in crops])


def _high_pass(image: np.ndarray) -> np.ndarray:
    y = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (y - cv2.GaussianBlur(y, (0, 0), 3.0)).ravel()


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_high_pass(a), _high_pass(b))[0, 1])


def test_strength_zero_returns_the_stylized_crops_untouched(pair):
    stylized, content = pair
    before = stylized.copy()
    out = restore_detail(stylized, content, 0.0)
    assert out is stylized
    np.testing.assert_array_equal(out, before)


def test_more_strength_brings_the_output_detail_closer_to_the_content(pair):
    stylized, content = pair
    for i in range(len(content)):
        scores = [
            _correlation(restore_detail(stylized, content, k)[i], content[i])
            for k in (0.0, 0.25, 0.5, 1.0)
        ]
        assert all(a < b for a, b in itertools.pairwise(scores)), scores
        assert scores[3] > scores[0] + 0.05, scores


def test_each_crop_gets_its_own_content_detail(pair):
    stylized, content = pair
    out = restore_detail(stylized, content, 1.0)
    for i in range(2):
        own = _correlation(out[i], content[i])
        other = _correlation(out[i], content[1 - i])
        assert own > other + 0.2


def test_colours_and_large_shapes_stay_the_style(pair):
    stylized, content = pair
    out = restore_detail(stylized, content, 1.0)
    low_out = cv2.GaussianBlur(out[0].astype(np.float32), (0, 0), 6.0)
    low_style = cv2.GaussianBlur(stylized[0].astype(np.float32), (0, 0), 6.0)
    low_content = cv2.GaussianBlur(content[0].astype(np.float32), (0, 0), 6.0)
    assert np.abs(low_out - low_style).mean() < 0.25 * np.abs(low_content - low_style).mean()


def _band(image: np.ndarray, fine: float, coarse: float) -> np.ndarray:
    """Luminance between two Gaussian blurs (exact, full resolution)."""
    y = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (cv2.GaussianBlur(y, (0, 0), fine) - cv2.GaussianBlur(y, (0, 0), coarse)).ravel()


def test_a_wider_identity_scale_also_restores_the_faces_light_and_shadow(pair):
    stylized, content = pair
    flat = np.full_like(stylized, 128)  # a style that flattened the face's modelling
    for i in range(len(content)):
        fine, wide = (restore_detail(flat, content, 1.0, sigma)[i] for sigma in (3.0, 32.0))
        # How much of the person's shading (the 6-32 px band) each output carries, 1 = all.
        shading = _band(content[i], 6, 32)
        carried = [float(_band(out, 6, 32) @ shading / (shading @ shading)) for out in (fine, wide)]
        assert carried[0] < 0.2 and carried[1] > 0.8, carried
        # The fine detail comes back either way.
        assert min(_correlation(out, content[i]) for out in (fine, wide)) > 0.9


def test_a_wide_scale_is_blurred_on_a_smaller_copy_close_to_the_exact_blur(pair):
    stylized, content = pair
    flat = np.full_like(stylized, 128)  # the detail is added to R, G and B alike: read one
    out = restore_detail(flat, content, 1.0, 32.0).astype(np.float32)[..., 0] - 128
    for i, source in enumerate(content):
        luminance = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY).astype(np.float32)
        exact = luminance - cv2.GaussianBlur(luminance, (0, 0), 32.0)
        inside = (slice(8, -8), slice(8, -8))  # the border is extended differently when shrunk
        assert np.abs(out[i][inside] - np.clip(exact, -128, 127)[inside]).mean() < 1.5


class _Flat:
    """A style that paints every face one flat grey, with a chosen identity scale."""

    name = "flat"
    default_identity = 1.0

    def __init__(self, identity_scale: float, crop_size: int = 256) -> None:
        self.identity_scale = identity_scale
        self.crop_size = crop_size

    def stylize(self, crops) -> np.ndarray:
        return np.full((len(crops), self.crop_size, self.crop_size, 3), 128, np.uint8)

    def reset(self) -> None:
        pass


def test_a_render_restores_detail_at_its_styles_identity_scale() -> None:
    photo, face, crop = photo_face("astronaut")
    frame = Frame(photo, 0.0, 0)
    content = crop.image[None]
    for scale in (3.0, 64.0):
        style = _Flat(scale)
        restyler = Restyler(style)
        out = restyler.finish(restyler.stylize(Analysis(frame, (face,), (crop,), style)))
        np.testing.assert_array_equal(
            out, restore_detail(style.stylize([crop]), content, 1.0, scale)
        )
    restyler = Restyler(_Flat(64.0))
    wide = restyler.finish(restyler.stylize(Analysis(frame, (face,), (crop,), _Flat(64.0))))
    assert not np.array_equal(wide, restore_detail(_Flat(3.0).stylize([crop]), content, 1.0))


def test_a_face_keeps_the_persons_lightness_under_a_wide_identity_scale() -> None:
    """The person's detail goes on before a pack restores the skin tone: at a wide scale
    (the bundled painterly's 64) it is not zero on a face lighter than the dark backdrop
    around it, and added after the tone it left the face paler than the person."""
    photo, face, _ = photo_face("grace_hopper")
    pack = replace(make_pack(), keep_tone=True, identity=1.0, identity_scale=64.0)
    crop = align_face(photo, face, pack.crop_size)
    inside = inner_face(crop.landmarks, crop.size)

    def lightness(image: np.ndarray) -> float:
        return float(np.median(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[inside]))

    stylizer = PackStylizer(pack, smoothing=0.0)
    restyler = Restyler(stylizer)
    prepared = tuple(stylizer.prepare([crop]))
    analysis = Analysis(Frame(photo, 0.0, 0), (face,), (crop,), stylizer, prepared=prepared)
    (shown,) = restyler.finish(restyler.stylize(analysis))
    assert abs(lightness(shown) - lightness(crop.image)) <= 2
    # The other order, tone then detail, is visibly off on this face.
    other = PackStylizer(pack, smoothing=0.0)
    toned = other.stylize([crop])
    later = restore_detail(toned, crop.image[None], 1.0, 64.0)[0]
    assert lightness(later) - lightness(crop.image) > 5


def test_the_skin_hue_moves_a_face_toward_the_persons_colour_at_its_own_lightness() -> None:
    _, _, crop = photo_face("grace_hopper")
    inside = inner_face(crop.landmarks, crop.size)
    # A grey-green painted face: the painter's hue, far from her own pink skin.
    painted = np.full_like(crop.image, (120, 130, 110))

    def lab(image: np.ndarray) -> np.ndarray:
        return np.median(cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[inside].astype(float), axis=0)

    content, points = crop.image[None], crop.landmarks[None]
    own = lab(crop.image)
    painter = lab(restore_tone(painted[None], content, points)[0])
    half = lab(restore_tone(painted[None], content, points, hue=0.5)[0])
    person = lab(restore_tone(painted[None], content, points, hue=1.0)[0])
    # Lightness is the person's every time (8-bit L*: 0-255); the colour (a*, b*) moves.
    for figures in (painter, half, person):
        assert abs(figures[0] - own[0]) <= 4
    assert np.linalg.norm(person[1:] - own[1:]) <= 3
    distance = np.linalg.norm(painter[1:] - own[1:])
    assert distance > 10
    assert 0.3 * distance < np.linalg.norm(half[1:] - own[1:]) < 0.7 * distance
    with pytest.raises(ValueError, match=r"hue must be in 0\.\.1"):
        restore_tone(painted[None], content, points, hue=1.5)


@pytest.mark.parametrize(
    ("stylized", "content", "strength", "message"),
    [
        (np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 4, 3), np.uint8), 1.0, "same"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), 1.0, "same"),
        (np.zeros((1, 8, 8, 3), np.float32), np.zeros((1, 8, 8, 3), np.uint8), 1.0, "uint8"),
        (np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), -0.5, ">= 0"),
        (np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), np.nan, ">= 0"),
    ],
)
def test_bad_arguments_are_refused(stylized, content, strength, message):
    with pytest.raises(ValueError, match=message):
        restore_detail(stylized, content, strength)


def _median(image: np.ndarray, inside: np.ndarray) -> float:
    return float(np.median(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[inside]))


def test_restore_tone_gives_a_paled_face_its_own_brightness_back(pair) -> None:
    stylized, content = pair
    crops = [photo_face(name)[2] for name in ("astronaut", "grace_hopper")]
    landmarks = np.stack([c.landmarks for c in crops])
    # A style that paints every face in pale tones: half-way to white.
    pale = (stylized.astype(np.uint16) + 255) // 2
    pale = pale.astype(np.uint8)
    toned = restore_tone(pale, content, landmarks)
    for i, points in enumerate(landmarks):
        face = np.zeros(content.shape[1:3], np.uint8)
        cv2.fillPoly(
            face, [np.rint(np.concatenate([points[:17], points[26:16:-1]])).astype(int)], 1
        )
        inside = face.astype(bool)
        assert _median(pale[i], inside) > _median(content[i], inside) + 30
        assert abs(_median(toned[i], inside) - _median(content[i], inside)) < 3
        # Darkened, the colour is kept nearer its strength than one gain on R, G and B would
        # (pale skin darkened by a gain alone turns grey), and its hue is kept.
        lab = cv2.cvtColor(toned[i], cv2.COLOR_RGB2LAB)[inside].astype(np.float32)
        gained = np.clip(
            pale[i].astype(np.float32) * (_median(toned[i], inside) / _median(pale[i], inside)),
            0,
            255,
        )
        lab_gained = cv2.cvtColor(gained.astype(np.uint8), cv2.COLOR_RGB2LAB)[inside].astype(
            np.float32
        )
        chroma, chroma_gained = (
            np.median(np.hypot(*(x[:, 1:] - 128).T)) for x in (lab, lab_gained)
        )
        # Here the gain is about 0.75, so the colour is kept about 0.75^-0.365 = 1.11 x stronger.
        assert chroma > 1.05 * chroma_gained, (chroma, chroma_gained)
        hue = np.median(np.arctan2(*(lab[:, 1:] - 128).T[::-1]))
        hue_gained = np.median(np.arctan2(*(lab_gained[:, 1:] - 128).T[::-1]))
        assert abs(hue - hue_gained) < 0.1
    # A face already at its own brightness is left as it is.
    np.testing.assert_array_equal(restore_tone(content, content, landmarks), content)


class _Mirroring(_Flat):
    """A flat style that draws each face mirrored: a reshaping whose result is known."""

    def __init__(self, crop_size: int = 256) -> None:
        super().__init__(3.0, crop_size)

    def reshape(self, crops) -> list:
        return [replace(c, image=np.ascontiguousarray(c.image[:, ::-1])) for c in crops]


def test_a_reshaped_face_gets_the_detail_of_the_face_as_reshaped() -> None:
    """A pack's geometry moves the eyes; the person's detail taken from the crop as it was
    put them back where they had been, beside the painted ones."""
    photo, face, crop = photo_face("astronaut")
    style = _Mirroring()
    restyler = Restyler(style)
    (out,) = restyler.finish(
        restyler.stylize(Analysis(Frame(photo, 0.0, 0), (face,), (crop,), style))
    )
    flat = style.stylize([crop])
    np.testing.assert_array_equal(out, restore_detail(flat, crop.image[None, :, ::-1], 1.0)[0])
    assert _correlation(out, crop.image[:, ::-1]) > 0.9 > 0.3 > _correlation(out, crop.image)


def test_a_reshaped_face_gets_none_of_the_frame_s_own_fine_detail() -> None:
    """The frame's detail finer than the crop is where the face was, not where its geometry
    moved it: a 128 px crop of the astronaut is shown enlarged, and gets it only unmoved."""
    photo, face, _ = photo_face("astronaut")
    frame = Frame(photo, 0.0, 0)

    def shown(style: _Flat, fine_detail: bool) -> np.ndarray:
        restyler = Restyler(style, compositor=Compositor(fine_detail=fine_detail))
        crop = align_face(photo, face, style.crop_size)
        assert magnification(crop.matrix) >= FINE_DETAIL_FROM
        return restyler.composite(restyler.stylize(Analysis(frame, (face,), (crop,), style))).image

    # Above the chin: the neck below the crop is the frame's own and gets its detail.
    chin = round(float(face.landmarks[8, 1]))
    np.testing.assert_array_equal(
        shown(_Mirroring(128), True)[:chin], shown(_Mirroring(128), False)[:chin]
    )
    assert not np.array_equal(shown(_Flat(3.0, 128), True), shown(_Flat(3.0, 128), False))
