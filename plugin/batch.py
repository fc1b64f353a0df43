"""Render many clips — and long ones in parallel segments — resumably, here or on Ray.

::

    from plugin.batch import BatchSettings, plan_jobs, run_batch
    from plugin.settings import RestyleSettings

    jobs = plan_jobs(["shoot/", "extra/*.mov"], "styled/")
    summary = run_batch(jobs, BatchSettings(RestyleSettings(style="poster")), workers=2)
    print(summary.done, summary.skipped, summary.failed)

Jobs in, summaries out. The output folder keeps a manifest (:mod:`plugin.manifest`) of the
clips finished and what they were made from; a rerun skips those and redoes any whose input,
pack or settings changed. Every file appears under its final name only when complete; a
killed run leaves partial files that the next run removes before it starts. A clip that fails
(damaged, not a video) is reported with its reason and the others go on.

A clip of at least twice ``segment_frames`` frames is cut at keyframes into segments that
render in parallel (:mod:`pipeline.segments`) and are joined without re-encoding; finished
segments are kept in a hidden work folder, so an interrupted long clip resumes from its
last finished segment.
"""

from __future__ import annotations

import glob
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from pipeline.atomic import check_output, remove_partials
from pipeline.errors import Cancelled, FacestyleError, InputError, InputNotFoundError, OutputError
from pipeline.segments import Segment, VideoIndex, join_segments, plan_segments, scan_video
from pipeline.sinks.file import CONTAINERS, DEFAULT_CRF, DEFAULT_PRESET, audio_misfit
from pipeline.video_engines import DECODERS, check_hardware_output, choose_video_engines
from plugin.batch_engines import ENGINES, Outcome, run_local, run_ray
from plugin.batch_work import RenderUnit, encoder_codec
from plugin.manifest import MANIFEST_NAME, ClipKey, Manifest, file_sha256, text_sha256
from plugin.settings import RestyleSettings, resolve_device
from plugin.styles import resolve_style, style_file

__all__ = [
    "OUTPUT_SUFFIXES",
    "VIDEO_SUFFIXES",
    "BatchJob",
    "BatchSettings",
    "BatchSummary",
    "ClipProgress",
    "ClipSummary",
    "plan_jobs",
    "run_batch",
]

# What a folder or pattern contributes: files with these suffixes (any file named directly).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi", ".mts", ".ts", ".mpg")
# Containers an output keeps from its input; anything else becomes .mkv (it takes any audio).
OUTPUT_SUFFIXES = CONTAINERS
WORK_FOLDER = ".facestyle-work"


@dataclass(frozen=True)
class BatchJob:
    """One clip to render: ``input`` into ``output``."""

    input: Path
    output: Path


