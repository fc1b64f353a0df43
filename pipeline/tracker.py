"""Follow faces through a video: stable ids, smoothed landmarks, fading visibility.

How a frame is processed (measured at 640x480 with one face, see the bench):

1. Landmarks track. Each track's 68 landmarks are predicted inside its box from the last
   frame, moved by the track's velocity (2-3 ms on the grey frame). The new landmarks give
   the new box, so the box re-centres on the face every frame and does not drift.
2. Verification. A small grey patch of the face, aligned by the landmarks, is compared with
   the track's running template by normalised cross-correlation. A card over the face, a face
   that left, or landmarks that slid off the face fail it and the track is *lost* for the frame.
3. Fallback. A confirmed track that just failed is handed to an OpenCV CSRT tracker started
   on the previous frame at the last good box; its box seeds the landmarks once more. CSRT
   costs about 30 ms a frame, against 2-3 ms for landmarks, so it only runs for the first
   few frames of a loss: it catches a face that moved too fast, not one that is gone.
4. Detection. dlib's HOG detector runs on a shrunk grey frame every ``detect_every`` frames,
   and on every frame while any track is tentative or lost, or no face is tracked at all.
   Detections are matched to tracks by IoU (Hungarian assignment); a match re-seeds a track
   that drifted or was lost, an unmatched detection starts a tentative track.

Lifecycle: *tentative* (one detection) → *confirmed* (matched by a detection on the next
frame) → *lost* (verification failed; it is looked for every frame) → *removed* (lost for
``max_lost`` frames, or tentative and not confirmed). A confirmed track's visibility rises by
``1 / ramp_frames`` a frame up to 1 and a lost one's falls back to 0, so the compositor fades
faces in and out. Ids count up from 1 per tracker and are never reused.

Boxes are in dlib's convention (see :mod:`pipeline.landmarks`), estimated from the landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.align import CROP_SIZE, alignment_matrix, invert_affine, transform_points
from pipeline.frame import Face, Frame
from pipeline.landmarks import (
    OneEuroFilter,
    detect_faces,
    detection_scale,
    predict_landmarks,
    preload_models,
)
from pipeline.timings import StageTimings

__all__ = ["FaceTracker", "box_from_landmarks", "iou_matrix"]

# dlib's detector box in the canonical 256 crop, averaged over the bundled photos at five
# sizes and mirrored: centred horizontally, its centre 0.61 of the way down, side 0.57.
_BOX_CENTRE = np.array([[0.5, 0.61]]) * CROP_SIZE
_BOX_SIDE = 0.57 * CROP_SIZE

# The verification patch: the inner face (brows to chin, cheek to cheek) of a 64 px crop, so
# background and hair, which change as a face moves, stay out of the comparison.
_PATCH_CROP, _PATCH_ORIGIN, _PATCH_SIZE = 64, (16, 20), (32, 36)


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The box dlib's detector would draw around a face with these landmarks.

    Args:
        landmarks: ``(68, 2)`` ``x, y`` frame pixels.

    Returns:
        ``(4,)`` ``float32`` ``x0, y0, x1, y1``, axis-aligned even for a tilted face.
    """
    matrix = alignment_matrix(landmarks)
    (cx, cy) = transform_points(invert_affine(matrix), _BOX_CENTRE)[0]
    half = _BOX_SIDE / np.sqrt(abs(np.linalg.det(matrix[:, :2]))) / 2
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


