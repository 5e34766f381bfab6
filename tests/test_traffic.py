"""Toxiproxy's byte counters (bench.observe.traffic) against transfers of known size through
a real toxiproxy-server, and their exact split at reset-cut bounds."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from echo import EchoServer, connect, recv_exactly

from bench.faults import ToxiproxyLink
from bench.observe import traffic

pytestmark = pytest.mark.integration
MakeLink = Callable[..., ToxiproxyLink]


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def link(make_link: MakeLink, echo: EchoServer) -> ToxiproxyLink:
    return make_link(echo.address)


def _probe(link: ToxiproxyLink, size: int) -> None:
    """``size`` random bytes to the echo server and back through ``link``, then close."""
    payload = os.urandom(size)
    with connect(link.listen) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, size) == payload


def test_a_closed_connection_is_counted_to_the_byte_both_ways(link: ToxiproxyLink) -> None:
    # Raw TCP through the proxy: the proxy reads exactly the payload (TCP/IP headers are
    # below what it reads), so the allowed overhead here is zero.
    before = traffic.settled(link)
    assert before is not None, "toxiproxy-server runs without -proxy-metrics"
    _probe(link, 123_457)
    after = traffic.settled(link)
    assert after == (before[0] + 123_457, before[1] + 123_457)


def test_an_open_connection_is_counted_only_once_closed(link: ToxiproxyLink) -> None:
    before = traffic.settled(link)
    assert before is not None
    payload = os.urandom(50_000)
    with connect(link.listen) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        assert traffic.settled(link) == before  # still open: not counted yet
        flushed = traffic.flush(link)  # closes it from the proxy's side
    assert flushed == (before[0] + 50_000, before[1] + 50_000)
    _probe(link, 10)  # the link works again after the flush
    assert traffic.settled(link) == (before[0] + 50_010, before[1] + 50_010)


def test_reset_cut_bounds_split_the_bytes_exactly(link: ToxiproxyLink) -> None:
    sock = connect(link.listen)
    sock.sendall(b"x" * 1000)
    assert recv_exactly(sock, 1000) == b"x" * 1000
    with link.cut(mode="reset"):
        at_cut = traffic.settled(link)  # the cut closed the connection: its bytes are in
        sock.close()
        offline = traffic.counters(link)
    assert at_cut is not None and offline == at_cut  # nothing gets through a reset cut
    _probe(link, 4096)
    assert traffic.flush(link) == (at_cut[0] + 4096, at_cut[1] + 4096)


def test_counters_count_only_this_links_proxies(make_link: MakeLink, echo: EchoServer) -> None:
    a, b = make_link(echo.address), make_link(echo.address)
    before_b = traffic.settled(b)
    _probe(a, 7777)
    assert traffic.settled(b) == before_b


def test_flush_is_refused_while_the_link_is_cut(link: ToxiproxyLink) -> None:
    from bench.errors import FaultError

    with link.cut(mode="reset"), pytest.raises(FaultError, match="is cut"):
        traffic.flush(link)