@dataclass(frozen=True)
class BatchSettings:
    """How every clip of a batch is rendered.

    Attributes:
        restyle: the face stages (style, identity, faces, detection, mask, device); its
            ``style`` must be a name or a pack path (it is hashed and sent to workers). With
            ``device="cuda"`` each Ray task asks for a GPU.
        decoder: ``"auto"``, ``"pyav"`` or ``"nvdec"`` (see :mod:`pipeline.video_engines`).
        encoder: ``"auto"`` (NVENC where the clips are restyled on CUDA and it opens, else
            PyAV's x264), ``"pyav"`` (x264, VP9 for ``.webm``), ``"nvenc"`` (H.264 on the
            GPU, through PyAV) or ``"ffmpeg:CODEC"`` for a system ffmpeg encoder
            (``prores_ks``...). ``auto`` is settled once, where the batch is planned, so
            every segment of a clip is encoded alike.
        crf, preset: x264 (and x265) quality and speed.
        segment_frames: clips with at least twice this many frames are cut into segments of
            about this many frames (at keyframes); 0 never cuts.
        overlap: warm-up frames each segment but the first renders and drops, so tracking
            carries over the cut.

    ``restyle.device``, ``segment_frames`` and ``overlap`` change how a clip is rendered, not
    what comes out (up to codec noise), so changing them does not redo finished clips.

    Raises:
        ValueError: a field is out of range, or ``encoder`` is neither form.
    """

    restyle: RestyleSettings = field(default_factory=RestyleSettings)
    encoder: str = "auto"
    decoder: str = "auto"
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    segment_frames: int = 3000
    overlap: int = 30

    def __post_init__(self) -> None:
        if not isinstance(self.restyle.style, str | Path):
            raise ValueError(
                f"BatchSettings.restyle.style: expected a name or a path, got {self.restyle.style!r}"
            )
        if self.segment_frames < 0 or self.overlap < 0:
            raise ValueError(
                "BatchSettings: expected segment_frames >= 0 and overlap >= 0, got "
                f"{self.segment_frames} and {self.overlap}"
            )
        self.codec  # noqa: B018 - parsing is the check
        if self.decoder not in DECODERS:
            raise ValueError(
                f"BatchSettings.decoder: expected {', '.join(DECODERS)}, got {self.decoder!r}"
            )

    @property
    def codec(self) -> str | None:
        """The system ffmpeg's encoder ``encoder`` names; ``None`` for PyAV's."""
        return encoder_codec(self.encoder)

    def with_engines(self, device: str, check: bool = True) -> BatchSettings:
        """These settings with an ``auto`` decoder and encoder settled for restyling on
        ``device`` (``"cpu"`` or ``"cuda"``), as this machine's video engines allow.

        Raises:
            DeviceError: ``check``, and ``nvdec`` or ``nvenc`` does not open here.
        """

        def asked(choice: str) -> str:
            return choice if check or choice == "auto" else "pyav"

        system_ffmpeg = self.codec is not None
        engines = choose_video_engines(
            device, asked(self.decoder), "pyav" if system_ffmpeg else asked(self.encoder)
        )
        decoder, encoder = self.decoder, self.encoder
        if decoder == "auto":
            decoder = "nvdec" if engines.hardware_decode else "pyav"
        if encoder == "auto":
            encoder = "nvenc" if engines.hardware_encode else "pyav"
        return replace(self, decoder=decoder, encoder=encoder)

    def digest(self) -> str:
        """The SHA-256 of the settings that shape the output (not the style: its file is
        hashed on its own)."""
        restyle = {k: v for k, v in asdict(self.restyle).items() if k not in ("style", "device")}
        shaping = (sorted(restyle.items()), self.encoder, self.crf, self.preset)
        return text_sha256(repr(shaping))


@dataclass(frozen=True)
class ClipSummary:
    """What became of one clip.

    Attributes:
        job: the clip.
        status: ``"done"`` (rendered now), ``"skipped"`` (already done) or ``"failed"``.
        frames: frames in the output.
        seconds: render time, summed over its segments (0 when skipped).
        segments: how many segments it was rendered in.
        error: why it failed, one line.
    """

    job: BatchJob
    status: Literal["done", "skipped", "failed"]
    frames: int = 0
    seconds: float = 0.0
    segments: int = 0
    error: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ClipProgress:
    """How far one clip is; ``summary`` is set once it is finished (done, skipped, failed)."""

    job: BatchJob
    frames: int
    total: int
    summary: ClipSummary | None = None


