"""Point OBS at facestyle's live stream, over obs-websocket 5 (``obsws-python``).

::

    facestyle live --camera 0 --stream udp://127.0.0.1:9999 &
    python -m obs_bridge.client udp://127.0.0.1:9999        # adds/updates the source in OBS

In OBS: Tools > WebSocket Server Settings > Enable WebSocket server (port 4455); give the
password, if one is set, with ``--password`` or ``OBS_WEBSOCKET_PASSWORD``.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import socket
import sys
from collections.abc import Sequence

import cv2
import numpy as np

from obs_bridge.settings import DEFAULT_INPUT, MEDIA_SOURCE_KIND, media_source_settings, stream_url
from pipeline.errors import DeviceError, FacestyleError

__all__ = ["ObsBridge", "main"]

_ENABLE_HINT = (
    "in OBS open Tools > WebSocket Server Settings, tick 'Enable WebSocket server' and check "
    "the port and password"
)


class ObsBridge:
    """A connection to one running OBS, managing the Media Source that shows facestyle.

    Args:
        host, port: where obs-websocket listens (OBS's default is ``localhost:4455``).
        password: obs-websocket's password, if authentication is on.
        timeout: seconds to wait for OBS to answer.

    Raises:
        DeviceError: OBS cannot be reached, or it refused the connection or password.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 4455,
        password: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        try:
            import obsws_python
        except ImportError as error:
            raise DeviceError(
                "the OBS bridge needs obsws-python: `pip install 'facestyle[obs]'`"
            ) from error
        # obsws-python logs every failed request with a traceback; facestyle raises instead.
        quiet = logging.getLogger("obsws_python")
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())
        where = f"{host}:{port}"
        # Probe first: obsws-python logs a full traceback for a refused connection.
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as error:
            raise DeviceError(
                f"cannot reach OBS at {where} ({error.strerror or error}); {_ENABLE_HINT}"
            ) from error
        try:
            self._client = obsws_python.ReqClient(
                host=host, port=port, password=password or "", timeout=timeout
            )
        except (obsws_python.error.OBSSDKError, OSError, ValueError) as error:
            raise DeviceError(
                f"OBS at {where} refused the connection ({error}); {_ENABLE_HINT}"
            ) from error
        self._request_error = obsws_python.error.OBSSDKRequestError

    def _call(self, method: str, *args: object):
        try:
            return getattr(self._client, method)(*args)
        except self._request_error as error:
            raise DeviceError(f"OBS refused {method}: {error}") from error

    def show_stream(
        self, url: str, *, input_name: str = DEFAULT_INPUT, scene: str | None = None
    ) -> int:
        """Make a Media Source named ``input_name`` play ``url``, adding it if it is missing.

        Args:
            url: the stream, e.g. ``udp://127.0.0.1:9999`` from ``facestyle live --stream``.
            input_name: the source's name in OBS.
            scene: the scene to add a new source to; ``None`` is the current program scene.

        Returns:
            The source's scene item id in ``scene``.
        """
        scene = scene or self._call("get_current_program_scene").current_program_scene_name
        settings = media_source_settings(url)
        if input_name in self.inputs():
            self._call("set_input_settings", input_name, settings, True)
            return int(self._call("get_scene_item_id", scene, input_name, 0).scene_item_id)
        created = self._call("create_input", scene, input_name, MEDIA_SOURCE_KIND, settings, True)
        return int(created.scene_item_id)

    def inputs(self) -> dict[str, str]:
        """Every input (source) in OBS: name → kind."""
        listed = self._call("get_input_list", None).inputs
        return {entry["inputName"]: entry["inputKind"] for entry in listed}

    def input_settings(self, input_name: str = DEFAULT_INPUT) -> dict:
        return dict(self._call("get_input_settings", input_name).input_settings)

    def remove(self, input_name: str = DEFAULT_INPUT) -> None:
        """Remove the source (from every scene); nothing happens if it does not exist."""
        if input_name in self.inputs():
            self._call("remove_input", input_name)

    def screenshot(self, source: str = DEFAULT_INPUT, width: int | None = None) -> np.ndarray:
        """What ``source`` shows now, ``(H, W, 3)`` ``uint8`` RGB.

        Args:
            source: a source or scene name.
            width: scale to this width (height keeps the aspect); ``None`` is the source's size.
        """
        answer = self._call("get_source_screenshot", source, "png", width, None, None)
        encoded = answer.image_data.split(",", 1)[1]
        image = cv2.imdecode(np.frombuffer(base64.b64decode(encoded), np.uint8), cv2.IMREAD_COLOR)
        return np.ascontiguousarray(image[:, :, ::-1])

    def close(self) -> None:
        self._client.disconnect()

    def __enter__(self) -> ObsBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m obs_bridge.client URL``: show facestyle's stream in the running OBS."""
    parser = argparse.ArgumentParser(
        prog="python -m obs_bridge.client", description="Show facestyle's stream in OBS."
    )
    parser.add_argument("url", nargs="?", default=stream_url(), help="stream URL")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=4455)
    parser.add_argument("--password", default=os.environ.get("OBS_WEBSOCKET_PASSWORD"))
    parser.add_argument("--name", default=DEFAULT_INPUT, help="source name in OBS")
    parser.add_argument("--scene", help="scene to add it to (default: the program scene)")
    parser.add_argument("--remove", action="store_true", help="remove the source instead")
    args = parser.parse_args(argv)
    try:
        with ObsBridge(args.host, args.port, args.password) as bridge:
            if args.remove:
                bridge.remove(args.name)
                print(f"removed {args.name!r} from OBS")
            else:
                item = bridge.show_stream(args.url, input_name=args.name, scene=args.scene)
                print(f"OBS source {args.name!r} (scene item {item}) plays {args.url}")
    except FacestyleError as error:
        print(f"obs_bridge: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
