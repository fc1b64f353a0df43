"""Competing workers for ``facestyle bench --load``: they start, compete, and are ended."""

from __future__ import annotations

import time

import pytest

from plugin.bench_load import CompetingLoad, worker_kinds


@pytest.mark.parametrize(
    ("count", "kinds"),
    [(0, []), (1, ["torch"]), (2, ["torch", "busy"]), (4, ["torch", "busy", "busy", "busy"])],
)
def test_one_pytorch_worker_then_busy_loops(count: int, kinds: list[str]) -> None:
    assert worker_kinds(count) == kinds


def test_workers_run_inside_the_block_and_are_gone_after() -> None:
    with CompetingLoad(2) as load:
        processes = list(load._processes)
        assert [p.poll() for p in processes] == [None, None]
        start = time.process_time()
        time.sleep(0.2)
        assert time.process_time() - start < 0.1  # the work is theirs, not ours
    assert all(p.poll() is not None for p in processes)
    assert load._processes == []
