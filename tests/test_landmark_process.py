"""The landmark fit in a process of its own: dlib's points, and a run that survives losing it."""

from __future__ import annotations

import os
import sys
import time

import cv2
import numpy as np
import pytest

from pipeline.landmark_process import (
    LandmarkProcess,
    _first_landmark_process,
    _FitAnywhere,
    shared_landmark_process,
)
from pipeline.landmarks import detect_faces, predict_landmarks
from pipeline.tracker import FaceTracker
from plugin.settings import RestyleSettings, build_restyler


def _faces(*images: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(grey, box)`` for every face found in each RGB image."""
    pairs = []
    for image in images:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        pairs += [(grey, box) for box in detect_faces(image)]
    return pairs


def test_the_process_fits_what_dlib_fits_here(
    astronaut: np.ndarray, grace_hopper: np.ndarray
) -> None:
    """Frames of two sizes, one after the other and back: each face's points bit for bit."""
    faces = _faces(astronaut, grace_hopper)
    assert len(faces) >= 2 and faces[0][0].shape != faces[-1][0].shape
    process = LandmarkProcess()
    try:
        for grey, box in [*faces, *faces[::-1]]:
            points = process(grey, box)
            assert points.shape == (68, 2) and points.dtype == np.float32
            np.testing.assert_array_equal(points, predict_landmarks(grey, box))
    finally:
        process.close()
    assert process._process.returncode == 0  # it ended because its socket closed


def test_a_killed_process_hands_the_fit_back(astronaut: np.ndarray) -> None:
    """A batch worker's helper killed mid-run (out of memory, say): the run goes on, here."""
    (grey, box), *_ = _faces(astronaut)
    process = LandmarkProcess()
    fit = _FitAnywhere(process)
    np.testing.assert_array_equal(fit(grey, box), predict_landmarks(grey, box))
    process._process.kill()
    process._process.wait()
    with pytest.raises(OSError, match="landmark process has ended"):
        process(grey.copy(), box)
    np.testing.assert_array_equal(fit(grey, box), predict_landmarks(grey, box))
    assert fit.process is None
    process.close()


def test_a_process_that_cannot_start_is_refused_in_one_error(monkeypatch) -> None:
    monkeypatch.setattr(sys, "executable", sys.executable + "-missing")
    with pytest.raises(OSError):
        LandmarkProcess()
    monkeypatch.setattr(sys, "executable", "/bin/false")  # starts, never says it is ready
    with pytest.raises(OSError, match="did not start"):
        LandmarkProcess()


def test_a_frozen_app_fits_landmarks_in_its_own_process(monkeypatch) -> None:
    """A frozen app's sys.executable is the app: starting it would open the app again."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    _first_landmark_process.cache_clear()
    try:
        assert shared_landmark_process() is predict_landmarks
    finally:
        _first_landmark_process.cache_clear()


def test_the_pipeline_fits_landmarks_in_the_shared_process() -> None:
    restyler = build_restyler(RestyleSettings("cartoon", device="cpu"))
    assert restyler.tracker.fit_landmarks is shared_landmark_process()
    assert isinstance(shared_landmark_process(), _FitAnywhere)
    assert FaceTracker().fit_landmarks is predict_landmarks  # a tracker alone: in process


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_fits_its_own_landmarks(
    astronaut: np.ndarray, grace_hopper: np.ndarray
) -> None:
    """An API user forks after a render (multiprocessing's default on Linux): the child's
    fits are dlib's, and the parent's process still holds the parent's frame, not the
    child's (on one shared socket the parent got points fitted on the child's frame)."""
    (grey, box), *_ = _faces(astronaut)
    (other_grey, other_box), *_ = _faces(grace_hopper)
    fit = shared_landmark_process()
    assert isinstance(fit, _FitAnywhere)
    parent_process = fit.process
    expected = predict_landmarks(grey, box)
    np.testing.assert_array_equal(fit(grey, box), expected)  # the process now holds grey
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        status = 1
        try:
            same = np.array_equal(
                fit(other_grey, other_box), predict_landmarks(other_grey, other_box)
            )
            own = shared_landmark_process()
            fresh = isinstance(own, _FitAnywhere) and own.process is not parent_process
            status = 0 if same and fresh and fit.process is None else 2
            if fresh and not np.array_equal(own(grey, box), expected):
                status = 3
        finally:
            os._exit(status)
    deadline = time.monotonic() + 60.0
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the forked child hung on the landmark process")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    np.testing.assert_array_equal(fit(grey, box), expected)  # the same array: not sent again
    assert fit.process is parent_process
