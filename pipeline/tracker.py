"""Follow faces through a video: stable ids, smoothed landmarks, fading visibility.

How a frame is processed:

1. Landmarks carry the box. Each track's 68 landmarks are predicted inside its box from the
   last frame, moved by the track's velocity (about 1 ms a face of CPU). The new landmarks
   give the new box, so the box re-centres on the face every frame and does not drift.
2. Verification. A small grey patch of the face, aligned by the landmarks, is compared with
   the track's running template by normalised cross-correlation. A card over the face, a face
   that turned away, or landmarks that slid off the face fail it: the track is *lost* for the
   frame and starts to fade out.
3. Carrying. A lost track's box is carried on by an OpenCV MOSSE tracker, started on the
   previous frame at the last good box, for up to ``carry_frames`` frames; each frame the
   landmarks are tried again inside the carried box, so a face that was covered for a moment,
   turned away and back, or moved too fast is picked up where it now is. In the first frames
   of a loss the detector also looks in a small window around the face, for a jump further
   than MOSSE follows (about half the face's side in a frame). Measured on real
   footage with 55-90 px faces on 2 shared cores: MOSSE 0.15-0.4 ms a face, KCF 7-9 ms,
   CSRT 25-34 ms, MIL 23-45 ms; with landmarks re-centring the box every frame the cheap one
   suffices, and only MOSSE fits several faces into the budget.
4. Detection. A :class:`~pipeline.detector.FaceDetector` runs every ``detect_every`` frames
   (every ``detect_every // 5`` while a track is tentative or lost, or no face is tracked),
   on its own thread when ``detect_lag`` > 0. Detections are matched to tracks by IoU
   (Hungarian assignment); a match re-seeds a track that drifted or was lost. An unmatched
   detection is first offered to tracks lost or removed in the last ``reid_frames`` frames
   (re-identification by size and appearance: the grey template and a hue-saturation
   histogram, nearest first), and otherwise starts a tentative track.
5. Landmark confidence. A fit is trusted when the landmarks predicted again from a box
   derived from them (nudged by a tenth of its side) land in the same place: on 55-110 px
   faces the refit moves by at most 0.02 of the box side on real footage and 0.06 on turned
   generated faces, and by 0.05-0.28 on boxes off a face or on background. A new face must
   pass it, and tracks are checked again at every detection; an untrusted face fades out
   instead of being painted (no pale blobs on a bad fit).

Lifecycle: *tentative* (one detection) → *confirmed* (matched by the next detection) →
*lost* (verification failed; it is carried and looked for every frame) → *removed* (lost for
``max_lost`` frames, or tentative and not confirmed) → forgotten (``reid_frames`` after its
removal). A confirmed, trusted track's visibility rises by ``1 / ramp_frames`` a frame up to 1
and a lost or untrusted one's falls back to 0, so the compositor fades faces in and out. Ids
count up from 1 per tracker and are never given to another face.

Boxes are in dlib's convention (see :mod:`pipeline.landmarks`), estimated from the landmarks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.align import (
    CROP_SIZE,
    alignment_matrix,
    box_centre,
    invert_affine,
    similarity_scale,
    transform_points,
)
from pipeline.detector import DetectionWorker, FaceDetector
from pipeline.frame import Face, Frame
from pipeline.landmarks import (
    LandmarkFit,
    OneEuroFilter,
    detect_faces,
    predict_landmarks,
    preload_models,
)
from pipeline.timings import StageTimings

__all__ = ["FaceTracker", "box_from_landmarks", "fit_error", "iou_matrix"]

# dlib's detector box in the canonical 256 crop, averaged over the bundled photos at five
# sizes and mirrored: centred horizontally, its centre 0.61 of the way down, side 0.57.
_BOX_CENTRE = np.array([[0.5, 0.61]]) * CROP_SIZE
_BOX_SIDE = 0.57 * CROP_SIZE

# The verification patch: the inner face (brows to chin, cheek to cheek) of a 64 px crop, so
# background and hair, which change as a face moves, stay out of the comparison.
_PATCH_CROP, _PATCH_ORIGIN, _PATCH_SIZE = 64, (16, 20), (32, 36)

# MOSSE looks for its patch only within the patch's own size: started on the face box alone it
# loses a face moving 44 px a frame (tests/test_tracker.py), on 1.5 times the box it does not.
_CARRY_PAD = 1.5

# A face that jumped further than MOSSE follows (about half its side in a frame) is looked
# for by the detector in a window this many of its sides wide around where it was, scaled so
# the face is about _SEARCH_FACE px: HOG's window finds faces from about 80 px.
_SEARCH_PAD = 3.0
_SEARCH_FACE = 100.0
# A face that jumped is found by the first search; one hidden or turned away is not found by
# more of them, so only the first frames of a loss pay for one.
_SEARCH_FRAMES = 2

# A face found again after more frames than this has no speed worth keeping.
_SPEED_GAP = 10

# The box nudge of the landmark confidence check, in box sides (see :func:`fit_error`).
_NUDGE = np.array([0.1, 0.05, 0.1, 0.05], np.float32)


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The box dlib's detector would draw around a face with these landmarks.

    Args:
        landmarks: ``(68, 2)`` ``x, y`` frame pixels.

    Returns:
        ``(4,)`` ``float32`` ``x0, y0, x1, y1``, axis-aligned even for a tilted face.
    """
    return _box(alignment_matrix(landmarks))


