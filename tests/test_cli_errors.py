"""Bad input through the command line: a one-line error, a non-zero exit, no output file."""

from __future__ import annotations

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
    "unknown style": (
        lambda d: _good(d / "in.mp4"),
        ["--style", "oil-paint"],
        "out.mp4",
        "unknown style 'oil-paint'",
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
    for option in (["--crf", "99"], ["--max-faces", "0"], ["--mask", "body"]):
        with pytest.raises(SystemExit) as caught:
            main(["render", "in.mp4", "-o", str(tmp_path / "o.mp4"), *option])
        assert caught.value.code == 2


def test_missing_output_argument_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["render", str(_good(tmp_path / "in.mp4"))]) == 2
    assert "-o" in capsys.readouterr().err


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
