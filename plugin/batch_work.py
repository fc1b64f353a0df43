"""One unit of batch work — a whole clip or one segment of it — as a worker renders it.

This runs in whichever process the engine chose (the batch's own, a local worker process, a
Ray worker on another machine), so everything it needs travels in its arguments: the unit,
the settings, and a callback or queue for progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline.errors import Cancelled
from pipeline.runner import Runner, RunStats
from pipeline.segments import Segment, WarmUpSink, segment_frames
from pipeline.sinks.base import Sink
from pipeline.sources.video import VideoFileSource
from pipeline.video_engines import ENCODERS

if TYPE_CHECKING:
    from plugin.batch import BatchSettings

__all__ = [
    "QueueReporter",
    "RenderUnit",
    "UnitResult",
    "configure_threads",
    "encoder_codec",
    "render_unit",
]

_REPORT_EVERY = 0.5  # seconds between progress messages from a worker


def encoder_codec(text: str) -> str | None:
    """The system ffmpeg's codec an ``--encoder`` value names: ``None`` for PyAV's encoders
    (``"auto"``, ``"pyav"``, ``"nvenc"``: see :data:`pipeline.video_engines.ENCODERS`),
    ``CODEC`` for ``"ffmpeg:CODEC"``.

    >>> encoder_codec("ffmpeg:prores_ks")
    'prores_ks'

    Raises:
        ValueError: anything else.
    """
    if text in ENCODERS:
        return None
    kind, _, codec = text.partition(":")
    if kind != "ffmpeg" or not codec:
        raise ValueError(
            f"expected {', '.join(ENCODERS)} or ffmpeg:CODEC (e.g. ffmpeg:prores_ks), got {text}"
        )
    return codec


@dataclass(frozen=True)
class RenderUnit:
    """One piece of work.

    Attributes:
        input: the video file.
        target: the file this unit writes: the clip's final output (a whole clip encoded
            by PyAV, audio included), or a video-only part that is joined afterwards.
        segment: the frames rendered.
        audio: copy the input's audio into ``target``.
        clip: the name progress is reported under (the clip's output file name).
    """

    input: Path
    target: Path
    segment: Segment
    audio: bool
    clip: str


@dataclass(frozen=True)
class UnitResult:
    """What a unit did: frames written and seconds it took."""

    frames: int
    seconds: float


class Report(Protocol):
    def __call__(self, unit: RenderUnit, frames: int) -> None: ...


class QueueReporter:
    """Sends ``(unit, frames written)`` to a queue another process reads (a
    ``multiprocessing`` manager's queue, or Ray's); picklable, so it travels with the work."""

    def __init__(self, queue) -> None:
        self.queue = queue

    def __call__(self, unit: RenderUnit, frames: int) -> None:
        self.queue.put_nowait((unit, frames))


def configure_threads(threads: int) -> None:
    """Give OpenCV ``threads`` threads per call in this process: its share of the cores.

    OpenCV's default, one thread per core, is right for one render alone; with several
    renders sharing the cores they would oversubscribe them. The student's PyTorch runs on
    one intra-op thread in every process anyway (:mod:`plugin.threads`).
    """
    import cv2

    cv2.setNumThreads(threads)


def render_unit(
    unit: RenderUnit,
    settings: BatchSettings,
    report: Report | None = None,
    threads: int | None = None,
) -> UnitResult:
    """Render one unit into ``unit.target`` (which appears only when complete).

    Args:
        unit: what to render.
        settings: a :class:`plugin.batch.BatchSettings`.
        report: called with frames written about twice a second.
        threads: OpenCV threads for this process (see :func:`configure_threads`); ``None``
            leaves them as they are.

    Raises:
        InputError, OutputError, StyleError, DeviceError: as a render would.
    """
    from plugin.settings import build_restyler

    if threads is not None:
        configure_threads(threads)
    restyler = build_restyler(settings.restyle)
    segment = unit.segment
    warm_up = segment.start - segment.warm

    def progress(stats: RunStats) -> None:
        if report is not None:
            report(unit, max(0, stats.written - warm_up))

    hardware = settings.decoder == "nvdec"
    with VideoFileSource(unit.input, start=segment.seek, hardware=hardware) as source:
        sink = _sink(unit, source, settings)
        with WarmUpSink(sink, segment.start) as window:
            runner = Runner(
                segment_frames(source, segment),
                restyler.stages,
                [window],
                on_status=progress,
                status_interval=_REPORT_EVERY,
            )
            result = runner.run()
            if result.interrupted:
                raise Cancelled(f"stopped; nothing was written to {unit.target}")
    return UnitResult(sink.frames_written, result.seconds)


def _sink(unit: RenderUnit, source: VideoFileSource, settings: BatchSettings) -> Sink:
    codec = encoder_codec(settings.encoder)
    if codec is None:
        from pipeline.sinks.file import FileSink

        return FileSink.matching(
            unit.target,
            source,
            audio_from=unit.input if unit.audio else None,
            crf=settings.crf,
            preset=settings.preset,
            hardware=settings.encoder == "nvenc",
        )
    from pipeline.sinks.ffmpeg import FfmpegSink

    return FfmpegSink(
        unit.target,
        source.width,
        source.height,
        fps=source.fps,
        codec=codec,
        crf=settings.crf,
        preset=settings.preset,
    )
