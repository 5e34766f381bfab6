"""Benchmarks (not assertions on speed) of the embedded default: bring-up with a warm tool
cache for 3, 50 and 200 edge nodes, each node on the host's loopback or in its own network
namespace (3 and 50), and teardown."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.distros.local.cluster import LocalSettings
from bench.distros.local.kwok import KwokLocal
from bench.model import ClusterSpec
from bench.netns import unavailable_reason
from edgebench_fixtures.cluster import require_available

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
_names = itertools.count()


def _cluster(tmp_path: Path, nodes: int, netns: bool = False) -> KwokLocal:
    require_available(KwokLocal)
    if netns and (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    spec = ClusterSpec(
        name=f"bench-{nodes}-{next(_names)}",
        edge_nodes=nodes,
        profile="fast",
        state_root=tmp_path,
        provider_settings=LocalSettings(netns=netns),
    )
    return KwokLocal(spec)


@pytest.mark.parametrize(
    ("nodes", "netns"),
    [
        (3, False),
        (3, True),
        pytest.param(50, False, marks=pytest.mark.slow),
        pytest.param(50, True, marks=pytest.mark.slow),
        pytest.param(200, False, marks=pytest.mark.slow),
    ],
    ids=["3", "3-netns", "50", "50-netns", "200"],
)
def test_bringup(benchmark: BenchmarkFixture, tmp_path: Path, nodes: int, netns: bool) -> None:
    clusters: list[KwokLocal] = []

    def setup() -> tuple[tuple[KwokLocal], dict[str, object]]:
        clusters.append(_cluster(tmp_path, nodes, netns))
        return (clusters[-1],), {}

    def up(cluster: KwokLocal) -> None:
        cluster.up()

    def down(cluster: KwokLocal) -> None:
        cluster.down()

    try:
        benchmark.pedantic(up, setup=setup, teardown=down, rounds=3 if nodes <= 3 else 1)
    finally:
        for cluster in clusters:
            cluster.down()
    benchmark.extra_info["edge_nodes"] = nodes
    benchmark.extra_info["netns"] = netns
    # Correctness, not speed: every round really brought all nodes up.
    assert all(len(c.edge_nodes) == nodes for c in clusters)


def test_teardown(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    def setup() -> tuple[tuple[KwokLocal], dict[str, object]]:
        cluster = _cluster(tmp_path, 3)
        cluster.up()
        return (cluster,), {}

    def down(cluster: KwokLocal) -> None:
        cluster.down()

    benchmark.pedantic(down, setup=setup, rounds=3)
    assert not any(p.exists() for p in tmp_path.iterdir())
