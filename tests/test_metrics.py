"""Each quality metric on cases with a known answer, and the eval command end to end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from shared_media import shared_media

from models.exemplar import load_image, prepare_exemplar
from models.metrics import (
    SAME_PERSON,
    TrackCrops,
    clip_tracks,
    descriptor_distance,
    evaluate_stylizer,
    face_and_hair,
    face_descriptor,
    head_share,
    identity_report,
    lab_patches,
    lightness_shift,
    sharpness,
    sliced_wasserstein,
    style_ratio,
    temporal_report,
    warping_errors,
)
from pipeline.align import align_face
from pipeline.composite import Compositor, magnification
from pipeline.frame import AlignedCrop, Frame
from pipeline.landmarks import detect_landmarks
from pipeline.matte import head_prior
from pipeline.restyle import HALF_CROPS_AT
from pipeline.sources import VideoFileSource, open_source
from plugin.cli import main
from plugin.commands.eval import generated_clip
from plugin.styles import resolve_style


@pytest.fixture(scope="module")
def crops(astronaut: np.ndarray, grace_hopper: np.ndarray) -> dict[str, AlignedCrop]:
    return {
        name: align_face(photo, detect_landmarks(photo)[0])
        for name, photo in (("astronaut", astronaut), ("grace_hopper", grace_hopper))
    }


def test_descriptor_same_face_zero_other_person_far(
    crops: dict[str, AlignedCrop], grace_hopper: np.ndarray
) -> None:
    a, g = crops["astronaut"], crops["grace_hopper"]
    own = face_descriptor(g.image, g.landmarks)
    assert own.shape == (128,)
    assert descriptor_distance(own, face_descriptor(g.image, g.landmarks)) == 0.0
    # The same person in the full photo and in the aligned crop: well under the threshold.
    photo = face_descriptor(grace_hopper, detect_landmarks(grace_hopper)[0])
    assert descriptor_distance(own, photo) < 0.3
    assert descriptor_distance(own, face_descriptor(a.image, a.landmarks)) > SAME_PERSON


def test_identity_report_counts_threshold_and_margin() -> None:
    rng = np.random.default_rng(0)
    sources = rng.normal(size=(3, 128))
    sources /= np.linalg.norm(sources, axis=1, keepdims=True)
    stranger = -sources[0]
    # Face 0 barely changed; face 1 moved 0.7 away; face 2 became its stranger.
    stylized = sources.copy()
    stylized[0] += 0.1 / np.sqrt(128)
    stylized[1] += 0.7 / np.sqrt(128)
    stylized[2] = stranger
    report = identity_report(sources, stylized, [stranger[None]] * 3)
    np.testing.assert_allclose(report.distances[:2], [0.1, 0.7], atol=1e-9)
    assert report.share_same == pytest.approx(1 / 3)
    assert report.share_closest == pytest.approx(2 / 3)
    assert np.isnan(identity_report(sources, stylized).share_closest)


def test_sliced_wasserstein_known_answers() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(20000, 12))
    assert sliced_wasserstein(points, points) == 0.0
    # A shuffled copy is the same distribution.
    assert sliced_wasserstein(points, points[::-1]) == 0.0
    # Scaling a unit Gaussian by k moves every 1-D projection's quantiles by (k - 1) times
    # themselves, whatever the direction: the distance is |k - 1| (sampling noise aside).
    assert sliced_wasserstein(points, 3.0 * points) == pytest.approx(2.0, rel=0.03)
    # A shift t along every axis projects to t * sum(theta); its mean square over random
    # unit directions is t^2.
    assert sliced_wasserstein(points, points + 5.0) == pytest.approx(5.0, rel=0.3)
    # Translation moves both clouds alike: no change.
    assert sliced_wasserstein(points + 7.0, 3.0 * points + 7.0) == pytest.approx(
        sliced_wasserstein(points, 3.0 * points)
    )
    with pytest.raises(ValueError, match="expected"):
        sliced_wasserstein(points, points[:, :3])


def test_lab_patches_are_windows_inside_the_region() -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, 16:] = 255
    region = np.zeros((32, 32), np.float32)
    region[:, 20:] = 1.0  # white half only
    patches = lab_patches(image, region, patch=7, stride=1)
    assert patches.shape[1] == 7 * 7 * 3
    # Centres 20..28 (the last window ends at 31), every row with a full window: 26 x 9.
    assert patches.shape[0] == 26 * 9
    np.testing.assert_allclose(patches[:, :49], 100.0, atol=0.01)  # all white: L = 100


def test_style_ratio_one_for_the_photo_zero_for_the_exemplar(
    crops: dict[str, AlignedCrop],
) -> None:
    a, g = crops["astronaut"], crops["grace_hopper"]
    head_a, head_g = head_prior(a.landmarks, a.size), head_prior(g.landmarks, g.size)
    assert style_ratio(a.image, a.image, head_a, lab_patches(g.image, head_g)) == pytest.approx(1.0)
    assert style_ratio(g.image, a.image, head_g, lab_patches(g.image, head_g)) == 0.0
    # Half-way toward the exemplar in colour: closer than the photo, not there.
    mixed = ((a.image.astype(np.uint16) + g.image) // 2).astype(np.uint8)
    assert 0.1 < style_ratio(mixed, a.image, head_a, lab_patches(g.image, head_g)) < 0.9
    # Two-sided: a blurred photo is not closer to a sharp photo of someone else.
    blurred = cv2.GaussianBlur(a.image, (0, 0), 4)
    assert style_ratio(blurred, a.image, head_a, lab_patches(g.image, head_g)) > 1.0


@pytest.fixture(scope="module")
def vermeer() -> AlignedCrop:
    exemplar = prepare_exemplar(load_image(shared_media("vermeer_girl_with_a_pearl_earring.jpg")))
    return AlignedCrop(exemplar.image, np.eye(2, 3), exemplar.landmarks)


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2Lab)


def test_head_parts_keep_vermeers_turban_out_of_her_face(vermeer: AlignedCrop) -> None:
    face, rest = face_and_hair(vermeer, ears=False)
    head = head_prior(vermeer.landmarks, vermeer.size)
    assert face.dtype == rest.dtype == np.float32
    assert not (face * rest).any() and (face + rest <= (head > 0.5)).all()
    blue = _lab(vermeer.image)[..., 2] < -8.0
    assert blue[face > 0.5].mean() < 0.02
    assert blue[rest > 0.5].mean() > 0.2  # the turban; its yellow crown and the dark ground too


def test_the_hair_part_is_the_hair_not_the_wall_above_it() -> None:
    """The head prior reaches above the speaker's short hair into the lit wall of clip 1;
    the hair part keeps to the dark hair."""
    with VideoFileSource(shared_media("obama_weekly_address_clip1.mp4")) as source:
        frame = next(iter(source)).image
    crop = align_face(frame, detect_landmarks(frame)[0])
    face, hair = face_and_hair(crop)
    outside_face = (head_prior(crop.landmarks, crop.size) > 0.5) & (face < 0.5)
    light = _lab(crop.image)[..., 0] > 50.0
    assert light[hair > 0.5].mean() < 0.2
    assert light[outside_face].mean() > 2 * light[hair > 0.5].mean()


def test_the_style_figure_by_part_asks_for_the_artists_face_on_the_face(
    crops: dict[str, AlignedCrop], vermeer: AlignedCrop
) -> None:
    """Known truth: the astronaut's face recoloured (her lightness kept) in the hue of
    Vermeer's face, or in that of her blue turban. On the whole head the turban counts as
    style too; on the face only the face's colours do."""
    photo = crops["astronaut"]
    own_face, _ = face_and_hair(photo)
    her_face, her_rest = face_and_hair(vermeer, ears=False)
    her_lab = _lab(vermeer.image)

    def recoloured(part: np.ndarray) -> np.ndarray:
        lab = _lab(photo.image)
        lab[own_face > 0.5, 1:] = np.median(her_lab[part > 0.5, 1:], axis=0)
        rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)

    turban = (her_rest > 0.5) & (her_lab[..., 2] < -8.0)
    face_patches = lab_patches(vermeer.image, her_face)
    as_face = style_ratio(recoloured(her_face), photo.image, own_face, face_patches)
    as_turban = style_ratio(recoloured(turban), photo.image, own_face, face_patches)
    # The astronaut's skin is already near Vermeer's in hue: a little closer, not much.
    assert as_face < 1.0 and as_turban > as_face + 1.0
    # Too little of a part to measure is no figure at all, not a crash.
    speck = np.zeros_like(own_face)
    speck[100:104, 100:104] = 1.0
    assert np.isnan(style_ratio(photo.image, photo.image, speck, face_patches))


