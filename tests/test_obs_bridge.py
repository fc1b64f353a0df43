"""The OBS bridge: settings and script helpers everywhere, a real OBS under Xvfb where installed.

The ``obs`` tests start OBS Studio (Debian: ``apt-get install obs-studio xvfb``) on a private
X display with software OpenGL and a throw-away home folder whose config enables
obs-websocket, then drive it through :class:`obs_bridge.client.ObsBridge` while facestyle
streams a clip to it over loopback UDP.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from live_support import write_small_clip

from obs_bridge import obs_facestyle
from obs_bridge.client import ObsBridge, main
from obs_bridge.obs_facestyle import live_command
from obs_bridge.settings import MEDIA_SOURCE_KIND, media_source_settings, stream_url
from pipeline.errors import DeviceError
from pipeline.runner import Runner
from pipeline.sinks.stream import StreamSink
from pipeline.sources.paced import PacedSource
from plugin.cli import build_parser

OBS_START_SECONDS = 90


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_media_source_plays_the_url_without_buffering() -> None:
    settings = media_source_settings("udp://127.0.0.1:1234")
    assert settings["input"] == "udp://127.0.0.1:1234"
    assert settings["is_local_file"] is False
    assert settings["buffering_mb"] == 0
    assert settings["input_format"] == "mpegts"


def test_script_command_is_one_the_cli_accepts() -> None:
    extra = "--loop -q --record '/tmp/my talk.mp4'"
    command = live_command("facestyle", "/dev/video0", "cartoon", 9999, "640x480", extra)
    args = build_parser().parse_args(command[1:])
    assert (args.camera, args.style, args.stream) == ("/dev/video0", "cartoon", stream_url(9999))
    assert (args.control, args.size, args.loop, args.quiet) == (10000, (640, 480), True, True)
    assert str(args.record) == "/tmp/my talk.mp4"  # a quoted path with a space stays one


def test_no_obs_running_is_a_clear_error(capfd: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    with pytest.raises(
        DeviceError, match=f"cannot reach OBS at localhost:{port}.*WebSocket Server"
    ):
        ObsBridge(port=port, timeout=2)
    assert main(["--port", str(port)]) == 1
    _, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("obs_bridge: error: cannot reach OBS")


def _write_obs_config(home: Path, port: int) -> None:
    """Skip the first-run wizard and enable obs-websocket without a password."""
    config = home / ".config" / "obs-studio"
    config.mkdir(parents=True)
    # OBS 28/29 keep obs-websocket's settings in global.ini; OBS 30+ in config.json.
    (config / "global.ini").write_text(
        "[General]\nFirstRun=true\nEnableAutoUpdates=false\n\n"
        f"[OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\nServerPort={port}\n"
        "AlertsEnabled=false\nAuthRequired=false\nServerPassword=\n"
    )
    plugin = config / "plugin_config" / "obs-websocket"
    plugin.mkdir(parents=True)
    (plugin / "config.json").write_text(
        f'{{"server_enabled": true, "server_port": {port}, "auth_required": false, '
        '"alerts_enabled": false, "first_load": false}'
    )


def _free_display() -> int:
    return next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _running_obs(home: Path, collection: dict | None = None) -> Iterator[int]:
    """OBS Studio under Xvfb with obs-websocket on the yielded port, stopped on exit.

    Args:
        home: an empty folder used as OBS's home (its config lives there).
        collection: a scene collection to load (e.g. with a script in it), or the default.
    """
    missing = [tool for tool in ("obs", "Xvfb") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install obs-studio xvfb)")
    port = _free_port()
    _write_obs_config(home, port)
    command = ["obs", "--disable-shutdown-check", "--multi"]
    if collection is not None:
        scenes = home / ".config" / "obs-studio" / "basic" / "scenes"
        scenes.mkdir(parents=True)
        (scenes / f"{collection['name']}.json").write_text(json.dumps(collection))
        command += ["--collection", collection["name"]]
    display = _free_display()
    xvfb = subprocess.Popen(
        ["Xvfb", f":{display}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # OpenCV's wheel points Qt at its own plugins (QT_*); OBS must use the system's.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    env = {
        **inherited,
        "HOME": str(home),
        "TMPDIR": str(home),
        "DISPLAY": f":{display}",
        "LIBGL_ALWAYS_SOFTWARE": "1",
        "QT_QPA_PLATFORM": "xcb",
    }
    log_path = home / "obs.log"
    with log_path.open("wb") as log:
        obs = subprocess.Popen(command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + OBS_START_SECONDS
            while True:
                try:
                    ObsBridge(port=port, timeout=2).close()
                    break
                except DeviceError:
                    if obs.poll() is not None or time.monotonic() > deadline:
                        tail = log_path.read_text(errors="replace")[-2000:]
                        pytest.fail(f"OBS did not open its websocket on port {port}:\n{tail}")
                    time.sleep(0.5)
            yield port
        finally:
            _stop(obs)
            _stop(xvfb)


@pytest.fixture(scope="module")
def obs_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real OBS Studio under Xvfb with obs-websocket on the returned port."""
    with _running_obs(tmp_path_factory.mktemp("obs-home")) as port:
        yield port


