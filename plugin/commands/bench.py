"""``facestyle bench``: per-stage speed of a render beside the I/O floor of the same run."""

from __future__ import annotations

import argparse
import json

from pipeline.sinks.file import DEFAULT_PRESET

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure render speed per stage",
        description=(
            "Render a generated 640x480 one-face clip (or CLIP); print ms/frame per stage and end-to-end "
            "fps beside the decode+encode floor measured in the same run."
        ),
    )
    parser.add_argument(
        "clip", nargs="?", help="a video to measure instead of the generated clip (all of it)"
    )
    parser.add_argument(
        "--frames", type=int, default=150, help="generated clip length in frames (150)"
    )
    parser.add_argument(
        "--style",
        default=None,
        help="style to render with (default: cartoon, the classical one; --live: the default pack)",
    )
    parser.add_argument(
        "--preset", default=DEFAULT_PRESET, help=f"x264 preset of both runs ({DEFAULT_PRESET})"
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument(
        "--live",
        action="store_true",
        help="also measure the live path (sustained fps and added latency)",
    )
    parser.add_argument(
        "--live-seconds", type=float, default=None, help="length of each live run (8)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from plugin.bench import format_bench, run_bench

    result = run_bench(args.frames, args.style or "cartoon", args.preset, args.clip)
    if args.live:
        from plugin.bench_live import run_live_bench

        result["live"] = run_live_bench(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_bench(result))
    if args.live:
        from plugin.bench_live import format_live_bench

        print()
        print(format_live_bench(result["live"]))
    return 0
