"""``facestyle render IN -o OUT``: restyle every face in a video file."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from pipeline.errors import UsageError
from pipeline.sinks.file import CONTAINERS
from plugin.commands._args import (
    add_encoder_options,
    add_engine_options,
    add_quiet_option,
    add_restyle_options,
    bars_disabled,
    counted,
    restyle_settings,
)
from plugin.settings import DEFAULT_STYLE, resolve_device

__all__ = ["add_parser", "batch_hint", "run"]

SAMPLE_OUTPUT = "sample-styled.mp4"

# One render on a GPU is held by its per-face CPU work behind one GIL; on a many-core machine
# `batch` renders one file as segments in worker processes, each with its own. On an H200
# with 16 cores a 1500-frame 1080p file with four faces rendered at 44.9 fps that way against
# 10.5 fps as one render; eight workers were the most that paid, and each worker's start-up
# (about 10 s) wants a few hundred frames to amortise.
_HINT_CORES = 8
_HINT_FRAMES = 600
_HINT_JOBS = 8


def batch_hint(input_path: str, device: str, frames: int, cores: int | None) -> str | None:
    """The ``facestyle batch`` command that renders ``input_path`` faster on this machine,
    if one would: a CUDA render of at least 600 frames on 8 cores or more; else ``None``."""
    if device != "cuda" or cores is None or cores < _HINT_CORES or frames < _HINT_FRAMES:
        return None
    jobs = min(_HINT_JOBS, cores // 2)
    segment = math.ceil(frames / jobs)
    return (
        f"Faster on this machine: facestyle batch {input_path} --out-dir DIR --jobs {jobs} "
        f"--segment-frames {segment} --device cuda and your style options (one file in {jobs} "
        "parallel segments)"
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="restyle every face in a video file",
        description="Restyle every face in a video; frames, timing and audio stay as they were.",
    )
    parser.add_argument(
        "input",
        nargs="?",
        help="video file, image folder, glob pattern or image; 'sample' for the bundled clip",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="OUT", help=f"output video ({', '.join(CONTAINERS)})"
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help=f"render the bundled sample clip (output defaults to {SAMPLE_OUTPUT})",
    )
    add_restyle_options(parser, DEFAULT_STYLE)
    add_engine_options(parser)
    add_encoder_options(parser)
    parser.add_argument(
        "--sheet", type=Path, metavar="SHEET.png", help="also write a before/after sheet"
    )
    parser.add_argument(
        "--preview", type=Path, metavar="SHEET.png", help="deprecated name of --sheet"
    )
    add_quiet_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from plugin.api import render
    from plugin.sample import SAMPLE_NAME, sample_path

    if args.sample or args.input == SAMPLE_NAME:
        source = SAMPLE_NAME
        output = args.output or Path(SAMPLE_OUTPUT)
        if not sample_path().is_file():
            print(f"Generating the sample clip into {sample_path().parent} (first use only)...")
    elif args.input is None:
        raise UsageError("give an input video (or --sample)")
    elif args.output is None:
        raise UsageError("give the output video with -o OUT.mp4")
    else:
        source, output = args.input, args.output
    if args.preview is not None:
        print("facestyle render: --preview is now --sheet", file=sys.stderr)

    with tqdm(unit="frame", disable=bars_disabled(args), dynamic_ncols=True, leave=False) as bar:

        def progress(step) -> None:
            if bar.total is None and step.total:
                bar.total = step.total
            bar.update(step.frames - bar.n)

        summary = render(
            source,
            output,
            style=restyle_settings(args),
            crf=args.crf,
            preset=args.preset,
            decoder=args.decoder,
            encoder=args.encoder,
            sheet=args.sheet or args.preview,
            progress=progress,
        )
    print(
        f"Rendered {counted(summary.frames, 'frame')} with style {summary.style}: "
        f"{counted(summary.faces_tracked, 'face')} tracked, {summary.mean_fps:.1f} fps mean "
        f"({summary.seconds:.1f} s)"
    )
    if summary.device == "cuda":
        print(f"Video {summary.engines.describe()}")
    print(f"Output: {summary.output.resolve()}")
    if summary.sheet is not None:
        print(f"Sheet: {summary.sheet.resolve()}")
    hint = batch_hint(str(source), resolve_device(args.device), summary.frames, os.cpu_count())
    if hint is not None:
        print(hint)
    return 0
