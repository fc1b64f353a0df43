"""End to end on a real clip with known truth: only the faces change; frames, timing and
audio are the input's."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from ctrl_c import ctrl_c_when_writing
from videoclips import audio_packets, video_timestamps

from pipeline.align import alignment_matrix
from pipeline.atomic import write_image
from pipeline.cartoon import CartoonStylizer
from pipeline.composite import magnification
from pipeline.frame import Frame
from pipeline.restyle import HALF_CROPS_AFTER, HALF_CROPS_AT, Restyler
from pipeline.samples import ClipTruth, FacePath, Pose, face_box, write_moving_face_clip
from pipeline.sources import open_source
from plugin.api import render
from plugin.cli import main
from plugin.commands.render import batch_hint
from plugin.settings import RestyleSettings, build_restyler

N_FRAMES = 30
AWAY = 8  # the face is off screen for the first AWAY frames


def _pose(index: int) -> Pose:
    if index < AWAY:
        return Pose(cx=-400, cy=240, scale=1.4)  # far outside: a frame with no face
    return Pose(cx=260 + 4 * (index - AWAY), cy=240 + 2 * (index - AWAY), scale=1.4, angle=5)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ClipTruth]:
    path = tmp_path_factory.mktemp("render") / "walk.mp4"
    truth = write_moving_face_clip(path, [FacePath("astronaut", _pose)], N_FRAMES)
    return path, truth


@pytest.fixture(scope="module")
def rendered(clip: tuple[Path, ClipTruth]) -> Path:
    path, _ = clip
    output = path.with_name("walk-styled.mp4")
    summary = render(path, output, style="cartoon", crf=12, preset="ultrafast")
    assert summary.output == output and summary.frames == N_FRAMES
    assert summary.faces_tracked == 1
    return output


def _face_region(truth: ClipTruth, index: int, shape: tuple[int, int]) -> np.ndarray:
    """Pixels near the true face: its box grown to cover the whole head with its hair (the
    head matte reaches that far) and the matte's soft edge."""
    region = np.zeros(shape, bool)
    box = truth.boxes[index][0]
    if box is None:
        return region
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 1.6 * (box[2] - box[0])
    y0, y1 = int(max(cy - half, 0)), int(cy + half)
    x0, x1 = int(max(cx - half, 0)), int(cx + half)
    region[y0:y1, x0:x1] = True
    return region


def _frames(path: Path) -> list[Frame]:
    with open_source(path) as source:
        return list(source)


def test_output_has_the_input_frames_timestamps_and_audio(
    clip: tuple[Path, ClipTruth], rendered: Path
) -> None:
    source, _ = clip
    assert video_timestamps(rendered) == pytest.approx(video_timestamps(source), abs=1e-4)
    assert len(video_timestamps(rendered)) == N_FRAMES
    assert audio_packets(rendered) == audio_packets(source)
    assert audio_packets(source), "the test clip should carry audio"


def test_only_the_faces_change(clip: tuple[Path, ClipTruth], rendered: Path) -> None:
    source, truth = clip
    changed_inside = []
    for before, after in zip(_frames(source), _frames(rendered), strict=True):
        diff = np.abs(before.image.astype(np.int16) - after.image.astype(np.int16)).max(axis=2)
        face = _face_region(truth, before.index, diff.shape)
        # Outside the faces: the same picture up to the second encode's noise.
        assert diff[~face].mean() < 2.0, f"frame {before.index}"
        assert np.percentile(diff[~face], 99.9) < 24, f"frame {before.index}"
        box = truth.boxes[before.index][0]
        if box is not None:
            x0, y0, x1, y1 = box.astype(int)
            changed_inside.append(diff[y0:y1, x0:x1].mean())
    # Once the face has faded in, it is clearly restyled.
    assert np.median(changed_inside) > 8.0, changed_inside


def test_frames_without_a_face_pass_through_unchanged(
    clip: tuple[Path, ClipTruth], rendered: Path
) -> None:
    source, _ = clip
    for before, after in list(zip(_frames(source), _frames(rendered), strict=True))[:AWAY]:
        diff = np.abs(before.image.astype(np.int16) - after.image.astype(np.int16))
        assert diff.mean() < 2.0  # the second encode's noise only