@dataclass(frozen=True)
class BatchSummary:
    """What a batch did.

    Attributes:
        clips: one summary per job, in the jobs' order.
        seconds: wall time of the whole batch.
    """

    clips: tuple[ClipSummary, ...]
    seconds: float

    def _count(self, status: str) -> int:
        return sum(clip.status == status for clip in self.clips)

    @property
    def done(self) -> int:
        return self._count("done")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def frames(self) -> int:
        """Frames rendered by this run (skipped clips not counted)."""
        return sum(clip.frames for clip in self.clips if clip.status == "done")

    @property
    def fps(self) -> float:
        """Frames rendered per second of wall time, across all workers."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _expand(spec: str | Path) -> list[Path]:
    """The video files a file, folder or glob pattern names, in sorted order."""
    text = str(spec)
    if glob.has_magic(text):
        matches = [Path(p) for p in sorted(glob.glob(text))]
        if not matches:
            raise InputNotFoundError(f"{text}: no file matches this pattern")
        files = [p for p in matches if p.is_file()]
        return files + [f for p in matches if p.is_dir() for f in _expand(p)]
    path = Path(text)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file or folder; check the path")
    return [path]


def plan_jobs(
    inputs: Iterable[str | Path], out_dir: str | Path, *, container: str | None = None
) -> tuple[BatchJob, ...]:
    """One job per video that ``inputs`` name, each with its own output in ``out_dir``.

    An output is named ``NAME-styled.EXT`` after its input, keeping the input's container
    (``.mp4``, ``.mov``, ``.mkv``, ``.webm``; others become ``.mkv``) unless ``container``
    names one. Inputs that would share a name (``a/clip.mp4``, ``b/clip.mp4``) get a short
    hash of their path in it instead, so outputs never collide and a rerun names them alike.

    Args:
        inputs: files, folders (their video files, not recursively) and glob patterns.
        out_dir: the output folder (created by :func:`run_batch`).
        container: ``"mp4"``, ``"mov"``, ``"mkv"`` or ``"webm"`` for every output.

    Raises:
        InputNotFoundError: a path does not exist, or a pattern matches nothing.
        InputError: nothing to render, or an input folder is the output folder.
    """
    out_dir = Path(out_dir)
    if container is not None and f".{container}" not in OUTPUT_SUFFIXES:
        raise ValueError(
            f"plan_jobs: expected a container among {OUTPUT_SUFFIXES}, got {container}"
        )
    seen: dict[Path, Path] = {}
    for spec in inputs:
        if Path(spec).is_dir() and Path(spec).resolve() == out_dir.resolve():
            raise InputError(f"{spec} is the output folder; give --out-dir another folder")
        for path in _expand(spec):
            # A pattern or folder that also matches earlier outputs must not restyle them.
            if path.resolve().parent != out_dir.resolve() or Path(spec) == path:
                seen.setdefault(path.resolve(), path)
    if not seen:
        raise InputError("no video files to render in " + ", ".join(map(str, inputs)))
    names: dict[Path, str] = {}
    for resolved, path in seen.items():
        suffix = f".{container}" if container else path.suffix.lower()
        names[resolved] = f"{path.stem}-styled{suffix if suffix in OUTPUT_SUFFIXES else '.mkv'}"
    taken = [name.lower() for name in names.values()]
    jobs = []
    for resolved, path in seen.items():
        name = names[resolved]
        if taken.count(name.lower()) > 1:
            stem, suffix = name.rsplit("-styled", 1)
            name = f"{stem}-{text_sha256(str(resolved))[:8]}-styled{suffix}"
        jobs.append(BatchJob(path, out_dir / name))
    return tuple(jobs)


@dataclass
class _Clip:
    """A clip being rendered: its units, and their results so far."""

    job: BatchJob
    key: ClipKey
    index: VideoIndex
    segments: tuple[Segment, ...]
    units: tuple[RenderUnit, ...]
    work: Path | None  # where its parts go, if it has parts to join
    frames: dict[RenderUnit, int] = field(default_factory=dict)
    seconds: float = 0.0
    left: int = 0
    error: str | None = None


def _prepare(
    job: BatchJob, key: ClipKey, settings: BatchSettings, work_root: Path
) -> tuple[_Clip, list[RenderUnit]]:
    """Plan a clip's units; the second list holds those still to render (finished parts of
    an interrupted run are kept).

    Raises:
        OutputError: the output's container cannot hold the input's audio.
    """
    index = scan_video(job.input)
    # Found here, not when the finished segments are joined: by then the work is done.
    misfit = audio_misfit(job.input, job.output.suffix) if index.has_audio else None
    if misfit is not None:
        raise OutputError(
            f"a {job.output.suffix} file cannot hold the input's {misfit} audio; use "
            "--container mkv (it takes any audio)"
        )
    segments = plan_segments(
        index,
        settings.segment_frames,
        overlap=settings.overlap,
        align=settings.restyle.detect_every,
    )
    direct = len(segments) == 1 and settings.codec is None
    if direct:  # encoded straight into the output, audio and all
        unit = RenderUnit(job.input, job.output, segments[0], index.has_audio, job.output.name)
        return _Clip(job, key, index, segments, (unit,), None), [unit]
    work = work_root / f"{job.output.name}.{key.digest[:16]}"
    suffix = job.output.suffix if settings.codec is None else ".mkv"
    units = tuple(
        RenderUnit(job.input, work / f"part-{s.number:04d}{suffix}", s, False, job.output.name)
        for s in segments
    )
    return _Clip(job, key, index, segments, units, work), [
        u for u in units if not u.target.exists()
    ]


def _clean_work_root(work_root: Path, clips: Iterable[_Clip], outputs: Iterable[Path]) -> None:
    """Remove the partial files that stopped or killed writers left, parts made from an older
    input, pack or settings of this batch's outputs, and work folders left empty."""
    outputs = list(outputs)
    for output in outputs:
        remove_partials(output)
    if not work_root.is_dir():
        return
    current = {clip.work: clip for clip in clips if clip.work is not None}
    names = {output.name for output in outputs}
    for folder in work_root.iterdir():
        if folder in current:
            for unit in current[folder].units:
                remove_partials(unit.target)
            if not any(folder.iterdir()):
                folder.rmdir()
        elif folder.name.rsplit(".", 1)[0] in names:
            shutil.rmtree(folder, ignore_errors=True)
    if not any(work_root.iterdir()):
        work_root.rmdir()