def test_the_tone_free_style_ratio_ignores_a_face_kept_darker(
    crops: dict[str, AlignedCrop],
) -> None:
    a, g = crops["astronaut"], crops["grace_hopper"]
    head_a, head_g = head_prior(a.landmarks, a.size), head_prior(g.landmarks, g.size)

    def darker(image: np.ndarray) -> np.ndarray:
        # One gain on R, G and B, as pipeline.detail.restore_tone keeps a person's tone.
        return np.rint(image * 0.7).astype(np.uint8)

    reference = lab_patches(g.image, head_g, tone_free=True)
    # The exemplar's own look on a darker face: far by the plain figure, near apart from tone.
    plain = style_ratio(darker(g.image), a.image, head_g, lab_patches(g.image, head_g))
    tone_free = style_ratio(darker(g.image), a.image, head_g, reference, tone_free=True)
    assert tone_free < 0.15 and plain > 0.5, (tone_free, plain)
    # A darker photo is no closer to the style, by either figure.
    photo = style_ratio(darker(a.image), a.image, head_a, reference, tone_free=True)
    assert photo > 0.95
    assert style_ratio(g.image, a.image, head_g, reference, tone_free=True) == 0.0


def test_sharpness_of_a_ramp_and_of_a_blurred_face(crops: dict[str, AlignedCrop]) -> None:
    # A grey ramp: L rises by a known amount per pixel across the columns.
    levels = np.linspace(0.2, 0.6, 64, dtype=np.float32)
    grey = np.repeat(np.repeat(levels[None, :, None], 64, axis=0), 3, axis=2)
    lab = cv2.cvtColor(grey, cv2.COLOR_RGB2Lab)
    slope = float(np.diff(lab[0, :, 0]).mean())
    ramp = np.rint(grey * 255).astype(np.uint8)
    region = np.ones((64, 64), np.float32)
    assert sharpness(ramp, region) == pytest.approx(slope, rel=0.05)
    assert sharpness(np.full((64, 64, 3), 90, np.uint8), region) == 0.0
    face = crops["astronaut"]
    head = head_prior(face.landmarks, face.size)
    soft, softer = (cv2.GaussianBlur(face.image, (0, 0), sigma) for sigma in (2, 4))
    assert sharpness(softer, head) < sharpness(soft, head) < 0.7 * sharpness(face.image, head)


