"""Shared argument types: good values parse, bad ones get one "expected ..., got ..." line."""

from __future__ import annotations

import argparse
import doctest

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
