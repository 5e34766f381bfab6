"""Benchmark of the footprint sampler's own cost: one tick over 50 live processes (one per
edge node), timed in CPU seconds of this process. It measures; it asserts nothing about speed.

python -m pytest tests/test_bench_footprint.py --benchmark-columns=min,median,mean,max,rounds

``extra_info["core_share_at_interval"]`` is the mean tick's CPU time divided by
``bench.observe.footprint.INTERVAL_S``: the share of one core the sampler takes for 50 nodes
(the bound the interval was chosen by: under 1 %).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.observe.footprint import INTERVAL_S, Sampler

NODES = 50


@pytest.fixture(scope="module")
def agents() -> Iterator[list[int]]:
    procs = [subprocess.Popen(["sleep", "600"]) for _ in range(NODES)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.mark.benchmark(group="footprint sampler", timer=time.process_time)
def test_bench_sampler_tick_50_nodes(benchmark: BenchmarkFixture, agents: list[int]) -> None:
    targets = {f"edge-{i}": [pid] for i, pid in enumerate(agents)}
    sampler = Sampler(lambda: targets)
    sampler.tick()  # the psutil handles are made once per process, as in a case

    benchmark(sampler.tick)
    benchmark.extra_info["nodes"] = NODES
    benchmark.extra_info["interval_s"] = INTERVAL_S
    if benchmark.stats is not None:  # None under --benchmark-disable
        mean = benchmark.stats.stats.mean
        benchmark.extra_info["core_share_at_interval"] = mean / INTERVAL_S
    # Correctness, not speed: every tick sampled every process.
    assert {s.pid for s in sampler.samples[-NODES:]} == set(agents)
