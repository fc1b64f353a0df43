"""``facestyle live``: restyle a camera as it happens, out to a virtual camera, stream or file.

Examples::

    facestyle live --camera 0 --style cartoon --vcam                 # a webcam for Zoom/Meet
    facestyle live --camera 0 --stream udp://127.0.0.1:9999          # for OBS / VLC / ffplay
    facestyle live --camera clip.mp4 --record out.mp4 --control 8765 # a file stands in

While it runs one status line shows frame rate, added latency and dropped frames. Ctrl-C (or
SIGTERM, or ``POST /stop`` on the control port) ends it cleanly and keeps the recording.
``SIGUSR1`` steps to the next style; ``POST /style NAME`` on the control port picks one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import StyleError
from pipeline.frame import Frame
from pipeline.live import LiveRunner, LiveStats, LiveSummary
from pipeline.sinks.base import Sink
from pipeline.sources.base import Source
from plugin.commands._args import add_restyle_options, number_in
from plugin.styles import DEFAULT_STYLE

if TYPE_CHECKING:
    from pipeline.restyle import Restyler
    from pipeline.stylizer import Stylizer
    from plugin.live_control import StyleSwitch

__all__ = ["add_parser", "live_restyler", "open_camera", "run", "warm_up"]

# Seconds between status lines when stderr is not a terminal (a log file, OBS's script log).
_LOG_EVERY = 10.0
# Seconds a SIGTERM'd session may take to finish cleanly before the process is ended.
_STOP_GRACE_SECONDS = 15


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if (
        not match
        or int(match[1]) % 2
        or int(match[2]) % 2
        or not all(int(v) for v in match.groups())
    ):
        raise argparse.ArgumentTypeError(
            f"expected an even WIDTHxHEIGHT such as 640x480, got {text}"
        )
    return int(match[1]), int(match[2])


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "live",
        help="restyle a camera live: virtual camera, stream or recording out",
        description="Restyle every face of a camera feed live. Ctrl-C stops (recording kept).",
    )
    parser.add_argument(
        "--camera",
        default="0",
        metavar="0|/dev/videoN|URL|FILE",
        help="camera index, device path, stream URL, or a video file played in real time (0)",
    )
    add_restyle_options(parser, DEFAULT_STYLE)
    parser.add_argument("--vcam", action="store_true", help="send to a virtual camera")
    parser.add_argument("--record", type=Path, metavar="OUT.mp4", help="also record to a file")
    parser.add_argument(
        "--stream", metavar="URL", help="also stream MPEG-TS, e.g. udp://127.0.0.1:9999"
    )
    parser.add_argument("--size", type=_size, metavar="WxH", help="ask the camera for this size")
    parser.add_argument(
        "--fps", type=number_in(int, 1), metavar="N", help="ask the camera for this rate"
    )
    parser.add_argument("--preview", action="store_true", help="show a preview window")
    parser.add_argument(
        "--control",
        type=number_in(int, 0, 65535),
        metavar="PORT",
        help="serve a control endpoint on 127.0.0.1:PORT (POST /style NAME, GET /status, POST /stop)",
    )
    parser.add_argument("--loop", action="store_true", help="loop a video file given as --camera")
    parser.add_argument("-q", "--quiet", action="store_true", help="no status line")
    parser.set_defaults(run=run)


def open_camera(
    spec: str,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    loop: bool = False,
) -> Source:
    """The live source ``--camera`` names.

    Digits, ``/dev/…`` paths and URLs are cameras (:class:`CameraSource`); anything else is a
    video file played at real time (:class:`PacedSource`), which stands in for a camera.

    Raises:
        DeviceError: the camera cannot be opened.
        InputNotFoundError, InputError: the video file is missing or unreadable.
    """
    from pipeline.sources.camera import CameraSource
    from pipeline.sources.paced import PacedSource

    if spec.isdigit() or spec.startswith("/dev/") or "://" in spec:
        return CameraSource(spec, size=size, fps=fps)
    return PacedSource(spec, loop=loop, size=size)


def _open_sinks(
    args: argparse.Namespace, source: Source, stack: contextlib.ExitStack, stop: Callable[[], None]
) -> list[Sink]:
    """Every output asked for, opened in ``stack`` (a failure aborts those already open);
    ``stop`` ends the session from the preview window."""
    width, height, fps = source.width, source.height, source.fps
    sinks: list[Sink] = []
    if args.vcam:
        from pipeline.sinks.vcam import VirtualCameraSink

        sinks.append(stack.enter_context(VirtualCameraSink(width, height, fps)))
    if args.stream:
        from pipeline.sinks.stream import StreamSink

        sinks.append(stack.enter_context(StreamSink(args.stream, width, height, fps)))
    if args.record:
        from pipeline.sinks.file import FileSink

        # Live frames carry capture times, not a stream clock: millisecond timestamps keep
        # the recording's timing true to when frames were captured, drops included.
        sinks.append(
            stack.enter_context(
                FileSink(
                    args.record,
                    width,
                    height,
                    fps=fps,
                    time_base=Fraction(1, 1000),
                    preset="ultrafast",
                    crf=20,
                )
            )
        )
    if args.preview:
        from pipeline.sinks.preview import PreviewSink

        sinks.append(stack.enter_context(PreviewSink("facestyle", on_quit=stop)))
    return sinks


class _StatusLine:
    """Refreshes one line on a terminal; on a log, writes a line every ``_LOG_EVERY`` s."""

    def __init__(self, style: Callable[[], str], quiet: bool) -> None:
        self.style = style
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._width = 0

    def __call__(self, stats: LiveStats) -> None:
        if self.quiet or not stats.written:
            return
        text = f"{stats.line()}  style {self.style()}"
        if self.tty:
            sys.stderr.write("\r" + text.ljust(self._width))
            self._width = len(text)
            sys.stderr.flush()
        elif time.monotonic() - self._last >= _LOG_EVERY:
            self._last = time.monotonic()
            print(text, file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.tty and self._width and not self.quiet:
            sys.stderr.write("\n")


@contextlib.contextmanager
def _signals(stop: Callable[[], None], next_style: Callable[[], None]):
    """SIGTERM stops cleanly, SIGUSR1 asks for the next style; old handlers come back after.

    Both callbacks must take no lock (see :meth:`LiveRunner.stop`): they set flags that the
    session acts on outside the handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(*_: object) -> None:
        if hasattr(signal, "alarm"):
            # A clean stop takes well under a second. Should it hang, SIGALRM's default
            # action ends the process rather than leave it running, holding the camera.
            signal.alarm(_STOP_GRACE_SECONDS)
        stop()

    wanted = {signal.SIGTERM: terminate}
    if hasattr(signal, "SIGUSR1"):
        wanted[signal.SIGUSR1] = lambda *_: next_style()
    previous = {number: signal.signal(number, handler) for number, handler in wanted.items()}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def live_restyler(
    stylizer: Stylizer, identity: float | None = None, detect_every: int = 10, max_faces: int = 4
) -> Restyler:
    """The face stages of a live session (call :func:`warm_up` before the camera runs)."""
    from pipeline.restyle import Restyler
    from pipeline.tracker import FaceTracker

    # The detector on its own thread, its result used from three frames on (100 ms at 30 fps)
    # as soon as it is ready: its spikes never hold up a live frame.
    tracker = FaceTracker(detect_every, max_faces, detect_lag=3, detect_wait=False)
    return Restyler(stylizer, tracker, identity=identity)


