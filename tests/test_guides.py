"""Guides on real aligned faces: regions where the landmarks say, TPS that hits its landmarks,
appearance matched to the exemplar's histogram, and cheap per-frame work."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from face_crops import above_brows
from scipy.interpolate import RBFInterpolator
from shared_media import shared_media

from pipeline.align import align_face
from pipeline.frame import AlignedCrop
from pipeline.guides import (
    REGIONS,
    Guides,
    compute_guides,
    edge_guide,
    guide_reference,
    is_monochrome,
    positional_guide,
    region_labels,
    region_masks,
    skin_guide,
    thin_plate_spline,
)
from pipeline.landmarks import detect_landmarks

SIZE = 128


@pytest.fixture(scope="module")
def crops(astronaut: np.ndarray, grace_hopper: np.ndarray) -> dict[str, AlignedCrop]:
    return {
        name: align_face(photo, detect_landmarks(photo)[0], SIZE)
        for name, photo in (("astronaut", astronaut), ("grace_hopper", grace_hopper))
    }


def _at(image: np.ndarray, point: np.ndarray) -> np.ndarray:
    x, y = np.rint(point).astype(int)
    return image[y, x]


@pytest.mark.parametrize(
    ("region", "points"),
    [
        ("eyes", slice(36, 42)),
        ("eyes", slice(42, 48)),
        ("nose", slice(30, 34)),
        ("brows", slice(18, 21)),
    ],
)
def test_region_labels_put_each_part_on_its_landmarks(
    crops: dict[str, AlignedCrop], region: str, points: slice
) -> None:
    crop = crops["astronaut"]
    labels = region_labels(crop.landmarks, SIZE)
    assert _at(labels, crop.landmarks[points].mean(axis=0)) == REGIONS.index(region)


def test_region_labels_open_mouth_lips_skin_and_background(
    crops: dict[str, AlignedCrop],
) -> None:
    crop = crops["astronaut"]  # smiling with teeth showing: an inner-mouth region exists
    labels = region_labels(crop.landmarks, SIZE)
    assert _at(labels, crop.landmarks[60:68].mean(axis=0)) == REGIONS.index("mouth")
    upper_lip = (crop.landmarks[51] + crop.landmarks[62]) / 2
    assert _at(labels, upper_lip) == REGIONS.index("lips")
    cheek = (crop.landmarks[2] + crop.landmarks[31]) / 2
    assert _at(labels, cheek) == REGIONS.index("skin")
    above_brows = crop.landmarks[19] + (crop.landmarks[19] - crop.landmarks[8]) * 0.3
    assert _at(labels, above_brows) == REGIONS.index("hair")
    assert labels[0, 0] == labels[0, -1] == REGIONS.index("background")


def test_ears_are_skin_on_a_content_face_and_not_on_the_exemplar(
    crops: dict[str, AlignedCrop],
) -> None:
    # The teacher painted a content face's ears from the exemplar's background (blue ears
    # for Van Gogh) while they were labelled background.
    for crop in crops.values():
        points = crop.landmarks
        width = float(np.linalg.norm(points[16] - points[0]))
        outward = (points[0] - points[16]) / width
        ear = points[1] + outward * 0.08 * width
        far_out = points[1] + outward * 0.4 * width
        with_ears = region_labels(points, SIZE)
        without = region_labels(points, SIZE, ears=False)
        assert _at(with_ears, ear) == REGIONS.index("skin")
        assert _at(without, ear) == REGIONS.index("background")
        assert _at(with_ears, far_out) == _at(without, far_out) == REGIONS.index("background")
        # Nothing else moves: the ears only take pixels that were background.
        changed = with_ears != without
        assert set(np.unique(without[changed])) == {REGIONS.index("background")}
        assert 0 < changed.mean() < 0.05


def test_the_exemplars_own_guides_leave_its_ear_zone_as_it_is(
    crops: dict[str, AlignedCrop], grace_hopper: np.ndarray
) -> None:
    from models.exemplar import prepare_exemplar

    exemplar = prepare_exemplar(grace_hopper, size=SIZE)
    np.testing.assert_array_equal(
        exemplar.guides.regions, region_masks(exemplar.landmarks, SIZE, ears=False)
    )
    crop = crops["grace_hopper"]
    reference = guide_reference(crop.image, crop.landmarks)
    as_exemplar = compute_guides(crop.image, crop.landmarks, reference, ears=False)
    as_content = compute_guides(crop.image, crop.landmarks, reference)
    skin = REGIONS.index("skin")
    assert as_content.regions[..., skin].sum() > as_exemplar.regions[..., skin].sum()
    np.testing.assert_array_equal(
        as_exemplar.regions, region_masks(crop.landmarks, SIZE, ears=False)
    )


def test_region_masks_are_soft_and_sum_to_one(crops: dict[str, AlignedCrop]) -> None:
    masks = region_masks(crops["grace_hopper"].landmarks, SIZE)
    assert masks.shape == (SIZE, SIZE, len(REGIONS)) and masks.dtype == np.float32
    np.testing.assert_allclose(masks.sum(axis=2), 1.0, atol=1e-4)
    assert masks.min() >= 0.0 and masks.max() <= 1.0 + 1e-6
    # Blurred: somewhere between eye and skin the two masks share a pixel.
    eyes, skin = masks[..., REGIONS.index("eyes")], masks[..., REGIONS.index("skin")]
    assert ((eyes > 0.2) & (skin > 0.2)).any()


def test_positional_guide_is_identity_for_the_same_face(crops: dict[str, AlignedCrop]) -> None:
    landmarks = crops["astronaut"].landmarks
    guide = positional_guide(landmarks, landmarks, SIZE)
    grid = np.stack(np.meshgrid(np.arange(SIZE), np.arange(SIZE)), axis=2)
    assert guide.shape == (SIZE, SIZE, 2) and guide.dtype == np.float32
    assert np.abs(guide - grid).max() < 1.0


def test_positional_guide_carries_content_landmarks_onto_the_exemplars(
    crops: dict[str, AlignedCrop],
) -> None:
    content = crops["grace_hopper"].landmarks
    # A cartoon's proportions: eyes twice as large, a much wider mouth.
    exemplar = content.copy()
    for part, factor in ((slice(36, 42), 2.0), (slice(42, 48), 2.0), (slice(48, 68), 1.6)):
        centre = exemplar[part].mean(axis=0)
        exemplar[part] = centre + (exemplar[part] - centre) * factor
    guide = positional_guide(content, exemplar, SIZE)
    landed = np.array([_at(guide, p) for p in content])
    error = np.linalg.norm(landed - exemplar, axis=1)
    unwarped = np.linalg.norm(content - exemplar, axis=1)
    # Within about a pixel (sampled at rounded positions, lightly smoothed), where doing
    # nothing would be several pixels off on the eyes and mouth.
    assert np.median(error[36:68]) < 1.0
    assert error[36:68].mean() < 0.35 * unwarped[36:68].mean()
    # The border stays put, so the background does not swing with the face.
    np.testing.assert_allclose(guide[0, 0], (0, 0), atol=0.5)
    np.testing.assert_allclose(guide[-1, -1], (SIZE - 1, SIZE - 1), atol=0.5)


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_the_thin_plate_spline_is_scipys(crops: dict[str, AlignedCrop], smoothing: float) -> None:
    """The positional guide's spline, written out for speed, is SciPy's thin-plate
    ``RBFInterpolator`` (which stays the reference) on two real faces' landmarks."""
    # dlib's landmarks are whole pixels, and two of them can coincide: an exact spline
    # (smoothing 0) needs distinct control points.
    source, first = np.unique(crops["grace_hopper"].landmarks, axis=0, return_index=True)
    source = source.astype(np.float64)
    target = crops["astronaut"].landmarks[first].astype(np.float64)
    points = np.random.default_rng(0).uniform(0, SIZE - 1, (500, 2))
    expected = RBFInterpolator(source, target, kernel="thin_plate_spline", smoothing=smoothing)(
        points
    )
    warped = thin_plate_spline(source, target, points, smoothing)
    np.testing.assert_allclose(warped, expected, atol=1e-6)
    # It moves the points (the two faces differ), and passes through its control points.
    assert np.abs(warped - points).max() > 5.0
    exact = thin_plate_spline(source, target, source)
    np.testing.assert_allclose(exact, target, atol=1e-6)


