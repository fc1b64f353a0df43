"""facestyle for OBS: load this file in OBS's Tools > Scripts (Python tab).

It starts ``facestyle live`` in its own process, streaming to a loopback UDP port, and adds (or
updates) a Media Source named "facestyle" in the current scene that plays that stream. "Stop"
ends facestyle cleanly (SIGTERM, the same as Ctrl-C); unloading the script or closing OBS does
too. The style can be changed while it runs from the script's "Apply style" button (through
facestyle's local control endpoint), without restarting the camera.

OBS runs scripts in its own Python, without facestyle's dependencies: this file uses only the
standard library and :mod:`obs_bridge.settings`, and runs facestyle through its command line
(set "facestyle command" to the full path of the ``facestyle`` executable in your venv if OBS
does not find it on PATH).
"""

from __future__ import annotations

import ctypes
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

try:
    import obspython as obs
except ImportError:  # imported outside OBS (tests, docs): only the pure helpers are usable
    obs = None

# OBS loads this file by path; make its package importable from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from obs_bridge.settings import (
    DEFAULT_INPUT,
    DEFAULT_PORT,
    MEDIA_SOURCE_KIND,
    media_source_settings,
    stream_url,
)

CONTROL_PORT_OFFSET = 1  # the control endpoint listens on the stream port + 1
STOP_SECONDS = 10.0


def live_command(
    executable: str, camera: str, style: str, port: int, size: str = "", extra: str = ""
) -> list[str]:
    """The ``facestyle live`` command line this script runs.

    ``extra`` is split as a shell would, so a quoted path stays one argument:

    >>> live_command("facestyle", "0", "cartoon", 9999)[:4]
    ['facestyle', 'live', '--camera', '0']
    >>> live_command("facestyle", "0", "cartoon", 9999, extra="--record '/tmp/my clip.mp4'")[-2:]
    ['--record', '/tmp/my clip.mp4']
    """
    command = [
        executable,
        "live",
        "--camera",
        camera,
        "--style",
        style,
        "--stream",
        stream_url(port),
        "--control",
        str(port + CONTROL_PORT_OFFSET),
    ]
    if size:
        command += ["--size", size]
    return command + shlex.split(extra)


def _stop_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM (a clean stop) if OBS dies.

    Without it a crashed or killed OBS would leave facestyle holding the camera.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class _Session:
    """The facestyle process this script started, if any."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.gettempdir()) / "facestyle-obs.log"
        self.port = DEFAULT_PORT

    def start(self, command: list[str], port: int) -> None:
        self.stop()
        self.port = port
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_stop_with_parent
            )
        print(f"facestyle: started {' '.join(command)} (log: {self.log})")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print("facestyle: stopped")

    def check(self) -> None:
        """Report once in OBS's script log if facestyle ended by itself (e.g. no camera)."""
        if self.process is None or self.process.poll() is None:
            return
        code, self.process = self.process.returncode, None
        lines = self.log.read_text(errors="replace").strip().splitlines()
        print(f"facestyle: exited with status {code}: {lines[-1] if lines else 'no output'}")

    def set_style(self, style: str) -> str:
        url = f"http://127.0.0.1:{self.port + CONTROL_PORT_OFFSET}/style"
        request = urllib.request.Request(url, style.encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return f"style is now {json.loads(answer.read())['style']}"
        except urllib.error.HTTPError as error:
            return json.loads(error.read()).get("error", str(error))
        except OSError as error:
            return f"facestyle is not running ({error})"


_session = _Session()
_settings = None


def _show_stream(url: str) -> None:
    """Add the Media Source to the current scene, or point the existing one at ``url``."""
    data = obs.obs_data_create_from_json(json.dumps(media_source_settings(url)))
    source = obs.obs_get_source_by_name(DEFAULT_INPUT)
    if source is not None:
        obs.obs_source_update(source, data)
    else:
        source = obs.obs_source_create(MEDIA_SOURCE_KIND, DEFAULT_INPUT, data, None)
        scene_source = obs.obs_frontend_get_current_scene()
        obs.obs_scene_add(obs.obs_scene_from_source(scene_source), source)
        obs.obs_source_release(scene_source)
    obs.obs_source_release(source)
    obs.obs_data_release(data)


def _start(props=None, prop=None) -> bool:
    settings = _settings
    port = obs.obs_data_get_int(settings, "port")
    command = live_command(
        obs.obs_data_get_string(settings, "executable"),
        obs.obs_data_get_string(settings, "camera"),
        obs.obs_data_get_string(settings, "style"),
        port,
        obs.obs_data_get_string(settings, "size"),
        obs.obs_data_get_string(settings, "extra"),
    )
    _session.start(command, port)
    _show_stream(stream_url(port))
    return False


def _stop(props=None, prop=None) -> bool:
    _session.stop()
    return False


def _apply_style(props=None, prop=None) -> bool:
    print(f"facestyle: {_session.set_style(obs.obs_data_get_string(_settings, 'style'))}")
    return False


def script_description() -> str:
    return (
        "<b>facestyle</b>: restyle every face of a camera after one portrait, live.<br>"
        "Starts <code>facestyle live</code> and shows its stream as the Media Source "
        f"'{DEFAULT_INPUT}'."
    )


def script_defaults(settings) -> None:
    obs.obs_data_set_default_string(
        settings, "executable", shutil.which("facestyle") or "facestyle"
    )
    obs.obs_data_set_default_string(settings, "camera", "0")
    obs.obs_data_set_default_string(settings, "style", "cartoon")
    obs.obs_data_set_default_int(settings, "port", DEFAULT_PORT)
    obs.obs_data_set_default_string(settings, "size", "640x480")
    obs.obs_data_set_default_bool(settings, "autostart", False)


def script_properties():
    props = obs.obs_properties_create()
    obs.obs_properties_add_text(props, "executable", "facestyle command", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_text(
        props, "camera", "Camera (0, /dev/videoN, URL, file)", obs.OBS_TEXT_DEFAULT
    )
    obs.obs_properties_add_text(
        props, "style", "Style (name or .safetensors)", obs.OBS_TEXT_DEFAULT
    )
    obs.obs_properties_add_text(props, "size", "Size (WxH, empty: camera's)", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_int(props, "port", "Stream port (control: +1)", 1024, 65534, 1)
    obs.obs_properties_add_text(props, "extra", "Extra arguments", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_bool(props, "autostart", "Start when OBS starts")
    obs.obs_properties_add_button(props, "start", "Start facestyle", _start)
    obs.obs_properties_add_button(props, "stop", "Stop facestyle", _stop)
    obs.obs_properties_add_button(props, "apply_style", "Apply style while running", _apply_style)
    return props


def script_update(settings) -> None:
    global _settings
    _settings = settings


def script_load(settings) -> None:
    global _settings
    _settings = settings
    obs.timer_add(_session.check, 1000)
    if obs.obs_data_get_bool(settings, "autostart"):
        # Scripts load while the scene collection is still loading: start once it is up.
        obs.timer_add(_autostart, 1000)


def _autostart() -> None:
    obs.remove_current_callback()
    _start()


def script_unload() -> None:
    obs.timer_remove(_session.check)
    _session.stop()