@pytest.fixture
def streaming(tmp_path: Path) -> Iterator[str]:
    """facestyle's live runner streaming a looping clip to a loopback UDP URL."""
    clip = write_small_clip(tmp_path / "clip.mp4", 30)
    url = stream_url(_free_port(socket.SOCK_DGRAM))
    with (
        PacedSource(clip, loop=True) as source,
        StreamSink(url, source.width, source.height, source.fps) as sink,
    ):
        runner = Runner(source, lambda frame: frame, [sink], policy="newest")
        thread = threading.Thread(target=runner.run)
        thread.start()
        try:
            yield url
        finally:
            runner.stop()
            thread.join()


def _first_picture(bridge: ObsBridge, seconds: float = 30) -> np.ndarray:
    """The source's screenshot once OBS has decoded a frame (it refuses until then)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            image = bridge.screenshot()
            if image.mean() > 20:
                return image
        except DeviceError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("OBS never showed a picture from the stream")
        time.sleep(0.5)


@pytest.mark.obs
def test_obs_shows_facestyles_stream(obs_port: int, streaming: str) -> None:
    with ObsBridge(port=obs_port) as bridge:
        item = bridge.show_stream(streaming)
        assert bridge.inputs()["facestyle"] == MEDIA_SOURCE_KIND
        assert bridge.input_settings()["input"] == streaming
        picture = _first_picture(bridge)
        # The clip's 320x240 frames: a textured background with a face in the middle.
        assert picture.shape == (240, 320, 3)
        assert picture.std() > 15
        # Showing it again updates the same source instead of adding a second one.
        other = stream_url(_free_port(socket.SOCK_DGRAM))
        assert bridge.show_stream(other) == item
        assert bridge.input_settings()["input"] == other
        assert sum(kind == MEDIA_SOURCE_KIND for kind in bridge.inputs().values()) == 1
        bridge.remove()
        # OBS destroys a removed source once nothing renders it any more: a moment later.
        deadline = time.monotonic() + 10
        while "facestyle" in bridge.inputs() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "facestyle" not in bridge.inputs()


@pytest.mark.obs
def test_obs_script_runs_facestyle_live_and_shows_it(tmp_path: Path) -> None:
    clip = write_small_clip(tmp_path / "camera.mp4", 30)
    stream_port = _free_port(socket.SOCK_DGRAM)
    script = Path(obs_facestyle.__file__).resolve()
    executable = Path(sys.executable).with_name("facestyle")
    settings = {
        "executable": str(executable),
        "camera": str(clip),
        "style": "cartoon",
        "port": stream_port,
        "size": "",
        "extra": "--loop",
        "autostart": True,
    }
    collection = {
        "name": "facestyle-test",
        "current_scene": "Scene",
        "current_program_scene": "Scene",
        "scene_order": [{"name": "Scene"}],
        "sources": [
            {"id": "scene", "versioned_id": "scene", "name": "Scene", "settings": {"items": []}}
        ],
        "modules": {"scripts-tool": [{"path": str(script), "settings": settings}]},
    }
    home = tmp_path / "home"
    home.mkdir()
    with _running_obs(home, collection) as port, ObsBridge(port=port) as bridge:
        deadline = time.monotonic() + 30
        while "facestyle" not in bridge.inputs() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert bridge.input_settings()["input"] == stream_url(stream_port)
        # facestyle starts in its own process (model loading, warm-up): allow it time.
        picture = _first_picture(bridge, seconds=90)
        assert picture.shape == (240, 320, 3)
    # Closing OBS stops facestyle cleanly (the script's unload, or the parent-death signal it
    # set up): facestyle logs its summary as it exits.
    log = home / "facestyle-obs.log"
    deadline = time.monotonic() + 20
    while "Live: " not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Live: " in log.read_text(), log.read_text()
