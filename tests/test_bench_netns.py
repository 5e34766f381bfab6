"""Benchmarks of node namespaces and kernel faults. They measure; they assert nothing on speed.

python -m pytest tests/test_bench_netns.py --benchmark-columns=min,median,mean,max,rounds
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_support import assert_clean, require_netns
from pytest_benchmark.fixture import BenchmarkFixture

from bench.faults.kernel import KernelLink
from bench.netns import NodeNamespace

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require_netns()
    monkeypatch.setenv("EDGEBENCH_HOME", str(tmp_path / "home"))
    name = f"b{os.getpid()}-{os.urandom(3).hex()}"
    yield name
    assert_clean(name, ("edge-1",))


@pytest.fixture
def link(cluster: str) -> Iterator[KernelLink]:
    with NodeNamespace.create(cluster, "edge-1") as ns:
        link = ns.kernel_link([6443])
        yield link
        link.restore()


@pytest.mark.benchmark(group="netns")
def test_bench_namespace_create_remove(benchmark: BenchmarkFixture, cluster: str) -> None:
    def create_remove() -> None:
        NodeNamespace.create(cluster, "edge-1").remove()

    benchmark(create_remove)


@pytest.mark.benchmark(group="kernel fault apply+remove")
@pytest.mark.parametrize("mode", ["blackhole", "reset"])
def test_bench_kernel_cut_apply_remove(
    benchmark: BenchmarkFixture, link: KernelLink, mode: str
) -> None:
    def apply_remove() -> None:
        with link.cut(mode):  # type: ignore[arg-type]
            pass

    benchmark(apply_remove)


@pytest.mark.benchmark(group="kernel fault apply+remove")
def test_bench_kernel_cut_apply(benchmark: BenchmarkFixture, link: KernelLink) -> None:
    """Only the apply (the time until the cut is in force), the removal outside the timing."""
    cuts = []

    def apply() -> None:
        cuts.append(link.cut("blackhole").apply())

    def teardown() -> None:
        cuts.pop().remove()

    benchmark.pedantic(apply, teardown=teardown, rounds=50)


@pytest.mark.benchmark(group="kernel fault apply+remove")
def test_bench_kernel_loss_apply_remove(benchmark: BenchmarkFixture, link: KernelLink) -> None:
    def apply_remove() -> None:
        with link.loss(5):
            pass

    benchmark(apply_remove)


@pytest.mark.benchmark(group="kernel fault apply+remove")
def test_bench_kernel_bandwidth_apply_remove(benchmark: BenchmarkFixture, link: KernelLink) -> None:
    def apply_remove() -> None:
        with link.bandwidth(100):
            pass

    benchmark(apply_remove)


@pytest.mark.benchmark(group="netns")
def test_bench_fifty_namespaces_create_remove(benchmark: BenchmarkFixture, cluster: str) -> None:
    """Bring-up and teardown of the namespaces of a 50-node cluster, one after the other."""

    def fifty() -> None:
        nss = [NodeNamespace.create(cluster, f"edge-{i}") for i in range(50)]
        for ns in nss:
            ns.remove()

    benchmark.pedantic(fifty, rounds=3)
