"""Public-domain face photos that ship inside installed packages, and clips made from them.

The photos (NASA's portrait of Eileen Collins in scikit-image, the U.S. Navy's portrait of
Grace Hopper in matplotlib) are public domain. They are the default content faces for
adaptation, the faces of the bundled sample clip, and the test subjects: a clip made here
knows exactly where its faces are in every frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np

__all__ = [
    "FACE_PHOTOS",
    "ClipTruth",
    "FacePath",
    "Pose",
    "face_box",
    "face_photo",
    "face_side",
    "write_moving_face_clip",
]

FACE_PHOTOS = ("astronaut", "grace_hopper")


@cache
def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        return np.ascontiguousarray(data.astronaut())
    if name == "grace_hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            image = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
        return np.ascontiguousarray(image[:, :, ::-1])
    raise KeyError(f"unknown face photo {name!r}; expected one of {FACE_PHOTOS}")


def face_side(name: str) -> float:
    """Side in photo pixels of the face box of :func:`face_photo` ``name`` (what a
    :class:`Pose` ``scale`` of 1 draws it at)."""
    x0, y0, x1, y1 = face_box(name)
    return max(x1 - x0, y1 - y0)


def face_photo(name: str) -> np.ndarray:
    """A public-domain portrait, ``(H, W, 3)`` ``uint8`` RGB (a fresh copy)."""
    return _photo(name).copy()


@cache
def face_box(name: str) -> tuple[float, float, float, float]:
    """dlib's HOG box of :func:`face_photo` ``name``'s face, ``x0, y0, x1, y1`` in photo
    pixels (each photo shows one person)."""
    import dlib

    boxes = dlib.get_frontal_face_detector()(_photo(name), 1)
    box = max(boxes, key=lambda r: r.area())
    return (float(box.left()), float(box.top()), float(box.right()), float(box.bottom()))


@dataclass(frozen=True)
class Pose:
    """Where a face sprite is drawn in one frame.

    Attributes:
        cx, cy: frame pixel the centre of the face box lands on.
        scale: face box side in frame pixels divided by its side in the photo.
        angle: in-plane rotation in degrees, counter-clockwise.
        occluded: a grey card covers the face in this frame.
        yaw: turn about the vertical axis through the face centre, in degrees (positive: the
            face's right side moves away), drawn as a perspective warp of the flat photo. It
            is a stand-in for a real head turn: the face narrows and one side shrinks, but
            the nose does not move across the cheek.
    """

    cx: float
    cy: float
    scale: float = 1.0
    angle: float = 0.0
    occluded: bool = False
    yaw: float = 0.0


@dataclass(frozen=True)
class FacePath:
    """One face moving through a clip: which photo, and its pose as a function of the frame."""

    photo: str
    pose: Callable[[int], Pose]


@dataclass(frozen=True)
class ClipTruth:
    """Ground truth of a generated clip.

    Attributes:
        boxes: ``boxes[i][k]`` is face ``k``'s true box in frame ``i`` as a ``(4,)`` ``float32``
            ``x0, y0, x1, y1`` (rotation-free, side = scale x photo box side), or ``None`` when
            that face is occluded or more than half outside the frame.
        fps, size: the clip's frame rate and ``(width, height)``.
    """

    boxes: list[list[np.ndarray | None]]
    fps: int
    size: tuple[int, int]


def _background(size: tuple[int, int], seed: int) -> np.ndarray:
    width, height = size
    rng = np.random.default_rng(seed)
    # A muted, low-frequency texture: something for trackers to lock onto, nothing face-like.
    noise = rng.random((height // 48 + 2, width // 48 + 2, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    grey = smooth.mean(axis=2, keepdims=True)
    muted = 0.3 * smooth + 0.7 * grey
    ramp = np.linspace(0.35, 0.75, width, dtype=np.float32)[None, :, None]
    return np.clip((0.5 * muted + 0.5 * ramp) * 255, 0, 255).astype(np.uint8)


def _sprite(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo, a soft alpha around its head, and the face box centre and side."""
    photo = _photo(name)
    x0, y0, x1, y1 = face_box(name)
    side = max(x1 - x0, y1 - y0)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float64)
    alpha = np.zeros(photo.shape[:2], np.float32)
    axes = (int(side * 1.0), int(side * 1.25))
    cv2.ellipse(alpha, (int(centre[0]), int(centre[1] - side * 0.1)), axes, 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), side * 0.08)
    return photo, alpha, np.array([*centre, side])