def _patch(grey: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm ``(36, 32)`` ``float32`` inner-face patch for correlation."""
    matrix = alignment_matrix(landmarks, _PATCH_CROP)
    matrix[:, 2] -= _PATCH_ORIGIN
    patch = cv2.warpAffine(grey, matrix, _PATCH_SIZE, borderMode=cv2.BORDER_REPLICATE)
    patch = patch.astype(np.float32)
    patch -= patch.mean()
    return patch / max(float(np.linalg.norm(patch)), 1e-3)


def _side(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


@dataclass(eq=False)
class _Track:
    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    smoothed: np.ndarray
    template: np.ndarray
    smoother: OneEuroFilter | None
    state: str = "tentative"
    hits: int = 1
    misses: int = 0
    level: int = 0  # visibility in steps of 1 / ramp_frames; integers so 0 is exactly 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    fallback: cv2.Tracker | None = None
    found: bool = True  # on the face in the current frame


class FaceTracker:
    """Finds, follows and smooths faces frame by frame.

    Args:
        detect_every: run the detector every this many frames while all tracks are healthy.
        max_faces: most faces tracked at once; the largest detections win.
        min_face: smallest face (detector box side, frame pixels) to find; sets how far the
            frame is shrunk before detection (60 px or less: full size). ``None``: the larger
            of 60 px and an eighth of the frame height, so the detector always sees at most
            about 480 lines (about 30 ms at 640x480).
        ramp_frames: frames a face takes to fade fully in or out.
        max_lost: frames a lost track is looked for before it is removed (at least
            ``ramp_frames``, so it has faded out).
        min_similarity: correlation with the track's template below which the landmarks are
            taken not to be on the face (0.5 separates a grey card from a tilted face here).
        reseed_iou: a matched detection overlapping the track's box less than this re-seeds
            the landmarks from the detection (the track drifted).
        fallback_frames: for how many frames of a loss CSRT looks for the face (0: never). A
            face that moved too fast for the landmarks is found on the first; one that is
            covered or gone is not found at all, so a short limit bounds the wasted time.
        smoothing: ``(min_cutoff Hz, beta)`` of the per-track One-Euro landmark filter; speed
            is measured in face sides per second. ``None``: raw landmarks.

    Attributes:
        timings: milliseconds per frame for ``detect``, ``landmarks`` (prediction and
            verification) and ``track`` (association, CSRT fallback, lifecycle).
    """

    def __init__(
        self,
        detect_every: int = 10,
        max_faces: int = 4,
        *,
        min_face: float | None = None,
        ramp_frames: int = 5,
        max_lost: int = 12,
        min_similarity: float = 0.5,
        reseed_iou: float = 0.5,
        fallback_frames: int = 3,
        smoothing: tuple[float, float] | None = (1.0, 4.0),
    ) -> None:
        if detect_every < 1 or max_faces < 1 or ramp_frames < 1:
            raise ValueError(
                "FaceTracker: detect_every, max_faces and ramp_frames must be at least 1, got "
                f"{detect_every}, {max_faces}, {ramp_frames}"
            )
        self.detect_every = detect_every
        self.max_faces = max_faces
        self.min_face = min_face
        self.ramp_frames = ramp_frames
        self.max_lost = max(max_lost, ramp_frames)
        self.min_similarity = min_similarity
        self.reseed_iou = reseed_iou
        self.fallback_frames = fallback_frames
        self.smoothing = smoothing
        self.timings = StageTimings()
        preload_models()
        self.reset()

    def reset(self) -> None:
        """Forget every track and the timings; ids start again from 1."""
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._count = 0
        self._previous: np.ndarray | None = None
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
        with timings.measure("landmarks"):
            for track in self._tracks:
                track.found = self._follow(track, grey)
        with timings.measure("track"):
            for track in self._tracks:
                if not track.found and self._can_fall_back(track):
                    track.found = self._fall_back(track, image, grey)
        due = (
            self._count % self.detect_every == 0
            or not self._tracks
            or any(t.state != "confirmed" or not t.found for t in self._tracks)
        )
        detections: list[np.ndarray] | None = None
        if due:
            with timings.measure("detect"):
                min_face = self.min_face or max(60.0, frame.height / 8)
                detections = detect_faces(grey, scale=detection_scale(min_face))
        with timings.measure("track"):
            if detections is not None:
                self._associate(detections, grey)
            self._advance(frame.time)
        self._previous = image
        self._count += 1
        return [
            Face(t.track_id, box_from_landmarks(t.smoothed), t.smoothed, t.level / self.ramp_frames)
            for t in sorted(self._tracks, key=lambda t: t.track_id)
            if t.state != "tentative" and t.level > 0
        ]

    def _verified(self, track: _Track, grey: np.ndarray, landmarks: np.ndarray) -> bool:
        """Whether ``landmarks`` sit on the track's face; if so the track moves there."""
        patch = _patch(grey, landmarks)
        if float((patch * track.template).sum()) < self.min_similarity:
            return False
        box = box_from_landmarks(landmarks)
        shift = (box[:2] + box[2:] - track.box[:2] - track.box[2:]) / 2
        track.velocity = 0.5 * track.velocity + 0.5 * shift
        track.box, track.landmarks = box, landmarks
        # A slowly updated template follows a face that turns or changes expression.
        template = 0.9 * track.template + 0.1 * patch
        track.template = template / max(float(np.linalg.norm(template)), 1e-6)
        return True

    def _follow(self, track: _Track, grey: np.ndarray) -> bool:
        moved = track.box + np.tile(track.velocity, 2) if track.state != "lost" else track.box
        return self._verified(track, grey, predict_landmarks(grey, moved))

    def _can_fall_back(self, track: _Track) -> bool:
        return (
            track.state != "tentative"
            and track.misses < self.fallback_frames
            and self._previous is not None
        )

    def _fall_back(self, track: _Track, image: np.ndarray, grey: np.ndarray) -> bool:
        if track.fallback is None:
            height, width = grey.shape
            x0, y0 = np.maximum(track.box[:2], 0).astype(int)
            x1, y1 = np.minimum(track.box[2:], (width - 1, height - 1)).astype(int)
            # CSRT refuses a box outside the frame; a face mostly outside is gone anyway.
            if (x1 - x0) * (y1 - y0) < 0.5 * _side(track.box) ** 2:
                return False
            track.fallback = cv2.TrackerCSRT.create()
            track.fallback.init(self._previous, (x0, y0, x1 - x0, y1 - y0))
        ok, (x, y, w, h) = track.fallback.update(image)
        if not ok:
            return False
        box = np.array([x, y, x + w, y + h], np.float32)
        return self._verified(track, grey, predict_landmarks(grey, box))

    def _new_track(self, box: np.ndarray, grey: np.ndarray) -> None:
        landmarks = predict_landmarks(grey, box)
        self._tracks.append(
            _Track(
                track_id=self._next_id,
                box=box_from_landmarks(landmarks),
                landmarks=landmarks,
                smoothed=landmarks,
                template=_patch(grey, landmarks),
                smoother=OneEuroFilter(*self.smoothing) if self.smoothing else None,
            )
        )
        self._next_id += 1

    def _associate(self, detections: list[np.ndarray], grey: np.ndarray) -> None:
        tracks = self._tracks
        matched: set[int] = set()
        matched_tracks: set[int] = set()
        if tracks and detections:
            overlap = iou_matrix(np.array([t.box for t in tracks]), np.array(detections))
            for row, col in zip(*linear_sum_assignment(-overlap), strict=True):
                if overlap[row, col] < 0.3:
                    continue
                track, box = tracks[row], detections[col]
                matched.add(col)
                matched_tracks.add(row)
                if track.state == "tentative":
                    track.hits += 1
                if not track.found or overlap[row, col] < self.reseed_iou:
                    # The detector is the stronger evidence: re-seed from it and trust its
                    # appearance as the new template.
                    landmarks = predict_landmarks(grey, box)
                    track.template = _patch(grey, landmarks)
                    track.found = self._verified(track, grey, landmarks)
        # A tentative track gets one chance: the detection pass on the frame after its birth.
        self._tracks = [
            t for i, t in enumerate(tracks) if t.state != "tentative" or i in matched_tracks
        ]
        for col, box in enumerate(detections):
            if col in matched or len(self._tracks) >= self.max_faces:
                continue
            if not self._tracks or iou_matrix([box], [t.box for t in self._tracks]).max() < 0.3:
                self._new_track(box, grey)

    def _advance(self, time: float) -> None:
        """Move every track one step through its lifecycle and its visibility ramp."""
        kept: list[_Track] = []
        for track in self._tracks:
            if track.found:
                if track.state == "lost" and track.smoother is not None:
                    track.smoother.reset()  # it may be back somewhere else: do not sweep there
                track.fallback = None
                track.misses = 0
                if track.state != "tentative" or track.hits > 1:
                    track.state = "confirmed"
                    track.level = min(track.level + 1, self.ramp_frames)
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
                    continue
            kept.append(track)
        self._tracks = self._drop_duplicates(kept)

    @staticmethod
    def _drop_duplicates(tracks: list[_Track]) -> list[_Track]:
        """Two tracks on one face: keep the older (lower id)."""
        kept: list[_Track] = []
        for track in sorted(tracks, key=lambda t: t.track_id):
            if not kept or iou_matrix([track.box], [k.box for k in kept]).max() < 0.5:
                kept.append(track)
        return kept
