"""``facestyle eval``: the quality yardstick — identity, style, sharpness, skin tone, head
coverage, temporal stability.

Runs one or more stylizers on the same tracked clip (default: a generated clip of the
public-domain faces), blends each stylized crop over its input through the compositor's mask
(``--mask``, the head matte by default) and reports, per stylizer, the figures of
:mod:`models.metrics` as text or ``--json``. ``--teacher STYLE_IMAGE`` runs the
patch-synthesis teacher on every frame (slow, and expected to flicker: that is what the
student is for).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.exemplar import Exemplar, load_image, prepare_exemplar
from models.metrics import SAME_PERSON, StylizerReport, TrackCrops, clip_tracks, evaluate_stylizer
from models.teacher import TeacherParams, TeacherStylizer
from pipeline.composite import Compositor, magnification
from pipeline.coverage import CoverageReport, measure_coverage
from pipeline.detail import MAX_IDENTITY, restore_detail
from pipeline.errors import InputError
from pipeline.frame import AlignedCrop
from pipeline.samples import FacePath, Pose, write_moving_face_clip
from pipeline.sources import open_source
from pipeline.stylizer import StagedStylizer, Stylizer, drawn_crops
from pipeline.tracker import FaceTracker
from plugin.commands._args import (
    add_fine_detail_option,
    add_full_crops_option,
    add_keyframes_option,
    add_mask_option,
    add_points_option,
    add_skin_hue_option,
    add_strokes_option,
    counted,
    number_in,
)
from plugin.styles import resolve_style

__all__ = ["add_parser", "format_coverage", "format_report", "generated_clip", "run"]

DEFAULT_FRAMES = 24


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure identity, style, sharpness and temporal stability of styles on a clip",
        description=(
            "Run each style on the same clip and report identity (dlib descriptor distance "
            "and margin), style (patch-distribution distance to the exemplar as a ratio to "
            "the photo's, on the whole head and on the face and the hair apart, each against "
            "the same part of the exemplar's), sharpness relative to the exemplar, the "
            "face's lightness against "
            "the photo's (skin tone kept), the share of the head restyled, detail in the frame where faces are enlarged from their crops (relative "
            "to the footage's), and temporal stability (flow warping error relative to the "
            "input's)."
        ),
    )
    parser.add_argument(
        "clip", nargs="?", help="video, image folder or glob (default: a generated clip)"
    )
    parser.add_argument(
        "--style",
        action="append",
        default=[],
        metavar="NAME|PACK",
        help="a style to judge: 'cartoon', a bundled pack or a .safetensors file (repeatable)",
    )
    parser.add_argument(
        "--teacher", type=Path, metavar="STYLE_IMAGE", help="also run the teacher per frame"
    )
    add_points_option(
        parser,
        "five points of the style image (--teacher or --exemplar) if its face is not detected",
    )
    parser.add_argument(
        "--temporal",
        type=number_in(float, 0),
        default=0.0,
        metavar="W",
        help="teacher: weight of the previous output warped by flow; 0 paints every frame on "
        "its own (0)",
    )
    parser.add_argument(
        "--exemplar",
        type=Path,
        metavar="STYLE_IMAGE",
        help="exemplar for the style and sharpness figures (default: the teacher's style "
        "image, if any)",
    )
    parser.add_argument(
        "--frames",
        type=number_in(int, 1),
        default=DEFAULT_FRAMES,
        help=f"frames to use from the clip ({DEFAULT_FRAMES})",
    )
    parser.add_argument(
        "--every",
        type=number_in(int, 1),
        default=4,
        help="measure identity and style on every Nth crop of a face (4)",
    )
    parser.add_argument(
        "--identity",
        type=number_in(float, 0, MAX_IDENTITY),
        action="append",
        metavar="K",
        help="judge each style with this identity strength, as render --identity K "
        "(repeatable; default: each style's own, as render uses it)",
    )
    add_strokes_option(
        parser,
        "judge packs with their stroke strength times K, as render --strokes K (default 1)",
    )
    parser.add_argument(
        "--no-coverage",
        dest="coverage",
        action="store_false",
        help="skip the face-coverage figure (its reference, dlib's CNN detector, takes "
        "seconds a frame: most of eval's time on footage)",
    )
    add_keyframes_option(parser)
    parser.add_argument(
        "--keyframe-lag",
        type=number_in(int, 0),
        default=0,
        metavar="N",
        help="with --keyframes, show each painting N frames after the frame it was asked on "
        "(painted on a thread of its own, carried there, a pack's student showing each face "
        "until its first one): what a live session shows when the teacher takes N frames "
        "(default 0: in line, as render)",
    )
    add_mask_option(parser)
    add_fine_detail_option(parser)
    add_full_crops_option(parser)
    add_skin_hue_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(run=run)


def _path_a(index: int) -> Pose:
    return Pose(cx=190 + 3.0 * index, cy=250 + 2.0 * math.sin(index / 4), angle=0.3 * index)


def _path_b(index: int) -> Pose:
    return Pose(cx=470 - 2.0 * index, cy=230, scale=0.8 + 0.004 * index)


def generated_clip(path: Path, frames: int) -> Path:
    """A short H.264 clip of the two public-domain faces drifting, turning and zooming."""
    faces = [FacePath("astronaut", _path_a), FacePath("grace_hopper", _path_b)]
    write_moving_face_clip(path, faces, frames, audio=False)
    return path


def _stylizers(args: argparse.Namespace) -> tuple[list[Stylizer], Exemplar | None]:
    stylizers = [
        resolve_style(
            spec,
            strokes=args.strokes,
            skin_hue=args.skin_hue,
            keyframes=args.keyframes,
            keyframe_lag=args.keyframe_lag,
        )
        for spec in args.style
    ]
    exemplar = None
    if args.exemplar:
        exemplar = prepare_exemplar(load_image(args.exemplar), args.points)
    if args.teacher:
        teacher = prepare_exemplar(load_image(args.teacher), args.points)
        stylizers.append(TeacherStylizer(teacher, TeacherParams(temporal=args.temporal)))
        exemplar = teacher if exemplar is None else exemplar
    if not stylizers:
        stylizers.append(resolve_style("cartoon"))
    return stylizers, exemplar


class _WithDetail:
    """A stylizer with :func:`restore_detail`, as a render applies it.

    Staged (:class:`~pipeline.stylizer.StagedStylizer`) whatever it wraps, so that a
    frame's faces of two crop sides are prepared together and painted one side at a time
    (:func:`pipeline.restyle.stylize_by_side`), as in a render; a stylizer that is not
    staged is simply run in :meth:`paint`.
    """

    # The detail is already in: nothing more is added after it.
    default_identity = 0.0

    def __init__(self, stylizer: Stylizer, strength: float, label: bool) -> None:
        self.wrapped = stylizer
        self._staged = isinstance(stylizer, StagedStylizer)
        self._strength = strength
        self.name = f"{stylizer.name} (identity {strength:g})" if label else stylizer.name
        self.crop_size = stylizer.crop_size
        self.identity_scale = stylizer.identity_scale

    def prepare(self, crops: Sequence[AlignedCrop]) -> Sequence[Any]:
        if self._staged:
            return self.wrapped.prepare(crops)  # type: ignore[attr-defined]
        return [None] * len(crops)

    def paint(self, crops: Sequence[AlignedCrop], prepared: Sequence[Any]) -> Any:
        if self._staged:
            return self.wrapped.paint(crops, prepared)  # type: ignore[attr-defined]
        return self.wrapped.stylize(crops)

    def finish(self, painted: Any, crops: Sequence[AlignedCrop]) -> np.ndarray:
        # In a render's order (pipeline.restyle.Restyler.finish): detail, then the finish,
        # both from the crops as the stylizer reshaped them.
        drawn = drawn_crops(self.wrapped, crops)
        content = np.stack([crop.image for crop in drawn])
        detailed = restore_detail(painted, content, self._strength, self.identity_scale)
        if self._staged:
            return self.wrapped.finish(detailed, drawn)  # type: ignore[attr-defined]
        return detailed

    def stylize(self, crops: Sequence[AlignedCrop]) -> np.ndarray:
        return self.finish(self.paint(crops, self.prepare(crops)), crops)

    def reshape(self, crops: Sequence[AlignedCrop]) -> list[AlignedCrop]:
        return drawn_crops(self.wrapped, crops)

    def reset(self) -> None:
        self.wrapped.reset()


def _with_identity(stylizers: list[Stylizer], strengths: list[float] | None) -> list[_WithDetail]:
    if strengths is None:
        return [_WithDetail(s, s.default_identity, label=False) for s in stylizers]
    return [_WithDetail(s, k, label=True) for s in stylizers for k in strengths]


def _tracks(clip: str | Path, frames: int, every: int, half_crops: bool) -> list[TrackCrops]:
    with open_source(clip) as source:
        tracks = clip_tracks(
            itertools.islice(source, frames), native_every=every, half_crops=half_crops
        )
    if not tracks:
        raise InputError(f"no face was found in the first {frames} frames of {clip}")
    return tracks


def _coverage(clip: str | Path, frames: int) -> CoverageReport:
    """Coverage of the default tracker against the CNN reference on every 5th frame."""
    with open_source(clip) as source:
        return measure_coverage(itertools.islice(source, frames), FaceTracker())


def format_coverage(report: CoverageReport) -> str:
    """One line: coverage beside the tracker's cost per frame."""
    parts = ", ".join(f"{stage} {ms:.1f}" for stage, ms in report.tracking_ms.items())
    return (
        f"coverage: {report.restyled} of {report.faces} faces >= 40 px restyled "
        f"({_number(report.coverage * 100, 0)}%; dlib CNN reference on {report.checked} of "
        f"{report.frames} frames); tracking {sum(report.tracking_ms.values()):.1f} ms/frame "
        f"({parts})"
    )


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _full_resolution_lines(report: StylizerReport) -> list[str]:
    """The detail line, for a clip whose faces are enlarged from their crops."""
    if math.isnan(report.full_resolution_detail):
        return []
    return [
        f"  in frame  detail {report.full_resolution_detail:.2f} x the photo's at the frame's "
        "own resolution (enlarged faces)"
    ]


