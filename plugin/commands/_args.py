"""What the subcommands share: numbers in a range with one message shape, and the options
that make a :class:`~plugin.settings.RestyleSettings`."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np

from models.exemplar import parse_points
from pipeline.detail import MAX_IDENTITY
from pipeline.errors import InputError
from pipeline.sinks.file import DEFAULT_CRF, DEFAULT_PRESET
from plugin.settings import DEVICES, MASKS, RestyleSettings

__all__ = [
    "add_device_option",
    "add_fine_detail_option",
    "add_keyframes_option",
    "add_mask_option",
    "add_points_option",
    "add_quiet_option",
    "add_restyle_options",
    "bars_disabled",
    "counted",
    "number_in",
    "restyle_settings",
]


def number_in(
    kind: type[int] | type[float], low: float | None = None, high: float | None = None
) -> Callable[[str], int | float]:
    """An argparse ``type=`` that parses ``kind`` and checks ``low <= value <= high``.

    >>> number_in(int, 1)("3")
    3
    >>> number_in(float, 0, 1)("1.5")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: expected a number from 0 to 1, got 1.5
    """
    what = "a whole number" if kind is int else "a number"
    if high is None:
        expected = f"{what} >= {low}"
    elif low is None:
        expected = f"{what} <= {high}"
    else:
        expected = f"{what} from {low} to {high}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}") from None
        # nan compares false with every bound, so it (and inf) is refused on its own.
        out_of_range = (low is not None and value < low) or (high is not None and value > high)
        if out_of_range or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid ..." message
    return parse


def add_restyle_options(
    parser: argparse.ArgumentParser,
    default_style: str | None,
    style_help: str | None = None,
) -> None:
    """The options every command that restyles a stream shares (render, live, bench): one
    per :class:`RestyleSettings` field a user sets; :func:`restyle_settings` reads them."""
    parser.add_argument(
        "--style",
        default=default_style,
        metavar="NAME|PACK",
        help=style_help
        or f"style name or .safetensors pack, or with --keyframes an artwork image (default: "
        f"{default_style})",
    )
    parser.add_argument(
        "--identity",
        type=number_in(float, 0, MAX_IDENTITY),
        metavar="K",
        help=f"keep the person's fine detail: 0 pure style, about 1 clearly them, at most "
        f"{MAX_IDENTITY:g} (default: the style's own; 0.35-0.75 for the bundled packs, 0 for "
        "cartoon)",
    )
    add_strokes_option(
        parser,
        "a pack's stroke strength times K: 0 none, 1 the pack's own (default; facestyle "
        "packs lists it as 'own strokes'); bolder is less steady and less like the person",
    )
    add_keyframes_option(parser)
    parser.add_argument(
        "--max-faces", type=number_in(int, 1), default=16, metavar="N", help="faces per frame (16)"
    )
    parser.add_argument(
        "--detect-every",
        type=number_in(int, 1),
        default=10,
        metavar="N",
        help="run the face detector every N frames (10); higher: less work and fewer latency "
        "spikes, new faces found later",
    )
    add_mask_option(parser)
    add_fine_detail_option(parser)
    add_skin_hue_option(parser)
    add_full_crops_option(parser)
    add_device_option(parser, "the work runs")


def add_keyframes_option(parser: argparse.ArgumentParser) -> None:
    """``--keyframes N`` (default 0): see :attr:`plugin.settings.RestyleSettings.keyframes`."""
    parser.add_argument(
        "--keyframes",
        type=number_in(int, 0),
        default=0,
        metavar="N",
        help="paint each face with the pack's teacher from its artwork every N frames and "
        "carry the painting between: the artist's own marks, about a second a face for its "
        "first keyframe and a third of that after, on a thread of its own when live (8 is a "
        "good start; default 0: the real-time student)",
    )


def add_skin_hue_option(parser: argparse.ArgumentParser) -> None:
    """``--skin-hue K``, 0 to 1 (default 0): see
    :attr:`plugin.settings.RestyleSettings.skin_hue`."""
    parser.add_argument(
        "--skin-hue",
        type=number_in(float, 0, 1),
        default=0.0,
        metavar="K",
        help="with a pack that keeps skin tone, move each face's colour from the painter's "
        "skin toward the person's own, at the same lightness: 0 (the painter's, default) "
        "to 1 (the person's)",
    )


def add_strokes_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--strokes K``, 0 to 4 (default 1): a pack's canvas strength, see
    :attr:`plugin.settings.RestyleSettings.strokes`."""
    parser.add_argument(
        "--strokes", type=number_in(float, 0, 4), default=1.0, metavar="K", help=help_text
    )


def restyle_settings(args: argparse.Namespace, style: str | None = None) -> RestyleSettings:
    """The settings :func:`add_restyle_options` parsed; ``style`` replaces ``args.style``."""
    return RestyleSettings(
        style=style or args.style,
        identity=args.identity,
        strokes=args.strokes,
        skin_hue=args.skin_hue,
        keyframes=args.keyframes,
        max_faces=args.max_faces,
        detect_every=args.detect_every,
        mask=args.mask,
        fine_detail=args.fine_detail,
        half_crops=args.half_crops,
        device=args.device,
    )


