"""Benchmarks of the fault injector itself. They measure; they assert nothing about speed.

python -m pytest tests/test_bench_faults.py --benchmark-columns=min,median,mean,max,rounds
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from echo import EchoServer, connect, round_trip
from pytest_benchmark.fixture import BenchmarkFixture

from bench.faults import ToxiproxyLink

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def link(make_link: Callable[..., ToxiproxyLink], echo: EchoServer) -> ToxiproxyLink:
    return make_link(echo.address)


@pytest.mark.benchmark(group="fault apply+remove")
def test_bench_latency_toxic_apply_remove(benchmark: BenchmarkFixture, link: ToxiproxyLink) -> None:
    def apply_remove() -> None:
        with link.latency(10, direction="downstream"):  # one toxic on one proxy
            pass

    benchmark(apply_remove)


@pytest.mark.benchmark(group="fault apply+remove")
def test_bench_latency_both_directions_apply_remove(
    benchmark: BenchmarkFixture, link: ToxiproxyLink
) -> None:
    def apply_remove() -> None:
        with link.latency(10):  # two toxics
            pass

    benchmark(apply_remove)


@pytest.mark.benchmark(group="fault apply+remove")
def test_bench_cut_restore(benchmark: BenchmarkFixture, link: ToxiproxyLink) -> None:
    def cut_restore() -> None:
        with link.cut(mode="reset"):
            pass

    benchmark(cut_restore)


@pytest.mark.benchmark(group="echo round trip")
def test_bench_rtt_direct(benchmark: BenchmarkFixture, echo: EchoServer) -> None:
    with connect(echo.address) as sock:
        round_trip(sock)
        benchmark(round_trip, sock)


@pytest.mark.benchmark(group="echo round trip")
def test_bench_rtt_via_proxy(benchmark: BenchmarkFixture, link: ToxiproxyLink) -> None:
    with connect(link.listen) as sock:
        round_trip(sock)
        benchmark(round_trip, sock)
