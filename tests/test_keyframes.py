"""Keyframe painting: the teacher paints each face every few frames, the flow carries it.

Known truth: a face crop moved by whole pixels from frame to frame, so the painting carried
onto it must move by exactly as much.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from face_crops import photo_face

from models import keyframes
from models.exemplar import Exemplar, load_image, prepare_exemplar
from models.keyframes import (
    ARTWORK_IDENTITY,
    BACKGROUND_IDENTITY,
    KeyframePainter,
    KeyframeSettings,
    pack_exemplar,
)
from models.metrics import warping_errors
from models.pack import bundled_packs, load_pack, save_pack
from models.teacher import Synthesis, synthesize
from pipeline.align import align_face
from pipeline.detail import remove_detail, restore_detail
from pipeline.frame import AlignedCrop, Frame
from pipeline.landmarks import detect_landmarks
from pipeline.restyle import Analysis, Restyler
from pipeline.samples import FacePath, Pose, write_moving_face_clip
from pipeline.sources import open_source
from pipeline.stylizer import ReshapingStylizer, Stylizer
from plugin.batch import BatchSettings
from plugin.cli import main
from plugin.live import LiveOutputs, LiveSession, warm_up
from plugin.settings import RestyleSettings
from plugin.styles import resolve_style

SIZE = 128  # the teacher at 128 px takes about a quarter of a second a painting
ARTWORKS = Path(__file__).resolve().parents[1] / "models" / "exemplars"
VAN_GOGH = ARTWORKS / "painterly.jpg"
ENGRAVING = ARTWORKS / "engraving.jpg"


@pytest.fixture(scope="module")
def exemplar() -> Exemplar:
    return prepare_exemplar(load_image(VAN_GOGH), size=SIZE)


@pytest.fixture(scope="module")
def faces(astronaut: np.ndarray, grace_hopper: np.ndarray) -> list[AlignedCrop]:
    return [
        align_face(photo, detect_landmarks(photo)[0], SIZE) for photo in (astronaut, grace_hopper)
    ]


def _moved(crop: AlignedCrop, dx: float, track_id: int) -> AlignedCrop:
    """``crop`` with its picture and landmarks ``dx`` pixels to the right (bicubic: exact at
    whole pixels)."""
    shift = np.float32([[1, 0, dx], [0, 1, 0]])
    image = cv2.warpAffine(
        crop.image, shift, (SIZE, SIZE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    return AlignedCrop(image, crop.matrix, crop.landmarks + np.float32([dx, 0]), track_id)


def test_each_face_is_painted_every_nth_frame_and_carried_with_it_between(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    painter = KeyframePainter(exemplar, KeyframeSettings(every=3, fade=1))
    frames = [[_moved(face, dx, track) for track, face in enumerate(faces)] for dx in range(7)]
    shown = [painter.stylize(crops) for crops in frames]
    # Frames 0, 3 and 6 of each of the two faces are keyframes.
    assert painter.paintings == 6
    inner = (slice(24, -24), slice(24, -24))
    for track in range(2):
        # Frame 1 is frame 0's painting moved one pixel right, as the face moved.
        before, after = shown[0][track].astype(np.float32), shown[1][track].astype(np.float32)
        carried = np.abs(after[:, 1:] - before[:, :-1])[inner].mean()
        unmoved = np.abs(after - before)[inner].mean()
        assert carried < 0.25 * unmoved, (track, carried, unmoved)
        # The faces are painted apart: each keeps its own person under the paint.
        assert not np.array_equal(shown[1][0], shown[1][1])


def test_a_file_s_faces_due_a_keyframe_are_painted_at_once_as_one_at_a_time(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    frames = [[_moved(face, dx, track) for track, face in enumerate(faces)] for dx in range(3)]
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one_at_a_time = KeyframePainter(exemplar, KeyframeSettings(every=2, fade=1))
        expected = [one_at_a_time.stylize(crops) for crops in frames]

        cv2.setNumThreads(2)
        together = KeyframePainter(exemplar, KeyframeSettings(every=2, fade=1))
        # Each painting waits for the other to begin: painted one after the other, the first
        # would wait in vain and break the barrier.
        meet = threading.Barrier(2, timeout=10)
        paint = together._paint

        def paint_beside_the_other(crop: AlignedCrop, guide: np.ndarray | None) -> np.ndarray:
            meet.wait()
            return paint(crop, guide)

        together._paint = paint_beside_the_other
        shown = [together.stylize(crops) for crops in frames]
    finally:
        cv2.setNumThreads(threads)
    assert together.paintings == one_at_a_time.paintings == 4
    for got, want in zip(shown, expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("lag", [0, 1])
def test_each_keyframe_after_a_face_s_first_starts_from_the_one_before(
    exemplar: Exemplar, faces: list[AlignedCrop], monkeypatch: pytest.MonkeyPatch, lag: int
) -> None:
    starts: list[np.ndarray | None] = []

    def recorded(exemplar, content, params=None, previous=None, start=None):
        starts.append(start)
        return synthesize(exemplar, content, params, previous, start)

    monkeypatch.setattr(keyframes, "synthesize", recorded)
    painter = KeyframePainter(exemplar, KeyframeSettings(every=2, fade=1, lag=lag))
    for dx in range(6):
        painter.stylize([_moved(faces[0], dx, 0)])
    painter.settle()
    assert painter.asked == 3 and len(starts) == 3
    assert starts[0] is None
    # The field carried on with the face: what the previous keyframe copied, where it is now.
    for start in starts[1:]:
        assert start.shape == (SIZE, SIZE, 2) and start.dtype == np.int32


def test_a_new_keyframe_fades_in_instead_of_jumping(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    still = [_moved(faces[0], 0, 0)]
    jumps = {}
    for fade in (0, 1):
        painter = KeyframePainter(exemplar, KeyframeSettings(every=2, fade=fade))
        shown = [painter.stylize(still)[0].astype(np.float32) for _ in range(4)]
        assert painter.paintings == 2
        jumps[fade] = np.abs(shown[2] - shown[1]).mean()
        assert np.abs(shown[1] - shown[0]).mean() < 0.5  # carried, the face unmoved
    # Half-way at the keyframe, then all the way a frame later.
    assert jumps[0] > 1.0
    assert jumps[1] == pytest.approx(jumps[0] / 2, rel=0.1)


def test_a_face_that_leaves_is_painted_afresh_when_it_returns(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    painter = KeyframePainter(exemplar, KeyframeSettings(every=8, fade=2))
    both = [_moved(face, 0, track) for track, face in enumerate(faces)]
    painter.stylize(both)
    painter.stylize(both[:1])  # the second face is gone for a frame
    assert painter.paintings == 2
    painter.stylize(both)
    assert painter.paintings == 3
    painter.reset()
    painter.stylize(both[:1])
    assert painter.paintings == 4


def test_keyframe_settings_are_checked() -> None:
    assert KeyframeSettings(every=8).fade == 4
    assert KeyframeSettings(every=1).fade == 0  # a painting every frame: nothing to fade
    with pytest.raises(ValueError, match="fade"):
        KeyframeSettings(every=4, fade=4)
    with pytest.raises(ValueError, match="every"):
        KeyframeSettings(every=0, fade=0)
    with pytest.raises(ValueError, match="lag"):
        KeyframeSettings(lag=-1)
    with pytest.raises(ValueError, match="keyframes"):
        RestyleSettings(keyframes=-1)
    with pytest.raises(ValueError, match="keyframe_lag"):
        RestyleSettings(keyframe_lag=True)


def test_a_bundled_pack_holds_its_artwork_whole_for_the_teacher() -> None:
    pack = load_pack(bundled_packs()["painterly"])
    stored = pack_exemplar(pack)
    artwork = prepare_exemplar(load_image(VAN_GOGH))
    assert stored.image.shape == artwork.image.shape
    assert np.array_equal(stored.image, artwork.image)
    assert np.allclose(stored.landmarks, artwork.landmarks)
    assert stored.keep_tone and not stored.monochrome


def _walk(index: int) -> Pose:
    return Pose(cx=250 + 3 * index, cy=240, scale=1.3)


@pytest.mark.parametrize(
    ("style", "name"),
    [("painterly", "painterly"), (str(ENGRAVING), "engraving")],
    ids=["a pack", "an artwork, no pack made"],
)
def test_render_paints_keyframes(tmp_path: Path, capsys, style: str, name: str) -> None:
    source = tmp_path / "walk.mp4"
    write_moving_face_clip(source, [FacePath("astronaut", _walk)], 10, audio=False)
    output = tmp_path / "painted.mp4"
    args = ["render", str(source), "-o", str(output), "--style", style, "--keyframes", "5"]
    assert main([*args, "-q"]) == 0
    assert f"{name} (keyframes every 5)" in capsys.readouterr().out
    with open_source(source) as before, open_source(output) as after:
        pairs = list(zip(before, after, strict=True))
    assert len(pairs) == 10
    changed = [np.abs(a.image.astype(int) - b.image.astype(int)).mean() for b, a in pairs]
    assert min(changed) > 1.0, changed


def test_keyframes_keep_a_pack_s_identity_and_give_an_artwork_its_own() -> None:
    for name in ("painterly", "engraving"):
        painter = resolve_style(name, keyframes=8)
        assert isinstance(painter, KeyframePainter)
        assert painter.default_identity == load_pack(bundled_packs()[name]).identity
    assert resolve_style(ENGRAVING, keyframes=8).default_identity == ARTWORK_IDENTITY
    # A painting shown late is of the face as it was: more of the person's own detail.
    late = resolve_style("painterly", keyframes=8, keyframe_lag=None)
    assert late.default_identity == BACKGROUND_IDENTITY
    # The packs' own identities differ, so the test tells the two sources apart.
    assert load_pack(bundled_packs()["painterly"]).identity != ARTWORK_IDENTITY


def test_an_artwork_without_a_face_is_one_line(tmp_path: Path, capsys) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 240, 3), 180, np.uint8))
    source = tmp_path / "walk.mp4"
    write_moving_face_clip(source, [FacePath("astronaut", _walk)], 3, audio=False)
    output = tmp_path / "out.mp4"
    status = main(
        ["render", str(source), "-o", str(output), "--style", str(blank), "--keyframes", "4"]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(lines) == 1 and "no face was found in" in lines[0]
    assert not output.exists()


def test_a_batch_rerun_with_keyframes_is_not_taken_for_the_same_render() -> None:
    plain = BatchSettings(RestyleSettings(style="painterly")).digest()
    painted = BatchSettings(RestyleSettings(style="painterly", keyframes=8)).digest()
    assert plain != painted


def test_a_painting_made_in_the_background_is_carried_to_the_frame_it_arrives_on(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    frames = [[_moved(faces[0], dx, 0)] for dx in range(4)]
    in_line = KeyframePainter(exemplar, KeyframeSettings(every=8, fade=0))
    lagging = KeyframePainter(exemplar, KeyframeSettings(every=8, fade=0, lag=2))
    painted = in_line.stylize(frames[0])[0]
    shown = [lagging.stylize(crops)[0] for crops in frames]
    # Until its first painting arrives the face is shown as it is (no fallback given), less
    # the fine detail the restyler puts back over every face ...
    for shown_face, crops in zip(shown[:2], frames[:2], strict=True):
        face = crops[0].image[None]
        identity = lagging.default_identity
        assert np.array_equal(shown_face, remove_detail(face, face, identity)[0])
        restored = restore_detail(shown_face[None], face, identity).astype(np.float32)
        assert np.abs(restored - face).mean() < 0.1  # but where the subtraction clipped
    # ... then frame 0's painting, moved on with the face by the two pixels it has moved.
    assert lagging.paintings == 1
    inner = (slice(24, -24), slice(24, -24))
    carried = np.abs(shown[2][:, 2:].astype(np.float32) - painted[:, :-2])[inner].mean()
    unmoved = np.abs(shown[2].astype(np.float32) - painted)[inner].mean()
    assert carried < 0.25 * unmoved, (carried, unmoved)
    assert "painted in the background" in lagging.name


def test_a_face_s_first_painting_fades_in_over_its_fallback(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    still = [_moved(faces[0], 0, 0)]
    painter = KeyframePainter(exemplar, KeyframeSettings(every=4, fade=1, lag=1))
    before, halfway, after = (painter.stylize(still)[0].astype(np.float32) for _ in range(3))
    face = still[0].image[None]
    assert np.array_equal(before, remove_detail(face, face, painter.default_identity)[0])
    # Half the painting over the face at its arrival, all of it a frame later.
    assert np.abs(halfway - (before + after) / 2).mean() < 1.0
    assert np.abs(after - before).mean() > 4.0


def test_before_its_first_painting_a_face_looks_as_its_pack_alone_shows_it() -> None:
    """The restyler puts the painter's identity (at least 0.75, fine detail) over every face
    it shows; ``painterly``'s student is finished with its own (0.35, light and shadow)."""
    photo, face, crop = photo_face("astronaut")

    def shown(stylizer: Stylizer) -> np.ndarray:
        restyler = Restyler(stylizer)
        prepared = tuple(stylizer.prepare([crop])) if hasattr(stylizer, "prepare") else ()
        analysis = Analysis(Frame(photo, 0.0, 0), (face,), (crop,), stylizer, prepared=prepared)
        return restyler.finish(restyler.stylize(analysis))[0].astype(np.float32)

    alone = shown(resolve_style("painterly"))
    # A lag no painting meets in one frame, so the fallback shows the face.
    painter = resolve_style("painterly", keyframes=8, keyframe_lag=50)
    assert painter.default_identity == BACKGROUND_IDENTITY
    fallen_back = shown(painter)
    painter.reset()
    assert np.abs(fallen_back - alone).max() <= 3  # rounding, and the detail where it clipped
    assert np.abs(alone - crop.image).mean() > 5.0  # and that is the pack's painting