def test_sharpness_apart_from_skin_tone_ignores_a_darker_face_not_a_blurred_one(
    crops: dict[str, AlignedCrop],
) -> None:
    face = crops["grace_hopper"]
    head = head_prior(face.landmarks, face.size)
    # One gain on R, G and B, as pipeline.detail.restore_tone keeps a person's tone.
    darker = np.rint(face.image * 0.7).astype(np.uint8)
    assert sharpness(darker, head) < 0.8 * sharpness(face.image, head)
    own = sharpness(face.image, head, tone_free=True)
    # Not exact: sRGB is not a pure power of linear light, so one gain on its values moves
    # dark and light pixels' lightness by slightly different factors.
    assert sharpness(darker, head, tone_free=True) == pytest.approx(own, rel=0.08)
    blurred = cv2.GaussianBlur(darker, (0, 0), 2)
    assert sharpness(blurred, head, tone_free=True) < 0.7 * own


def test_lightness_shift_reads_a_face_shown_paler_or_darker(
    crops: dict[str, AlignedCrop],
) -> None:
    crop = crops["grace_hopper"]
    lab = cv2.cvtColor(crop.image, cv2.COLOR_RGB2LAB).astype(np.float32)
    # 8-bit L* runs 0-255 in OpenCV: 25.5 levels are 10 L*.
    paler = lab + np.float32([25.5, 0, 0])
    darker = lab - np.float32([25.5, 0, 0])
    shown = {
        name: cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
        for name, image in (("paler", paler), ("darker", darker))
    }
    assert lightness_shift(crop.image, crop.image, crop.landmarks) == 0.0
    assert lightness_shift(shown["paler"], crop.image, crop.landmarks) == pytest.approx(10, abs=1)
    assert lightness_shift(shown["darker"], crop.image, crop.landmarks) == pytest.approx(-10, abs=1)