def warm_up(restyler: Restyler) -> None:
    """Run a public-domain portrait through ``restyler`` once, then forget it.

    The first frames load the face models and compile kernels (seconds); doing that before
    the camera starts keeps it out of the session's latency.
    """
    from pipeline.samples import face_photo

    for index in range(2):
        restyler.process(Frame(face_photo("astronaut"), index / 30, index))
    restyler.reset()


def _status(stats: LiveStats, switch: StyleSwitch) -> dict:
    """What ``GET /status`` answers: the live numbers (NaN as null) and the styles."""
    numbers = {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in dataclasses.asdict(stats).items()
    }
    return {**numbers, "style": switch.style, "styles": list(switch.styles())}


def run(args: argparse.Namespace) -> int:
    from plugin.live_control import StyleSwitch
    from plugin.styles import available_styles, resolve_style

    switch = StyleSwitch(
        live_restyler(resolve_style(args.style), args.identity, args.detect_every, args.max_faces),
        args.style,
        resolve_style,
        available_styles,
    )
    runners: list[LiveRunner] = []  # the session's runner, once the camera is open

    def stop() -> None:
        if not runners:
            raise KeyboardInterrupt  # nothing is running yet: stop as Ctrl-C would
        runners[0].stop()

    # SIGUSR1 appends here (list.append takes no lock); each status tick loads the next
    # style on a helper thread, as loading a pack takes a moment.
    style_requests: list[bool] = []

    def cycle() -> None:
        try:
            switch.cycle()
        except StyleError as error:
            print(f"\nfacestyle: cannot switch style: {error}", file=sys.stderr)

    def on_tick() -> None:
        while style_requests:
            style_requests.pop()
            threading.Thread(target=cycle, name="facestyle-style", daemon=True).start()

    # The handlers stay until the summary is out: a second SIGTERM while closing the outputs
    # must not kill the process half-way.
    with _signals(stop, lambda: style_requests.append(True)):
        summary = _session(args, switch, runners, on_tick)
        print(_summary_line(summary.stats, args), flush=True)
    return 0