def _homography(geometry: np.ndarray, pose: Pose) -> np.ndarray:
    """``(3, 3)`` ``float64`` homography taking photo pixels to frame pixels for ``pose``.

    ``geometry`` is the face box centre and side in the photo, ``(cx, cy, side)``. The yaw is
    a pinhole view of the photo's plane turned about the vertical line through the face
    centre, seen from three face sides away; the similarity (scale, angle, position) follows.
    """
    cx, cy, side = (float(v) for v in geometry)
    theta, distance = math.radians(pose.yaw), 3.0 * side
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * side
    depth = distance + corners[:, 0] * math.sin(theta)
    turned = corners * [math.cos(theta), 1.0] * (distance / depth)[:, None]
    centre = np.array([cx, cy])
    yaw = cv2.getPerspectiveTransform(
        (corners + centre).astype(np.float32), (turned + centre).astype(np.float32)
    )
    similarity = np.eye(3)
    similarity[:2] = cv2.getRotationMatrix2D((cx, cy), pose.angle, pose.scale)
    similarity[:2, 2] += np.array([pose.cx, pose.cy]) - centre
    return similarity @ yaw


def _true_box(geometry: np.ndarray, pose: Pose) -> np.ndarray:
    """``(4,)`` ``float32`` frame box of a face drawn with ``pose``, ignoring its rotation: the
    photo's face box scaled and moved, narrowed (and shifted) by the yaw's foreshortening."""
    cx, cy, side = (float(v) for v in geometry)
    unrotated = _homography(geometry, replace(pose, angle=0.0))
    sides = np.array([[[cx - side / 2, cy], [cx + side / 2, cy]]], np.float64)
    (x0, _), (x1, _) = cv2.perspectiveTransform(sides, unrotated)[0]
    half = side * pose.scale / 2
    return np.array([x0, pose.cy - half, x1, pose.cy + half], np.float32)


def write_moving_face_clip(
    path: str | Path,
    faces: Sequence[FacePath],
    n_frames: int,
    *,
    size: tuple[int, int] = (640, 480),
    fps: int = 25,
    audio: bool = True,
    seed: int = 0,
    keyframe_every: int | None = None,
) -> ClipTruth:
    """Write an H.264 (+ AAC tone) clip of public-domain faces moving along known paths.

    Args:
        path: output file; the container follows the suffix (``.mp4``, ``.mkv``, ``.mov``).
        faces: the faces and their paths; later faces are drawn over earlier ones.
        n_frames: number of video frames.
        size: ``(width, height)``, both even.
        fps: constant frame rate.
        audio: add a 440 Hz stereo tone as long as the video.
        seed: background texture seed.
        keyframe_every: most frames between keyframes (x264's default, 250, if ``None``).

    Returns:
        Where every face truly is in every frame.
    """
    width, height = size
    background = _background(size, seed)
    sprites = [_sprite(f.photo) for f in faces]
    truth: list[list[np.ndarray | None]] = []
    with av.open(str(path), "w") as container:
        options = {"crf": "18", "preset": "fast"}
        if keyframe_every is not None:
            options["g"] = str(keyframe_every)
        video = container.add_stream("libx264", rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        tone = container.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for index in range(n_frames):
            canvas = background.astype(np.float32)
            boxes: list[np.ndarray | None] = []
            for face, (photo, alpha, geometry) in zip(faces, sprites, strict=True):
                pose = face.pose(index)
                matrix = _homography(geometry, pose)
                warped = cv2.warpPerspective(photo, matrix, size, flags=cv2.INTER_LINEAR)
                weight = cv2.warpPerspective(alpha, matrix, size)[..., None]
                canvas = canvas * (1 - weight) + warped.astype(np.float32) * weight
                box = _true_box(geometry, pose)
                half = geometry[2] * pose.scale / 2
                if pose.occluded:
                    x0, y0, x1, y1 = (int(v) for v in box)
                    canvas[max(y0 - 10, 0) : y1 + 10, max(x0 - 10, 0) : x1 + 10] = 128.0
                inside = max(0.0, min(box[2], width) - max(box[0], 0)) * max(
                    0.0, min(box[3], height) - max(box[1], 0)
                )
                visible = not pose.occluded and inside > 0.5 * (2 * half) ** 2
                boxes.append(box if visible else None)
            truth.append(boxes)
            frame = av.VideoFrame.from_ndarray(canvas.astype(np.uint8), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if tone is not None:
            _write_tone(container, tone, n_frames / fps)
    return ClipTruth(truth, fps, (width, height))


def _write_tone(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    rate, chunk = 48000, 1024
    total = int(seconds * rate)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float32)
        samples = (0.2 * np.sin(2 * math.pi * 440.0 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(
            np.stack([samples, samples]), format="fltp", layout="stereo"
        )
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
