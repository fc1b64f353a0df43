"""Bad input through the command line: a one-line error, a non-zero exit, no output file."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from videoclips import write_clip

from plugin.cli import main


def _truncated(path: Path, n_frames: int, keep: float) -> Path:
    data = write_clip(path, n_frames, size=(96, 64)).read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _text(path: Path) -> Path:
    path.write_text("not a video\n" * 50)
    return path


def _empty(path: Path) -> Path:
    path.touch()
    return path


def _good(path: Path) -> Path:
    return write_clip(path, 4, size=(96, 64))


# name → (make input in a folder, extra arguments, output name, what the message says)
CASES: dict[str, tuple[Callable[[Path], Path], list[str], str, str]] = {
    "missing input": (lambda d: d / "nope.mp4", [], "out.mp4", "no such file"),
    "truncated mp4": (lambda d: _truncated(d / "cut.mp4", 30, 0.6), [], "out.mp4", "damaged"),
    # Decoding starts, frames are written, then the cut is found: the part file must go.
    "truncated mkv": (lambda d: _truncated(d / "cut.mkv", 40, 0.7), [], "out.mp4", "truncated"),
    "not a video": (lambda d: _text(d / "notes.mp4"), [], "out.mp4", "not a video"),
    "audio only": (
        lambda d: write_clip(d / "tone.m4a", 10, audio=True, video=False),
        [],
        "out.mp4",
        "audio only",
    ),
    "zero-length": (lambda d: _empty(d / "empty.mov"), [], "out.mp4", "empty"),
    "unwritable output": (
        lambda d: _good(d / "in.mp4"),
        [],
        "no-such-folder/out.mp4",
        "does not exist",
    ),
    "output is an image": (lambda d: _good(d / "in.mp4"), [], "out.png", "writes a video"),
    "output is not a video": (
        lambda d: _good(d / "in.mp4"),
        [],
        "out.txt",
        "give a name ending in .mp4, .mov, .mkv, .webm",
    ),
    "unknown style": (
        lambda d: _good(d / "in.mp4"),
        ["--style", "oil-paint"],
        "out.mp4",
        "unknown style 'oil-paint'",
    ),
    "keyframes of the cartoon style": (
        lambda d: _good(d / "in.mp4"),
        ["--style", "cartoon", "--keyframes", "4"],
        "out.mp4",
        "the cartoon style has none",
    ),
    "an artwork without keyframes": (
        lambda d: _good(d / "in.mp4"),
        ["--style", str(Path(__file__).parents[1] / "models" / "exemplars" / "poster.jpg")],
        "out.mp4",
        "is an artwork, not a style pack",
    ),
    "missing artwork": (
        lambda d: _good(d / "in.mp4"),
        ["--style", "gone.jpg", "--keyframes", "8"],
        "out.mp4",
        "artwork gone.jpg does not exist",
    ),
    "missing pack": (
        lambda d: _good(d / "in.mp4"),
        ["--style", "gone.safetensors"],
        "out.mp4",
        "does not exist",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture, case: str) -> None:
    make, extra, output_name, says = CASES[case]
    source = make(tmp_path)
    output = tmp_path / output_name
    before = set(tmp_path.rglob("*"))
    status = main(["render", str(source), "-o", str(output), *extra])
    err = capsys.readouterr().err
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facestyle: error: "), err
    assert says in lines[0]
    assert not output.exists()
    assert set(tmp_path.rglob("*")) == before, "a temporary file was left behind"


def test_bad_option_values_are_usage_errors(tmp_path: Path) -> None:
    for option in (
        ["--crf", "99"],
        ["--max-faces", "0"],
        ["--mask", "body"],
        ["--identity", "2.5"],
        ["--keyframes", "-1"],
    ):
        with pytest.raises(SystemExit) as caught:
            main(["render", "in.mp4", "-o", str(tmp_path / "o.mp4"), *option])
        assert caught.value.code == 2


def test_stylize_image_takes_the_identity_range_render_takes(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["stylize-image", "s.jpg", "c.jpg", "-o", str(tmp_path / "o.png"), "--identity", "3"])
    assert caught.value.code == 2


def test_a_reader_that_goes_away_ends_the_command_without_a_traceback() -> None:
    """`facestyle packs | head -1`: the reader closes the pipe before the listing is written
    (it is closed here before the process has even loaded its modules)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "packs"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # type: ignore[union-attr]
    err = process.stderr.read()  # type: ignore[union-attr]
    assert process.wait(timeout=120) == 128 + signal.SIGPIPE
    assert err == "", err


def test_missing_output_argument_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["render", str(_good(tmp_path / "in.mp4"))]) == 2
    assert "-o" in capsys.readouterr().err


