"""One settings object for a restyler: validated on construction, built in one place."""

from __future__ import annotations

import dataclasses

import numpy as np
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
        ("identity", -0.5, "identity: expected a number from 0 to 2 or None, got -0.5"),
        ("identity", 2.5, "identity: expected a number from 0 to 2 or None, got 2.5"),
        ("identity", float("nan"), "identity: expected a number from 0 to 2 or None, got nan"),
        ("strokes", -1, "strokes: expected a number from 0 to 4, got -1"),
        ("strokes", 4.5, "strokes: expected a number from 0 to 4, got 4.5"),
        ("skin_hue", 1.5, "skin_hue: expected a number from 0 to 1, got 1.5"),
        ("skin_hue", True, "skin_hue: expected a number from 0 to 1, got True"),
        ("max_faces", 0, "max_faces: expected a whole number >= 1, got 0"),
        ("detect_every", 2.5, "detect_every: expected a whole number >= 1, got 2.5"),
        ("detect_every", True, "detect_every: expected a whole number >= 1, got True"),
        ("mask", "ellipse", "mask: expected head, face, crop, got 'ellipse'"),
        ("fine_detail", 1, "fine_detail: expected True or False, got 1"),
        ("half_crops", "no", "half_crops: expected True or False, got 'no'"),
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


# Every restyle option away from its default (style and device aside).
CHANGED = dict(
    identity=0.5, max_faces=2, detect_every=3, mask="crop", fine_detail=False, half_crops=False
)


def test_the_restyler_is_built_as_the_settings_say() -> None:
    stylizer = CartoonStylizer()
    restyler = build_restyler(RestyleSettings(stylizer, **CHANGED))
    assert restyler.stylizer is stylizer and restyler.identity == 0.5
    assert (restyler.tracker.max_faces, restyler.tracker.detect_every) == (2, 3)
    assert restyler.compositor.mode == "crop" and not restyler.compositor.fine_detail
    assert not restyler.half_crops
    default = build_restyler(RestyleSettings(stylizer))
    assert default.compositor.fine_detail and default.half_crops
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
    options = ["--style", "cartoon", "--identity", "0.5", "--max-faces", "2", "--strokes", "2"]
    options += ["--detect-every", "3", "--mask", "crop", "--no-fine-detail", "--full-crops"]
    options += ["--skin-hue", "0.5", "--device", "cpu"]
    positional = ["in.mp4", "-o", "out.mp4"] if command == "render" else []
    args = build_parser().parse_args([command, *positional, *options])
    assert restyle_settings(args) == RestyleSettings(
        "cartoon", strokes=2.0, skin_hue=0.5, device="cpu", **CHANGED
    )


def test_the_stroke_strength_reaches_the_pack() -> None:
    bold = build_restyler(RestyleSettings("painterly", strokes=2.0, device="cpu")).stylizer
    plain = build_restyler(RestyleSettings("painterly", device="cpu")).stylizer
    assert np.array_equal(bold._canvas, 2 * plain._canvas)


def test_the_skin_hue_reaches_the_pack() -> None:
    own = build_restyler(RestyleSettings("painterly", skin_hue=0.75, device="cpu")).stylizer
    assert own.skin_hue == 0.75
    assert build_restyler(RestyleSettings("painterly", device="cpu")).stylizer.skin_hue == 0


def test_the_device_reaches_every_stage() -> None:
    restyler = build_restyler(RestyleSettings("painterly", device="cpu"))
    assert restyler.stylizer.device.type == "cpu"
    assert restyler.stylizer.backend.name == "numpy"
    assert restyler.compositor.backend.name == "numpy"


# Run in a fresh interpreter: what OpenMP does is decided once per process, when torch loads.
_POLICY_PROBE = """
import os, sys
if sys.argv[1] == "torch-first":
    import torch
import plugin.cli
from plugin.settings import RestyleSettings, build_restyler
import cv2, torch
cv2.setNumThreads(2)
torch.set_num_threads(2)  # what they were before is not what decides
build_restyler(RestyleSettings("painterly", device="cpu"))
from plugin.threads import passive_waiting
print(os.environ["OMP_WAIT_POLICY"], passive_waiting(), torch.get_num_threads(),
      cv2.getNumThreads())
"""


@pytest.mark.parametrize(
    ("preset", "order", "expected"),
    [
        # facestyle first: passive waiting; the student on one thread, OpenCV's count kept.
        (None, "plugin-first", ["PASSIVE", "True", "1", "2"]),
        # torch loaded before facestyle could ask: threads may spin, so one thread each.
        (None, "torch-first", ["PASSIVE", "False", "1", "1"]),
        # the user's own choice is kept, and honoured.
        ("PASSIVE", "torch-first", ["PASSIVE", "True", "1", "2"]),
        ("ACTIVE", "plugin-first", ["ACTIVE", "False", "1", "1"]),
    ],
)
def test_openmp_waits_passively_and_the_student_gets_one_thread(
    preset: str | None, order: str, expected: list[str]
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    shown = subprocess.run(
        [sys.executable, "-c", _POLICY_PROBE, order],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    words = shown.stdout.split()
    assert words[: len(expected)] == expected


@pytest.mark.skipif(HAS_CUDA, reason="checks the error on a machine without CUDA")
def test_adapt_on_a_missing_gpu_fails_at_once_with_one_line(tmp_path, capsys) -> None:
    from plugin.cli import main

    output = str(tmp_path / "style.safetensors")
    assert main(["adapt", "missing.png", "-o", output, "--device", "cuda"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no CUDA device" in error and "--device cpu" in error
