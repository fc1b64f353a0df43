"""The generated clips tell the truth: a real detector finds the faces where the truth says."""

from __future__ import annotations

from pathlib import Path

import av
import dlib
import numpy as np

from pipeline.samples import FacePath, Pose, write_moving_face_clip


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_clip_has_the_promised_streams_and_faces(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    truth = write_moving_face_clip(
        path,
        [
            FacePath("astronaut", lambda i: Pose(180 + 4 * i, 240, 0.9, occluded=(i == 7))),
            FacePath("grace_hopper", lambda i: Pose(470, 220, 0.5)),
        ],
        n_frames=10,
        fps=20,
    )
    assert truth.boxes[7][0] is None and truth.boxes[7][1] is not None
    detector = dlib.get_frontal_face_detector()
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == 20
        assert len(container.streams.audio) == 1
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 10
    for index in (0, 9):
        found = [
            np.array([r.left(), r.top(), r.right(), r.bottom()], float)
            for r in detector(frames[index], 1)
        ]
        for box in truth.boxes[index]:
            assert max(_iou(box, f) for f in found) > 0.7