def test_restyler_returns_a_faceless_frame_itself_and_leaves_the_rest_exact(
    clip: tuple[Path, ClipTruth],
) -> None:
    source, truth = clip
    restyler = Restyler(CartoonStylizer())
    for frame in _frames(source)[: AWAY + 10]:
        result = restyler.process(frame)
        if frame.index < AWAY:
            assert result is frame
            continue
        assert (result.index, result.time, result.pts) == (frame.index, frame.time, frame.pts)
        outside = ~_face_region(truth, frame.index, (frame.height, frame.width))
        assert np.array_equal(result.image[outside], frame.image[outside])
    assert restyler.track_ids == {next(iter(restyler.track_ids))}
    assert restyler.most_faces == 1
    timings = restyler.timings.ms_per_frame()
    assert {"track", "align", "stylize", "composite"} <= timings.keys()
    restyler.reset()
    assert not restyler.track_ids and restyler.most_faces == 0 and restyler.timings.frames == 0


def _zoom_pose(index: int) -> Pose:
    """The astronaut's face (90 px at scale 1) growing from 45 to 100 px, shrinking back and
    staying at 45 px from frame 40."""
    return Pose(cx=220, cy=240, scale=max(0.5, 1.1 - 0.6 * abs(index - 20) / 20))


def test_a_face_shown_small_is_stylized_at_half_the_crop_side(tmp_path: Path) -> None:
    # Beside the zooming face, one that stays small (Grace Hopper's, 186 px at scale 1).
    path = tmp_path / "zoom.mp4"
    faces = [
        FacePath("astronaut", _zoom_pose),
        FacePath("grace_hopper", lambda index: Pose(cx=500, cy=240, scale=0.3)),
    ]
    write_moving_face_clip(path, faces, 60, audio=False)
    restyler = build_restyler(RestyleSettings(style="painterly"))
    full = restyler.stylizer.crop_size
    shown: dict[int, list[float]] = {}
    sides: dict[int, list[int]] = {}
    for frame in _frames(path):
        analysis = restyler.analyse(frame)
        for face, crop in zip(analysis.faces, analysis.crops, strict=True):
            # How large a full-size crop is shown, from the tracked landmarks themselves:
            # the test holds whatever size the detector saw.
            own = shown.setdefault(face.track_id, [])
            own.append(magnification(alignment_matrix(face.landmarks, full)))
            small = max(own[-HALF_CROPS_AFTER:]) <= HALF_CROPS_AT
            assert crop.size == (full // 2 if small else full), f"frame {frame.index}"
            sides.setdefault(face.track_id, []).append(crop.size)
        if not analysis.faces:
            continue
        result = restyler.render(analysis)
        assert result.image.shape == frame.image.shape
        if frame.index >= 20:  # faded in: each face restyled, whatever its crop's side
            change = np.abs(result.image.astype(np.int16) - frame.image).mean(axis=2)
            for face in analysis.faces:
                x0, y0, x1, y1 = (int(v) for v in face.box)
                assert change[y0:y1, x0:x1].mean() > 10, f"frame {frame.index}"
    zooming, still = (sides[k] for k in sorted(sides, key=lambda k: -max(shown[k])))
    assert set(still) == {full // 2}
    # Small, large, and small again once the face has been small for a while: not at once.
    changes = [i for i in range(1, len(zooming)) if zooming[i] != zooming[i - 1]]
    assert zooming[0] == full // 2 and len(changes) == 2 and zooming[-1] == full // 2
    own = shown[max(shown, key=lambda k: max(shown[k]))]
    assert own[changes[1] - 2] <= HALF_CROPS_AT and zooming[changes[1] - 2] == full


def test_a_crowd_of_ten_faces_is_restyled_whole_by_default(tmp_path: Path) -> None:
    # Ten 54 px faces, 5 x 2: more than the old default of 8 a frame.
    path = tmp_path / "crowd.mp4"
    crowd = [
        FacePath("astronaut", lambda index, x=x, y=y: Pose(cx=x, cy=y, scale=0.6))
        for x in (70, 195, 320, 445, 570)
        for y in (130, 350)
    ]
    write_moving_face_clip(path, crowd, 16, audio=False)
    restyler = build_restyler(RestyleSettings(style="cartoon"))
    for frame in _frames(path):
        restyler.process(frame)
    assert restyler.most_faces > 8


def test_a_single_image_is_restyled(tmp_path: Path, astronaut: np.ndarray) -> None:
    # A face is confirmed by the next detection and fades in over the frames after it: one
    # image has none of those, and once passed through as it was, "0 faces tracked".
    still = write_image(tmp_path / "portrait.png", astronaut)
    summary = render(still, tmp_path / "one.mp4", style="cartoon", crf=12, preset="ultrafast")
    assert summary.frames == 1 and summary.faces_tracked == 1
    (frame,) = _frames(summary.output)
    change = np.abs(frame.image.astype(np.int16) - astronaut).mean(axis=2)
    x0, y0, x1, y1 = (int(v) for v in face_box("astronaut"))
    # The face is painted; far from it, only the encoding's loss.
    assert change[y0:y1, x0:x1].mean() > 4 * change[:60, :60].mean()


def test_preview_sheet_is_written(clip: tuple[Path, ClipTruth], tmp_path: Path) -> None:
    import cv2

    source, _ = clip
    sheet = tmp_path / "sheet.png"
    summary = render(source, tmp_path / "out.mkv", sheet=sheet, preset="ultrafast")
    assert summary.sheet == sheet
    image = cv2.imread(str(sheet))
    # Three rows of before|after at 480 px per side, plus the header.
    assert image.shape[1] == 960 and image.shape[0] == 36 + 3 * 360
    assert (tmp_path / "out.mkv").is_file()
    assert summary.stage_ms.keys() >= {"decode", "track", "stylize", "composite", "encode"}


@pytest.mark.parametrize("option", ["--sheet", "--preview"])
def test_the_cli_writes_a_sheet_and_still_takes_the_old_option_name(
    clip: tuple[Path, ClipTruth], tmp_path: Path, option: str, capsys: pytest.CaptureFixture
) -> None:
    source, _ = clip
    sheet = tmp_path / "sheet.png"
    command = ["render", str(source), "-o", str(tmp_path / "out.mp4"), option, str(sheet)]
    assert main([*command, "--style", "cartoon", "--preset", "ultrafast", "-q"]) == 0
    out, err = capsys.readouterr()
    assert sheet.is_file() and f"Sheet: {sheet.resolve()}" in out
    assert ("--preview is now --sheet" in err) == (option == "--preview")


def test_sample_keyword_renders_the_cached_sample_clip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from plugin.cli import main
    from plugin.sample import sample_path

    # A short stand-in already in the cache: generating the real 7 s clip is the demo's job.
    monkeypatch.setenv("FACESTYLE_CACHE", str(tmp_path / "cache"))
    sample_path().parent.mkdir()
    write_moving_face_clip(sample_path(), [FacePath("astronaut", _pose)], 3, audio=False)
    monkeypatch.chdir(tmp_path)
    assert main(["render", "--sample", "-q"]) == 0
    assert (tmp_path / "sample-styled.mp4").is_file()
    assert main(["render", "sample", "-o", "named.mkv"]) == 0
    out = capsys.readouterr().out
    assert "Rendered 3 frames" in out and str(tmp_path / "named.mkv") in out


def test_ctrl_c_mid_render_exits_130_every_time(
    clip: tuple[Path, ClipTruth], tmp_path: Path
) -> None:
    # Five in a row, each the moment the render begins: a Ctrl-C landing while the runner
    # started its threads once crashed the exit (SIGABRT or SIGSEGV) about one run in two.
    path, _ = clip
    output = tmp_path / "out.mp4"
    command = ["render", str(path), "-o", str(output), "--style", "cartoon", "-q"]
    for _ in range(5):
        status, err = ctrl_c_when_writing([*command, "--preset", "ultrafast"], tmp_path, ".out.*")
        assert status == 130, err
        assert err.splitlines() == [
            "facestyle: stopped; no half-written file is left under an output name"
        ]
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_a_render_as_ctrl_c_does(
    clip: tuple[Path, ClipTruth], tmp_path: Path, number: int
) -> None:
    # `timeout` and `kill` send SIGTERM, a closed terminal SIGHUP: their default action once
    # ended the process on the spot, leaving its hidden partial file behind for good.
    path, _ = clip
    output = tmp_path / "out.mp4"
    command = ["render", str(path), "-o", str(output), "--style", "cartoon", "-q"]
    status, err = ctrl_c_when_writing(command, tmp_path, ".out.*", number=number)
    assert status == 128 + number, err
    assert err.splitlines() == [
        "facestyle: stopped; no half-written file is left under an output name"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_long_gpu_render_on_many_cores_points_to_batch_segments() -> None:
    assert batch_hint("talk.mp4", "cuda", 1500, 16) == (
        "Faster on this machine: facestyle batch talk.mp4 --out-dir DIR --jobs 8 "
        "--segment-frames 188 --device cuda and your style options (one file in 8 parallel segments)"
    )
    hint = batch_hint("talk.mp4", "cuda", 1500, 8)  # a worker per two cores
    assert hint is not None and "--jobs 4 --segment-frames 375" in hint
    # Where one render is as good: the CPU path, a short clip, few cores.
    assert batch_hint("talk.mp4", "cpu", 1500, 16) is None
    assert batch_hint("talk.mp4", "cuda", 300, 16) is None
    assert batch_hint("talk.mp4", "cuda", 1500, 2) is None
    assert batch_hint("talk.mp4", "cuda", 1500, None) is None
