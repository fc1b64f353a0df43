"""The public Python API: pinned names, frame-at-a-time processing, style resolution."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import plugin.api
from pipeline.errors import InputError, StyleError
from pipeline.frame import Frame
from pipeline.landmarks import detect_faces
from pipeline.stylizer import Stylizer
from plugin.api import FaceStylizer, render
from plugin.styles import DEFAULT_STYLE, available_styles, resolve_style


def test_public_api_is_pinned() -> None:
    assert sorted(plugin.api.__all__) == [
        "DEFAULT_STYLE",
        "FaceStylizer",
        "LiveOutputs",
        "LiveSession",
        "Progress",
        "RenderSummary",
        "RestyleSettings",
        "render",
    ]


def _letterboxed(photo: np.ndarray) -> np.ndarray:
    """The photo in the middle of a 640x640 grey frame, so the frame has face-free margins."""
    frame = np.full((640, 640, 3), 90, np.uint8)
    h, w = photo.shape[:2]
    top, left = (640 - h) // 2, (640 - w) // 2
    frame[top : top + h, left : left + w] = photo
    return frame


def test_process_restyles_a_face_in_a_bare_array(astronaut: np.ndarray) -> None:
    image = _letterboxed(astronaut)
    stylizer = FaceStylizer(style="cartoon")
    # Faces fade in over a few frames; feed the same picture as a short still clip.
    for _ in range(8):
        out = stylizer.process(image)
    assert isinstance(out, np.ndarray) and out.shape == image.shape and out.dtype == np.uint8
    assert stylizer.faces_tracked == 1
    diff = np.abs(out.astype(int) - image.astype(int)).max(axis=2)
    x0, y0, x1, y1 = detect_faces(image)[0].astype(int)
    assert diff[y0:y1, x0:x1].mean() > 8
    assert not diff[:40].any() and not diff[-40:].any()  # the grey margins are untouched
    assert stylizer.stage_ms.keys() >= {"track", "stylize", "composite"}
    stylizer.reset()
    assert stylizer.faces_tracked == 0


def test_process_keeps_frame_metadata_and_passes_faceless_frames(grace_hopper) -> None:
    stylizer = FaceStylizer("cartoon")
    blank = Frame(np.full((120, 160, 3), 40, np.uint8), 1.5, 7, pts=42)
    assert stylizer.process(blank) is blank
    image = np.ascontiguousarray(grace_hopper)
    # A new face is tentative at first and fades in: only later frames are composited.
    for index in range(8, 16):
        frame = Frame(image, index / 25, index, pts=index + 35)
        out = stylizer.process(frame)
    assert isinstance(out, Frame) and out is not frame
    assert not np.array_equal(out.image, image)
    assert (out.time, out.index, out.pts) == (15 / 25, 15, 50)


def test_an_opencv_host_gets_its_own_colour_order_back(astronaut: np.ndarray) -> None:
    image = _letterboxed(astronaut)
    as_bgr = np.ascontiguousarray(image[:, :, ::-1])
    rgb_host, bgr_host = FaceStylizer("cartoon"), FaceStylizer("cartoon", channels="bgr")
    for _ in range(8):
        from_rgb, from_bgr = rgb_host.process(image), bgr_host.process(as_bgr)
    assert not np.array_equal(from_rgb, image)
    assert np.array_equal(from_bgr, from_rgb[:, :, ::-1])
    blank = np.full((120, 160, 3), 40, np.uint8)
    assert FaceStylizer("cartoon", channels="bgr").process(blank) is blank


def test_identity_and_mask_options_change_the_result(astronaut: np.ndarray) -> None:
    image = _letterboxed(astronaut)
    results = {}
    for key, options in {
        "plain": {},
        "identity": {"identity": 1.0},
        "crop": {"mask": "crop"},
    }.items():
        stylizer = FaceStylizer(**options)
        for _ in range(8):
            results[key] = stylizer.process(image)
    assert not np.array_equal(results["plain"], results["identity"])
    # The crop mode also repaints around the face, beyond the face outline.
    changed = {k: (np.abs(v.astype(int) - image).max(axis=2) > 6).sum() for k, v in results.items()}
    assert changed["crop"] > changed["plain"]


def test_styles_resolve_and_unknown_ones_say_what_exists(tmp_path: Path) -> None:
    assert DEFAULT_STYLE in available_styles()
    cartoon = resolve_style("cartoon")
    assert isinstance(cartoon, Stylizer) and cartoon.name == "cartoon"
    with pytest.raises(StyleError, match=r"unknown style 'oil-paint'.*cartoon"):
        resolve_style("oil-paint")
    with pytest.raises(StyleError, match="does not exist"):
        resolve_style(tmp_path / "missing.safetensors")
    hostile = tmp_path / "hostile.safetensors"
    hostile.write_bytes(b"\x80\x04not a safetensors file at all")
    with pytest.raises(StyleError):
        resolve_style(hostile)


def test_render_reads_an_image_sequence(tmp_path: Path, grace_hopper) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index}.png"), grace_hopper[:, :, ::-1])
    summary = render(folder, tmp_path / "out.mp4", preset="ultrafast")
    assert summary.frames == 3 and summary.output.is_file()
    assert summary.mean_fps > 0 and summary.style == DEFAULT_STYLE


def test_render_refuses_to_overwrite_its_input_or_write_an_image(tmp_path: Path) -> None:
    from pipeline.errors import OutputError
    from pipeline.samples import write_moving_face_clip

    clip = tmp_path / "c.mp4"
    write_moving_face_clip(clip, [], 2, size=(64, 48), audio=False)
    with pytest.raises(OutputError, match="is the input"):
        render(clip, clip)
    with pytest.raises(OutputError, match="writes a video"):
        render(clip, tmp_path / "out.png")
    with pytest.raises(InputError):
        render(tmp_path, tmp_path / "out.mp4")  # a folder with no images


def test_without_an_identity_a_pack_uses_its_own_default(astronaut: np.ndarray) -> None:
    image = _letterboxed(astronaut)
    pack_default = resolve_style("painterly").default_identity
    assert pack_default > 0

    def styled(**options) -> np.ndarray:
        stylizer = FaceStylizer("painterly", **options)
        for _ in range(8):
            result = stylizer.process(image)
        return result

    default = styled()
    assert np.array_equal(default, styled(identity=pack_default))
    assert not np.array_equal(default, styled(identity=0.0))