def test_appearance_is_histogram_matched_to_the_exemplar(crops: dict[str, AlignedCrop]) -> None:
    exemplar, content = crops["astronaut"], crops["grace_hopper"]
    # A much darker exemplar: the content's shading must move down to its range.
    dark = (exemplar.image * 0.4).astype(np.uint8)
    reference = guide_reference(dark, exemplar.landmarks)
    guides = compute_guides(content.image, content.landmarks, reference)
    face = guides.regions[..., [REGIONS.index(n) for n in ("skin", "nose", "eyes")]].sum(axis=2)
    inside = guides.appearance[face > 0.5]
    assert abs(np.median(inside) - np.median(reference.luminance_quantiles)) < 0.05
    assert inside.max() <= reference.luminance_quantiles[-1] + 1e-6


def test_a_darker_face_is_matched_up_to_a_paler_exemplar(crops: dict[str, AlignedCrop]) -> None:
    exemplar, content = crops["astronaut"], crops["grace_hopper"]
    # A paler exemplar: the face is matched to its brightness (even where its own tone comes
    # back after stylization, pipeline.detail.restore_tone), so that it is painted with the
    # exemplar's skin rather than with whatever else the exemplar has at its own brightness.
    pale = (exemplar.image * 0.5 + 120).astype(np.uint8)
    reference = guide_reference(pale, exemplar.landmarks)
    guides = compute_guides(content.image, content.landmarks, reference)
    face = guides.regions[..., REGIONS.index("skin")] > 0.5
    assert abs(np.median(guides.appearance[face]) - np.median(reference.luminance_quantiles)) < 0.05


