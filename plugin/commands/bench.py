"""``facestyle bench [CLIP]``: per-stage speed of a render beside the I/O floor of the same run,
quiet and beside competing programs (``--load N``)."""

from __future__ import annotations

import argparse
import json

from pipeline.sinks.file import DEFAULT_PRESET
from plugin.commands._args import (
    add_engine_options,
    add_restyle_options,
    number_in,
    restyle_settings,
)
from plugin.settings import DEFAULT_STYLE

__all__ = ["add_parser", "run"]


def _size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT``, both even and at least 64."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT, e.g. 1920x1080, got {text}"
        ) from None
    if min(width, height) < 64 or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"expected even sides of at least 64, got {text}")
    return width, height


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure render speed per stage, quiet and under load",
        description=(
            "Render a clip (your own, or a generated one: 640x480, one moving face); print "
            "ms/frame per stage and end-to-end fps beside the decode+encode floor measured in "
            "the same run; with --load, again beside competing programs, as ratios to the "
            "quiet run."
        ),
    )
    parser.add_argument("clip", nargs="?", help="a video to measure on (default: a generated clip)")
    parser.add_argument(
        "--frames",
        type=number_in(int, 2),
        help="most frames rendered (default: all of CLIP, 150 generated)",
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=(640, 480),
        metavar="WxH",
        help="the generated clip's size (640x480)",
    )
    parser.add_argument(
        "--faces",
        type=number_in(int, 1, 8),
        default=1,
        metavar="N",
        help="faces in the generated clip, side by side (1)",
    )
    parser.add_argument(
        "--load",
        type=number_in(int, 0, 16),
        default=0,
        metavar="N",
        help="also measure beside N competing processes: a PyTorch job running small "
        "convolutions, then busy loops (0)",
    )
    parser.add_argument(
        "--rounds",
        type=number_in(int, 1, 20),
        default=1,
        metavar="N",
        help="measure N times, each quiet run followed by its loaded one with --load (and so "
        "each --live session), and report the median round and the median of the rounds' "
        "ratios: on a shared machine one pair's ratio swings by a tenth; --batch runs once (1)",
    )
    add_restyle_options(
        parser,
        None,
        style_help="style to render with (default: cartoon, the classical one; --live: "
        f"{DEFAULT_STYLE})",
    )
    parser.add_argument(
        "--preset", default=DEFAULT_PRESET, help=f"x264 preset of every run ({DEFAULT_PRESET})"
    )
    add_engine_options(parser)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument(
        "--live",
        action="store_true",
        help="also measure the live path (sustained fps and added latency): CLIP played at "
        "its own rate as the camera, or generated clips at 640x480 and 1280x720",
    )
    parser.add_argument(
        "--live-seconds",
        type=number_in(float, 1),
        default=8.0,
        metavar="S",
        help="length of each live run (8)",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="measure batch throughput instead: copies of the generated clip (--size, "
        "--faces) with --jobs 1, --jobs N and --engine ray (local), as ratios to --jobs 1",
    )
    parser.add_argument(
        "--clips", type=number_in(int, 1), default=4, help="clips in the --batch batch (4)"
    )
    parser.add_argument(
        "--jobs",
        type=number_in(int, 1),
        default=2,
        metavar="N",
        help="worker processes of --batch's second run (2)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from plugin.bench import format_bench, run_bench

    if args.batch:
        from plugin.batch import BatchSettings
        from plugin.bench_batch import format_batch_bench, run_batch_bench

        settings = BatchSettings(
            restyle_settings(args, args.style or "cartoon"),
            preset=args.preset,
            decoder=args.decoder,
            encoder=args.encoder,
        )
        batch = run_batch_bench(
            settings,
            args.clips,
            args.frames or 150,
            size=args.size,
            faces=args.faces,
            jobs=args.jobs,
        )
        print(json.dumps(batch, indent=2) if args.json else format_batch_bench(batch))
        return 0
    result = run_bench(
        restyle_settings(args, args.style or "cartoon"),
        args.clip,
        frames=args.frames,
        preset=args.preset,
        decoder=args.decoder,
        encoder=args.encoder,
        load=args.load,
        size=args.size,
        faces=args.faces,
        rounds=args.rounds,
    )
    if args.live:
        from plugin.bench_live import run_live_bench

        settings = restyle_settings(args, args.style or DEFAULT_STYLE)
        result["live"] = run_live_bench(
            settings, args.live_seconds, load=args.load, clip=args.clip, rounds=args.rounds
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_bench(result))
    if args.live:
        from plugin.bench_live import format_live_bench

        print()
        print(format_live_bench(result["live"]))
    return 0
