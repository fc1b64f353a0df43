"""A live session: a camera restyled as it happens, out to a virtual camera, stream, file.

The command line (``facestyle live``), the live benchmark and host programs all run one::

    session = LiveSession("0", RestyleSettings(style="engraving"), LiveOutputs(vcam=True))
    summary = session.run()                   # until the camera ends or session.stop()

The session opens the camera and the outputs, warms the face models up before the first frame,
serves the control port if asked, and runs the frames through the one runner with the live
queue policy (stale frames are dropped, latency stays bounded). Its style can be changed
while it runs (:meth:`LiveSession.request_style`, :meth:`LiveSession.next_style`); faces keep
their tracks across a switch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from pipeline.degrade import DegradePolicy, DegradeSettings
from pipeline.frame import Frame
from pipeline.restyle import Restyler
from pipeline.runner import Runner, RunStats, RunSummary
from pipeline.sinks.base import Sink
from pipeline.sources.base import Source
from pipeline.stylizer import Stylizer
from pipeline.video_engines import choose_video_engines
from plugin.live_control import ControlServer, StyleSwitch
from plugin.settings import RestyleSettings, build_restyler, resolve_device
from plugin.styles import available_styles, resolve_style, style_file

# Frames the live detector may run behind on its own thread (100 ms at 30 fps): its spikes never
# hold up a frame. RestyleSettings.detect_lag overrides it.
LIVE_DETECT_LAG = 3

__all__ = ["LiveOutputs", "LiveSession", "open_camera", "warm_up"]


@dataclass(frozen=True)
class LiveOutputs:
    """Where a live session's frames go (any number of them, or none).

    Attributes:
        vcam: a virtual camera (pyvirtualcam) for Zoom, Meet, OBS.
        stream: an MPEG-TS URL such as ``udp://127.0.0.1:9999`` (OBS, VLC, ffplay).
        record: a video file, written with capture-time timestamps.
        window: a preview window (its quit key ends the session).
    """

    vcam: bool = False
    stream: str | None = None
    record: Path | None = None
    window: bool = False

    def describe(self) -> str:
        """The outputs for a summary line, e.g. ``virtual camera, recording me.mp4``."""
        return ", ".join(
            text
            for text, wanted in (
                ("virtual camera", self.vcam),
                (f"stream {self.stream}", self.stream),
                (f"recording {self.record}", self.record),
            )
            if wanted
        )

    def open(
        self,
        source: Source,
        stack: contextlib.ExitStack,
        stop: Callable[[], None],
        hardware_encode: bool = False,
    ) -> list[Sink]:
        """Every output, opened in ``stack`` (a failure aborts those already open) at the
        source's size and rate; ``stop`` ends the session from the preview window;
        ``hardware_encode`` records through NVENC (:mod:`pipeline.video_engines`)."""
        width, height, fps = source.width, source.height, source.fps
        sinks: list[Sink] = []
        if self.vcam:
            from pipeline.sinks.vcam import VirtualCameraSink

            sinks.append(stack.enter_context(VirtualCameraSink(width, height, fps)))
        if self.stream:
            from pipeline.sinks.stream import StreamSink

            sinks.append(stack.enter_context(StreamSink(self.stream, width, height, fps)))
        if self.record:
            from pipeline.sinks.file import FileSink, encoder_for

            # Live frames carry capture times, not a stream clock: millisecond timestamps
            # keep the recording's timing true to when frames were captured, drops included.
            recording = stack.enter_context(
                FileSink(
                    self.record,
                    width,
                    height,
                    fps=fps,
                    time_base=Fraction(1, 1000),
                    preset="ultrafast",
                    crf=20,
                    codec=encoder_for(Path(self.record), hardware_encode),
                )
            )
            sinks.append(recording)
        if self.window:
            from pipeline.sinks.preview import PreviewSink

            sinks.append(stack.enter_context(PreviewSink("facestyle", on_quit=stop)))
        return sinks


def open_camera(
    spec: str,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    loop: bool = False,
    max_frames: int | None = None,
) -> Source:
    """The live source ``spec`` names.

    Digits, ``/dev/…`` paths and URLs are cameras (:class:`CameraSource`); anything else is a
    video file played at real time (:class:`PacedSource`), which stands in for a camera, and
    ends after ``max_frames`` if given.

    Raises:
        DeviceError: the camera cannot be opened.
        InputNotFoundError, InputError: the video file is missing or unreadable.
    """
    from pipeline.sources.camera import CameraSource
    from pipeline.sources.paced import PacedSource

    if spec.isdigit() or spec.startswith("/dev/") or "://" in spec:
        return CameraSource(spec, size=size, fps=fps)
    return PacedSource(spec, loop=loop, size=size, max_frames=max_frames)


def warm_up(restyler: Restyler) -> None:
    """Run a public-domain portrait through ``restyler`` once, then forget it.

    The first frames load the face models and compile kernels (seconds); doing that before
    the camera starts keeps it out of the session's latency.
    """
    from pipeline.samples import face_photo

    for index in range(2):
        restyler.process(Frame(face_photo("astronaut"), index / 30, index))
    restyler.reset()
    # A keyframe painter (models.keyframes) has begun painting the portrait in the background.
    settle = getattr(restyler.stylizer, "settle", None)
    if settle is not None:
        settle()


def _switched_style(style: str, device: str, keyframes: int, lag: int | None) -> Stylizer:
    """The stylizer a live session switches to: with the session's keyframes where the style
    has an artwork to paint from (the cartoon style has none, and is itself)."""
    if keyframes and style_file(style) is not None:
        return resolve_style(style, device, keyframes=keyframes, keyframe_lag=lag)
    return resolve_style(style, device)


class LiveSession:
    """A camera restyled live to its outputs, until the camera ends or it is stopped.

    Args:
        camera: a camera index (``"0"``), a device path, a stream URL, or a video file
            played in real time (see :func:`open_camera`).
        settings: the restyler; its style is where :meth:`next_style` starts.
        outputs: where frames go.
        size, fps: asked of the camera.
        loop: play a video file given as ``camera`` over and over.
        max_frames: end a video file given as ``camera`` after this many frames.
        control: serve the HTTP control endpoint (:class:`ControlServer`) on this loopback
            port; 0 picks a free one (:attr:`control_port` says which once it serves).
        on_status: called about twice a second from :meth:`run`'s thread with the live
            numbers (a status line).

    Raises:
        StyleError: the style cannot be used.
        DeviceError: ``device="cuda"`` on a machine without one.
    """

    def __init__(
        self,
        camera: str,
        settings: RestyleSettings | None = None,
        outputs: LiveOutputs | None = None,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        loop: bool = False,
        max_frames: int | None = None,
        control: int | None = None,
        on_status: Callable[[RunStats], None] | None = None,
    ) -> None:
        settings = settings or RestyleSettings()
        if settings.keyframes and settings.keyframe_lag == 0:
            # The teacher takes a third of a second to a second a face: live frames cannot
            # wait for it.
            settings = replace(settings, keyframe_lag=None)
        if settings.detect_lag == 0:
            settings = replace(settings, detect_lag=LIVE_DETECT_LAG)
        self.camera = camera
        self.outputs = outputs or LiveOutputs()
        self.size, self.fps, self.loop, self.max_frames = size, fps, loop, max_frames
        self.control = control
        self.control_port: int | None = None
        self.on_status = on_status
        restyler = build_restyler(settings)
        style = settings.style
        name = str(style) if isinstance(style, str | Path) else restyler.stylizer.name
        # A style switched to while running runs on the session's device too, and is
        # painted in keyframes too where the session's are.
        device = resolve_device(settings.device)
        resolve = functools.partial(
            _switched_style, device=device, keyframes=settings.keyframes, lag=settings.keyframe_lag
        )
        # A recording on a CUDA session goes to NVENC where it opens (tried here, at start).
        self._record_on_gpu = bool(self.outputs.record) and (
            choose_video_engines(device).hardware_encode
        )
        self._switch = StyleSwitch(restyler, name, resolve, available_styles)
        self._runner: Runner | None = None
        # A plain flag (no lock) so that stop() is safe from a signal handler.
        self._stop_early = False

    @property
    def restyler(self) -> Restyler:
        """The face stages (their ``timings`` say what each stage costs a frame)."""
        return self._switch.restyler

    @property
    def style(self) -> str:
        """The style frames are restyled with (or are about to be)."""
        return self._switch.style

    @property
    def degraded(self) -> str | None:
        """The degradation step in force (:data:`pipeline.degrade.STEPS`), e.g. ``"smaller
        crops"``; ``None`` while the full work keeps up (or before the camera is open)."""
        degrade = self.restyler.degrade
        return degrade.name if degrade is not None and degrade.step else None

    def request_style(self, style: str) -> None:
        """Load ``style`` now and use it from the next frame on.

        Raises:
            StyleError: the style cannot be used; the current one stays.
        """
        self._switch.request(style)

    def next_style(self) -> str:
        """Switch to the next bundled style (after :attr:`style`) and return its name."""
        return self._switch.cycle()

    def stop(self) -> None:
        """End the session soon; safe from any thread and from signal handlers (it only sets
        flags). A stop before the camera is open ends the session as soon as it starts."""
        self._stop_early = True
        if self._runner is not None:
            self._runner.stop()

    def stats(self) -> RunStats | None:
        """The live numbers so far; ``None`` before the camera is open."""
        return None if self._runner is None else self._runner.stats()

    def status(self) -> dict:
        """What ``GET /status`` answers: the live numbers (NaN as null) and the styles."""
        stats = self.stats()
        numbers = {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in (dataclasses.asdict(stats) if stats else {}).items()
        }
        return {
            **numbers,
            "style": self.style,
            "styles": list(self._switch.styles()),
            "degraded": self.degraded,
        }

    def run(self) -> RunSummary:
        """Open camera and outputs, warm up, run until stopped, close everything.

        Ctrl-C ends the session cleanly (``interrupted`` set): outputs are closed, a
        recording is kept.

        Raises:
            DeviceError: the camera, virtual camera or preview window cannot be used.
            InputNotFoundError, InputError: a video file given as ``camera`` is unusable.
            OutputError: an output or the control port cannot be used.
        """
        with (
            open_camera(
                self.camera,
                size=self.size,
                fps=self.fps,
                loop=self.loop,
                max_frames=self.max_frames,
            ) as source,
            contextlib.ExitStack() as stack,
        ):
            sinks = self.outputs.open(source, stack, self.stop, self._record_on_gpu)
            # Shed work before dropping frames: the budget is the camera's frame interval.
            self.restyler.degrade = DegradePolicy(DegradeSettings(budget_ms=1000 / source.fps))
            runner = Runner(
                source, self._switch.stages, sinks, policy="newest", on_status=self.on_status
            )
            self._runner = runner
            if self._stop_early:
                runner.stop()
            warm_up(self.restyler)
            if self.control is not None:
                server = ControlServer(
                    self.control,
                    set_style=self.request_style,
                    status=self.status,
                    stop=self.stop,
                )
                stack.enter_context(server)
                self.control_port = server.port
            return runner.run()
