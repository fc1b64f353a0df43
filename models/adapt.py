"""One-shot adaptation: one style portrait in, a real-time style pack out.

Stages (each reports progress, so a command line can draw a bar per stage):

1. ``faces``: the exemplar is found and aligned; content faces are gathered, from the user's
   footage (frames picked for variety of pose and expression) or from the public-domain
   photos facestyle ships, augmented (flips, small rotations and scales, colour jitter,
   smooth expression-free warps), and optionally warped part-way toward the exemplar's
   proportions (``geometry``).
2. ``teacher``: guided patch synthesis (:mod:`models.teacher`) stylizes every content face.
3. ``training``: the student (:mod:`models.generator`) learns to do the same in
   milliseconds (:mod:`models.train`).

Nothing is written here; :func:`adapt` returns the pack and the pictures of a preview sheet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from models.canvas import SHOWN_STRENGTH, make_canvas
from models.exemplar import Exemplar, prepare_exemplar
from models.generator import GeneratorConfig
from models.geometry import reshape_crops
from models.pack import StylePack
from models.pack_stylizer import PackStylizer
from models.student_input import (
    DEFAULT_GUIDES,
    StudentReference,
    guide_channels,
    student_guides,
    to_unit_rgb,
)
from models.teacher import TeacherParams, stylize_face
from models.train import (
    Artwork,
    TrainingSet,
    TrainSettings,
    free_cores,
    head_parts,
    train_student,
)
from pipeline.align import (
    CROP_SIZE,
    align_face,
    box_centre,
    similarity_scale,
    transform_points,
)
from pipeline.detail import DEFAULT_IDENTITY, DEFAULT_IDENTITY_SCALE, MAX_IDENTITY_SCALE
from pipeline.errors import InputError, NoFaceError
from pipeline.frame import AlignedCrop
from pipeline.landmarks import detect_landmarks, predict_landmarks
from pipeline.samples import FACE_PHOTOS, face_box, face_photo
from pipeline.sources import open_source

__all__ = [
    "PAINTED_IDENTITY_SCALE",
    "QUALITIES",
    "AdaptResult",
    "AdaptSettings",
    "Progress",
    "adapt",
    "footage_faces",
    "identity_scale_for",
    "preview_sheet",
    "sample_faces",
]

Progress = Callable[[str, float, float], None]
"""``progress(stage, done, total)`` with stage ``"faces"``, ``"teacher"`` or ``"training"``."""


@dataclass(frozen=True)
class AdaptSettings:
    """Everything that decides what ``adapt`` makes.

    Attributes:
        faces: content faces to stylize with the teacher and train on.
        teacher: teacher settings.
        train: student training settings (its ``seconds`` bounds the training time).
        student: the student's hyper-parameters (``guide_channels`` is set from ``guides``).
        guides: the student's guide channels.
        crop_size: side of the aligned crops.
        geometry: 0..1, how far faces are warped toward the exemplar's proportions.
        identity: the pack's default identity <-> style strength.
        identity_scale: the pack's blur separating the person's detail from the face's
            shape (:data:`pipeline.detail.DEFAULT_IDENTITY_SCALE`: fine detail only; 64
            restores the face's light and shadow too); ``None``: chosen from the exemplar
            (:func:`identity_scale_for`).
        strokes: 0..4, how strongly the pack shows its strokes: its canvas is stored at this
            times :data:`models.canvas.SHOWN_STRENGTH` (a run's ``--strokes`` scales it
            again). The student trains the same either way.
        keep_tone: whether faces keep their own skin tone (``None``: yes unless the
            exemplar is monochrome; see :func:`pipeline.guides.guide_reference`).
        monochrome: whether the exemplar is in one ink (:attr:`Exemplar.monochrome`;
            ``None``: detected).
        seed: augmentation and training seed.
    """

    faces: int = 24
    teacher: TeacherParams = field(default_factory=TeacherParams)
    # The step cap binds only on a GPU (an H200 ran 3000 steps in 61 s; 2 CPU cores reach
    # about 980 in the 150 s): 2000 steps there keep adapt near a minute, still twice the
    # CPU's training, and longer training flickered more for no better style.
    train: TrainSettings = field(default_factory=lambda: TrainSettings(steps=2000, seconds=150))
    student: GeneratorConfig = field(default_factory=GeneratorConfig)
    guides: tuple[str, ...] = DEFAULT_GUIDES
    crop_size: int = CROP_SIZE
    geometry: float = 0.0
    identity: float = DEFAULT_IDENTITY
    identity_scale: float | None = None
    strokes: float = 1.0
    keep_tone: bool | None = None
    monochrome: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.faces < 1:
            raise ValueError(f"faces: expected >= 1, got {self.faces}")
        if not 0.0 <= self.geometry <= 1.0:
            raise InputError(f"--geometry: expected a value in 0..1, got {self.geometry}")
        if self.identity_scale is not None and not (
            1.0 <= self.identity_scale <= MAX_IDENTITY_SCALE
        ):
            raise InputError(
                f"--identity-scale: expected a value in 1..{MAX_IDENTITY_SCALE:g}, "
                f"got {self.identity_scale}"
            )
        if not 0.0 <= self.strokes <= 4.0:
            raise InputError(f"--strokes: expected a value in 0..4, got {self.strokes}")


QUALITIES = {
    "fast": AdaptSettings(
        faces=10,
        teacher=TeacherParams(em_iterations=(2, 2, 1)),
        train=TrainSettings(steps=1000, seconds=35),
    ),
    "default": AdaptSettings(),
    "best": AdaptSettings(
        faces=40,
        train=TrainSettings(steps=6000, seconds=600),
    ),
}
"""``--quality`` presets. Training stops at its step count or its time budget, whichever
comes first, so ``default`` stays within about 3 minutes on a 2-core CPU (fewer steps when
the CPU is shared)."""


@dataclass(frozen=True)
class AdaptResult:
    """What adaptation made.

    Attributes:
        pack: the trained style pack.
        exemplar: ``(S, S, 3)`` ``uint8`` RGB aligned exemplar.
        content: ``(N, S, S, 3)`` ``uint8`` RGB content crops (after the geometry warp).
        landmarks: ``(N, 68, 2)`` ``float32`` their landmarks, crop pixels.
        teacher: ``(N, S, S, 3)`` ``uint8`` RGB the teacher's stylizations of them.
        student: ``(N, S, S, 3)`` ``uint8`` RGB the trained student's.
    """

    pack: StylePack
    exemplar: np.ndarray
    content: np.ndarray
    landmarks: np.ndarray
    teacher: np.ndarray
    student: np.ndarray


def _jitter_colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter of ``(H, W, 3)`` ``uint8`` RGB."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5, 5)) % 180
    hsv[..., 1] *= rng.uniform(0.8, 1.2)
    rgb = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    contrast, brightness = rng.uniform(0.85, 1.15), rng.uniform(-20, 20)
    mean = rgb.mean()
    return np.clip((rgb - mean) * contrast + mean + brightness, 0, 255).astype(np.uint8)


def _smooth_warp(image: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A low-frequency random displacement (a few pixels): a slightly different face shape,
    the same expression."""
    height, width = image.shape[:2]
    coarse = rng.normal(0, amplitude, (2, 4, 4)).astype(np.float32)
    dx, dy = (cv2.resize(c, (width, height), interpolation=cv2.INTER_CUBIC) for c in coarse)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _augment(photo: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A flipped, rotated, scaled, shifted, gently reshaped and colour-jittered variant.

    Returns:
        The ``(H, W, 3)`` ``uint8`` image and the ``(2, 3)`` ``float64`` affine matrix that
        takes photo pixels to it (the reshaping moves points by a few pixels more).
    """
    height, width = photo.shape[:2]
    flip = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    flipped = rng.random() < 0.5
    image = photo[:, ::-1] if flipped else photo
    matrix = cv2.getRotationMatrix2D(
        (width / 2, height / 2), rng.uniform(-12, 12), rng.uniform(0.9, 1.1)
    )
    matrix[:, 2] += rng.uniform(-0.04, 0.04, 2) * (width, height)
    image = cv2.warpAffine(
        np.ascontiguousarray(image), matrix, (width, height), borderMode=cv2.BORDER_REFLECT
    )
    image = _smooth_warp(image, rng, amplitude=0.006 * max(width, height))
    return _jitter_colour(image, rng), matrix @ flip if flipped else matrix


def _moved_box(box: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(4,)`` the square face box ``x0, y0, x1, y1`` carried by a ``(2, 3)`` similarity:
    its centre moved, its side scaled (an upright box, as the landmark predictor expects)."""
    box = np.asarray(box, np.float32)
    centre = transform_points(matrix, box_centre(box)[None])[0]
    half = float(max(box[2:] - box[:2])) / 2 * similarity_scale(matrix)
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


def sample_faces(
    count: int,
    size: int = CROP_SIZE,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[AlignedCrop]:
    """Aligned crops of the bundled public-domain faces, each an augmented variant.

    The first crop of each photo is unaugmented; the rest are flipped, rotated, scaled,
    shifted, gently reshaped and colour-jittered at random. The face is where the
    augmentation moved the photo's own face box, so no detector runs: on an augmented
    astronaut photo dlib's largest box can be the spacesuit's mission patch (with ``adapt
    --seed 2`` one of the 24 training faces was).
    """
    rng = np.random.default_rng(seed)
    crops: list[AlignedCrop] = []
    for index in range(count):
        name = FACE_PHOTOS[index % len(FACE_PHOTOS)]
        photo, box = face_photo(name), np.asarray(face_box(name), np.float32)
        if index >= len(FACE_PHOTOS):
            photo, matrix = _augment(photo, rng)
            box = _moved_box(box, matrix)
        crops.append(align_face(photo, predict_landmarks(photo, box), size))
        if progress is not None:
            progress(len(crops), count)
    return crops


def _spread(landmarks: np.ndarray, count: int) -> list[int]:
    """Indices of ``count`` rows of ``(N, 68, 2)`` far apart from each other (farthest-point
    sampling on aligned landmarks: varied pose and expression)."""
    flat = landmarks.reshape(len(landmarks), -1)
    chosen = [0]
    distance = np.linalg.norm(flat - flat[0], axis=1)
    distance[0] = -1.0
    while len(chosen) < min(count, len(flat)):
        best = int(distance.argmax())
        chosen.append(best)
        distance = np.minimum(distance, np.linalg.norm(flat - flat[best], axis=1))
        distance[chosen] = -1.0  # identical rows (a still face) must not be picked twice
    return chosen


def footage_faces(
    specs: Sequence[str | Path],
    count: int,
    size: int = CROP_SIZE,
    candidates: int = 120,
    progress: Callable[[int, int], None] | None = None,
) -> list[AlignedCrop]:
    """Aligned faces from videos or images, ``count`` of them picked for variety.

    Up to ``candidates`` frames spread evenly over the inputs are searched for faces (every
    face of a frame counts); from those, the ones whose aligned landmarks differ the most are
    kept.

    Raises:
        NoFaceError: no face in any searched frame.
    """
    found: list[AlignedCrop] = []
    per_spec = max(candidates // max(len(specs), 1), 1)
    searched = 0
    for spec in specs:
        with open_source(spec) as source:
            stride = max((source.frame_count or per_spec * 5) // per_spec, 1)
            expected = per_spec
            if source.frame_count:
                expected = min(per_spec, -(-source.frame_count // stride))
            for index, frame in enumerate(source):
                if index % stride:
                    continue
                image = frame.image
                faces = detect_landmarks(image, upsample=0) or detect_landmarks(image, upsample=1)
                for landmarks in faces:
                    found.append(align_face(image, landmarks, size))
                searched += 1
                if progress is not None:
                    progress(index // stride + 1, expected)
                if index // stride + 1 >= per_spec:
                    break
    if not found:
        raise NoFaceError(
            f"no face found in {searched} frames of the --content input; give footage where "
            "faces are frontal and at least about 50 pixels wide"
        )
    picked = _spread(np.stack([c.landmarks for c in found]), count)
    return [found[i] for i in picked]


def preview_sheet(result: AdaptResult, columns: int = 6, tile: int = 128) -> np.ndarray:
    """One picture to judge a pack by: the exemplar, then content / teacher / student rows.

    Returns:
        ``(3 * tile, (columns + 1) * tile, 3)`` ``uint8`` RGB.
    """

    def small(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)

    picks = np.linspace(0, len(result.content) - 1, min(columns, len(result.content))).round()
    picks = picks.astype(int)
    blank = np.full((tile, tile, 3), 255, np.uint8)
    rows = []
    for row, images in enumerate((result.content, result.teacher, result.student)):
        first = small(result.exemplar) if row == 0 else blank
        tiles = [small(images[i]) for i in picks]
        tiles += [blank] * (columns - len(tiles))
        rows.append(np.hstack([first, *tiles]))
    sheet = np.vstack(rows)
    for row, label in enumerate(("exemplar", "teacher", "student")):
        cv2.putText(
            sheet,
            label,
            (6, row * tile + 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255) if row == 0 else (40, 40, 40),
            1,
            cv2.LINE_AA,
        )
    return sheet


# A colour portrait whose skin is modelled at least this strongly (Exemplar.shading) gets the
# wide identity scale. Six of the shared artworks, packs made at default quality and judged on
# the three shared clips at 3 and at 64: Mucha's poster (0.12) lost style apart from skin tone
# at the wide scale (0.32 / 0.24 / 0.41 -> 0.57 / 0.62 / 0.77 at 32), the album portrait of
# Confucius (0.14) was mixed (apart from tone 0.18 / 0.19 / 0.26 -> 0.19 / 0.22 / 0.32, plain
# 0.35 / 0.85 / 0.34 -> 0.37 / 0.78 / 0.30); Renoir (0.16), Cranach (0.17), Modigliani (0.22)
# and Van Gogh (0.24) came closer on every clip, plain and apart from tone, sharper and as
# steady (Renoir's clip 3 face from 33 % to all of it under 0.6).
_SHADED = 0.15

PAINTED_IDENTITY_SCALE = 64.0
"""The identity scale of a pack whose portrait is painted with light and shadow."""


def identity_scale_for(exemplar: Exemplar) -> float:
    """The identity scale a pack gets by default: :data:`PAINTED_IDENTITY_SCALE` for a colour
    portrait modelled with light and shadow, whose kept skin tone would otherwise flatten the
    painted modelling on a darker face; fine detail only
    (:data:`pipeline.detail.DEFAULT_IDENTITY_SCALE`) for flat colour, where the person's
    shading would be photo texture, and for a monochrome print, whose tones are the style's."""
    if exemplar.keep_tone and exemplar.shading >= _SHADED:
        return PAINTED_IDENTITY_SCALE
    return DEFAULT_IDENTITY_SCALE


def _teach(
    exemplar: Exemplar,
    images: Sequence[np.ndarray],
    landmarks: Sequence[np.ndarray],
    params: TeacherParams,
    threads: int,
    report: Progress,
) -> list[np.ndarray]:
    """The teacher's stylization of each content face, in order, on ``threads`` threads
    (its kernels release the GIL: on 16 cores one thread left the teacher at 31 s for
    24 faces, most of a GPU adaptation's minute)."""
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        jobs = [
            pool.submit(stylize_face, exemplar, image, points, params)
            for image, points in zip(images, landmarks, strict=True)
        ]
        # Reported at the start as well, so that a progress bar times the phase from there.
        report("teacher", 0, len(jobs))
        for done, _ in enumerate(as_completed(jobs), start=1):
            report("teacher", done, len(jobs))
        return [job.result() for job in jobs]
    finally:
        # On Ctrl-C, the faces not yet started are dropped; only those being painted finish.
        pool.shutdown(cancel_futures=True)


def _artwork_term(
    exemplar: Exemplar, landmarks: Sequence[np.ndarray]
) -> tuple[np.ndarray | None, Artwork | None]:
    """The content's ``(N, S, S)`` head parts and the artwork, for the student's artwork
    term (:mod:`models.train`); ``(None, None)`` for a monochrome exemplar.

    On the engraving the term made trainings unstable: of three, one came closer to the
    print (style 0.08 / 0.13 / 0.15 on the shared clips against 0.10-0.13 / 0.15-0.22 /
    0.14-0.16 without it) and one kept the photo's dark tones (0.23 / 0.53 / 0.33); a print's
    skin is paper and hatching, which the teacher already paints it with.
    """
    if exemplar.monochrome:
        return None, None
    size = exemplar.size
    return (
        np.stack([head_parts(points, size) for points in landmarks]),
        Artwork(
            to_unit_rgb(exemplar.image[None])[0], head_parts(exemplar.landmarks, size, ears=False)
        ),
    )


def adapt(
    style_image: np.ndarray,
    settings: AdaptSettings | None = None,
    *,
    content: Sequence[str | Path] = (),
    points: np.ndarray | None = None,
    name: str = "style",
    progress: Progress | None = None,
) -> AdaptResult:
    """Make a style pack from one style portrait.

    Args:
        style_image: ``(H, W, 3)`` ``uint8`` RGB portrait in the wanted style.
        settings: what to make; ``QUALITIES["default"]`` if ``None``.
        content: videos, image folders or images whose faces to train on; the bundled
            public-domain faces (augmented) if empty.
        points: ``(5, 2)`` five points of the exemplar's face if the detector misses it
            (see :func:`models.exemplar.prepare_exemplar`).
        name: the pack's name.
        progress: called as stages advance.

    Raises:
        NoFaceError: no face in the style image (and no points) or in the content.
        KeyboardInterrupt: passes through untouched; nothing has been written.
    """
    settings = settings or QUALITIES["default"]
    # Counted before any of our own work, which would count as busy. The training counts
    # again as it goes (models.train.CoreCount) unless the caller fixed the threads.
    threads = settings.train.threads or free_cores(own_load=0.0)
    report = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    exemplar = prepare_exemplar(
        style_image, points, settings.crop_size, settings.keep_tone, settings.monochrome
    )
    count = settings.faces
    if content:
        crops = footage_faces(
            content, count, settings.crop_size, progress=lambda d, t: report("faces", d, t)
        )
    else:
        crops = sample_faces(
            count, settings.crop_size, settings.seed, progress=lambda d, t: report("faces", d, t)
        )
    reference = StudentReference.from_guides(exemplar.reference)
    reshaped = reshape_crops(crops, exemplar.landmarks, exemplar.size, settings.geometry)
    images = [crop.image for crop in reshaped]
    landmarks = [np.asarray(crop.landmarks, np.float32) for crop in reshaped]
    faces_seconds = time.perf_counter() - started

    targets = _teach(exemplar, images, landmarks, settings.teacher, threads, report)
    teacher_seconds = time.perf_counter() - started - faces_seconds

    config = replace(settings.student, guide_channels=guide_channels(settings.guides))
    guides = np.stack(
        [
            student_guides(im, lm, reference, settings.guides)
            for im, lm in zip(images, landmarks, strict=True)
        ]
    )
    canvas = (
        make_canvas(settings.crop_size, config.canvas, seed=settings.seed, exemplar=exemplar.image)
        if config.canvas
        else None
    )
    parts, artwork = _artwork_term(exemplar, landmarks)
    data = TrainingSet(
        to_unit_rgb(np.stack(images)),
        guides,
        to_unit_rgb(np.stack(targets)),
        canvas,
        parts=parts,
        artwork=artwork,
    )
    train = replace(settings.train, seed=settings.seed)
    student, figures = train_student(
        data, config, train, progress=lambda done, losses: report("training", done, 1.0)
    )
    figures = {
        **figures,
        "faces": len(images),
        "faces_seconds": round(faces_seconds, 2),
        "teacher_seconds": round(teacher_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "content": "footage" if content else "bundled photos",
        "strokes": float(settings.strokes),
    }
    pack = StylePack(
        name=name,
        config=config,
        weights={k: v.detach().float().numpy().copy() for k, v in student.state_dict().items()},
        crop_size=settings.crop_size,
        guides=tuple(settings.guides),
        exemplar_landmarks=exemplar.landmarks.astype(np.float32),
        luminance_quantiles=exemplar.reference.luminance_quantiles.astype(np.float32),
        # Whole: keyframe painting (models.keyframes) paints from it.
        thumbnail=exemplar.image,
        identity=float(settings.identity),
        identity_scale=float(
            identity_scale_for(exemplar)
            if settings.identity_scale is None
            else settings.identity_scale
        ),
        geometry=float(settings.geometry),
        keep_tone=exemplar.keep_tone,
        monochrome=exemplar.monochrome,
        training=figures,
        canvas=None if canvas is None else canvas * np.float32(SHOWN_STRENGTH * settings.strokes),
    )
    # The preview shows the student as a pack runs it, in float32, on the same crops (already
    # warped, hence geometry 0 here).
    stylizer = PackStylizer(replace(pack, geometry=0.0), dtype=torch.float32)
    student_out = stylizer.run(data.rgb, data.guides)
    return AdaptResult(
        pack=pack,
        exemplar=exemplar.image,
        content=np.stack(images),
        landmarks=np.stack(landmarks).astype(np.float32),
        teacher=np.stack(targets),
        student=student_out,
    )
