"""One-shot adaptation end to end on a tiny budget, content gathering, and the commands."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.adapt import (
    PAINTED_IDENTITY_SCALE,
    QUALITIES,
    AdaptSettings,
    _artwork_term,
    _spread,
    adapt,
    footage_faces,
    identity_scale_for,
    preview_sheet,
    sample_faces,
)
from models.canvas import CANVAS_STRENGTH, SHOWN_STRENGTH, make_canvas
from models.exemplar import load_image, prepare_exemplar
from models.generator import GeneratorConfig
from models.metrics import (
    SAME_PERSON,
    descriptor_distance,
    face_descriptor,
    reference_descriptors,
)
from models.pack import load_pack, save_pack
from models.pack_stylizer import PackStylizer
from models.teacher import TeacherParams
from models.train import HEAD_PARTS, Artwork, TrainingSet, TrainSettings, _sample_patches
from pipeline.detail import DEFAULT_IDENTITY_SCALE
from pipeline.errors import NoFaceError
from pipeline.frame import AlignedCrop
from pipeline.samples import FACE_PHOTOS, FacePath, Pose, write_moving_face_clip
from plugin.cli import main

TINY = AdaptSettings(
    faces=3,
    teacher=TeacherParams(levels=2, em_iterations=(2, 1)),
    train=TrainSettings(steps=150, batch=4, patch=32, threads=1),
    student=GeneratorConfig(widths=(8, 16, 24), blocks=1),
    crop_size=64,
)


EXEMPLARS = Path(__file__).resolve().parents[1] / "models" / "exemplars"


@pytest.fixture(scope="module")
def tiny_result():
    # The public-domain Mucha poster the bundled `poster` pack is made from.
    return adapt(load_image(EXEMPLARS / "poster.jpg"), TINY, name="tiny")


def test_tiny_adaptation_makes_a_pack_closer_to_the_teacher(tiny_result, tmp_path: Path) -> None:
    result = tiny_result
    path = save_pack(result.pack, tmp_path / "tiny.safetensors")
    pack = load_pack(path)
    assert pack.name == "tiny" and pack.crop_size == 64
    assert pack.training["steps"] == 150 and pack.training["faces"] == 3
    # The canvas it was trained with, stored at the strength it is shown at.
    assert pack.canvas is not None
    assert float(pack.canvas.std()) == pytest.approx(CANVAS_STRENGTH * SHOWN_STRENGTH, rel=0.05)
    crops = [
        AlignedCrop(image, np.eye(2, 3), landmarks)
        for image, landmarks in zip(result.content, result.landmarks, strict=True)
    ]
    student = PackStylizer(pack).stylize(crops).astype(np.float32)
    teacher = result.teacher.astype(np.float32)
    before = np.abs(result.content.astype(np.float32) - teacher).mean()
    after = np.abs(student - teacher).mean()
    assert after < 0.8 * before, (before, after)


def test_strokes_and_identity_scale_chosen_at_adapt_are_the_packs(tiny_result) -> None:
    bold = adapt(
        load_image(EXEMPLARS / "poster.jpg"),
        replace(TINY, strokes=2.0, identity_scale=32.0, train=replace(TINY.train, steps=2)),
        name="bold",
    ).pack
    # Same seed, same canvas: stored at twice the strength, and the figure says so.
    np.testing.assert_allclose(bold.canvas, 2.0 * tiny_result.pack.canvas, rtol=1e-6)
    assert bold.training["strokes"] == 2.0 and tiny_result.pack.training["strokes"] == 1.0
    assert bold.identity_scale == 32.0
    # Without a choice, the pack gets the scale its portrait calls for.
    poster = prepare_exemplar(load_image(EXEMPLARS / "poster.jpg"), size=TINY.crop_size)
    assert tiny_result.pack.identity_scale == identity_scale_for(poster)
    with pytest.raises(ValueError, match="--strokes"):
        replace(TINY, strokes=5.0)


@pytest.mark.parametrize(
    ("exemplar", "scale"),
    [
        ("painterly.jpg", PAINTED_IDENTITY_SCALE),
        ("poster.jpg", DEFAULT_IDENTITY_SCALE),
        ("engraving.jpg", DEFAULT_IDENTITY_SCALE),
    ],
)
def test_the_identity_scale_follows_how_the_portrait_is_painted(exemplar: str, scale) -> None:
    """Van Gogh models the face with light and shadow; Mucha's poster skin is flat; the
    engraving is monochrome, its tones the style's own."""
    prepared = prepare_exemplar(load_image(EXEMPLARS / exemplar))
    assert identity_scale_for(prepared) == scale


