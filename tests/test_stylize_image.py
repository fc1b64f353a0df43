"""``facestyle stylize-image`` run as a user would, on public-domain photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.landmarks import detect_landmarks
from plugin.cli import main


def _save(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.fixture(scope="module")
def style(astronaut: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A known filter: 4 levels per channel, channels rotated.
    posterised = (astronaut // 64 * 64 + 32)[:, :, [2, 0, 1]]
    return _save(tmp_path_factory.mktemp("style") / "style.png", np.ascontiguousarray(posterised))


def test_restyles_the_face_and_writes_a_sheet(
    style: Path, grace_hopper: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = _save(tmp_path / "content.png", grace_hopper)
    out, sheet = tmp_path / "out.png", tmp_path / "sheet.png"
    assert (
        main(["stylize-image", str(style), str(content), "-o", str(out), "--sheet", str(sheet)])
        == 0
    )
    assert "1 face restyled" in capsys.readouterr().out
    result = _read(out)
    assert result.shape == grace_hopper.shape
    changed = np.abs(result.astype(int) - grace_hopper).sum(axis=2) > 30
    landmarks = detect_landmarks(grace_hopper)[0]
    (x0, y0), (x1, y1) = landmarks.min(axis=0).astype(int), landmarks.max(axis=0).astype(int)
    inside = changed[y0:y1, x0:x1].mean()
    assert inside > 0.5  # the face is repainted
    assert changed[-100:, :].mean() < 0.01  # the uniform and the flag are not
    rows = _read(sheet)
    assert rows.shape == (36 + 256, 3 * 256, 3)


def test_points_are_used_for_the_style_portrait(
    style: Path, astronaut: np.ndarray, grace_hopper: np.ndarray, tmp_path: Path
) -> None:
    landmarks = detect_landmarks(astronaut)[0]
    eyes = landmarks[36:48].reshape(2, 6, 2).mean(axis=1)
    points = ",".join(f"{v:.0f}" for v in np.vstack([eyes, landmarks[[30, 48, 54]]]).ravel())
    content = _save(tmp_path / "content.png", grace_hopper)
    out = tmp_path / "out.png"
    args = ["stylize-image", str(style), str(content), "-o", str(out), "--points", points]
    assert main([*args, "--mask", "crop", "--identity", "0.5", "--no-fine-detail"]) == 0
    assert _read(out).shape == grace_hopper.shape


@pytest.mark.parametrize(
    ("which", "message"),
    [("style", "--points"), ("content", "no face found in the content photo")],
)
def test_a_faceless_image_is_a_one_line_error(
    which: str,
    message: str,
    style: Path,
    grace_hopper: np.ndarray,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blank = _save(tmp_path / "blank.png", np.full((240, 240, 3), 128, np.uint8))
    content = _save(tmp_path / "content.png", grace_hopper)
    images = {"style": (blank, content), "content": (style, blank)}[which]
    code = main(["stylize-image", *map(str, images), "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert code == 1 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()


def test_missing_style_and_bad_output_type(
    style: Path, grace_hopper: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = _save(tmp_path / "content.png", grace_hopper)
    assert main(["stylize-image", str(tmp_path / "nope.png"), str(content), "-o", "x.png"]) == 1
    assert "image not found" in capsys.readouterr().err
    assert main(["stylize-image", str(style), str(content), "-o", str(tmp_path / "o.xyz")]) == 1
    assert "use a .png" in capsys.readouterr().err


def test_the_skin_guide_can_be_turned_off(
    style: Path, astronaut: np.ndarray, grace_hopper: np.ndarray, tmp_path: Path
) -> None:
    content = _save(tmp_path / "content.png", grace_hopper)
    args = ["stylize-image", str(style), str(content), "--mask", "crop"]
    assert main([*args, "-o", str(tmp_path / "guided.png")]) == 0
    assert main([*args, "-o", str(tmp_path / "unguided.png"), "--skin", "0"]) == 0
    guided, unguided = _read(tmp_path / "guided.png"), _read(tmp_path / "unguided.png")
    assert np.abs(guided.astype(int) - unguided).mean() > 1.0