def test_live_without_an_output_is_a_usage_error_naming_them(tmp_path: Path, capsys) -> None:
    assert main(["live", "--camera", str(_good(tmp_path / "in.mp4"))]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facestyle live: error: nothing would be")
    assert all(option in lines[0] for option in ("--vcam", "--stream", "--record", "--preview"))


def _run_render(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """``facestyle render`` in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "plugin.cli", "render", str(source), "-o", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_installed_command_fails_cleanly(tmp_path: Path) -> None:
    source = _text(tmp_path / "notes.mp4")
    output = tmp_path / "out.mp4"
    done = _run_render(source, output)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("facestyle: error: ")
    assert "Traceback" not in done.stderr
    assert not output.exists()


def test_the_installed_command_renders(tmp_path: Path) -> None:
    source = _good(tmp_path / "in.mp4")
    output = tmp_path / "out.mp4"
    done = _run_render(source, output)
    assert done.returncode == 0, done.stderr
    assert "Rendered 4 frames" in done.stdout and str(output) in done.stdout
    assert output.is_file()


# A folder no one can make files in, not even root: sysfs's top.
SYSFS = Path("/sys")

# name → (arguments, with {d} for the test's folder, what the message says). The folder holds
# a good clip in.mp4, a file file.jpg, and folders named like outputs (folder.png,
# folder.mp4, folder.preview.png). A render or batch that ran would leave its video; adapt's
# and stylize-image's images are missing, so an error about the output shows that it was
# checked before any input was read, let alone worked on.
OUTPUT_CASES: dict[str, tuple[list[str], str]] = {
    "render: video is a folder": (
        ["render", "{d}/in.mp4", "-o", "{d}/folder.mp4"],
        "folder.mp4: it is a folder",
    ),
    "render: sheet in an unwritable folder": (
        ["render", "{d}/in.mp4", "-o", "{d}/out.mp4", "--sheet", "/sys/sheet.png"],
        "folder /sys is not writable",
    ),
    "render: sheet in a missing folder": (
        ["render", "{d}/in.mp4", "-o", "{d}/out.mp4", "--sheet", "{d}/nodir/sheet.png"],
        "nodir does not exist",
    ),
    "render: sheet is a folder": (
        ["render", "{d}/in.mp4", "-o", "{d}/out.mp4", "--sheet", "{d}/folder.png"],
        "folder.png: it is a folder",
    ),
    "adapt: pack in an unwritable folder": (
        ["adapt", "{d}/gone.jpg", "-o", "/sys/pack.safetensors"],
        "folder /sys is not writable",
    ),
    "adapt: preview is a folder": (
        ["adapt", "{d}/gone.jpg", "-o", "{d}/folder.safetensors"],
        "folder.preview.png: it is a folder",
    ),
    "stylize-image: output in a missing folder": (
        ["stylize-image", "{d}/gone.jpg", "{d}/gone.jpg", "-o", "{d}/nodir/x/out.png"],
        "nodir/x does not exist",
    ),
    "stylize-image: sheet in an unwritable folder": (
        [
            "stylize-image",
            "{d}/gone.jpg",
            "{d}/gone.jpg",
            "-o",
            "{d}/out.png",
            "--sheet",
            "/sys/s.png",
        ],
        "folder /sys is not writable",
    ),
    "batch: unwritable folder": (
        ["batch", "{d}/in.mp4", "--out-dir", "/sys"],
        "folder /sys is not writable",
    ),
    "batch: out-dir is a file": (
        ["batch", "{d}/in.mp4", "--out-dir", "{d}/file.jpg"],
        "file.jpg: it is a file, not a folder",
    ),
}


@pytest.mark.skipif(not SYSFS.is_dir(), reason="no /sys to stand for an unwritable folder")
@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_an_output_that_cannot_be_written_is_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    args, says = OUTPUT_CASES[case]
    _good(tmp_path / "in.mp4")
    (tmp_path / "file.jpg").touch()
    for name in ("folder.png", "folder.mp4", "folder.preview.png"):
        (tmp_path / name).mkdir()
    before = set(tmp_path.rglob("*"))
    status = main([arg.format(d=tmp_path) for arg in args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith("facestyle: error: "), lines
    assert says in lines[0] and ".part" not in lines[0], lines[0]
    assert set(tmp_path.rglob("*")) == before, "the work ran, or a folder was made"


def _read_only(folder: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """``command`` with a read-only filesystem mounted on ``folder``, in a mount namespace of
    its own: the mount needs no root where user namespaces are allowed, and ends with it."""
    mount = 'mount -t tmpfs -o ro,size=64k tmpfs "$0" && exec "$@"'
    return subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            mount,
            str(folder),
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["render", "{d}/in.mp4", "-o", "{d}/ro/x.mp4"],
        ["live", "--camera", "{d}/in.mp4", "--record", "{d}/ro/rec.mp4", "-q"],
    ],
    ids=["render", "live --record"],
)
def test_a_read_only_filesystem_is_one_line(tmp_path: Path, args: list[str]) -> None:
    # Unlike a folder without write permission, this stops root too; and there, deleting a
    # file that does not exist fails as well, which once buried the message under a traceback.
    folder = tmp_path / "ro"
    folder.mkdir()
    if shutil.which("unshare") is None or _read_only(folder, ["true"]).returncode != 0:
        pytest.skip("cannot mount a read-only filesystem here (no user namespaces)")
    _good(tmp_path / "in.mp4")
    command = [sys.executable, "-m", "plugin.cli", *(arg.format(d=tmp_path) for arg in args)]
    done = _read_only(folder, command)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("facestyle: error: ")
    assert f"folder {folder} is not writable (Read-only file system)" in done.stderr


# Ctrl-C as `facestyle` imports the command's module, which takes a while (PyAV, torch): a
# real SIGINT, handled by Python's own handler, at that moment.
_CTRL_C_AS_THE_COMMAND_LOADS = """
import signal, sys
from plugin import cli

load = cli._load

def interrupted(name):
    signal.raise_signal(signal.SIGINT)
    return load(name)

cli._load = interrupted
sys.exit(cli.main(sys.argv[1:]))
"""


def test_ctrl_c_as_the_command_loads_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CTRL_C_AS_THE_COMMAND_LOADS,
            "render",
            "--sample",
            "-o",
            str(tmp_path / "o.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("facestyle: stopped")