def add_quiet_option(parser: argparse.ArgumentParser, help_text: str = "no progress bar") -> None:
    """``-q/--quiet``; :func:`bars_disabled` reads it."""
    parser.add_argument("-q", "--quiet", action="store_true", help=help_text)


def bars_disabled(args: argparse.Namespace) -> bool | None:
    """tqdm's ``disable=`` for a command's progress bars: ``True`` under ``-q``, else
    ``None``, which draws them only when their stream (stderr) is a terminal: a log, a pipe
    or a test would get a line per refresh."""
    return True if args.quiet else None


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless one.

    >>> counted(1, "face"), counted(0, "face"), counted(3, "frame")
    ('1 face', '0 faces', '3 frames')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _five_points(text: str) -> np.ndarray:
    """An argparse ``type=`` for ``--points``: a malformed list is a usage error (exit 2)."""
    try:
        return parse_points(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_points_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--points X,Y,...``: five points of a style portrait whose face is not detected,
    parsed into a ``(5, 2)`` array (see :func:`models.exemplar.parse_points`)."""
    parser.add_argument("--points", type=_five_points, metavar="X,Y,...", help=help_text)


def add_device_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--device auto|cpu|cuda``: where ``what`` (e.g. "the work runs")."""
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help=f"where {what}: auto (CUDA when PyTorch sees one), cpu or cuda (auto)",
    )


def add_mask_option(parser: argparse.ArgumentParser) -> None:
    """``--mask head|face|crop``: how much of the stylized crop is blended back."""
    parser.add_argument(
        "--mask",
        choices=MASKS,
        default="head",
        help="blend the whole head with its hair and neck (a matte that follows them), the "
        "face inside its landmarks only, or the whole aligned square (head)",
    )


def add_full_crops_option(parser: argparse.ArgumentParser) -> None:
    """``--full-crops`` (``args.half_crops`` false): see
    :attr:`plugin.settings.RestyleSettings.half_crops`."""
    parser.add_argument(
        "--full-crops",
        dest="half_crops",
        action="store_false",
        help="stylize small faces (under about 65 px) at the full crop side too: a little "
        "more like the person, half the frame rate in a crowd",
    )


def add_fine_detail_option(parser: argparse.ArgumentParser) -> None:
    """``--no-fine-detail`` (``args.fine_detail``): see
    :attr:`plugin.settings.RestyleSettings.fine_detail`."""
    parser.add_argument(
        "--no-fine-detail",
        dest="fine_detail",
        action="store_false",
        help="show faces larger than their 256 px crop as soft as the crop (by default the "
        "frame's own fine detail is put back where the style follows the photo)",
    )


PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)


def add_engine_options(parser: argparse.ArgumentParser, system_ffmpeg: bool = False) -> None:
    """``--decoder`` and ``--encoder``: the CPU's codecs or the GPU's video engines (with
    ``system_ffmpeg``, ``--encoder`` also takes ``ffmpeg:CODEC``)."""
    from pipeline.video_engines import DECODERS, ENCODERS

    parser.add_argument(
        "--decoder",
        choices=DECODERS,
        default="auto",
        help="what decodes the input video: auto (the GPU's NVDEC with --device cuda where "
        "it opens, else pyav), pyav (software) or nvdec (auto)",
    )
    kinds = "|".join(ENCODERS) + ("|ffmpeg:CODEC" if system_ffmpeg else "")
    parser.add_argument(
        "--encoder",
        type=_system_encoder if system_ffmpeg else None,
        choices=None if system_ffmpeg else ENCODERS,
        default="auto",
        metavar=kinds,
        help="what encodes the output: auto (the GPU's NVENC with --device cuda where it "
        "opens, else pyav), pyav (x264 in software; VP9 for .webm) or nvenc (H.264 on the GPU)"
        + (", or a system ffmpeg's encoder, e.g. ffmpeg:prores_ks" if system_ffmpeg else "")
        + " (auto)",
    )


def add_encoder_options(parser: argparse.ArgumentParser) -> None:
    """``--crf`` and ``--preset``: the quality and speed of a written video."""
    parser.add_argument(
        "--crf",
        type=number_in(int, 0, 51),
        default=DEFAULT_CRF,
        metavar="N",
        help=f"x264 quality, 0-51, NVENC's too ({DEFAULT_CRF})",
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default=DEFAULT_PRESET,
        metavar="P",
        help=f"x264 speed, {PRESETS[0]} ... {PRESETS[-1]}; slower makes smaller files "
        f"({DEFAULT_PRESET})",
    )


def _system_encoder(text: str) -> str:
    from plugin.batch_work import encoder_codec

    try:
        encoder_codec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text