def _box(matrix: np.ndarray) -> np.ndarray:
    """:func:`box_from_landmarks` from the landmarks' ``(2, 3)`` alignment matrix (at
    :data:`CROP_SIZE`), which the tracker computes once a fit: it is its costliest step."""
    (cx, cy) = transform_points(invert_affine(matrix), _BOX_CENTRE)[0]
    half = _BOX_SIDE / similarity_scale(matrix) / 2
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` ``(N, 4)`` with every box in ``b``
    ``(M, 4)`` (``x0, y0, x1, y1``), as an ``(N, M)`` ``float64`` array."""
    a = np.asarray(a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, np.float64).reshape(1, -1, 4)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def fit_error(
    grey: np.ndarray, landmarks: np.ndarray, fit_landmarks: LandmarkFit = predict_landmarks
) -> float:
    """How much a landmark fit moves when refitted from a slightly different box.

    dlib's cascade converges to the same points from any nearby start on a real face, and
    wanders on anything else, so the answer is a confidence for the fit.

    Args:
        grey: ``(H, W)`` ``uint8`` grey frame.
        landmarks: ``(68, 2)`` ``float32`` ``x, y`` frame pixels, a fit on ``grey``.
        fit_landmarks: what refits them (dlib's predictor here or in another process).

    Returns:
        RMS distance between ``landmarks`` and the refit, in box sides (0 = perfectly stable;
        real faces measure up to about 0.06, boxes off a face 0.05-0.3).
    """
    box = box_from_landmarks(landmarks)
    side = float(box[2] - box[0])
    refit = fit_landmarks(grey, box + _NUDGE * side)
    return float(np.sqrt(((refit - landmarks) ** 2).sum(axis=1).mean()) / max(side, 1.0))


def _patch(grey: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm ``(36, 32)`` ``float32`` inner-face patch for correlation, from
    the landmarks' alignment matrix at :data:`CROP_SIZE`."""
    # The canonical face scales with the crop, and so does the matrix.
    matrix = matrix * (_PATCH_CROP / CROP_SIZE)
    matrix[:, 2] -= _PATCH_ORIGIN
    patch = cv2.warpAffine(grey, matrix, _PATCH_SIZE, borderMode=cv2.BORDER_REPLICATE)
    patch = patch.astype(np.float32)
    patch -= patch.mean()
    return patch / max(float(np.linalg.norm(patch)), 1e-3)


def _aligned_patch(grey: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The landmarks' ``(2, 3)`` alignment matrix and the :func:`_patch` it cuts from ``grey``."""
    matrix = alignment_matrix(landmarks)
    return matrix, _patch(grey, matrix)


def _colours(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Hue-saturation histogram of the head (face, hair, a little background) at 64 px:
    ``(16, 4)`` ``float32``, summing to 1. Unlike the grey template it tells apart two faces
    of a similar shape, and it does not care how the face is turned."""
    crop = cv2.warpAffine(image, matrix * (_PATCH_CROP / CROP_SIZE), (_PATCH_CROP, _PATCH_CROP))
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    histogram = cv2.calcHist([hsv], [0, 1], None, [16, 4], [0, 180, 0, 256])
    return histogram / max(float(histogram.sum()), 1.0)


def _side(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


@dataclass(eq=False)
class _Track:
    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    smoothed: np.ndarray
    template: np.ndarray
    colours: np.ndarray
    smoother: OneEuroFilter | None
    state: str = "tentative"
    hits: int = 1
    misses: int = 0
    level: int = 0  # visibility in steps of 1 / ramp_frames; integers so 0 is exactly 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    found_centre: np.ndarray | None = None  # box centre when it was last on the face,
    found_at: int = 0  # and that frame's count
    carrier: cv2.legacy.Tracker | None = None
    found: bool = True  # on the face in the current frame
    fit: float = 0.0  # running landmark fit error (see fit_error), checked at detections
    removed_at: int = 0  # frame count when it was removed (for re-identification)


class FaceTracker:
    """Finds, follows and smooths faces frame by frame.

    Args:
        detect_every: run the detector every this many frames while all tracks are healthy.
        max_faces: most faces tracked at once; the largest detections win.
        min_face: smallest face to find (side of dlib's CNN detector box, frame pixels);
            see :class:`~pipeline.detector.FaceDetector`.
        fine_every: every this many detections look for faces down to ``min_face``; the
            others, down to twice that, take a quarter of the time.
        detect_lag: frames between the frame a detection is asked for on and the one its
            result is used on; above 0 the detector runs on its own thread and its time
            overlaps the tracking of those frames.
        detect_wait: wait for a detection that is late at its frame, so that a file renders
            identically on any machine; ``False`` for live (use it on a later frame instead).
        ramp_frames: frames a face takes to fade fully in or out.
        max_lost: frames a lost track is looked for before it is removed (at least
            ``ramp_frames``, so it has faded out).
        min_similarity: correlation with the track's template below which the landmarks are
            taken not to be on the face (0.5 separates a grey card from a tilted face here).
        reseed_iou: a matched detection overlapping the track's box less than this re-seeds
            the landmarks from the detection (the track drifted).
        carry_frames: for how many frames of a loss MOSSE carries the box (0: never).
        refit_below: faces with a smaller box side (frame pixels) have their landmarks fitted
            on every other frame and moved by their velocity in between. The fit is most of
            the tracker's time (1-2 ms a face), and on a face this small the landmarks move a
            fraction of a pixel a frame; 0 fits every face on every frame.
        max_fit_error: landmark confidence threshold (:func:`fit_error`, in box sides).
        reid_frames: how long after its removal a track can still be re-identified (0: never).
        reid_similarity: appearance score (mean of the template correlation and the colour
            histogram intersection) a returning face needs to take an old track's id.
        smoothing: ``(min_cutoff Hz, beta)`` of the per-track One-Euro landmark filter; speed
            is measured in face sides per second. ``None``: raw landmarks.
        fit_landmarks: the 68-point fit, dlib's predictor in this process by default.

    Attributes:
        timings: milliseconds per frame for ``detect`` (the detector, on whichever thread it
            ran), ``landmarks`` (prediction and verification) and ``track`` (carrying,
            association, confidence, re-identification, lifecycle).
    """

    def __init__(
        self,
        detect_every: int = 10,
        max_faces: int = 16,
        *,
        min_face: float = 40.0,
        fine_every: int = 3,
        detect_lag: int = 0,
        detect_wait: bool = True,
        ramp_frames: int = 5,
        max_lost: int = 12,
        min_similarity: float = 0.5,
        reseed_iou: float = 0.5,
        carry_frames: int = 10,
        refit_below: float = 80.0,
        max_fit_error: float = 0.07,
        reid_frames: int = 150,
        reid_similarity: float = 0.65,
        smoothing: tuple[float, float] | None = (1.0, 4.0),
        fit_landmarks: LandmarkFit = predict_landmarks,
    ) -> None:
        if min(detect_every, max_faces, ramp_frames, fine_every) < 1:
            raise ValueError(
                "FaceTracker: detect_every, max_faces, ramp_frames and fine_every must be at "
                f"least 1, got {detect_every}, {max_faces}, {ramp_frames}, {fine_every}"
            )
        self.detect_every = detect_every
        self.fine_every = fine_every
        self.max_faces = max_faces
        self.ramp_frames = ramp_frames
        self.max_lost = max(max_lost, ramp_frames)
        self.min_similarity = min_similarity
        self.reseed_iou = reseed_iou
        self.carry_frames = carry_frames
        self.refit_below = refit_below
        self.max_fit_error = max_fit_error
        self.reid_frames = reid_frames
        self.reid_similarity = reid_similarity
        self.smoothing = smoothing
        self.fit_landmarks = fit_landmarks
        self.detector = DetectionWorker(FaceDetector(min_face), detect_lag, wait=detect_wait)
        self.timings = StageTimings()
        preload_models(predictor=fit_landmarks is predict_landmarks)
        self.reset()

    def reset(self) -> None:
        """Forget every track and the timings; ids start again from 1."""
        self.detector.reset()
        self._tracks: list[_Track] = []
        self._removed: list[_Track] = []
        self._next_id = 1
        self._count = 0
        self._last_detection = -self.detect_every
        self._detections = 0
        self._previous: np.ndarray | None = None
        # For a detection used ``detect_lag`` frames late: the tracks' boxes on the frame it
        # was asked for, and the grey frames since, to carry its new faces up to now.
        self._asked_boxes: dict[int, np.ndarray] = {}
        self._recent: deque[np.ndarray] = deque(maxlen=self.detector.lag + 1)
        self.timings.reset()

    def process(self, frame: Frame) -> list[Face]:
        """Update the tracks with one frame.

        Args:
            frame: the next frame of the stream; its ``time`` drives the smoothing.

        Returns:
            The confirmed and lost tracks with visibility above 0, by ``track_id``.
        """
        timings = self.timings
        timings.frames += 1
        image = frame.image
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        self._recent.append(grey)
        with timings.measure("landmarks"):
            for track in self._tracks:
                track.found = self._follow(track, grey)
        with timings.measure("track"):
            for track in self._tracks:
                if not track.found and self._can_carry(track):
                    track.found = self._carry(track, image, grey)
            self._yield_held_faces()
            self._take_detection(image, grey)
        if not self.detector.busy and self._detection_due():
            # Timed by the worker as "detect", on whichever thread it runs.
            self._asked_boxes = {t.track_id: t.box for t in self._tracks}
            # Looking for the smallest faces costs four times as much: do it every
            # ``fine_every`` detections, and while a new face waits for confirmation.
            fine = self._detections % self.fine_every == 0 or any(
                t.state == "tentative" for t in self._tracks
            )
            self.detector.submit(self._count, grey, fine=fine)
            self._detections += 1
            self._last_detection = self._count
        with timings.measure("track"):
            self._take_detection(image, grey)  # at once when it ran on this thread
            self._advance(frame.time)
        timings.seconds["detect"] = self.detector.seconds
        self._previous = image
        self._count += 1
        return [
            Face(t.track_id, self._smoothed_box(t), t.smoothed, t.level / self.ramp_frames)
            for t in sorted(self._tracks, key=lambda t: t.track_id)
            if t.state != "tentative" and t.level > 0
        ]

    def settle(self, frame: Frame) -> None:
        """Track one still picture until its faces are confirmed and fully visible.

        A new face is confirmed by the next detection and fades in over ``ramp_frames``
        frames; a single image has no next frames, so its faces were never shown. After this,
        :meth:`process` of the same picture returns them at full visibility (a face whose
        landmarks are not trusted stays hidden, as in a video).
        """
        # Two detections, each used ``lag`` frames late, then the ramp: a bound, never reached.
        for _ in range(2 * (self.detector.lag + 1) + self.ramp_frames):
            self.process(frame)
            if not self.detector.busy and all(
                t.state != "tentative" and t.level in (0, self.ramp_frames) for t in self._tracks
            ):
                return

    @staticmethod
    def _smoothed_box(track: _Track) -> np.ndarray:
        """The fit's box moved as far as smoothing moved the landmarks: nearly the box of the
        smoothed landmarks, without a second alignment per face and frame."""
        shift = (track.smoothed - track.landmarks).mean(axis=0)
        return (track.box + np.tile(shift, 2)).astype(np.float32)

    def _take_detection(self, image: np.ndarray, grey: np.ndarray) -> None:
        result = self.detector.collect(self._count)
        if result is not None:
            self._associate(result[1], self._count - result[0], image, grey)

    def _detection_due(self) -> bool:
        since = self._count - self._last_detection
        if since >= self.detect_every:
            return True
        if any(t.state == "tentative" for t in self._tracks):
            return True  # confirm a new face at once
        # Something to find: look more often, but not every frame, as the detector may cost
        # several frames' worth of tracking.
        unsettled = not self._tracks or any(not t.found for t in self._tracks)
        return unsettled and since >= max(1, self.detect_every // 5)

    def _verified(
        self,
        track: _Track,
        grey: np.ndarray,
        landmarks: np.ndarray,
        aligned: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> bool:
        """Whether ``landmarks`` sit on the track's face; if so the track moves there.

        ``aligned``: the landmarks' ``alignment_matrix`` and ``_patch`` when the caller has
        them already.
        """
        matrix, patch = aligned if aligned is not None else _aligned_patch(grey, landmarks)
        if float((patch * track.template).sum()) < self.min_similarity:
            return False
        box = _box(matrix)
        centre = box_centre(box)
        since = self._count - track.found_at
        if track.found_centre is None or since > _SPEED_GAP:
            track.velocity = np.zeros(2, np.float32)  # new, or back after long: speed unknown
        elif since > 0:  # (a second fit in one frame corrects where it is, not its speed)
            shift = (centre - track.found_centre) / np.float32(since)
            # Averaging steadies the fit's jitter (about a pixel), but a face found again
            # after frames lost, or a tenth of its side from where its speed put it, changed
            # its motion (a jump caught by carrying or a detection): the next fit should
            # start where it is heading now, or it loses the face every other frame.
            surprise = float(np.linalg.norm(shift - track.velocity)) > 0.1 * _side(box)
            blended = 0.5 * track.velocity + 0.5 * shift
            track.velocity = shift if track.misses or surprise else blended
        track.found_centre, track.found_at = centre, self._count
        track.box, track.landmarks = box, landmarks
        # A slowly updated template follows a face that turns or changes expression.
        template = 0.9 * track.template + 0.1 * patch
        track.template = template / max(float(np.linalg.norm(template)), 1e-6)
        return True

    def _follow(self, track: _Track, grey: np.ndarray) -> bool:
        step = np.tile(track.velocity, 2)
        if (
            track.state == "confirmed"
            and track.found
            and _side(track.box) < self.refit_below
            and (self._count + track.track_id) % 2
        ):
            # A small face on a frame between refits: its landmarks move with its velocity,
            # if its patch still matches there (about 0.1 ms); one that jumped is fitted.
            moved_landmarks = track.landmarks + track.velocity
            _, patch = _aligned_patch(grey, moved_landmarks)
            if float((patch * track.template).sum()) >= self.min_similarity:
                track.box = track.box + step
                track.landmarks = moved_landmarks
                if track.found_centre is not None:
                    track.found_centre = track.found_centre + track.velocity
                    track.found_at = self._count
                return True
        moved = track.box + step if track.state != "lost" else track.box
        return self._verified(track, grey, self.fit_landmarks(grey, moved))

    def _yield_held_faces(self) -> None:
        """A lost track that landed on a face another track never lost stays lost.

        When one face passes in front of another, the hidden face's track is carried onto
        the face in front, where its landmarks may pass its own verification; the face in
        front keeps its id, and the hidden one is found again by detection and
        re-identification when it comes out.
        """
        held = [t.box for t in self._tracks if t.found and t.state != "lost"]
        if not held:
            return
        for track in self._tracks:
            if track.found and track.state == "lost":
                track.found = iou_matrix([track.box], held).max() < 0.5

    def _can_carry(self, track: _Track) -> bool:
        return (
            track.state != "tentative"
            and track.misses < self.carry_frames
            and self._previous is not None
        )

    def _carry(self, track: _Track, image: np.ndarray, grey: np.ndarray) -> bool:
        """Move a lost track's box with MOSSE; whether the landmarks are back on the face."""
        if track.carrier is None:
            height, width = grey.shape
            centre, half = box_centre(track.box), _side(track.box) * _CARRY_PAD / 2
            x0, y0 = np.maximum(centre - half, 0).astype(int)
            x1, y1 = np.minimum(centre + half, (width - 1, height - 1)).astype(int)
            # A face mostly outside the frame is gone; MOSSE would hold on to the edge.
            if (x1 - x0) * (y1 - y0) < 0.5 * (2 * half) ** 2:
                return False
            track.carrier = cv2.legacy.TrackerMOSSE.create()
            track.carrier.init(self._previous, (int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
        ok, (x, y, w, h) = track.carrier.update(image)
        if not ok:
            return self._search(track, grey)
        # MOSSE keeps the initial size; keep the track's own, centred where MOSSE went.
        half = (track.box[2:] - track.box[:2]) / 2
        centre = np.array([x + w / 2, y + h / 2], np.float32)
        box = np.concatenate([centre - half, centre + half]).astype(np.float32)
        if self._verified(track, grey, self.fit_landmarks(grey, box)):
            return True
        if self._search(track, grey):
            return True
        track.box = box
        return False

    def _search(self, track: _Track, grey: np.ndarray) -> bool:
        """Look for a lost face with the detector near where it was (a jump too far for
        MOSSE); whether its landmarks are found and verified there.

        Only the first :data:`_SEARCH_FRAMES` frames of a loss pay for it, a few ms each
        (the window is about 300 px across).
        """
        if track.misses >= _SEARCH_FRAMES:
            return False
        height, width = grey.shape
        side = _side(track.box)
        centre = box_centre(track.box)
        x0, y0 = np.maximum(centre - side * _SEARCH_PAD / 2, 0).astype(int)
        x1, y1 = np.minimum(centre + side * _SEARCH_PAD / 2, (width, height)).astype(int)
        if x1 - x0 < side or y1 - y0 < side:
            return False
        scale = min(_SEARCH_FACE / side, 2.0)
        offset = np.array([x0, y0, x0, y0], np.float32)
        found = [
            box + offset
            for box in detect_faces(grey[y0:y1, x0:x1], scale=scale)
            if 0.5 < _side(box) / side < 2.0
        ]
        if not found:
            return False
        nearest = min(found, key=lambda b: float(np.linalg.norm(box_centre(b) - centre)))
        return self._verified(track, grey, self.fit_landmarks(grey, nearest))

    def _trust(self, track: _Track, grey: np.ndarray) -> None:
        # A running mean: one check can spike (0.09 on a tilted face that measures 0.02-0.05
        # otherwise), a bad fit stays high.
        track.fit = 0.5 * track.fit + 0.5 * fit_error(grey, track.landmarks, self.fit_landmarks)

    def _seed(
        self,
        track: _Track,
        box: np.ndarray,
        image: np.ndarray,
        grey: np.ndarray,
        landmarks: np.ndarray | None = None,
    ) -> None:
        """Re-seed a track from a detection: its landmarks and appearance start again there.

        ``landmarks``: the ``(68, 2)`` fit inside ``box`` on ``grey`` when the caller has it.
        """
        if landmarks is None:
            landmarks = self.fit_landmarks(grey, box)
        matrix, patch = _aligned_patch(grey, landmarks)
        track.template = patch
        track.found = self._verified(track, grey, landmarks, (matrix, patch))
        track.colours = 0.5 * track.colours + 0.5 * _colours(image, matrix)
        track.carrier = None

    def _new_track(
        self, landmarks: np.ndarray, image: np.ndarray, grey: np.ndarray, fit: float
    ) -> None:
        matrix = alignment_matrix(landmarks)
        self._tracks.append(
            _Track(
                track_id=self._next_id,
                box=_box(matrix),
                landmarks=landmarks,
                smoothed=landmarks,
                template=_patch(grey, matrix),
                colours=_colours(image, matrix),
                smoother=OneEuroFilter(*self.smoothing) if self.smoothing else None,
                fit=fit,
            )
        )
        self._next_id += 1

    def _reidentify(
        self, landmarks: np.ndarray, image: np.ndarray, grey: np.ndarray, matched: set[int]
    ) -> _Track | None:
        """The lost or recently removed track this new face most likely is, if any."""
        matrix = alignment_matrix(landmarks)
        box = _box(matrix)
        side = _side(box)
        patch, colours = _patch(grey, matrix), _colours(image, matrix)
        best: tuple[float, _Track] | None = None
        candidates = [t for t in self._tracks if t.state == "lost" and t.track_id not in matched]
        for track in candidates + self._removed:
            if not 0.67 <= side / max(_side(track.box), 1.0) <= 1.5:
                continue
            appearance = 0.5 * float((patch * track.template).sum()) + 0.5 * float(
                np.minimum(colours, track.colours).sum()
            )
            if appearance < self.reid_similarity:
                continue
            # Among faces that look alike, the one that was last seen nearest.
            distance = float(np.linalg.norm(box_centre(box) - box_centre(track.box))) / side
            if best is None or distance < best[0]:
                best = (distance, track)
        return best[1] if best else None

    def _catch_up(self, box: np.ndarray, frames: int) -> np.ndarray:
        """A detection box from ``frames`` frames ago, followed by its landmarks to now."""
        for grey in list(self._recent)[-frames - 1 : -1] if frames else []:
            box = box_from_landmarks(self.fit_landmarks(grey, box))
        return box

    def _associate(
        self, detections: list[np.ndarray], age: int, image: np.ndarray, grey: np.ndarray
    ) -> None:
        """Use the detections of the frame ``age`` frames ago (compared with the tracks'
        boxes on that frame, followed to this frame where a face needs them)."""
        tracks = [t for t in self._tracks if t.track_id in self._asked_boxes]
        matched: set[int] = set()
        matched_ids: set[int] = set()
        if tracks and detections:
            then = np.array([self._asked_boxes[t.track_id] for t in tracks])
            overlap = iou_matrix(then, np.array(detections))
            for row, col in zip(*linear_sum_assignment(-overlap), strict=True):
                if overlap[row, col] < 0.3:
                    continue
                track = tracks[row]
                matched.add(col)
                matched_ids.add(track.track_id)
                if track.state == "tentative":
                    track.hits += 1
                if not track.found or overlap[row, col] < self.reseed_iou:
                    # The detector is the stronger evidence: re-seed from it.
                    box = self._catch_up(detections[col], age)
                    self._seed(track, box, image, grey)
                self._trust(track, grey)
        # A tentative track gets one chance: the detection pass after its birth.
        self._tracks = [
            t
            for t in self._tracks
            if t.state != "tentative"
            or t.track_id in matched_ids
            or t.track_id not in self._asked_boxes
        ]
        for col, box in enumerate(detections):
            if col in matched or len(self._tracks) >= self.max_faces:
                continue
            box = self._catch_up(box, age)
            if self._tracks and iou_matrix([box], [t.box for t in self._tracks]).max() >= 0.3:
                continue
            landmarks = self.fit_landmarks(grey, box)
            fit = fit_error(grey, landmarks, self.fit_landmarks)
            if fit > self.max_fit_error:
                continue  # not a face the landmarks can follow (yet): leave it as it is
            returning = self._reidentify(landmarks, image, grey, matched_ids)
            if returning is None:
                self._new_track(landmarks, image, grey, fit)
                continue
            if returning in self._removed:
                self._removed.remove(returning)
                returning.misses = 0
                self._tracks.append(returning)
            returning.state = "lost"  # found again below: back to confirmed, smoothing reset
            returning.box = box_from_landmarks(landmarks)
            returning.fit = fit
            matched_ids.add(returning.track_id)
            self._seed(returning, box, image, grey, landmarks)

    def _advance(self, time: float) -> None:
        """Move every track one step through its lifecycle and its visibility ramp."""
        kept: list[_Track] = []
        for track in self._tracks:
            if track.found:
                if track.state == "lost" and track.smoother is not None:
                    track.smoother.reset()  # it may be back somewhere else: do not sweep there
                track.carrier = None
                track.misses = 0
                if track.state != "tentative" or track.hits > 1:
                    track.state = "confirmed"
                    step = 1 if track.fit <= self.max_fit_error else -1
                    track.level = min(max(track.level + step, 0), self.ramp_frames)
                track.smoothed = track.landmarks
                if track.smoother is not None:
                    smoothed = track.smoother.process(track.landmarks, time, _side(track.box))
                    track.smoothed = smoothed.astype(np.float32)
            elif track.state == "tentative":
                continue
            else:
                track.state = "lost"
                track.misses += 1
                track.velocity[:] = 0
                track.level = max(track.level - 1, 0)
                if track.misses > self.max_lost:
                    self._retire(track)
                    continue
            kept.append(track)
        self._tracks = self._drop_duplicates(kept)
        self._removed = [t for t in self._removed if self._count - t.removed_at <= self.reid_frames]

    def _retire(self, track: _Track) -> None:
        """Keep a removed track's appearance for re-identification."""
        if self.reid_frames > 0:
            track.removed_at = self._count
            track.carrier = None
            self._removed.append(track)

    def _drop_duplicates(self, tracks: list[_Track]) -> list[_Track]:
        """Two tracks found on one face: keep the older (lower id). A lost track whose box
        lies on a found face is a face hidden behind it, not a duplicate: it stays lost."""
        kept: list[_Track] = []
        for track in sorted(tracks, key=lambda t: t.track_id):
            held = [k.box for k in kept if k.found]
            if not (track.found and held) or iou_matrix([track.box], held).max() < 0.5:
                kept.append(track)
        return kept
