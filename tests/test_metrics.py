"""Each quality metric on cases with a known answer, and the eval command end to end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.metrics import (
    SAME_PERSON,
    TrackCrops,
    clip_tracks,
    descriptor_distance,
    evaluate_stylizer,
    face_descriptor,
    identity_report,
    style_distance,
    temporal_report,
    warping_errors,
)
from pipeline.align import align_face
from pipeline.frame import AlignedCrop
from pipeline.landmarks import detect_landmarks
from pipeline.sources import open_source
from plugin.cli import main
from plugin.commands.eval import generated_clip


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


def test_style_distance_zero_on_itself_and_larger_for_another_face(
    crops: dict[str, AlignedCrop],
) -> None:
    a, g = crops["astronaut"].image, crops["grace_hopper"].image
    assert style_distance(a, a) < 0.5  # exact search; float rounding only
    assert style_distance(g, a) > 10.0
    # A flipped copy is made of (flipped) patches of the same picture: far nearer than a
    # different picture, though not zero.
    assert style_distance(a[:, ::-1], a) < 0.5 * style_distance(g, a)


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


def test_temporal_report_flags_per_frame_noise(grace_hopper: np.ndarray) -> None:
    inputs = _panning(grace_hopper)
    noise = np.random.default_rng(1).normal(0, 12, inputs.shape)
    noisy = np.clip(inputs + noise, 0, 255).astype(np.uint8)
    assert temporal_report(inputs, inputs).ratio == pytest.approx(1.0)
    assert temporal_report(inputs, noisy).ratio > 3.0
    with pytest.raises(ValueError, match="T>=2"):
        warping_errors(inputs[:1], [inputs[:1]])


class Unchanged:
    """A stylizer that returns its input: every figure must say 'same as the input'."""

    name = "unchanged"
    crop_size = 256

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
    exemplar = tracks[0].crops[0].image
    report = evaluate_stylizer(Unchanged(), tracks, exemplar, every=3)
    assert report.faces == sum(len(t.crops) for t in tracks)
    assert report.identity.mean_distance == 0.0
    assert report.identity.share_same == 1.0 and report.identity.share_closest == 1.0
    assert report.style == report.style_input
    assert report.temporal.ratio == pytest.approx(1.0)


def test_eval_command_json_on_the_generated_clip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["eval", "--frames", "5", "--every", "4", "--json", "--style", "cartoon"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["clip"] == "generated" and data["faces"] == 2
    # The CNN reference looks at frame 5, where both faces are tracked and fading in.
    coverage = data["coverage"]
    assert (coverage["checked"], coverage["faces"], coverage["restyled"]) == (1, 2, 2)
    assert set(coverage["tracking_ms"]) == {"detect", "landmarks", "track"}
    (style,) = data["styles"]
    assert style["name"] == "cartoon" and style["faces"] >= 4
    assert 0.0 < style["identity"]["mean_distance"] < 1.0
    assert style["style"] is None  # no exemplar given
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
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 tracked faces" in out
    cartoon, teacher = out.split("cartoon:")[1].split("teacher:")
    # Both judged against the teacher's exemplar; only the teacher is made of its patches.
    figures = [float(part.split("exemplar ")[1].split(" ")[0]) for part in (cartoon, teacher)]
    inputs = [float(part.split("(input ")[1].split(";")[0]) for part in (cartoon, teacher)]
    assert figures[1] < inputs[1] == inputs[0]
    assert "ratio" in teacher


def test_eval_command_judges_the_identity_lever(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "--frames", "4", "--every", "2", "--json", "--style", "cartoon"]
    assert main([*args, "--identity", "0", "--identity", "1"]) == 0
    plain, detailed = json.loads(capsys.readouterr().out)["styles"]
    assert (plain["name"], detailed["name"]) == ("cartoon (identity 0)", "cartoon (identity 1)")
    # The person's own fine detail brings the stylized face closer to them.
    assert detailed["identity"]["mean_distance"] < plain["identity"]["mean_distance"]