def test_head_share_counts_the_head_only(crops: dict[str, AlignedCrop]) -> None:
    face = crops["grace_hopper"]
    head = head_prior(face.landmarks, face.size)
    assert head_share(np.ones_like(head), head) == 1.0
    assert head_share(np.zeros_like(head), head) == 0.0
    upper = np.zeros_like(head)
    upper[: int(face.landmarks[:, 1].min())] = 1.0  # above the brows: skull and hair
    assert 0.2 < head_share(upper, head) < 0.6


def _panning(photo: np.ndarray, frames: int = 5, step: int = 3) -> np.ndarray:
    """A camera panning over a photo, ``step`` px a frame: every motion is known."""
    return np.stack([photo[100:292, 60 + step * i : 252 + step * i] for i in range(frames)])


def test_warping_error_of_a_panning_video(grace_hopper: np.ndarray) -> None:
    inputs = _panning(grace_hopper)
    own, same, recoloured, static = warping_errors(
        inputs, [inputs, inputs, 255 - inputs, np.repeat(inputs[:1], len(inputs), axis=0)]
    )
    assert own.shape == (len(inputs) - 1,)
    # Flow finds the pan, so the input's own error is small and a copy scores the same.
    assert own.mean() < 4.0
    np.testing.assert_array_equal(own, same)
    # A point-wise recolouring moves with the input: about the input's error.
    assert 0.5 < recoloured.mean() / own.mean() < 2.0
    # An output that ignores the motion flickers against it.
    assert static.mean() > 3 * own.mean()