def run_batch(
    jobs: Sequence[BatchJob],
    settings: BatchSettings = BatchSettings(),
    *,
    workers: int = 1,
    engine: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    progress: Callable[[ClipProgress], None] | None = None,
) -> BatchSummary:
    """Render every job not already done; return what became of each.

    Args:
        jobs: the clips (see :func:`plan_jobs`); their outputs share one folder.
        settings: how to render them.
        workers: local worker processes (``engine="local"``); 1 renders in this process.
        engine: ``"local"`` or ``"ray"``.
        ray_address: the Ray cluster to use (``"auto"``, ``"HOST:6379"``,
            ``"ray://HOST:10001"``); ``None`` joins this process's Ray instance or starts a
            local one.
        progress: called as clips advance and finish (on this thread).

    Raises:
        StyleError: the style cannot be used (checked before any work).
        DeviceError: ffmpeg or the ffmpeg encoder, or Ray, is not available; or, for local
            workers, ``device="cuda"`` on a machine without one, or NVDEC or NVENC asked for
            and not opening.
        OutputError: the output folder or the manifest cannot be written.
        UsageError: ``encoder="nvenc"`` and a ``.webm`` output.
        Cancelled: Ctrl-C; finished clips are kept, partial files removed.
    """
    started = time.perf_counter()
    if engine not in ENGINES or workers < 1:
        raise ValueError(f"run_batch: expected engine in {ENGINES} and workers >= 1")
    folders = {job.output.parent for job in jobs}
    if len(folders) > 1:
        raise ValueError(f"run_batch: expected outputs in one folder, got {sorted(folders)}")
    if not jobs:
        return BatchSummary((), 0.0)
    check_hardware_output(settings.encoder, [job.output for job in jobs])
    if engine == "local":
        # Here, once: a Ray cluster's GPUs are on its nodes, but local workers use this one's.
        settings = settings.with_engines(resolve_device(settings.restyle.device))
    else:
        # Ray's nodes are not this machine: `auto` takes what this one opens, and an engine
        # asked for by name is checked where it runs.
        settings = settings.with_engines(settings.restyle.device, check=False)
    out_dir = folders.pop()
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"cannot write in {out_dir}: it is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {out_dir}: {error.strerror or error}") from error
    # Once, here: otherwise every clip fails on its own, each naming its hidden partial file.
    check_output(out_dir / MANIFEST_NAME)
    style = style_file(settings.restyle.style)
    style_key = (
        file_sha256(style) if style is not None else text_sha256(str(settings.restyle.style))
    )
    # A bad pack fails here, once, not in every worker.
    resolve_style(settings.restyle.style, keyframes=settings.restyle.keyframes)
    if settings.codec is not None:
        from pipeline.sinks.ffmpeg import check_ffmpeg_encoder

        check_ffmpeg_encoder(settings.codec)
    settings_key = settings.digest()
    manifest = Manifest(out_dir)
    work_root = out_dir / WORK_FOLDER

    def report(job: BatchJob, frames: int, total: int, summary: ClipSummary | None) -> None:
        if progress is not None:
            progress(ClipProgress(job, frames, total, summary))

    summaries: dict[BatchJob, ClipSummary] = {}

    def finish(summary: ClipSummary, total: int) -> None:
        summaries[summary.job] = summary
        report(summary.job, summary.frames, total, summary)

    clips: dict[str, _Clip] = {}
    todo: list[RenderUnit] = []
    for job in jobs:
        try:
            key = ClipKey(file_sha256(job.input), style_key, settings_key)
            entry = manifest.done(job.output, key)
            if entry is not None:
                finish(ClipSummary(job, "skipped", entry.frames), entry.frames)
                continue
            clip, units = _prepare(job, key, settings, work_root)
        except (FacestyleError, OSError) as error:
            finish(ClipSummary(job, "failed", error=str(error)), 0)
            continue
        clips[job.output.name] = clip
        clip.left = len(units)
        clip.frames = {u: u.segment.frames for u in clip.units if u not in units}
        todo += units
    _clean_work_root(work_root, clips.values(), [job.output for job in jobs])
    for clip in clips.values():
        if clip.work is not None:
            try:
                clip.work.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise OutputError(
                    f"cannot create {clip.work}: {error.strerror or error}"
                ) from error
        if clip.left == 0:  # every part was finished by an interrupted run: join them
            finish(_complete(clip, manifest), clip.index.frames)

    def on_progress(unit: RenderUnit, frames: int) -> None:
        clip = clips[unit.clip]
        clip.frames[unit] = frames
        report(clip.job, sum(clip.frames.values()), clip.index.frames, None)

    if not todo:
        outcomes = (outcome for outcome in ())
    elif engine == "ray":
        outcomes = run_ray(
            todo, settings, ray_address, settings.restyle.device == "cuda", on_progress
        )
    else:
        outcomes = run_local(todo, settings, min(workers, max(len(todo), 1)), on_progress)
    try:
        with closing(outcomes):
            for outcome in outcomes:
                clip = clips[outcome.unit.clip]
                _account(clip, outcome)
                if clip.left == 0 and clip.job not in summaries:
                    finish(_complete(clip, manifest), clip.index.frames)
        for clip in clips.values():
            if clip.work is not None and summaries[clip.job].status == "failed":
                shutil.rmtree(clip.work, ignore_errors=True)
    except KeyboardInterrupt:
        finished = sum(s.status == "done" for s in summaries.values())
        raise Cancelled(
            f"stopped; {finished} clips finished in this run are kept, rerun to continue"
        ) from None
    finally:
        # The workers are stopped by now; a retried Ray task's first try, or a stopped
        # worker, may have left partial files.
        _clean_work_root(work_root, clips.values(), [job.output for job in jobs])
    ordered = tuple(summaries[job] for job in jobs)
    return BatchSummary(ordered, time.perf_counter() - started)


def _account(clip: _Clip, outcome: Outcome) -> None:
    clip.left -= 1
    if outcome.result is None:
        clip.error = clip.error or outcome.error
        return
    clip.frames[outcome.unit] = outcome.result.frames
    clip.seconds += outcome.result.seconds


def _complete(clip: _Clip, manifest: Manifest) -> ClipSummary:
    """Join a clip whose units are all finished, record it, and summarise it."""
    job, count = clip.job, len(clip.segments)
    if clip.error is not None:
        return ClipSummary(job, "failed", segments=count, error=clip.error)
    try:
        if clip.work is not None:
            parts = [unit.target for unit in clip.units]
            audio = job.input if clip.index.has_audio else None
            join_segments(parts, clip.segments, clip.index, job.output, audio_from=audio)
            shutil.rmtree(clip.work, ignore_errors=True)
        frames = sum(clip.frames.values())
        manifest.record(job.output, job.input, clip.key, frames, clip.seconds)
    except (FacestyleError, OSError) as error:
        return ClipSummary(job, "failed", segments=count, error=str(error))
    return ClipSummary(job, "done", frames, clip.seconds, count)