def format_report(report: StylizerReport) -> str:
    """Human-readable lines for one stylizer."""
    identity, temporal, style = report.identity, report.temporal, report.style
    if style is None:
        style_lines = ["  style     n/a (no exemplar; give --exemplar)"]
    else:
        style_lines = [
            f"  style     ratio {style.ratio:.2f} (median; 1 = no closer to the exemplar "
            "than the photo, 0 = its own patches); apart from skin tone "
            f"{style.tone_free_ratio:.2f}",
            f"  by part   face {style.face_ratio:.2f} (apart from skin tone "
            f"{style.tone_free_face_ratio:.2f}), hair and headwear {style.hair_ratio:.2f}, "
            "each against the same part of the exemplar's head",
            f"  sharpness {style.sharpness:.2f} x the exemplar's "
            f"(the photo {style.input_sharpness:.2f} x); apart from skin tone "
            f"{style.tone_free_sharpness:.2f} x (the photo {style.input_tone_free_sharpness:.2f} x)",
        ]
    return "\n".join(
        [
            f"{report.name}: {report.faces} crops, {report.seconds_per_crop * 1000:.0f} ms/crop",
            f"  identity  mean distance {_number(identity.mean_distance)}, "
            f"under {SAME_PERSON} {_number(identity.share_same * 100, 0)}%, "
            f"closest to own face {_number(identity.share_closest * 100, 0)}%",
            *style_lines,
            f"  tone      face {_signed(report.lightness_shift)} L* lighter than the photo's "
            "(median; 0 = the person's own lightness)",
            f"  head      {report.head_share * 100:.0f}% restyled (hair included)",
            *_full_resolution_lines(report),
            f"  temporal  warping error {_number(temporal.output_error, 2)} "
            f"(input {_number(temporal.input_error, 2)}, ratio {_number(temporal.ratio, 2)}; "
            f"per unit of detail {_number(temporal.detail_ratio, 2)})",
        ]
    )