def test_the_artwork_term_trains_colour_styles_and_leaves_prints_to_the_teacher(
    tiny_result,
) -> None:
    assert "loss_artwork" in tiny_result.pack.training  # Mucha's poster: colour
    engraving = prepare_exemplar(load_image(EXEMPLARS / "engraving.jpg"), size=64)
    assert _artwork_term(engraving, list(tiny_result.landmarks)) == (None, None)
    poster = prepare_exemplar(load_image(EXEMPLARS / "poster.jpg"), size=64)
    parts, artwork = _artwork_term(poster, list(tiny_result.landmarks))
    assert parts is not None and parts.shape == (3, 64, 64)
    assert artwork is not None and artwork.image.shape == (3, 64, 64)
    # The exemplar's skin, not its background, is what a face's skin is compared with.
    assert (artwork.parts == HEAD_PARTS.index("skin")).mean() > 0.1


def test_a_colour_portrait_said_to_be_in_one_ink_makes_a_monochrome_pack(tiny_result) -> None:
    mono = adapt(
        load_image(EXEMPLARS / "poster.jpg"),
        replace(TINY, monochrome=True, train=replace(TINY.train, steps=2)),
        name="mono",
    ).pack
    assert mono.monochrome and not mono.keep_tone and "loss_artwork" not in mono.training
    assert not tiny_result.pack.monochrome and tiny_result.pack.keep_tone


def test_the_identity_scale_is_checked_where_it_is_chosen() -> None:
    for outside in (0.5, 129.0):
        with pytest.raises(ValueError, match="--identity-scale"):
            replace(TINY, identity_scale=outside)


def test_training_patches_cut_the_canvas_and_parts_under_each_patch() -> None:
    rng = np.random.default_rng(0)
    canvas = make_canvas(64)
    rgb = rng.uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    rgb[:, 0] = canvas[0]  # red is the canvas: the canvas patch must match it
    # Green gives each pixel's head part: the parts patch must match it.
    parts = rng.integers(-1, 4, (3, 64, 64)).astype(np.int8)
    rgb[:, 1] = parts
    artwork = Artwork(rgb[0], parts[0])
    data = TrainingSet(
        rgb, np.zeros((3, 1, 16, 16), np.float32), rgb.copy(), canvas, parts, artwork
    )
    batch = _sample_patches(data, 8, 32, rng, torch.device("cpu"))
    assert batch.canvas is not None and batch.canvas.shape == (8, 1, 32, 32)
    assert torch.equal(batch.canvas[:, 0], batch.rgb[:, 0])
    assert batch.parts is not None and torch.equal(batch.parts, batch.rgb[:, 1].long())


def test_training_set_takes_head_parts_and_artwork_together() -> None:
    rgb = np.zeros((2, 3, 32, 32), np.float32)
    guides = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match="come together"):
        TrainingSet(rgb, guides, rgb, parts=np.zeros((2, 32, 32), np.int8))
    with pytest.raises(ValueError, match="parts"):
        TrainingSet(
            rgb,
            guides,
            rgb,
            parts=np.zeros((2, 16, 16), np.int8),
            artwork=Artwork(rgb[0], np.zeros((32, 32), np.int8)),
        )


def test_teacher_targets_do_not_depend_on_how_many_threads_paint_them(tiny_result) -> None:
    threaded = replace(TINY, train=replace(TINY.train, threads=3))
    result = adapt(load_image(EXEMPLARS / "poster.jpg"), threaded, name="tiny")
    assert np.array_equal(result.teacher, tiny_result.teacher)
    assert not np.array_equal(result.teacher[0], result.teacher[1])


def test_preview_sheet_shows_exemplar_teacher_and_student(tiny_result) -> None:
    sheet = preview_sheet(tiny_result, columns=3, tile=32)
    assert sheet.shape == (96, 128, 3) and sheet.dtype == np.uint8
    exemplar = cv2.resize(tiny_result.exemplar, (32, 32), interpolation=cv2.INTER_AREA)
    # Below its label, the first tile is the exemplar itself.
    assert np.abs(sheet[24:32, :32].astype(int) - exemplar[24:32]).mean() < 1.0


def test_sample_faces_are_varied_aligned_crops() -> None:
    crops = sample_faces(4, size=64, seed=3)
    assert len(crops) == 4 and all(c.image.shape == (64, 64, 3) for c in crops)
    images = np.stack([c.image for c in crops]).astype(np.float32)
    assert np.abs(images[2] - images[0]).mean() > 5.0  # augmented, not copies


def test_every_sampled_face_is_the_photos_person() -> None:
    # With this seed dlib's largest box on an augmented astronaut photo was her spacesuit's
    # mission patch, and adapt trained on it.
    crops = sample_faces(18, size=128, seed=2)
    photos = reference_descriptors()
    for index, crop in enumerate(crops):
        person = photos[FACE_PHOTOS[index % len(FACE_PHOTOS)]]
        distance = descriptor_distance(face_descriptor(crop.image, crop.landmarks), person)
        assert distance < SAME_PERSON, f"crop {index} is not its photo's face ({distance:.2f})"


