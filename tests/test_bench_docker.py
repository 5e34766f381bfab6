"""Benchmark (not an assertion on speed) of vanilla/docker bring-up with 3 edge nodes: network,
host control plane, Toxiproxy, three agent containers, all Ready."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from docker_leftovers import leftovers
from pytest_benchmark.fixture import BenchmarkFixture

from bench.distros.docker.vanilla import VanillaDocker
from bench.model import ClusterSpec
from edgebench_fixtures.cluster import require_available

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
_names = itertools.count()


def test_docker_bringup_3_nodes(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    require_available(VanillaDocker)
    clusters: list[VanillaDocker] = []

    def setup() -> tuple[tuple[VanillaDocker], dict[str, object]]:
        spec = ClusterSpec(
            name=f"bench-docker-{next(_names)}", edge_nodes=3, profile="fast", state_root=tmp_path
        )
        clusters.append(VanillaDocker(spec))
        return (clusters[-1],), {}

    try:
        benchmark.pedantic(VanillaDocker.up, setup=setup, teardown=VanillaDocker.down, rounds=3)
    finally:
        for cluster in clusters:
            cluster.down()
    benchmark.extra_info["edge_nodes"] = 3
    # Correctness, not speed: every round brought 3 nodes up and left nothing behind.
    assert all(len(c.edge_nodes) == 3 for c in clusters)
    assert [leftovers(c.spec.name) for c in clusters] == [[]] * len(clusters)