def test_warping_error_per_unit_of_detail_forgives_contrast(grace_hopper: np.ndarray) -> None:
    # A camera drifting and turning over the photo by fractions of a pixel, so the flow is
    # not exact; contrast halved, then doubled around mid-grey without clipping: the doubled
    # copy is exactly as steady, with twice the gradients and twice the error.
    drift = []
    for i in range(5):
        matrix = cv2.getRotationMatrix2D((160, 160), 0.7 * i, 1 + 0.01 * i)
        matrix[:, 2] += (1.4 * i, 0.6 * i)
        moved = cv2.warpAffine(grace_hopper[60:380, 20:340], matrix, (320, 320))
        drift.append(moved[64:256, 64:256])
    inputs = (np.stack(drift) // 2 + 64).astype(np.uint8)
    doubled = ((inputs.astype(np.int16) - 128) * 2 + 128).astype(np.uint8)
    report = temporal_report(inputs, doubled)
    assert report.ratio == pytest.approx(2.0, rel=0.1)
    assert report.detail_ratio == pytest.approx(1.0, rel=0.1)


def test_temporal_report_flags_per_frame_noise(grace_hopper: np.ndarray) -> None:
    inputs = _panning(grace_hopper)
    noise = np.random.default_rng(1).normal(0, 12, inputs.shape)
    noisy = np.clip(inputs + noise, 0, 255).astype(np.uint8)
    assert temporal_report(inputs, inputs).ratio == pytest.approx(1.0)
    assert temporal_report(inputs, noisy).ratio > 3.0
    assert temporal_report(inputs, noisy).detail_ratio > 2.0
    with pytest.raises(ValueError, match="T>=2"):
        warping_errors(inputs[:1], [inputs[:1]])


class Unchanged:
    """A stylizer that returns its input: every figure must say 'same as the input'."""

    name = "unchanged"
    crop_size = 256
    default_identity = 0.0
    identity_scale = 3.0

    def stylize(self, crops: Sequence[AlignedCrop]) -> np.ndarray:
        return np.stack([c.image for c in crops])

    def reset(self) -> None:
        pass


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_clip(tmp_path_factory.mktemp("eval") / "clip.mp4", 6)


def test_evaluate_an_unchanged_stylizer_on_a_tracked_clip(clip: Path) -> None:
    with open_source(clip) as source:
        tracks = clip_tracks(source)
    assert len(tracks) == 2 and all(isinstance(t, TrackCrops) for t in tracks)
    exemplar = tracks[0].crops[0]
    report = evaluate_stylizer(Unchanged(), tracks, exemplar, every=3)
    assert report.faces == sum(len(t.crops) for t in tracks)
    assert report.identity.mean_distance == 0.0
    assert report.identity.share_same == 1.0 and report.identity.share_closest == 1.0
    assert report.style is not None and report.style.ratio == pytest.approx(1.0)
    assert report.style.face_ratio == pytest.approx(1.0)
    assert report.style.hair_ratio == pytest.approx(1.0)
    assert report.style.sharpness == pytest.approx(report.style.input_sharpness)
    assert report.temporal.ratio == pytest.approx(1.0)
    # The head matte covers most of the head; the face oval about half of it.
    face = evaluate_stylizer(Unchanged(), tracks, compositor=Compositor("face"), every=3)
    assert report.head_share > 0.8 and 0.3 < face.head_share < report.head_share - 0.2


def test_a_face_enlarged_in_its_frame_is_judged_there_too(grace_hopper: np.ndarray) -> None:
    # Grace Hopper at twice her photo's size: her face is enlarged about 2.6 times from its
    # crop, and a style that keeps the photo shows what the crop's resolution loses.
    frame = cv2.resize(grace_hopper, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    frames = [Frame(frame, i / 25, i) for i in range(5)]
    (track,) = clip_tracks(frames, native_every=2)
    assert len(track.native) == len(track.crops) >= 3
    assert [n is not None for n in track.native] == [
        row % 2 == 0 for row in range(len(track.crops))
    ]
    assert track.native[0].size > 2.4 * track.crops[0].size

    def judged(fine_detail: bool) -> float:
        compositor = Compositor("head", device="cpu", fine_detail=fine_detail)
        report = evaluate_stylizer(Unchanged(), [track], compositor=compositor, every=2)
        return report.full_resolution_detail

    # Kept: about as much pixel-scale detail as the frame's own; left soft: 0.7 of it.
    assert judged(True) > 0.95
    assert judged(False) < 0.8


class Recording(Unchanged):
    """:class:`Unchanged` that remembers the side of every crop it was given."""

    def __init__(self) -> None:
        self.sides: list[int] = []

    def stylize(self, crops: Sequence[AlignedCrop]) -> np.ndarray:
        self.sides += [crop.size for crop in crops]
        return super().stylize(crops)


@pytest.fixture(scope="module")
def small_and_large(astronaut: np.ndarray, grace_hopper: np.ndarray) -> list[TrackCrops]:
    """Eight frames: the astronaut at her photo's size beside Grace Hopper at a fifth of
    hers (her face about 40 px: a render stylizes it at half the crop side)."""
    small = cv2.resize(grace_hopper, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    canvas = np.full((astronaut.shape[0], astronaut.shape[1] + 160, 3), 90, np.uint8)
    canvas[:, : astronaut.shape[1]] = astronaut
    canvas[180 : 180 + small.shape[0], -140 : -140 + small.shape[1]] = small
    return clip_tracks((Frame(canvas, i / 25, i) for i in range(8)), half_crops=True)


def test_eval_stylizes_small_faces_at_half_the_crop_side_as_a_render_does(
    small_and_large: list[TrackCrops],
) -> None:
    tracks = small_and_large
    assert len(tracks) == 2
    large, small = sorted(tracks, key=lambda t: -magnification(t.crops[0].matrix))
    assert (
        magnification(small.crops[0].matrix) <= HALF_CROPS_AT < magnification(large.crops[0].matrix)
    )
    # The render's rule, face by face: the small face's half crop is its full one scaled.
    assert all(half is None for half in large.half)
    for crop, half in zip(small.crops, small.half, strict=True):
        assert half is not None and half.size == crop.size // 2
        np.testing.assert_allclose(half.matrix, crop.matrix / 2, atol=1e-6)
    recording = Recording()
    report = evaluate_stylizer(recording, tracks, tracks[0].crops[0], every=2, half_crops=True)
    per_frame = len(recording.sides) // len(large.crops)
    assert sorted(set(recording.sides)) == [128, 256] and per_frame == 2
    # Measured at the full side all the same; a face this small loses nothing to its half
    # crop that the full one held: as sharp and as much the person.
    assert report.faces == sum(len(t.crops) for t in tracks)
    assert report.style is not None
    assert report.style.sharpness == pytest.approx(report.style.input_sharpness, rel=0.1)
    assert report.identity.share_same == 1.0
    full = Recording()
    evaluate_stylizer(full, tracks, every=2)
    assert set(full.sides) == {256}


def test_eval_runs_a_pack_on_a_frame_of_two_crop_sides(small_and_large: list[TrackCrops]) -> None:
    """A pack prepares a frame's faces together and paints one side at a time, under eval
    as in a render (given both sides in one batch it refuses them)."""
    pack = resolve_style("painterly")
    report = evaluate_stylizer(pack, small_and_large, every=4, half_crops=True)
    assert report.faces == sum(len(t.crops) for t in small_and_large)
    assert report.identity.share_same == 1.0
    assert report.style is None and report.head_share > 0.8


def test_eval_command_json_on_the_generated_clip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["eval", "--frames", "5", "--every", "4", "--json", "--style", "cartoon"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["clip"] == "generated" and data["faces"] == 2
    # The generated faces are smaller in the frame than their crops.
    assert 0.4 < data["enlarged"] < 0.9
    # The CNN reference looks at frame 5, where both faces are tracked and fading in.
    coverage = data["coverage"]
    assert (coverage["checked"], coverage["faces"], coverage["restyled"]) == (1, 2, 2)
    assert set(coverage["tracking_ms"]) == {"detect", "landmarks", "track"}
    (style,) = data["styles"]
    assert style["name"] == "cartoon" and style["faces"] >= 4
    assert 0.0 < style["identity"]["mean_distance"] < 1.0
    assert style["style"] is None  # no exemplar given
    assert 0.8 < style["head_share"] <= 1.0
    assert style["full_resolution_detail"] is None  # no face is enlarged
    assert style["temporal"]["ratio"] > 0.0


def test_eval_command_reports_a_missing_clip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["eval", str(tmp_path / "missing.mp4")]) == 1
    assert "missing.mp4" in capsys.readouterr().err


def test_eval_command_text_compares_cartoon_and_teacher(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, astronaut: np.ndarray
) -> None:
    style = tmp_path / "style.png"
    cv2.imwrite(str(style), np.ascontiguousarray((astronaut // 64 * 64 + 32)[:, :, ::-1]))
    args = ["eval", "--frames", "2", "--every", "2", "--style", "cartoon", "--teacher", str(style)]
    assert main([*args, "--no-coverage"]) == 0
    out = capsys.readouterr().out
    assert "2 tracked faces" in out and "coverage" not in out
    cartoon, teacher = out.split("cartoon:")[1].split("teacher:")
    # Both judged against the teacher's exemplar; only the teacher is made of its patches.
    ratios = [float(part.split("style     ratio ")[1].split(" ")[0]) for part in (cartoon, teacher)]
    assert ratios[1] < 0.8 and ratios[1] < ratios[0]
    assert "sharpness" in teacher and "restyled" in teacher


def test_eval_command_judges_the_identity_lever(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "--frames", "4", "--every", "2", "--json", "--style", "cartoon"]
    assert main([*args, "--identity", "0", "--identity", "1", "--no-coverage"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["coverage"] is None
    plain, detailed = data["styles"]
    assert (plain["name"], detailed["name"]) == ("cartoon (identity 0)", "cartoon (identity 1)")
    # The person's own fine detail brings the stylized face closer to them.
    assert detailed["identity"]["mean_distance"] < plain["identity"]["mean_distance"]
