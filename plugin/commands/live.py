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
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from plugin.commands._args import add_restyle_options, number_in, restyle_settings
from plugin.settings import DEFAULT_STYLE

if TYPE_CHECKING:
    from pipeline.runner import RunStats

__all__ = ["add_parser", "run"]

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


class _StatusLine:
    """Refreshes one line on a terminal; on a log, writes a line every ``_LOG_EVERY`` s."""

    def __init__(self, style: Callable[[], str], quiet: bool) -> None:
        self.style = style
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._width = 0

    def __call__(self, stats: RunStats) -> None:
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

    Both callbacks must take no lock (see :meth:`pipeline.runner.Runner.stop`): they set
    flags that the session acts on outside the handler.
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


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import StyleError, UsageError
    from plugin.live import LiveOutputs, LiveSession

    # A session without an output shows and keeps nothing (bench --live is what measures it).
    if not (args.vcam or args.stream or args.record or args.preview):
        raise UsageError(
            "nothing would be shown or saved; give at least one of --vcam, --stream URL, "
            "--record OUT.mp4, --preview"
        )

    outputs = LiveOutputs(
        vcam=args.vcam, stream=args.stream, record=args.record, window=args.preview
    )

    def style() -> str:
        # When the machine cannot keep up, the status line says what is being given up.
        degraded = session.degraded
        return session.style + (f"  degraded: {degraded}" if degraded else "")

    status = _StatusLine(style, args.quiet)
    # SIGUSR1 appends here (list.append takes no lock); each status tick loads the next
    # style on a helper thread, as loading a pack takes a moment.
    style_requests: list[bool] = []
    announced: list[int] = []  # the control port, once said

    def next_style() -> None:
        try:
            session.next_style()
        except StyleError as error:
            print(f"\nfacestyle: cannot switch style: {error}", file=sys.stderr)

    def on_status(stats: RunStats) -> None:
        if session.control_port is not None and not announced:
            announced.append(session.control_port)
            print(f"control: http://127.0.0.1:{session.control_port}", file=sys.stderr, flush=True)
        status(stats)
        while style_requests:
            style_requests.pop()
            threading.Thread(target=next_style, name="facestyle-style", daemon=True).start()

    session = LiveSession(
        args.camera,
        restyle_settings(args),
        outputs,
        size=args.size,
        fps=args.fps,
        loop=args.loop,
        control=args.control,
        on_status=on_status,
    )
    # The handlers stay until the summary is out: a second SIGTERM while closing the outputs
    # must not kill the process half-way.
    with _signals(session.stop, lambda: style_requests.append(True)):
        try:
            summary = session.run()
        finally:
            status.end()
        print(_summary_line(summary.stats, outputs.describe()), flush=True)
    return 0


def _summary_line(stats: RunStats, outputs: str) -> str:
    return (
        f"Live: {stats.written} frames out of {stats.captured} captured in {stats.elapsed:.1f} s "
        f"({stats.fps:.1f} fps), {stats.dropped} dropped, added latency p50 "
        f"{stats.latency_p50 * 1000:.0f} ms p95 {stats.latency_p95 * 1000:.0f} ms"
        + (f"; to {outputs}" if outputs else "")
    )
