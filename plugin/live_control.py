"""Change a running ``facestyle live`` session without restarting it.

:class:`StyleSwitch` swaps the style between two frames while face tracks carry on (so faces
do not pop); :class:`ControlServer` is a small HTTP endpoint on loopback that OBS scripts,
stream decks or ``curl`` can call::

    curl -d cartoon http://127.0.0.1:8765/style      # switch style; 400 + reason if unknown
    curl http://127.0.0.1:8765/status                # fps, latency, drops, style (JSON)
    curl -X POST http://127.0.0.1:8765/stop          # end the session cleanly
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pipeline.errors import FacestyleError, OutputError
from pipeline.frame import Frame
from pipeline.restyle import Analysis, Restyler, Stylized
from pipeline.stylizer import Stylizer

__all__ = ["ControlServer", "StyleSwitch"]


class StyleSwitch:
    """The live session's per-frame stage, whose style can be changed from another thread.

    Args:
        restyler: does the work; its tracker and compositor are kept across switches.
        style: the name (or path) of the style it starts with.
        resolve: turns a style name into a stylizer (:func:`plugin.styles.resolve_style`).
        styles: lists the names :meth:`cycle` steps through (called when cycling, so that
            listing bundled packs costs nothing at start-up).

    Attributes:
        style: the name of the style frames are being restyled with (or are about to be).
    """

    def __init__(
        self,
        restyler: Restyler,
        style: str,
        resolve: Callable[[str], Stylizer],
        styles: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self.restyler = restyler
        self.style = style
        self.resolve = resolve
        self.styles = styles
        self._pending: Stylizer | None = None
        self._lock = threading.Lock()

    def request(self, style: str) -> None:
        """Load ``style`` now (in the caller's thread) and use it from the next frame on.

        Raises:
            StyleError: the style cannot be used; the current one stays.
        """
        stylizer = self.resolve(style)
        with self._lock:
            self._pending = stylizer
            self.style = style

    def cycle(self) -> str:
        """Switch to the style after the current one in ``styles`` and return its name."""
        styles = list(self.styles())
        if not styles:
            return self.style
        position = styles.index(self.style) + 1 if self.style in styles else 0
        self.request(styles[position % len(styles)])
        return self.style

    def analyse(self, frame: Frame) -> Analysis:
        """Take up a requested style, then track and align (first stage's thread only)."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.restyler.stylizer = pending
        return self.restyler.analyse(frame)

    @property
    def stages(
        self,
    ) -> tuple[
        Callable[[Frame], Analysis], Callable[[Analysis], Stylized], Callable[[Stylized], Frame]
    ]:
        """The runner's stages: :meth:`analyse`, then the restyler's ``stylize`` and
        ``composite``."""
        _, stylize, composite = self.restyler.stages
        return (self.analyse, stylize, composite)


class ControlServer:
    """An HTTP control endpoint on ``127.0.0.1``, served from a background thread.

    Args:
        port: TCP port; 0 picks a free one (read :attr:`port` after construction).
        set_style: called with the body of ``POST /style``; a :class:`FacestyleError` it
            raises becomes a 400 answer with the error's message.
        status: returns the JSON-able dict answered to ``GET /status``.
        stop: called on ``POST /stop``.

    Raises:
        OutputError: the port cannot be used (taken, or privileged).
    """

    def __init__(
        self,
        port: int,
        *,
        set_style: Callable[[str], None],
        status: Callable[[], dict],
        stop: Callable[[], None],
    ) -> None:
        def style(body: str) -> dict:
            set_style(body.strip())
            return {"style": body.strip()}

        def halt(body: str) -> dict:
            stop()
            return {"stopping": True}

        routes = {
            ("POST", "/style"): style,
            ("GET", "/status"): lambda body: status(),
            ("POST", "/stop"): halt,
        }
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(routes))
        except OSError as error:
            raise OutputError(
                f"cannot serve the control endpoint on 127.0.0.1:{port} ({error.strerror}); "
                "choose another --control port"
            ) from error
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="facestyle-control", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _handler(routes: dict[tuple[str, str], Callable[[str], dict]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            route = routes.get((method, self.path.split("?")[0].rstrip("/")))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            if route is None:
                known = ", ".join(f"{m} {p}" for m, p in routes)
                code, answer = 404, {"error": f"no such endpoint; try {known}"}
            else:
                try:
                    code, answer = 200, route(body)
                except FacestyleError as error:
                    code, answer = 400, {"error": str(error)}
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the session's status line owns the terminal."""

    return Handler
