"""``facestyle adapt STYLE_IMAGE -o NAME.safetensors``: make a style pack from one portrait."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import replace
from pathlib import Path

from pipeline.detail import (
    DEFAULT_IDENTITY,
    DEFAULT_IDENTITY_SCALE,
    MAX_IDENTITY,
    MAX_IDENTITY_SCALE,
)
from pipeline.errors import OutputError
from plugin.commands._args import (
    add_device_option,
    add_points_option,
    add_quiet_option,
    add_strokes_option,
    bars_disabled,
    number_in,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "adapt",
        help="make a style pack from one style portrait",
        description=(
            "Make a real-time style pack from ONE portrait: the teacher stylizes content faces "
            "by guided patch synthesis, then a small student network learns to do it in "
            "milliseconds. Writes NAME.safetensors and NAME.preview.png beside it."
        ),
    )
    parser.add_argument("style_image", help="the style portrait (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", required=True, help="pack to write, NAME.safetensors")
    parser.add_argument(
        "--content",
        nargs="+",
        default=[],
        metavar="VIDEO|IMAGES",
        help="faces to train on: videos, image folders, globs or images (default: the "
        "public-domain faces facestyle ships, augmented)",
    )
    parser.add_argument(
        "--quality",
        choices=("fast", "default", "best"),
        default="default",
        help="fast: under a minute; default: about 3 minutes; best: about 11 minutes (on 2 "
        "CPU cores; training stops at 35 s, 150 s and 10 minutes, sooner on a GPU)",
    )
    parser.add_argument(
        "--geometry",
        type=number_in(float, 0, 1),
        default=0.0,
        help="0..1: warp faces part-way toward the exemplar's proportions (default 0)",
    )
    add_points_option(
        parser,
        "the style face's left eye, right eye, nose tip, left and right mouth corner "
        "(10 numbers, image pixels) when the face is not found automatically",
    )
    parser.add_argument(
        "--identity",
        type=number_in(float, 0, MAX_IDENTITY),
        default=DEFAULT_IDENTITY,
        help=f"the pack's default identity <-> style strength, 0 (all style) to {MAX_IDENTITY:g} "
        f"(default {DEFAULT_IDENTITY}, chosen with facestyle eval --identity)",
    )
    parser.add_argument(
        "--identity-scale",
        type=number_in(float, 1, MAX_IDENTITY_SCALE),
        default=None,
        metavar="PX",
        help="what identity restores: the person's luminance detail finer than PX pixels of "
        f"a 256 px crop; {DEFAULT_IDENTITY_SCALE:g} fine detail only, 64 the face's light and "
        "shadow too (default: 64 for a colour portrait painted with light and shadow, "
        f"{DEFAULT_IDENTITY_SCALE:g} for flat colour or a monochrome print)",
    )
    add_strokes_option(
        parser,
        "how strongly the pack shows its strokes, 0 (none) to 4 (default 1; bolder strokes "
        "flicker more and want more --identity: choose with facestyle eval --strokes)",
    )
    parser.add_argument(
        "--skin-tone",
        choices=("auto", "keep", "style"),
        default="auto",
        help="keep each face's own skin tone, or take the portrait's (style); auto keeps it "
        "unless the portrait is monochrome (a drawing, an engraving) (auto)",
    )
    parser.add_argument(
        "--palette",
        choices=("auto", "colour", "mono"),
        default="auto",
        help="mono: the portrait is drawn or printed in one ink on its paper (red chalk, "
        "sepia, charcoal, an engraving), and the pack paints in that ink and paper only; "
        "auto tells a grey or evenly tinted print, not a drawing on paper whose tint "
        "varies, which needs mono said (auto)",
    )
    parser.add_argument("--name", help="the pack's name (default: the output file's stem)")
    parser.add_argument("--seed", type=number_in(int, 0), default=0, help="random seed (default 0)")
    add_device_option(parser, "the student trains")
    add_quiet_option(parser, "no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from models.adapt import QUALITIES, adapt, preview_sheet
    from models.exemplar import load_image
    from models.pack import save_pack
    from pipeline.atomic import check_output, write_image

    output = Path(args.output)
    if output.suffix != ".safetensors":
        raise OutputError(f"the pack must be a .safetensors file, got {output}")
    preview = output.with_suffix(".preview.png")
    for path in (output, preview):
        check_output(path)  # before minutes of training, not after them
    from plugin.settings import resolve_device

    device = resolve_device(args.device)  # a missing GPU fails before minutes of work
    style = load_image(args.style_image)
    quality = QUALITIES[args.quality]
    settings = replace(
        quality,
        geometry=args.geometry,
        identity=args.identity,
        identity_scale=args.identity_scale,
        strokes=args.strokes,
        keep_tone={"auto": None, "keep": True, "style": False}[args.skin_tone],
        monochrome={"auto": None, "colour": False, "mono": True}[args.palette],
        seed=args.seed,
        train=replace(quality.train, device=device),
    )
    disable = bars_disabled(args)
    with contextlib.ExitStack() as stack:
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: float, total: float) -> None:
            bar = bars.get(stage)
            if bar is None:
                # A new stage means the others are over: closed now, each bar's time is
                # its own stage's, as the summary counts it.
                for other in bars.values():
                    other.close()
                unit = "%" if stage == "training" else stage
                bar = stack.enter_context(
                    tqdm(
                        total=100 if stage == "training" else int(total),
                        desc=stage,
                        unit=unit,
                        file=sys.stderr,
                        disable=disable,
                        dynamic_ncols=True,
                    )
                )
                bars[stage] = bar
            value = done / total * 100 if stage == "training" else done
            bar.update(round(value, 1) - bar.n)
            if done >= total:
                bar.close()

        result = adapt(
            style,
            settings,
            content=args.content,
            points=args.points,
            name=args.name or output.stem,
            progress=progress,
        )
    save_pack(result.pack, output)
    write_image(preview, preview_sheet(result))
    figures = result.pack.training
    print(
        f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB) and {preview}: "
        f"{figures['faces']} faces, teacher {figures['teacher_seconds']:.0f} s, "
        f"{figures['steps']} training steps in {figures['train_seconds']:.0f} s, "
        f"total {figures['total_seconds']:.0f} s; identity {result.pack.identity:g} at scale "
        f"{result.pack.identity_scale:g}"
    )
    return 0
