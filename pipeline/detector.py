"""Find faces in a frame for the tracker, on the tracker's thread or on a thread of its own.

The detector is dlib's HOG frontal detector (its five filters cover frontal faces and faces
turned to about 45°), run on the frame resized so that the smallest face asked for fills the
detector's 80 px window. Measured on 2 shared cores:

- HOG at upsample 0 reliably finds faces whose CNN (``mmod``) box side is about 66 px or more
  (48 px for a high-contrast face); its time grows with the pixels it is given: 17 ms on a
  640x360 frame, 72 ms upsampled once.
- dlib's CNN detector (``mmod_human_face_detector``) finds more turned faces but costs 1.4 s
  on a 640x360 frame at upsample 0, where it finds no face under about 80 px, and 5.4 s
  upsampled once: a reference for :mod:`pipeline.coverage`, not a per-frame detector on a CPU
  (the ``dlib-bin`` wheel has no CUDA).
- OpenCV's Haar cascades (in the ``opencv`` wheel): 120-170 ms frontal and 330 ms profile on
  the same frame with more false boxes than faces; YuNet would need an ONNX file that no
  installed wheel ships.

:class:`DetectionWorker` moves the detector off the tracker's thread: a detection asked for
on frame ``i`` is used on frame ``i + lag``, so its time overlaps ``lag`` frames of tracking
instead of landing on one. With ``wait=True`` the tracker waits for it at ``i + lag`` if it is
late, so a file renders the same, frame for frame, on any machine; with ``wait=False`` (live)
it is used on the first frame from ``i + lag`` on where it is ready.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future

import numpy as np

from pipeline.landmarks import MIN_DETECTABLE_FACE, detect_faces

__all__ = ["DetectionWorker", "FaceDetector"]

# A face whose CNN box side is s has a HOG box of about 1.1 s, and HOG is sure of it from a box
# of about 70 px (60 px for high contrast): measured on the bundled photos at many sizes.
_HOG_SURE = 1.15 * MIN_DETECTABLE_FACE


class FaceDetector:
    """dlib HOG on a resized frame, sized for the smallest face wanted.

    Args:
        min_face: smallest face to find, as the side of the CNN detector's box in frame
            pixels (the reference :mod:`pipeline.coverage` counts faces of 40 px and more).
        max_pixels: the detector never sees more pixels than this, which bounds its time (about
            60 ms for a million pixels); on a large frame the smallest face found is larger
            than ``min_face``.
        min_score: HOG's SVM margin a face must exceed. dlib's own threshold is 0; a small or
            turned face scores 0-0.5, and the rare false box is caught by the tracker (a new
            track needs a second detection and a plausible landmark fit).
    """

    def __init__(
        self, min_face: float = 40.0, max_pixels: int = 1_000_000, min_score: float = 0.0
    ) -> None:
        if min_face <= 0 or max_pixels <= 0:
            raise ValueError(
                f"FaceDetector: min_face and max_pixels must be positive, got {min_face}, "
                f"{max_pixels}"
            )
        self.min_face = min_face
        self.max_pixels = max_pixels
        self.min_score = min_score

    def scale(self, width: int, height: int, *, fine: bool = True) -> float:
        """Factor the frame is resized by before detection (above 1 for small faces)."""
        smallest = self.min_face if fine else 2 * self.min_face
        return min(_HOG_SURE / smallest, math.sqrt(self.max_pixels / (width * height)))

    def detect(self, grey: np.ndarray, *, fine: bool = True) -> list[np.ndarray]:
        """Faces in one frame.

        Args:
            grey: ``(H, W)`` ``uint8`` grey frame.
            fine: look for faces down to ``min_face``; ``False``: down to twice that, on a
                frame with a quarter of the pixels (a quarter of the time).

        Returns:
            One ``(4,)`` ``float32`` box ``x0, y0, x1, y1`` per face in frame pixels, largest
            first.
        """
        height, width = grey.shape[:2]
        scale = self.scale(width, height, fine=fine)
        return detect_faces(grey, scale=scale, min_score=self.min_score)


class DetectionWorker:
    """Runs a :class:`FaceDetector` ``lag`` frames ahead of where its result is used.

    Args:
        detector: the detector to run.
        lag: frames between the frame a detection is asked for on and the frame it is used
            on; 0 runs it at once on the caller's thread.
        wait: at the due frame, wait for a late result (reproducible) rather than try again
            on the next frame (live).
    """

    def __init__(self, detector: FaceDetector, lag: int = 0, *, wait: bool = True) -> None:
        if lag < 0:
            raise ValueError(f"DetectionWorker: lag must be at least 0, got {lag}")
        self.detector = detector
        self.lag = lag
        self.wait = wait
        self._pending: tuple[int, Future[list[np.ndarray]]] | None = None
        self.seconds = 0.0  # detector time, on whichever thread it ran

    @property
    def busy(self) -> bool:
        """A detection was asked for and its result not yet taken."""
        return self._pending is not None

    def submit(self, index: int, grey: np.ndarray, *, fine: bool = True) -> None:
        """Ask for the faces in frame ``index``, ``grey`` ``(H, W)`` ``uint8`` (at most one
        detection at a time; ``grey`` and ``fine`` as :meth:`FaceDetector.detect`)."""
        if self._pending is not None:
            raise RuntimeError("DetectionWorker: a detection is already pending")
        if self.lag == 0:
            future: Future[list[np.ndarray]] = Future()
            future.set_result(self._timed(grey, fine))
        else:
            # A thread per detection (a detection is ten frames apart; starting a thread costs
            # 0.1 ms): nothing is left running between detections. Not a daemon: Python waits
            # for it at exit, where dlib would abort if torn down in the middle of a run.
            future = Future()
            threading.Thread(
                target=self._run, args=(grey, fine, future), name="facestyle-detect"
            ).start()
        self._pending = (index, future)

    def collect(self, index: int) -> tuple[int, list[np.ndarray]] | None:
        """The pending detection's ``(frame index, boxes)`` if it is due on frame ``index``;
        boxes as :meth:`FaceDetector.detect` returns them (``(4,)`` ``float32`` each)."""
        if self._pending is None:
            return None
        asked, future = self._pending
        if index < asked + self.lag or not (self.wait or future.done()):
            return None
        self._pending = None
        return asked, future.result()

    def reset(self) -> None:
        """Drop a pending detection (waiting for it to finish) and the time counted."""
        if self._pending is not None:
            self._pending[1].result()
            self._pending = None
        self.seconds = 0.0

    def _run(self, grey: np.ndarray, fine: bool, future: Future[list[np.ndarray]]) -> None:
        try:
            future.set_result(self._timed(grey, fine))
        except BaseException as error:  # re-raised by collect() on the tracker's thread
            future.set_exception(error)

    def _timed(self, grey: np.ndarray, fine: bool) -> list[np.ndarray]:
        start = time.perf_counter()
        try:
            return self.detector.detect(grey, fine=fine)
        finally:
            self.seconds += time.perf_counter() - start