def test_a_crop_of_another_side_is_painted_at_the_painter_s_and_brought_back(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    """Live's "smaller crops" step hands every painter half-size crops."""
    painter = KeyframePainter(exemplar, KeyframeSettings(every=8))
    full = painter.stylize([_moved(faces[0], 0, 0)])[0]
    half = AlignedCrop(
        cv2.resize(faces[0].image, (SIZE // 2, SIZE // 2), interpolation=cv2.INTER_AREA),
        faces[0].matrix / 2,
        faces[0].landmarks / 2,
        0,
    )
    shown = painter.stylize([half])
    assert shown.shape == (1, SIZE // 2, SIZE // 2, 3)
    assert painter.paintings == 1  # the same track, carried
    smaller = cv2.resize(full, (SIZE // 2, SIZE // 2), interpolation=cv2.INTER_AREA)
    assert np.abs(shown[0].astype(np.float32) - smaller).mean() < 6.0


def test_a_painter_in_the_background_keeps_a_face_left_out_of_a_few_frames(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    """Live's degraded steps leave a face out of a frame; it keeps its painting."""
    painter = KeyframePainter(exemplar, KeyframeSettings(every=100, lag=None))
    both = [_moved(face, 0, track) for track, face in enumerate(faces)]
    for crops in (both, both[:1], both[:1], both):
        painter.stylize(crops)
    assert painter.asked == 2
    for _ in range(20):
        painter.stylize(both[:1])
    painter.stylize(both)  # gone for 20 frames: painted afresh
    assert painter.asked == 3


def test_a_painting_that_fails_in_the_background_fails_the_frame_that_takes_it(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    class OutOfMemory(KeyframePainter):
        def _paint(self, crop: AlignedCrop, guide: object) -> Synthesis:
            raise MemoryError("the teacher ran out of memory")

    painter = OutOfMemory(exemplar, KeyframeSettings(every=8, lag=1))
    face = [_moved(faces[0], 0, 0)]
    painter.stylize(face)  # asked for; the face is shown as it is meanwhile
    with pytest.raises(MemoryError, match="ran out of memory"):
        painter.stylize(face)


def test_a_live_session_paints_keyframes_in_the_background(tmp_path: Path) -> None:
    source = tmp_path / "walk.mp4"
    write_moving_face_clip(source, [FacePath("astronaut", _walk)], 12, audio=False)
    record = tmp_path / "live.mp4"
    session = LiveSession(
        str(source),
        RestyleSettings(style="painterly", keyframes=4),
        LiveOutputs(record=record),
    )
    painter = session.restyler.stylizer
    assert isinstance(painter, KeyframePainter) and painter.settings.lag is None
    assert painter.fallback is not None  # the pack's student until a painting arrives
    session.request_style("cartoon")  # no artwork to paint from: itself
    session.request_style("engraving")  # painted in keyframes too
    summary = session.run()
    switched = session.restyler.stylizer
    assert isinstance(switched, KeyframePainter) and switched.name.startswith("engraving")
    assert summary.frames >= 3  # live drops frames it cannot keep up with
    with open_source(source) as before, open_source(record) as after:
        originals = {frame.index: frame.image for frame in before}
        shown = [frame.image for frame in after]
    # Every face is restyled from the first frame on, by the student or a painting.
    for index, image in zip(summary.indices, shown, strict=True):
        assert np.abs(originals[int(index)].astype(int) - image.astype(int)).mean() > 0.5


def test_a_painting_dropped_with_its_track_is_not_counted_as_shown(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    """A live session's warm-up face is forgotten before the camera starts."""
    painter = KeyframePainter(exemplar, KeyframeSettings(every=8, lag=1))
    painter.stylize([_moved(faces[0], 0, 0)])  # asked for, then dropped by the reset
    painter._tracks[0].asked.ready.result()  # painted, as a warm-up face's often is
    painter.reset()
    face = [_moved(faces[1], 0, 1)]
    painter.stylize(face)
    painter.stylize(face)
    assert painter.asked == 2 and painter.paintings == 1


def test_a_pack_s_geometry_reshapes_the_faces_its_keyframes_paint(
    exemplar: Exemplar, faces: list[AlignedCrop], tmp_path: Path
) -> None:
    painter = KeyframePainter(exemplar, geometry=0.5)
    assert isinstance(painter, ReshapingStylizer)
    (reshaped,) = painter.reshape(faces[:1])
    halfway = (faces[0].landmarks + exemplar.landmarks) / 2
    np.testing.assert_allclose(reshaped.landmarks, halfway, atol=1e-3)
    # The painting is of the reshaped face, and so is everything put over it.
    plain = KeyframePainter(exemplar)
    np.testing.assert_array_equal(painter.stylize(faces[:1]), plain.stylize([reshaped]))
    # A pack's keyframes take the pack's geometry.
    pack = load_pack(bundled_packs()["engraving"])
    path = tmp_path / "reshaping.safetensors"
    save_pack(replace(pack, geometry=0.4), path)
    assert resolve_style(path, keyframes=8).geometry == pytest.approx(0.4)


def test_a_late_painting_is_moved_onto_the_face_it_arrives_on_in_one_step(
    exemplar: Exemplar, faces: list[AlignedCrop]
) -> None:
    """A second of frames between asking and showing: the flows chained along them drift off
    the face's features (and lose what left the crop on the way), the flow between the
    two crops does not. Known truth: the face wanders 12 px and comes back."""
    settings = KeyframeSettings(every=8, fade=0, lag=6)

    def last_shown(path: list[int]) -> np.ndarray:
        painter = KeyframePainter(exemplar, settings)
        shown = [painter.stylize([_moved(faces[0], dx, 0)])[0] for dx in path]
        assert painter.paintings == 1
        return shown[-1].astype(np.float32)

    # The face back where it was painted shows its painting as made, to the crop's edges.
    wandered, still = last_shown([0, 4, 8, 12, 8, 4, 0]), last_shown([0] * 7)
    assert np.abs(wandered - still).mean() < 0.5


def test_a_live_warm_up_leaves_the_teacher_idle_before_the_camera_starts(
    exemplar: Exemplar,
) -> None:
    """The warm-up portrait's face is asked for a painting; the session must not begin with
    the teacher's core still painting a face that is gone."""
    finished: list[int] = []

    class Slow(KeyframePainter):
        def _paint(self, crop: AlignedCrop, guide: object) -> Synthesis:
            time.sleep(0.5)
            finished.append(crop.track_id)
            field = np.zeros((*crop.image.shape[:2], 2), np.int32)
            return Synthesis(crop.image, field, np.zeros(crop.image.shape[:2], np.float32))

    painter = Slow(exemplar, KeyframeSettings(lag=None))
    warm_up(Restyler(painter))
    assert painter.asked == 1
    assert len(finished) == 1
    assert painter.paintings == 0  # dropped with its track, never shown


@pytest.mark.parametrize(
    ("lag", "most"),
    [
        # In line, supersampled: 2.07 (one bicubic sample a pixel: 3.32).
        (0, 2.6),
        # In the background, softened once and sampled once: 2.59 (not softened: 3.14).
        (1, 2.85),
    ],
)
def test_a_carried_painting_does_not_shimmer_as_the_face_drifts(
    exemplar: Exemplar, faces: list[AlignedCrop], lag: int, most: float
) -> None:
    """A face drifting a quarter of a pixel a frame lands at every sub-pixel offset in turn;
    its painting, carried with it, must stay as steady as the flow lets it (the warping
    error that ``facestyle eval`` judges, against the face's own)."""
    painter = KeyframePainter(exemplar, KeyframeSettings(every=16, fade=0, lag=lag))
    frames = [_moved(faces[0], dx, 0) for dx in np.arange(9) / 4]
    shown = np.stack([painter.stylize([crop])[0] for crop in frames])
    carried = slice(1 + lag, None)  # the frames after the painting is first shown
    inputs = np.stack([crop.image for crop in frames])[carried]
    own, painted = (errors.mean() for errors in warping_errors(inputs, [inputs, shown[carried]]))
    assert painted / own < most
