"""The benchmark runs end to end and reports every stage (speed itself is not asserted)."""

from __future__ import annotations

import json

import pytest

from plugin.bench import format_bench
from plugin.cli import main


def test_bench_reports_every_stage_and_the_io_floor(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--frames", "12", "--json", "--preset", "ultrafast"]) == 0
    result = json.loads(capsys.readouterr().out)
    stages = result["render"]["stage_ms"]
    order = list(stages)
    assert order[0] == "decode" and order[-1] == "encode"
    assert {"align", "stylize", "composite"} <= stages.keys()
    assert any(name.startswith("track.") for name in stages)
    assert all(ms >= 0 for ms in stages.values())
    assert result["render"]["faces_tracked"] == 1
    assert result["io_floor"]["fps"] > 0 and result["render"]["fps"] > 0
    ratio = result["render"]["fps"] / result["io_floor"]["fps"]
    assert result["fps_vs_io_floor"] == pytest.approx(ratio)
    text = format_bench(result)
    assert "I/O floor" in text and "end to end" in text and "tracking + landmarks" in text