def test_monochrome_portraits_are_told_from_coloured_ones(
    crops: dict[str, AlignedCrop],
) -> None:
    photo = crops["astronaut"].image
    grey = np.repeat(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    # Sepia: one hue whose strength follows the lightness, like red chalk or an old print.
    level = grey[..., :1].astype(np.float32) / 255
    sepia = np.clip(np.concatenate([level * 255, level * 200, level * 150], 2), 0, 255)
    assert is_monochrome(grey) and is_monochrome(sepia.astype(np.uint8))
    assert not is_monochrome(photo) and not is_monochrome(crops["grace_hopper"].image)


def test_edge_guide_is_high_on_edges_and_low_on_flat(crops: dict[str, AlignedCrop]) -> None:
    image = np.full((SIZE, SIZE, 3), 90, np.uint8)
    image[:, SIZE // 2 :] = 200
    edges = edge_guide(image)
    assert edges.shape == (SIZE, SIZE) and edges.min() >= 0.0 and edges.max() <= 1.0
    assert edges[:, SIZE // 2 - 1 : SIZE // 2 + 1].mean() > 0.9
    assert edges[:, : SIZE // 4].max() < 0.05


def test_compute_guides_stacks_every_guide_and_checks_size(
    crops: dict[str, AlignedCrop],
) -> None:
    exemplar, content = crops["astronaut"], crops["grace_hopper"]
    reference = guide_reference(exemplar.image, exemplar.landmarks)
    guides = compute_guides(content.image, content.landmarks, reference)
    assert isinstance(guides, Guides) and guides.size == SIZE
    stacked = guides.stack()
    assert stacked.shape == (SIZE, SIZE, 2 + len(REGIONS) + 3) and stacked.dtype == np.float32
    assert stacked.min() > -0.2 and stacked.max() < 1.2
    with pytest.raises(ValueError, match="expected an \\(128, 128, 3\\) crop"):
        compute_guides(np.zeros((64, 64, 3), np.uint8), content.landmarks, reference)


def test_the_skin_guide_tells_vermeers_turban_from_her_skin() -> None:
    """Above her brows the region masks say forehead and hair, where Vermeer painted a blue
    turban: the teacher, matching on regions alone, painted it on every bare forehead."""
    path = shared_media("vermeer_girl_with_a_pearl_earring.jpg")
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    crop = align_face(image, detect_landmarks(image)[0], SIZE)
    regions = region_masks(crop.landmarks, SIZE, ears=False)
    skin = skin_guide(crop.image, crop.landmarks, regions)
    assert skin.shape == (SIZE, SIZE) and skin.dtype == np.float32
    assert np.median(skin[regions[..., REGIONS.index("skin")] > 0.5]) > 0.6
    # Her turban's blue reads not skin; the dark ground beside her turned head, near her
    # skin in hue and far from it in lightness, about 0.3.
    lab = cv2.cvtColor(crop.image, cv2.COLOR_RGB2LAB)
    turban = above_brows(crop) & (lab[..., 2] < 120)  # b* under -8
    assert turban.sum() > 300 and np.median(skin[turban]) < 0.1
    assert np.median(skin[above_brows(crop)]) < 0.25
    # Her red lips and dark eyes are the region masks' to match: they count as skin, so a
    # person's paler lips are still painted with hers.
    for feature in ("lips", "eyes"):
        inside = regions[..., REGIONS.index(feature)] > 0.5
        assert inside.any() and np.median(skin[inside]) > 0.9


@pytest.mark.parametrize(
    "artwork",
    ["modigliani_maude_abrantes", "renoir_jeanne_samary", "van_gogh_self_portrait_1889"],
)
def test_below_the_brows_an_artists_face_is_skin_whatever_its_colour(artwork: str) -> None:
    """Modigliani's grey-green shadows, Renoir's red patches, Van Gogh's green strokes: told
    by colour alone, 9-16 % of these faces were not skin, and the teacher painted a person's
    face from the artist's lit skin only (Modigliani's face further from his: 0.39 -> 0.47 on
    the shared clip 3). The landmarks place the face; colour decides above the brows."""
    image = cv2.cvtColor(cv2.imread(str(shared_media(f"{artwork}.jpg"))), cv2.COLOR_BGR2RGB)
    crop = align_face(image, detect_landmarks(image)[0], SIZE)
    regions = region_masks(crop.landmarks, SIZE, ears=False)
    skin = skin_guide(crop.image, crop.landmarks, regions)
    face = regions[..., [REGIONS.index(n) for n in REGIONS if n not in ("background", "hair")]]
    assert skin[face.sum(axis=2) > 0.5].min() >= 0.5


def test_the_skin_guide_is_inert_beside_a_monochrome_style(
    crops: dict[str, AlignedCrop],
) -> None:
    """Known truth: the astronaut's forehead and hair painted blue at the lightness of her
    skin. Beside a colour exemplar it is not skin. An engraving's skin, hair and hats differ
    in lightness only, which the appearance guide matches, so beside one the skin guide says
    nothing (on the shared clips it had moved the engraving's keyframes further from the
    print, 0.12 -> 0.21 on clip 1)."""
    crop = crops["astronaut"]
    above = above_brows(crop)
    lab = cv2.cvtColor(crop.image, cv2.COLOR_RGB2LAB)
    skin = region_masks(crop.landmarks, SIZE)[..., REGIONS.index("skin")] > 0.5
    lab[above] = (np.median(lab[skin, 0]), 128 + 10, 128 - 45)
    blue = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    exemplar = crops["grace_hopper"]
    grey = np.repeat(cv2.cvtColor(exemplar.image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    coloured = compute_guides(
        blue, crop.landmarks, guide_reference(exemplar.image, exemplar.landmarks)
    )
    engraved = compute_guides(
        blue, crop.landmarks, guide_reference(grey, exemplar.landmarks, monochrome=True)
    )
    assert np.median(coloured.skin[above]) < 0.1
    assert np.median(coloured.skin[skin]) > 0.6
    assert np.all(engraved.skin == 1.0)
