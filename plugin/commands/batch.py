"""``facestyle batch INPUTS... --out-dir DIR``: restyle many clips, resumably, here or on Ray."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from plugin.commands._args import (
    add_encoder_options,
    add_engine_options,
    add_quiet_option,
    add_restyle_options,
    bars_disabled,
    number_in,
    restyle_settings,
)
from plugin.styles import DEFAULT_STYLE

if TYPE_CHECKING:
    from plugin.batch import BatchSummary

__all__ = ["add_parser", "format_summary", "run"]

_DEFAULT_JOBS = max(1, (os.cpu_count() or 1) // 2)  # a render keeps about two cores busy


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="restyle many clips into a folder, resumably, here or on a Ray cluster",
        description=(
            "Restyle every clip named (files, folders, glob patterns) into --out-dir. A rerun "
            "skips finished clips and redoes those whose input, style or settings changed; "
            "long clips are cut at keyframes and rendered in parallel. The exit status is 1 "
            "when any clip failed."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video, folder or pattern")
    parser.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the outputs (NAME-styled.EXT each) and the manifest that lets a rerun "
        "skip finished clips; made if missing",
    )
    add_restyle_options(parser, DEFAULT_STYLE)
    parser.add_argument(
        "--jobs",
        type=number_in(int, 1),
        default=_DEFAULT_JOBS,
        metavar="N",
        help=f"local worker processes ({_DEFAULT_JOBS} here: half the cores)",
    )
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="where clips render: local, in --jobs worker processes here (default), or ray, as "
        "tasks on the cluster --ray-address names",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster: auto, HOST:6379 or ray://HOST:10001 (default: a local Ray)",
    )
    parser.add_argument(
        "--container",
        choices=("mp4", "mov", "mkv", "webm"),
        help="output container (default: the input's; .mkv for others)",
    )
    add_engine_options(parser, system_ffmpeg=True)
    add_encoder_options(parser)
    parser.add_argument(
        "--segment-frames",
        type=number_in(int, 0),
        default=3000,
        metavar="N",
        help="cut clips of at least 2N frames into segments of about N, rendered in "
        "parallel (3000; 0: never)",
    )
    parser.add_argument(
        "--overlap",
        type=number_in(int, 0),
        default=30,
        metavar="N",
        help="warm-up frames rendered and dropped before each segment (30)",
    )
    add_quiet_option(parser, "no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from plugin.batch import BatchSettings, ClipProgress, plan_jobs, run_batch

    settings = BatchSettings(
        restyle_settings(args),
        encoder=args.encoder,
        decoder=args.decoder,
        crf=args.crf,
        preset=args.preset,
        segment_frames=args.segment_frames,
        overlap=args.overlap,
    )
    jobs = plan_jobs(args.inputs, args.out_dir, container=args.container)
    quiet = bars_disabled(args)
    overall = tqdm(total=0, unit="frame", desc="batch", disable=quiet, dynamic_ncols=True)
    bars: dict[Path, tqdm] = {}
    done: dict[Path, int] = {}

    def progress(step: ClipProgress) -> None:
        output = step.job.output
        if step.summary is None:
            if output not in bars:
                overall.total += step.total
                bars[output] = tqdm(
                    total=step.total,
                    unit="frame",
                    desc=step.job.input.name,
                    position=len(bars) + 1,
                    disable=quiet,
                    leave=False,
                    dynamic_ncols=True,
                )
            bars[output].update(step.frames - bars[output].n)
            overall.update(step.frames - done.get(output, 0))
            done[output] = step.frames
            return
        if output in bars:
            bars.pop(output).close()
        summary = step.summary
        line = f"{summary.status:<8} {summary.job.input}"
        line += " (reason at the end)" if summary.error else f" -> {summary.job.output}"
        (overall.write if not overall.disable else print)(line)

    with overall:
        summary = run_batch(
            jobs,
            settings,
            workers=args.jobs,
            engine=args.engine,
            ray_address=args.ray_address,
            progress=progress,
        )
    print(format_summary(summary))
    for clip in summary.clips:
        if clip.status == "failed":
            print(f"facestyle: failed: {clip.job.input}: {clip.error}", file=sys.stderr)
    return 1 if summary.failed else 0


def format_summary(summary: BatchSummary) -> str:
    """A :class:`plugin.batch.BatchSummary` as a table: one row per clip and a total."""
    width = max([4, *(len(clip.job.input.name) for clip in summary.clips)])
    rows = [f"{'clip':<{width}}  {'status':<7}  {'frames':>7}  {'fps':>6}  output"]
    for clip in summary.clips:
        fps = f"{clip.fps:6.1f}" if clip.status == "done" else f"{'-':>6}"
        frames = f"{clip.frames:7d}" if clip.status != "failed" else f"{'-':>7}"
        where = clip.job.output if clip.status != "failed" else "(failed; see below)"
        rows.append(f"{clip.job.input.name:<{width}}  {clip.status:<7}  {frames}  {fps}  {where}")
    rows.append(
        f"{summary.done} done, {summary.skipped} skipped, {summary.failed} failed; "
        f"{summary.frames} frames rendered in {summary.seconds:.1f} s "
        f"({summary.fps:.1f} fps across all workers)"
    )
    return "\n".join(rows)
