"""The Python API a host program calls: restyle frames one at a time, or render a whole file.

::

    from plugin.api import FaceStylizer, LiveOutputs, LiveSession, render

    stylizer = FaceStylizer(style="cartoon", identity=0.5)
    for image in camera:                       # (H, W, 3) uint8 RGB
        show(stylizer.process(image))          # same shape, faces restyled

    summary = render("talk.mp4", "talk-styled.mp4", style="cartoon", sheet="sheet.png")
    print(summary.frames, summary.mean_fps, summary.output)

    LiveSession("0", RestyleSettings("engraving"), LiveOutputs(vcam=True)).run()  # until Ctrl-C
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, overload

import numpy as np

from pipeline.atomic import check_output
from pipeline.errors import Cancelled, OutputError
from pipeline.frame import Frame
from pipeline.restyle import Stylized
from pipeline.runner import Progress, Runner, RunStats, ctrl_c_calls
from pipeline.sinks.file import CONTAINERS, DEFAULT_CRF, DEFAULT_PRESET, FileSink
from pipeline.sources import VideoFileSource, open_source
from pipeline.stylizer import Stylizer
from pipeline.video_engines import VideoEngines, check_hardware_output, choose_video_engines
from plugin.live import LiveOutputs, LiveSession
from plugin.sample import SAMPLE_NAME, sample_clip
from plugin.settings import DEFAULT_STYLE, RestyleSettings, build_restyler, resolve_device
from plugin.sheet import pick_sheet_indices, save_sheet

__all__ = [
    "DEFAULT_STYLE",
    "FaceStylizer",
    "LiveOutputs",
    "LiveSession",
    "Progress",
    "RenderSummary",
    "RestyleSettings",
    "render",
]

# Seconds between progress reports of a render (a progress bar redraws about this often).
_PROGRESS_SECONDS = 0.1


def _settings(
    style: str | Path | Stylizer | RestyleSettings, options: dict[str, Any]
) -> RestyleSettings:
    """``style`` with ``options`` (other :class:`RestyleSettings` fields) applied."""
    if isinstance(style, RestyleSettings):
        return replace(style, **options)
    return RestyleSettings(style, **options)


class FaceStylizer:
    """Restyles every face in a stream of frames, keeping track state between calls.

    Args:
        style: a style spec (see :func:`plugin.styles.resolve_style`), a ready stylizer, or a
            whole :class:`RestyleSettings`.
        fps: frame rate assumed for bare arrays given without a time (smoothing uses it).
        **options: any other :class:`RestyleSettings` field — ``identity``, ``max_faces``,
            ``detect_every``, ``mask``, ``channels`` (``"bgr"`` for OpenCV hosts),
            ``device`` — overriding ``style``'s when that is a settings object.

    Attributes:
        settings: what this stylizer was built from.
        style: the stylizer's name.

    Raises:
        StyleError: the style cannot be used.
        DeviceError: ``device="cuda"`` on a machine without one.
        ValueError: an option is out of range.
    """

    def __init__(
        self,
        style: str | Path | Stylizer | RestyleSettings = DEFAULT_STYLE,
        *,
        fps: float = 30.0,
        **options: Any,
    ) -> None:
        self.settings = _settings(style, options)
        self._restyler = build_restyler(self.settings)
        self.style = self._restyler.stylizer.name
        self.fps = fps
        self._count = 0

    @overload
    def process(self, frame: np.ndarray, time: float | None = None) -> np.ndarray: ...

    @overload
    def process(self, frame: Frame, time: float | None = None) -> Frame: ...

    def process(self, frame: np.ndarray | Frame, time: float | None = None) -> np.ndarray | Frame:
        """Restyle one frame.

        Args:
            frame: a :class:`Frame` (RGB), or an ``(H, W, 3)`` ``uint8`` array in the colour
                order of ``settings.channels`` (RGB unless ``channels="bgr"``).
            time: seconds since the stream began, for bare arrays; ``None`` assumes ``fps``.

        Returns:
            The same type: a new :class:`Frame` (same time and pts), or an ``(H, W, 3)``
            ``uint8`` array in the same colour order. Frames without a visible face come back
            unchanged (the very same object).
        """
        if isinstance(frame, Frame):
            self._count += 1
            return self._restyler.process(frame)
        bgr = self.settings.channels == "bgr"
        shown = self._count / self.fps if time is None else time
        given = Frame(np.ascontiguousarray(frame[:, :, ::-1]) if bgr else frame, shown, self._count)
        result = self._restyler.process(given)
        self._count += 1
        if result is given:
            return frame
        return np.ascontiguousarray(result.image[:, :, ::-1]) if bgr else result.image

    def reset(self) -> None:
        """Forget all tracks and state: call before an unrelated clip or camera."""
        self._restyler.reset()
        self._count = 0

    @property
    def faces_tracked(self) -> int:
        """How many distinct face tracks have been restyled since the last reset."""
        return len(self._restyler.track_ids)

    @property
    def stage_ms(self) -> dict[str, float]:
        """Milliseconds per frame spent in each face stage since the last reset."""
        return self._restyler.timings.ms_per_frame()


@dataclass(frozen=True)
class RenderSummary:
    """What :func:`render` did.

    Attributes:
        output: the finished video.
        frames: frames written (equal to the input's).
        faces_tracked: distinct face tracks restyled.
        mean_fps: frames per second over the whole run.
        seconds: wall time of the run.
        style: the stylizer's name.
        stage_ms: milliseconds per frame per stage (decode, face stages, encode).
        sheet: the before/after sheet, if one was asked for.
        engines: what decoded and encoded the video (the CPU's codecs, or the GPU's).
        device: where the restyling ran, ``"cpu"`` or ``"cuda"``.
    """

    output: Path
    frames: int
    faces_tracked: int
    mean_fps: float
    seconds: float
    style: str
    stage_ms: dict[str, float]
    sheet: Path | None = None
    engines: VideoEngines = field(default_factory=VideoEngines)
    device: str = "cpu"

    @property
    def preview(self) -> Path | None:
        """Deprecated name of :attr:`sheet`."""
        return self.sheet


def render(
    input: str | Path,
    output: str | Path,
    *,
    style: str | Path | Stylizer | RestyleSettings = DEFAULT_STYLE,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    sheet: str | Path | None = None,
    preview: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    decoder: str = "auto",
    encoder: str = "auto",
    **options: Any,
) -> RenderSummary:
    """Restyle every face in a video (or image sequence) and write the result as a video.

    Frames, timestamps, size and audio are those of the input; the output appears under its
    name only when complete.

    Args:
        input: a video file, an image folder or pattern, an image, or ``"sample"`` for the
            bundled sample clip.
        output: the video to write, named with one of
            :data:`~pipeline.sinks.file.CONTAINERS` (``.mp4``, ``.mov``, ``.mkv``, ``.webm``).
        style, options: see :class:`FaceStylizer` (``identity``, ``max_faces``,
            ``detect_every``, ``mask``, ``device``).
        crf, preset: x264 quality and speed (see :class:`pipeline.sinks.file.FileSink`).
        decoder, encoder: ``"auto"`` (the GPU's video engines, NVDEC and NVENC, where the
            restyling runs on CUDA and they open; else PyAV's software codecs), ``"pyav"``, or
            ``"nvdec"`` / ``"nvenc"`` (see :mod:`pipeline.video_engines`).
        sheet: also write a before/after sheet (PNG) of a few frames here.
        preview: deprecated name of ``sheet``.
        progress: called on the caller's thread as frames are done, with fps and ETA.

    Raises:
        InputNotFoundError, InputError: the input is missing or unusable.
        StyleError: the style cannot be used.
        OutputError: the output (or sheet) cannot be written.
        DeviceError: CUDA, NVDEC or NVENC was asked for and is missing.
        UsageError: ``encoder="nvenc"`` for a ``.webm`` output.
        Cancelled: Ctrl-C (or ``progress`` raising ``KeyboardInterrupt``); nothing is left
            under the output name.
    """
    if preview is not None:
        warnings.warn("render(preview=...) is now sheet=...", DeprecationWarning, stacklevel=2)
        sheet = sheet or preview
    check_hardware_output(encoder, [Path(output)])
    settings = _settings(style, options)
    restyler = build_restyler(settings)
    device = resolve_device(settings.device)
    engines = choose_video_engines(device, decoder, encoder)
    input_path = sample_clip() if str(input) == SAMPLE_NAME else Path(input)
    output = Path(output)
    if output.suffix.lower() not in CONTAINERS:
        raise OutputError(
            f"{output}: render writes a video; give a name ending in {', '.join(CONTAINERS)}"
        )
    if output.exists() and input_path.exists() and output.resolve() == input_path.resolve():
        raise OutputError(f"{output} is the input; give another output name")
    if sheet is not None:
        check_output(sheet)  # the sheet is written last: an error there would waste the render
    with open_source(input_path, hardware=engines.hardware_decode) as source:
        has_audio = isinstance(source, VideoFileSource) and source.has_audio
        total = source.frame_count
        picks = set(pick_sheet_indices(total))
        frames: Iterable[Frame] = source
        if total == 1:
            # One still picture: the frames its faces are confirmed and faded in over never
            # come, so the tracker is shown it until they are in.
            frames = list(source)
            restyler.tracker.settle(frames[0])
        pairs: list[tuple[np.ndarray, np.ndarray]] = []

        analyse, stylize, composite = restyler.stages

        def composite_and_keep(stylized: Stylized) -> Frame:
            result = composite(stylized)
            if sheet is not None and result.index in picks:
                pairs.append((stylized.analysis.frame.image, result.image))
            return result

        def report(stats: RunStats) -> None:
            if progress is not None:
                progress(Progress.of(stats, total))

        stopped = threading.Event()
        with contextlib.ExitStack() as outputs:
            # Ctrl-C while the output file is being made only marks the render stopped:
            # raised there, it could land after the partial file existed and before the
            # sink's context was entered, which deletes it.
            with ctrl_c_calls(stopped.set):
                sink = outputs.enter_context(
                    FileSink.matching(
                        output,
                        source,
                        audio_from=input_path if has_audio else None,
                        crf=crf,
                        preset=preset,
                        hardware=engines.hardware_encode,
                    )
                )
            if stopped.is_set():
                raise Cancelled(f"stopped; nothing was written to {output}")
            runner = Runner(
                frames,
                (analyse, stylize, composite_and_keep),
                [sink],
                on_status=report,
                status_interval=_PROGRESS_SECONDS,
            )
            result = runner.run()
            if result.interrupted:
                raise Cancelled(f"stopped; nothing was written to {output}")
    written_sheet = save_sheet(sheet, pairs) if sheet is not None and pairs else None
    io_ms = result.timings.ms_per_frame()
    stage_ms = {"decode": io_ms.get("decode", 0.0), **restyler.timings.ms_per_frame()}
    stage_ms["encode"] = io_ms.get("encode", 0.0)
    return RenderSummary(
        output=output,
        frames=result.frames,
        faces_tracked=len(restyler.track_ids),
        mean_fps=result.fps,
        seconds=result.seconds,
        style=restyler.stylizer.name,
        stage_ms=stage_ms,
        sheet=written_sheet,
        engines=engines,
        device=device,
    )
