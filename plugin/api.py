"""The Python API a host program calls: restyle frames one at a time, or render a whole file.

::

    from plugin.api import FaceStylizer, render

    stylizer = FaceStylizer(style="cartoon", identity=0.5)
    for image in camera:                       # (H, W, 3) uint8 RGB
        show(stylizer.process(image))          # same shape, faces restyled

    summary = render("talk.mp4", "talk-styled.mp4", style="cartoon", preview="sheet.png")
    print(summary.frames, summary.mean_fps, summary.output)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from pipeline.composite import Compositor
from pipeline.errors import OutputError
from pipeline.frame import Frame
from pipeline.restyle import Restyler
from pipeline.runner import Progress, run_pipeline
from pipeline.sinks.file import DEFAULT_CRF, DEFAULT_PRESET, FileSink
from pipeline.sources import VideoFileSource, open_source
from pipeline.sources.images import IMAGE_SUFFIXES
from pipeline.stylizer import Stylizer
from pipeline.tracker import FaceTracker
from plugin.sample import SAMPLE_NAME, sample_clip
from plugin.sheet import pick_sheet_indices, save_sheet
from plugin.styles import DEFAULT_STYLE, resolve_style

__all__ = ["DEFAULT_STYLE", "FaceStylizer", "Progress", "RenderSummary", "render"]


class FaceStylizer:
    """Restyles every face in a stream of RGB frames, keeping track state between calls.

    Args:
        style: a style spec (see :func:`plugin.styles.resolve_style`) or a ready stylizer.
        identity: how much of the person's fine detail to keep, 0 (pure style) to about 1;
            ``None`` uses the style's own default (0.25 for the bundled packs, 0 for cartoon).
        max_faces: most faces restyled per frame.
        detect_every: run the face detector every this many frames (trackers in between).
        mask: ``"head"`` blends the whole head with its hair (a matte that follows it);
            ``"face"`` only the face inside its landmarks; ``"crop"`` the whole aligned square.
        fps: frame rate assumed for bare arrays given without a time (smoothing uses it).

    Raises:
        StyleError: the style cannot be used.
    """

    def __init__(
        self,
        style: str | Path | Stylizer = DEFAULT_STYLE,
        *,
        identity: float | None = None,
        max_faces: int = 4,
        detect_every: int = 10,
        mask: str = "head",
        fps: float = 30.0,
    ) -> None:
        stylizer = style if isinstance(style, Stylizer) else resolve_style(style)
        self.style = stylizer.name
        self.fps = fps
        self._restyler = Restyler(
            stylizer,
            FaceTracker(detect_every=detect_every, max_faces=max_faces),
            Compositor(mode=mask),
            identity,
        )
        self._count = 0

    @overload
    def process(self, frame: np.ndarray, time: float | None = None) -> np.ndarray: ...

    @overload
    def process(self, frame: Frame, time: float | None = None) -> Frame: ...

    def process(self, frame: np.ndarray | Frame, time: float | None = None) -> np.ndarray | Frame:
        """Restyle one frame.

        Args:
            frame: a :class:`Frame`, or an ``(H, W, 3)`` ``uint8`` RGB array.
            time: seconds since the stream began, for bare arrays; ``None`` assumes ``fps``.

        Returns:
            The same type: a new :class:`Frame` (same time and pts), or an ``(H, W, 3)``
            ``uint8`` RGB array. Frames without a visible face come back unchanged.
        """
        if isinstance(frame, Frame):
            self._count += 1
            return self._restyler.process(frame)
        shown = self._count / self.fps if time is None else time
        result = self._restyler.process(Frame(frame, shown, self._count))
        self._count += 1
        return result.image

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
        preview: the before/after sheet, if one was asked for.
    """

    output: Path
    frames: int
    faces_tracked: int
    mean_fps: float
    seconds: float
    style: str
    stage_ms: dict[str, float]
    preview: Path | None = None


def render(
    input: str | Path,
    output: str | Path,
    *,
    style: str | Path | Stylizer = DEFAULT_STYLE,
    identity: float | None = None,
    max_faces: int = 4,
    detect_every: int = 10,
    mask: str = "head",
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    preview: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> RenderSummary:
    """Restyle every face in a video (or image sequence) and write the result as a video.

    Frames, timestamps, size and audio are those of the input; the output appears under its
    name only when complete.

    Args:
        input: a video file, an image folder or pattern, an image, or ``"sample"`` for the
            bundled sample clip.
        output: the video to write (``.mp4``, ``.mkv``, ``.mov``).
        style, identity, max_faces, detect_every, mask: see :class:`FaceStylizer`.
        crf, preset: x264 quality and speed (see :class:`pipeline.sinks.file.FileSink`).
        preview: also write a before/after sheet (PNG) of a few frames here.
        progress: called after every frame with frames done, fps and ETA.

    Raises:
        InputNotFoundError, InputError: the input is missing or unusable.
        StyleError: the style cannot be used.
        OutputError: the output (or preview) cannot be written.
    """
    stylizer = FaceStylizer(
        style, identity=identity, max_faces=max_faces, detect_every=detect_every, mask=mask
    )
    input_path = sample_clip() if str(input) == SAMPLE_NAME else Path(input)
    output = Path(output)
    if output.suffix.lower() in IMAGE_SUFFIXES or not output.suffix:
        raise OutputError(f"{output}: render writes a video; give a name ending in .mp4 or .mkv")
    if output.exists() and input_path.exists() and output.resolve() == input_path.resolve():
        raise OutputError(f"{output} is the input; give another output name")
    with open_source(input_path) as source:
        has_audio = isinstance(source, VideoFileSource) and source.has_audio
        total = source.frame_count
        picks = set(pick_sheet_indices(total))
        pairs: list[tuple[np.ndarray, np.ndarray]] = []

        def process(frame: Frame) -> Frame:
            result = stylizer.process(frame)
            if preview is not None and frame.index in picks:
                pairs.append((frame.image, result.image))
            return result

        sink = FileSink.matching(
            output, source, audio_from=input_path if has_audio else None, crf=crf, preset=preset
        )
        with sink:
            result = run_pipeline(source, process, sink, total=total, progress=progress)
    sheet = save_sheet(preview, pairs) if preview is not None and pairs else None
    io_ms = result.timings.ms_per_frame()
    stage_ms = {"decode": io_ms.get("decode", 0.0), **stylizer.stage_ms}
    stage_ms["encode"] = io_ms.get("encode", 0.0)
    return RenderSummary(
        output=output,
        frames=result.frames,
        faces_tracked=stylizer.faces_tracked,
        mean_fps=result.fps,
        seconds=result.seconds,
        style=stylizer.style,
        stage_ms=stage_ms,
        preview=sheet,
    )