def test_spread_picks_one_of_each_pose_and_never_repeats() -> None:
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 10, (3, 68, 2))
    # Five near-copies of each of three poses, plus exact duplicates (a face that holds still).
    rows = np.concatenate([pose + rng.normal(0, 0.1, (5, 68, 2)) for pose in poses])
    rows = np.concatenate([rows, rows[:5]])
    picked = _spread(rows, 3)
    assert sorted(i % 15 // 5 for i in picked) == [0, 1, 2]
    assert len(set(_spread(rows[:5].repeat(2, axis=0), 4))) == 4


def test_footage_faces_pick_distinct_aligned_frames(tmp_path: Path) -> None:
    clip = tmp_path / "two.mp4"
    write_moving_face_clip(
        clip,
        [
            FacePath("astronaut", lambda i: Pose(170, 200, 0.55, angle=-12 + 2 * i)),
            FacePath("grace_hopper", lambda i: Pose(470, 240, 0.5)),
        ],
        n_frames=12,
        audio=False,
    )
    crops = footage_faces([clip], count=3, size=64, candidates=6)
    assert len(crops) == 3
    tilts = [np.degrees(np.arctan2(*(c.landmarks[45] - c.landmarks[36])[::-1])) for c in crops]
    assert np.ptp(tilts) < 40  # aligned crops: the tilt is removed
    # Whichever faces the detector finds, no found face is used twice.
    assert len({c.image.tobytes() for c in crops}) == 3


def test_footage_without_faces_is_refused(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 90, np.uint8))
    with pytest.raises(NoFaceError, match="no face found"):
        footage_faces([blank], count=2)


def test_adapt_command_refuses_bad_inputs(tmp_path: Path, capsys) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 90, np.uint8))
    assert main(["adapt", str(blank), "-o", str(tmp_path / "x.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "no face found in the style image" in err and err.count("style image") == 1, err
    assert main(["adapt", str(blank), "-o", str(tmp_path / "x.pt")]) == 1
    assert ".safetensors" in capsys.readouterr().err
    assert main(["adapt", str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.safetensors")]) == 1
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["adapt", str(blank), "-o", str(tmp_path / "x.safetensors"), "--points", "1,2"])
    assert caught.value.code == 2
    assert "argument --points: expected 10 numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["adapt", str(blank), "-o", str(tmp_path / "x.safetensors"), "--strokes", "5"])
    assert "--strokes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["adapt", str(blank), "-o", str(tmp_path / "x.safetensors"), "--identity-scale", "0"])
    assert "--identity-scale" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*"))


def test_adapt_command_draws_no_bars_off_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(QUALITIES, "fast", TINY)
    output = tmp_path / "tiny.safetensors"
    assert (
        main(
            [
                "adapt",
                str(EXEMPLARS / "poster.jpg"),
                "-o",
                str(output),
                "--quality",
                "fast",
                "--palette",
                "mono",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    # stderr is captured here, as in a log or a pipe: no bar, nor a refresh of one.
    assert captured.err == ""
    assert f"wrote {output}" in captured.out and "3 faces" in captured.out
    assert output.is_file() and output.with_suffix(".preview.png").is_file()
    # Mucha's poster is in colour; said to be in one ink, its pack is monochrome.
    assert load_pack(output).monochrome and not load_pack(output).keep_tone


def _read_terminal(leader: int, seconds: float) -> str:
    """What arrives on a pseudo-terminal's leader side within ``seconds`` ("" once its other
    side is closed and read out)."""
    ready, _, _ = select.select([leader], [], [], seconds)
    try:
        return os.read(leader, 4096).decode(errors="replace") if ready else ""
    except OSError:  # EIO: the process has ended and everything was read
        return ""


def test_ctrl_c_stops_adapt_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "stopped.safetensors"
    exemplar = EXEMPLARS / "poster.jpg"
    # stderr on a terminal, as a user runs it: there adapt draws its bars, and the teacher's
    # says when it is at work.
    leader, follower = pty.openpty()
    # A terminal has a size; tqdm draws nothing on one of zero columns.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plugin.cli",
            "adapt",
            str(exemplar),
            "-o",
            str(output),
            "--quality",
            "fast",
        ],
        stderr=follower,
    )
    os.close(follower)
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while "teacher" not in seen and time.monotonic() < deadline:
            seen += _read_terminal(leader, 1.0)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        while chunk := _read_terminal(leader, 1.0):
            seen += chunk
    finally:
        os.close(leader)
    assert process.returncode == 130
    assert "no half-written file" in seen
    assert list(tmp_path.iterdir()) == []


def test_packs_command_lists_bundled_packs(capsys) -> None:
    from models.pack import bundled_packs

    assert main(["packs"]) == 0
    out = capsys.readouterr().out
    for name in bundled_packs():
        assert name in out
    # The strength a pack was made with, which --strokes multiplies, is labelled as such.
    assert "own strokes" in out
    # The engraving is a print in one ink; the painting is not.
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "palette mono" in lines["engraving"] and "palette colour" in lines["painterly"]