def _signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1f}"


def _json_safe(value: object) -> object:
    """NaN (an undefined figure) as JSON ``null``, so strict parsers accept the output."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def run(args: argparse.Namespace) -> int:
    stylizers, exemplar = _stylizers(args)
    with tempfile.TemporaryDirectory(prefix="facestyle-eval-") as scratch:
        clip = args.clip or generated_clip(Path(scratch) / "clip.mp4", args.frames)
        # Keyframes are painted at the teacher's side only, as in a render.
        half_crops = args.half_crops and not args.keyframes
        tracks = _tracks(clip, args.frames, args.every, half_crops)
        coverage = _coverage(clip, args.frames) if args.coverage else None
    stylizers = _with_identity(stylizers, args.identity)
    reports = [
        evaluate_stylizer(
            s,
            tracks,
            exemplar,
            compositor=Compositor(args.mask, device="cpu", fine_detail=args.fine_detail),
            every=args.every,
            # The teacher, a still-image tool that render never runs, takes full crops only.
            half_crops=half_crops and not isinstance(s.wrapped, TeacherStylizer),
        )
        for s in stylizers
    ]
    enlarged = float(np.median([magnification(c.matrix) for t in tracks for c in t.crops]))
    if args.json:
        data = {
            "clip": str(args.clip or "generated"),
            "faces": len(tracks),
            "enlarged": enlarged,
            "coverage": _json_safe(coverage.as_dict()) if coverage else None,
            "styles": [_json_safe(r.as_dict()) for r in reports],
        }
        print(json.dumps(data, indent=2))
    else:
        print(
            f"clip: {args.clip or 'generated'}, {counted(len(tracks), 'tracked face')}, "
            f"shown enlarged {enlarged:.2f} x from their crops (median; the figures below are "
            "on the crops but for 'in frame')"
        )
        if coverage:
            print(format_coverage(coverage))
        for report in reports:
            print(format_report(report))
    return 0