def _session(
    args: argparse.Namespace,
    switch: StyleSwitch,
    runners: list[LiveRunner],
    on_tick: Callable[[], None],
) -> LiveSummary:
    """Open camera and outputs, run until stopped, close everything; the runner goes in
    ``runners`` as soon as it exists so signal handlers can stop it."""
    from plugin.live_control import ControlServer

    status = _StatusLine(lambda: switch.style, args.quiet)
    with (
        open_camera(args.camera, size=args.size, fps=args.fps, loop=args.loop) as source,
        contextlib.ExitStack() as stack,
    ):
        # The preview window's quit key needs the runner, made once the sinks are open.
        sinks = _open_sinks(args, source, stack, lambda: runner.stop())

        def on_status(stats: LiveStats) -> None:
            status(stats)
            on_tick()

        runner = LiveRunner(source, switch.stages, sinks, on_status=on_status)
        runners.append(runner)
        warm_up(switch.restyler)
        if args.control is not None:
            server = stack.enter_context(
                ControlServer(
                    args.control,
                    set_style=switch.request,
                    status=lambda: _status(runner.stats(), switch),
                    stop=runner.stop,
                )
            )
            print(f"control: http://127.0.0.1:{server.port}", file=sys.stderr, flush=True)
        try:
            return runner.run()
        finally:
            status.end()


def _summary_line(stats: LiveStats, args: argparse.Namespace) -> str:
    outputs = ", ".join(
        text
        for text, wanted in (
            ("virtual camera", args.vcam),
            (f"stream {args.stream}", args.stream),
            (f"recording {args.record}", args.record),
        )
        if wanted
    )
    return (
        f"Live: {stats.written} frames out of {stats.captured} captured in {stats.elapsed:.1f} s "
        f"({stats.fps:.1f} fps), {stats.dropped} dropped, added latency p50 "
        f"{stats.latency_p50 * 1000:.0f} ms p95 {stats.latency_p95 * 1000:.0f} ms"
        + (f"; to {outputs}" if outputs else "")
    )
