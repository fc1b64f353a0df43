"""Shared argument types: good values parse, bad ones get one "expected ..., got ..." line."""

from __future__ import annotations

import argparse
import doctest
import subprocess
import sys

import pytest

import plugin.commands._args as args_module
from plugin.cli import main
from plugin.commands._args import number_in


def test_doctests_run() -> None:
    assert doctest.testmod(args_module).failed == 0


@pytest.mark.parametrize(
    ("kind", "low", "high", "text", "message"),
    [
        (int, 1, None, "0", "expected a whole number >= 1, got 0"),
        (int, 1, None, "1.5", "expected a whole number >= 1, got 1.5"),
        (int, 0, 51, "52", "expected a whole number from 0 to 51, got 52"),
        (float, 0, None, "-0.1", "expected a number >= 0, got -0.1"),
        (float, None, 2, "abc", "expected a number <= 2, got abc"),
        (float, 0, 4, "nan", "expected a number from 0 to 4, got nan"),
        (float, 0, None, "inf", "expected a number >= 0, got inf"),
    ],
)
def test_out_of_range_values_are_refused(kind, low, high, text, message) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        number_in(kind, low, high)(text)


def test_cli_reports_a_bad_number_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "sample", "-o", "x.mp4", "--crf", "99"])
    assert exit_info.value.code == 2
    assert "expected a whole number from 0 to 51, got 99" in capsys.readouterr().err


def test_help_imports_no_command_module_and_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from plugin.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stderr.split())
    assert "render" in done.stdout and "stylize-image" in done.stdout
    assert not loaded & {"av", "cv2", "dlib", "numba", "numpy", "torch"}
    assert not [name for name in loaded if name.startswith("plugin.commands.")]


def test_a_command_line_without_an_input_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["render", "-o", "out.mp4"]) == 2
    assert capsys.readouterr().err == "facestyle render: error: give an input video (or --sample)\n"


@pytest.mark.parametrize(
    "line",
    [
        ["adapt", "s.png", "-o", "p.safetensors"],
        ["eval", "--teacher", "s.png"],
        ["stylize-image", "s.png", "c.png", "-o", "x.png"],
    ],
    ids=lambda line: line[0],
)
def test_malformed_points_are_a_usage_error_in_every_command(
    line: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*line, "--points", "1,2,3"])
    assert exit_info.value.code == 2
    assert "argument --points: expected 10 numbers" in capsys.readouterr().err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"facestyle {version('facestyle')}\n"
