"""The face tracker on real H.264 clips of public-domain faces moving along known paths.

A clip's truth box is the photo's dlib box carried along the path. The tracker's boxes are
estimated from landmarks, which sit a little off dlib's box in a way that depends on the face
(dlib's box side comes in pyramid steps). So the truth is compared like with like: the
tracker's box for the still photo, carried along the same path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from shared_media import shared_media

from pipeline.detector import DetectionWorker, FaceDetector
from pipeline.frame import Face, Frame
from pipeline.landmarks import detect_faces, predict_landmarks
from pipeline.samples import ClipTruth, FacePath, Pose, face_photo, write_moving_face_clip
from pipeline.tracker import FaceTracker, box_from_landmarks, fit_error, iou_matrix

Path_ = Callable[[int], Pose]

# name: (faces as (photo, pose), frames)
CLIPS: dict[str, tuple[list[tuple[str, Path_]], int]] = {
    "translation": ([("astronaut", lambda i: Pose(150 + 6 * i, 240 + 40 * math.sin(i / 8)))], 50),
    "zoom": ([("astronaut", lambda i: Pose(320, 240, 0.9 + 0.9 * i / 50))], 50),
    "rotation": ([("grace_hopper", lambda i: Pose(320, 240, 0.6, 15 * math.sin(i / 5)))], 50),
    "occlusion": ([("astronaut", lambda i: Pose(250 + 2 * i, 240, occluded=20 <= i < 26))], 50),
    "two_faces": (
        [
            ("astronaut", lambda i: Pose(170 + i, 200)),
            ("grace_hopper", lambda i: Pose(470 - i, 280, 0.55)),
        ],
        40,
    ),
    # Leaves to the right at frame ~23, gone from 27, back from the left at 30.
    "leave_and_enter": (
        [("astronaut", lambda i: Pose(320 + 14 * i if i < 30 else -100 + 14 * (i - 30), 240))],
        60,
    ),
    "no_face": ([("astronaut", lambda i: Pose(-1000, 240))], 10),
    # Three faces of 44-56 px (dlib box side), drifting.
    "small_faces": (
        [
            ("astronaut", lambda i: Pose(120 + i, 150, 0.5)),
            ("grace_hopper", lambda i: Pose(320, 300 - i, 0.26)),
            ("astronaut", lambda i: Pose(520 - i, 200 + i, 0.6, 5)),
        ],
        50,
    ),
    # Turning from 45° one way to 45° the other and back, seen in perspective.
    "turning": ([("astronaut", lambda i: Pose(320, 240, 1.0, yaw=45 * math.cos(i / 6)))], 40),
    # Grace Hopper passes in front of the astronaut, right to left, at 5 px a frame each.
    "crossing": (
        [
            ("astronaut", lambda i: Pose(200 + 5 * i, 240, 0.9)),
            ("grace_hopper", lambda i: Pose(440 - 5 * i, 250, 0.4)),
        ],
        48,
    ),
    # Out through the top at 40 px a frame, growing: boxes past the frame edge.
    "fast_exit": ([("astronaut", lambda i: Pose(320, 240 - 40 * i, 1 + 0.1 * i))], 18),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[list, list]]:
    """``clips(name)`` -> (decoded frames, truth boxes per frame), written once per module."""
    folder = tmp_path_factory.mktemp("tracker_clips")

    @cache
    def load(name: str) -> tuple[list[Frame], list[list[np.ndarray | None]]]:
        faces, n_frames = CLIPS[name]
        path = folder / f"{name}.mp4"
        truth = write_moving_face_clip(
            path, [FacePath(p, pose) for p, pose in faces], n_frames, audio=False
        )
        return _decode(path), truth.boxes

    return load


def _decode(path: Path) -> list[Frame]:
    with av.open(str(path)) as container:
        return [
            Frame(f.to_ndarray(format="rgb24"), float(f.time), i)
            for i, f in enumerate(container.decode(video=0))
        ]


def _run(tracker: FaceTracker, frames: list[Frame]) -> list[list[Face]]:
    return [tracker.process(frame) for frame in frames]


@cache
def _landmark_box_offset(photo: str) -> tuple[np.ndarray, float]:
    """Where the tracker's box sits relative to dlib's on the still photo: the centre shift
    in photo pixels and the ratio of the sides."""
    image = face_photo(photo)
    (dlib_box,) = detect_faces(image)
    box = box_from_landmarks(predict_landmarks(image, dlib_box))
    shift = (box[:2] + box[2:] - dlib_box[:2] - dlib_box[2:]) / 2
    return shift, float((box[2] - box[0]) / (dlib_box[2] - dlib_box[0]))


def _expected_box(photo: str, pose: Pose, truth: np.ndarray) -> np.ndarray:
    shift, ratio = _landmark_box_offset(photo)
    # The same similarity the clip drew the photo with: rotate and scale the shift.
    centre = (truth[:2] + truth[2:]) / 2 + cv2.getRotationMatrix2D((0, 0), pose.angle, pose.scale)[
        :, :2
    ] @ shift
    half = (truth[2] - truth[0]) * ratio / 2
    return np.array([*(centre - half), *(centre + half)])


def _best(faces: list[Face], box: np.ndarray) -> tuple[float, int | None]:
    if not faces:
        return 0.0, None
    overlaps = iou_matrix([box], [f.box for f in faces])[0]
    k = int(overlaps.argmax())
    return float(overlaps[k]), faces[k].track_id


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("translation", {}),
        ("zoom", {}),
        ("rotation", {}),
        ("occlusion", {}),
        ("two_faces", {}),
        ("leave_and_enter", {}),
        ("small_faces", {}),
        ("turning", {}),
        # The detector on its own thread, its results used three frames late.
        ("two_faces", {"detect_lag": 3}),
        ("small_faces", {"detect_lag": 3}),
    ],
)
def test_tracked_boxes_overlap_the_truth_with_stable_ids(
    clips: Callable, name: str, settings: dict
) -> None:
    frames, truth = clips(name)
    output = _run(FaceTracker(**settings), frames)
    faces = CLIPS[name][0]
    hits = total = 0
    ids: dict[int, list[int | None]] = {k: [] for k in range(len(faces))}
    # A new face needs two detections, each used ``detect_lag`` frames late.
    start = 2 * settings.get("detect_lag", 0)
    for index, (found, boxes) in enumerate(zip(output, truth, strict=True)):
        assert len({f.track_id for f in found}) == len(found)
        if index < start:
            continue
        for k, ((photo, pose), box) in enumerate(zip(faces, boxes, strict=True)):
            if box is None:
                continue
            overlap, track_id = _best(found, _expected_box(photo, pose(index), box))
            total += 1
            hits += overlap >= 0.7
            ids[k].append(track_id if overlap >= 0.7 else None)
    assert hits >= 0.95 * total, f"{hits} of {total} frames overlap the truth"
    for k, seen in ids.items():
        tracked = [i for i in seen if i is not None]
        # One id per face, even for a face that left and came back (re-identification).
        assert len(set(tracked)) == 1, f"face {k} had ids {seen}"
    if name == "two_faces":
        assert set(ids[0]).isdisjoint(set(ids[1]) - {None})


def test_a_face_fades_in_and_out_and_a_short_occlusion_keeps_its_id(clips: Callable) -> None:
    frames, truth = clips("occlusion")
    output = _run(FaceTracker(ramp_frames=5), frames)
    visibility = [[f.visibility for f in found] for found in output]
    # First frame: a tentative detection, nothing shown; then a 5-frame ramp.
    assert visibility[0] == []
    assert visibility[1:7] == [[pytest.approx(v)] for v in (0.2, 0.4, 0.6, 0.8, 1.0, 1.0)]
    occluded = [i for i, boxes in enumerate(truth) if boxes[0] is None]
    assert occluded == list(range(20, 26))
    # The card is noticed on its first frame; the face fades out, then back in after it.
    during = [v[0] if v else 0.0 for v in visibility[20:32]]
    expected = [0.8, 0.6, 0.4, 0.2, 0.0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    assert during == [pytest.approx(v) for v in expected]
    assert {f.track_id for found in output for f in found} == {1}


def test_frames_without_a_face_give_no_faces(clips: Callable) -> None:
    frames, _ = clips("no_face")
    assert all(found == [] for found in _run(FaceTracker(), frames))
    frames, truth = clips("fast_exit")
    output = _run(FaceTracker(ramp_frames=5), frames)
    last_seen = max(i for i, boxes in enumerate(truth) if boxes[0] is not None)
    assert output[last_seen] != [] and all(found == [] for found in output[last_seen + 6 :])
    frames, truth = clips("leave_and_enter")
    output = _run(FaceTracker(ramp_frames=4), frames)
    gone = [i for i, boxes in enumerate(truth) if boxes[0] is None]
    # Out of view from ~23 to ~38: the face fades out within the ramp, then nothing is left.
    assert output[gone[0] + 4] == [] and all(output[i] == [] for i in gone[4:] if i < 30)


def test_max_faces_keeps_the_largest(clips: Callable) -> None:
    frames, truth = clips("two_faces")
    output = _run(FaceTracker(max_faces=1), frames)
    assert all(len(found) <= 1 for found in output)
    larger = max(truth[-1], key=lambda box: box[2] - box[0])
    assert _best(output[-1], larger)[0] > 0.5


def test_smoothing_steadies_a_still_face_without_lagging_a_moving_one(
    tmp_path: Path,
) -> None:
    # A nearly still face: sub-pixel drift, so dlib's whole-pixel landmarks flicker.
    still = tmp_path / "still.mp4"
    write_moving_face_clip(
        still, [FacePath("astronaut", lambda i: Pose(300 + 0.15 * i, 240))], 40, audio=False
    )
    moving = tmp_path / "moving.mp4"
    speed = 5.0  # px per frame
    write_moving_face_clip(
        moving, [FacePath("astronaut", lambda i: Pose(150 + speed * i, 240))], 40, audio=False
    )

    def landmarks(path: Path, smoothing: tuple[float, float] | None) -> np.ndarray:
        output = _run(FaceTracker(smoothing=smoothing), _decode(path))
        return np.array([found[0].landmarks for found in output[10:]], np.float64)

    raw, smooth = landmarks(still, None), landmarks(still, (1.0, 4.0))
    # Jitter: frame-to-frame acceleration of each point (the drift itself has none).
    raw_jitter = np.abs(np.diff(raw, 2, axis=0)).mean()
    smooth_jitter = np.abs(np.diff(smooth, 2, axis=0)).mean()
    assert raw_jitter > 0.05, "the still clip should make raw landmarks flicker"
    assert smooth_jitter < raw_jitter / 3

    raw, smooth = landmarks(moving, None), landmarks(moving, (1.0, 4.0))
    lag = (raw[:, :, 0] - smooth[:, :, 0]).mean() / speed
    assert 0 <= lag < 1.0, f"smoothed landmarks lag {lag:.2f} frames behind"


def test_reset_restarts_ids_and_timings_are_counted(clips: Callable) -> None:
    frames, _ = clips("translation")
    tracker = FaceTracker()
    first = _run(tracker, frames[:8])
    assert tracker.timings.frames == 8
    assert set(tracker.timings.ms_per_frame()) == {"detect", "landmarks", "track"}
    tracker.reset()
    assert tracker.timings.frames == 0
    again = _run(tracker, frames[:8])
    assert [f.track_id for f in first[-1]] == [f.track_id for f in again[-1]] == [1]


def test_box_from_landmarks_matches_the_detector(grace_hopper: np.ndarray) -> None:
    (dlib_box,) = detect_faces(grace_hopper)
    box = box_from_landmarks(predict_landmarks(grace_hopper, dlib_box))
    assert box.shape == (4,) and box.dtype == np.float32
    assert iou_matrix([box], [dlib_box])[0, 0] > 0.75


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150], [0.0, 0.0]])


@pytest.mark.parametrize(
    "setting", [{"detect_every": 0}, {"max_faces": 0}, {"ramp_frames": 0}, {"fine_every": 0}]
)
def test_bad_settings_are_refused(setting: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        FaceTracker(**setting)


def test_carrying_catches_a_face_that_jumps(tmp_path: Path) -> None:
    # 4 px a frame, then five frames of 44: too far for the landmarks' box to follow.
    def pose(i: int) -> Pose:
        return Pose(120 + 4 * i + 40 * min(max(i - 15, 0), 5), 240)

    path = tmp_path / "burst.mp4"
    truth = write_moving_face_clip(path, [FacePath("astronaut", pose)], 26, audio=False)
    frames = _decode(path)
    burst = range(15, 22)

    def overlaps(carry_frames: int, detect_every: int = 10) -> tuple[list[float], set[int]]:
        output = _run(FaceTracker(carry_frames=carry_frames, detect_every=detect_every), frames)
        best = [
            _best(output[i], _expected_box("astronaut", pose(i), truth.boxes[i][0])) for i in burst
        ]
        return [b[0] for b in best], {f.track_id for found in output for f in found}

    carried, ids = overlaps(3)
    assert min(carried) >= 0.7 and ids == {1}
    # With no detection in the burst either, the landmarks alone lose it: carrying is what
    # held on (a detection that lands in the burst also catches it).
    without, _ = overlaps(0, detect_every=1000)
    assert min(without) < 0.5


def _burst(
    tmp_path: Path, step: int, scale: float = 1.0
) -> tuple[list[Frame], ClipTruth, Callable[[int], Pose]]:
    """A face moving 4 px a frame, then ``step`` px a frame for frames 16-20."""

    def pose(i: int) -> Pose:
        return Pose(120 + 4 * i + (step - 4) * min(max(i - 15, 0), 5), 240, scale)

    path = tmp_path / f"burst{step}-{scale}.mp4"
    truth = write_moving_face_clip(path, [FacePath("astronaut", pose)], 26, audio=False)
    return _decode(path), truth, pose


def _overlaps(
    output: list[list[Face]], truth: ClipTruth, pose: Callable[[int], Pose], frames: range
) -> list[float]:
    return [
        round(_best(output[i], _expected_box("astronaut", pose(i), truth.boxes[i][0]))[0], 2)
        for i in frames
    ]


def test_a_face_that_speeds_up_is_followed_at_its_new_speed(tmp_path: Path) -> None:
    # 56 px a frame, with no carrying: a detection catches the face on frame 17. From then
    # on each fit must start where it is heading now, not where its old speed said (which
    # lost it again every other frame).
    frames, truth, pose = _burst(tmp_path, 56)
    output = _run(FaceTracker(carry_frames=0), frames)
    after_catch = _overlaps(output, truth, pose, range(17, 22))
    assert min(after_catch) >= 0.6, after_catch


def test_a_face_too_fast_for_carrying_is_found_near_where_it_was(tmp_path: Path) -> None:
    # 56 px a frame is more than MOSSE follows: the detector looks in a window around the
    # face, so not one frame of the burst shows it where it was.
    frames, truth, pose = _burst(tmp_path, 56)
    burst = _overlaps(_run(FaceTracker(), frames), truth, pose, range(16, 22))
    assert min(burst) >= 0.6, burst


def test_a_small_fast_face_is_not_moved_blindly_between_its_fits(tmp_path: Path) -> None:
    # A face under 80 px is fitted every other frame and moved by its speed in between: at
    # 40 px a frame (most of its side) that must be checked, or every other frame shows the
    # face where its old speed put it.
    frames, truth, pose = _burst(tmp_path, 40, scale=0.55)
    tracker = FaceTracker()
    output = _run(tracker, frames)
    (face,) = output[14]
    assert 40 < face.box[2] - face.box[0] < tracker.refit_below
    burst = _overlaps(output, truth, pose, range(16, 24))
    assert min(burst) >= 0.6, burst


def test_a_face_passing_in_front_of_another_does_not_take_its_id(clips: Callable) -> None:
    frames, truth = clips("crossing")
    output = _run(FaceTracker(), frames)
    faces = CLIPS["crossing"][0]
    ids: list[set[int]] = [set(), set()]
    for index, (found, boxes) in enumerate(zip(output, truth, strict=True)):
        if iou_matrix([boxes[0]], [boxes[1]])[0, 0] > 0:
            continue  # overlapping: either track may overlap either truth box
        for k, ((photo, pose), box) in enumerate(zip(faces, boxes, strict=True)):
            overlap, track_id = _best(found, _expected_box(photo, pose(index), box))
            if overlap >= 0.5:
                ids[k].add(track_id)
    # Each face is followed before and after the crossing, always under its own id.
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1], ids
    final = _best(output[-1], _expected_box(faces[0][0], faces[0][1](47), truth[-1][0]))
    assert final[0] >= 0.7, "the astronaut is tracked again once she is out from behind"


def test_detection_on_its_own_thread_renders_the_same_every_time(clips: Callable) -> None:
    frames, _ = clips("two_faces")

    def faces(tracker: FaceTracker) -> list[tuple[int, tuple[float, ...], float]]:
        return [
            (f.track_id, tuple(np.round(f.box, 3)), f.visibility)
            for found in _run(tracker, frames)
            for f in found
        ]

    first = faces(FaceTracker(detect_lag=3))
    assert first == faces(FaceTracker(detect_lag=3))
    assert {f[0] for f in first} == {1, 2}


def test_a_detection_is_used_lag_frames_after_it_was_asked_for(astronaut: np.ndarray) -> None:
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    worker = DetectionWorker(FaceDetector(min_face=80), lag=2)
    worker.submit(7, grey)
    assert worker.busy and worker.collect(7) is None and worker.collect(8) is None
    asked, boxes = worker.collect(9)
    assert asked == 7 and not worker.busy
    assert iou_matrix(boxes[:1], detect_faces(grey)[:1])[0, 0] > 0.5  # the face, largest first
    assert worker.seconds > 0
    with pytest.raises(ValueError, match="lag must be at least 0"):
        DetectionWorker(FaceDetector(), lag=-1)


@pytest.mark.parametrize(
    ("offset", "trusted"),
    # A fit on the face, and fits from boxes half a face or more off it.
    [((0.0, 0.0), True), ((0.8, 0.0), False), ((0.0, 0.8), False), ((-1.5, 0.5), False)],
)
def test_fit_error_tells_a_face_from_a_box_off_it(
    astronaut: np.ndarray, offset: tuple[float, float], trusted: bool
) -> None:
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    (box,) = detect_faces(grey)
    side = box[2] - box[0]
    moved = box + np.tile(np.array(offset, np.float32) * side, 2)
    error = fit_error(grey, predict_landmarks(grey, moved))
    # Real faces measure up to 0.06 and boxes off a face 0.05-0.3 (the default limit 0.07).
    if trusted:
        assert error < 0.035
    else:
        assert error > 0.07


def _shared_mosaic(n_frames: int) -> list[Frame]:
    """The first frames of the three shared weekly-address clips, shrunk to 214x120 tiles
    (faces of 50-65 px) and laid out 3x3, some mirrored: nine real faces in a 642x360 frame."""
    paths = [shared_media(f"obama_weekly_address_clip{k}.mp4") for k in ("1", "2", "3_480p")]
    clips = []
    for path in paths:
        with av.open(str(path)) as container:
            images = [
                f.to_ndarray(format="rgb24")
                for _, f in zip(range(n_frames + 8), container.decode(video=0), strict=False)
            ]
        # The 480p clip is letterboxed 4:3: keep its 16:9 middle.
        clips.append([i[60:420] if i.shape[0] == 480 else i for i in images])
    tiles = []
    for k in range(9):
        start, mirror = (k * 3) % 8, k in (1, 5, 6)
        tile = [cv2.resize(i, (214, 120), interpolation=cv2.INTER_AREA) for i in clips[k % 3]]
        tiles.append([t[:, ::-1] if mirror else t for t in tile[start : start + n_frames]])
    return [
        Frame(
            np.ascontiguousarray(
                np.vstack([np.hstack([tiles[r * 3 + c][i] for c in range(3)]) for r in range(3)])
            ),
            i / 30,
            i,
        )
        for i in range(n_frames)
    ]


def test_real_footage_every_small_face_is_restyled() -> None:
    frames = _shared_mosaic(12)
    output = _run(FaceTracker(), frames)
    # Counted by eye on frame 11: nine faces, each tile's own. Margins: one may still be
    # fading in, none may be doubled.
    shown = [f for f in output[-1] if f.visibility > 0]
    assert len(shown) >= 8
    centres = {
        (int((f.box[0] + f.box[2]) / 2 // 214), int((f.box[1] + f.box[3]) / 2 // 120))
        for f in shown
    }
    assert len(centres) == len(shown), "one face per tile"
