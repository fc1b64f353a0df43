"""One settings object for a restyler: validated on construction, built in one place."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.cartoon import CartoonStylizer
from pipeline.errors import DeviceError, StyleError
from plugin.cli import build_parser
from plugin.commands._args import restyle_settings
from plugin.settings import DEFAULT_STYLE, RestyleSettings, build_restyler, resolve_device

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("style", 3, "style: expected a style name, a pack path or a Stylizer, got 3"),
        ("identity", -0.5, "identity: expected a number >= 0 or None, got -0.5"),
        ("identity", float("nan"), "identity: expected a number >= 0 or None, got nan"),
        ("max_faces", 0, "max_faces: expected a whole number >= 1, got 0"),
        ("detect_every", 2.5, "detect_every: expected a whole number >= 1, got 2.5"),
        ("detect_every", True, "detect_every: expected a whole number >= 1, got True"),
        ("mask", "ellipse", "mask: expected face or crop, got 'ellipse'"),
        ("channels", "BGR", "channels: expected rgb or bgr, got 'BGR'"),
        ("device", "gpu", "device: expected auto, cpu, cuda, got 'gpu'"),
    ],
)
def test_bad_fields_are_refused_with_expected_and_got(field, value, message) -> None:
    with pytest.raises(ValueError, match=f"^RestyleSettings.{message}$"):
        RestyleSettings(**{field: value})


def test_settings_are_frozen_and_default_to_the_default_style() -> None:
    settings = RestyleSettings()
    assert settings.style == DEFAULT_STYLE and settings.device == "auto"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_faces = 2  # type: ignore[misc]


def test_the_restyler_is_built_as_the_settings_say() -> None:
    stylizer = CartoonStylizer()
    restyler = build_restyler(
        RestyleSettings(stylizer, identity=0.5, max_faces=2, detect_every=3, mask="crop")
    )
    assert restyler.stylizer is stylizer and restyler.identity == 0.5
    assert (restyler.tracker.max_faces, restyler.tracker.detect_every) == (2, 3)
    assert restyler.compositor.mode == "crop"
    assert build_restyler(RestyleSettings("cartoon")).stylizer.name == "cartoon"
    with pytest.raises(StyleError, match="unknown style"):
        build_restyler(RestyleSettings("no-such-style"))


def test_devices_resolve_and_a_missing_cuda_is_one_clear_error() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if HAS_CUDA else "cpu")
    with pytest.raises(ValueError, match="expected auto, cpu, cuda, got 'tpu'"):
        resolve_device("tpu")
    if HAS_CUDA:
        assert resolve_device("cuda") == "cuda"
        return
    with pytest.raises(DeviceError, match=r"no CUDA device .* use --device cpu"):
        resolve_device("cuda")
    with pytest.raises(DeviceError):
        build_restyler(RestyleSettings("cartoon", device="cuda"))


@pytest.mark.parametrize("command", ["render", "live", "bench"])
def test_every_restyling_command_makes_the_same_settings(command: str) -> None:
    options = ["--style", "cartoon", "--identity", "0.5", "--max-faces", "2"]
    options += ["--detect-every", "3", "--mask", "crop", "--device", "cpu"]
    positional = ["in.mp4", "-o", "out.mp4"] if command == "render" else []
    args = build_parser().parse_args([command, *positional, *options])
    assert restyle_settings(args) == RestyleSettings(
        "cartoon", identity=0.5, max_faces=2, detect_every=3, mask="crop", device="cpu"
    )
