"""Kernel byte counters of a link (bench.observe.traffic) against transfers of known size
through a real toxiproxy-server link, during a cut, and their clean-up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from echo import EchoServer, connect, recv_exactly

from bench.errors import NotSupportedError
from bench.faults import ToxiproxyLink
from bench.netns import NodeNamespace, unavailable_reason
from bench.observe.traffic import LinkCounters
from bench.procs import pid_alive

pytestmark = pytest.mark.integration
MakeLink = Callable[..., ToxiproxyLink]
# Each counted IPv4/TCP packet carries 20 bytes of IP header and 20 to 60 of TCP header.
MAX_HEADERS = 20 + 60


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture
def link(make_link: MakeLink, echo: EchoServer) -> ToxiproxyLink:
    return make_link(echo.address)


@pytest.fixture
def counters(link: ToxiproxyLink) -> Iterator[LinkCounters]:
    try:
        made = LinkCounters({"n": [link.listen]})
    except NotSupportedError as exc:
        pytest.skip(str(exc))
    yield made
    made.close()


def _probe(link: ToxiproxyLink, size: int) -> None:
    payload = os.urandom(size)
    with connect(link.listen) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, size) == payload


def test_a_probe_arrives_as_its_payload_plus_headers(
    link: ToxiproxyLink, counters: LinkCounters
) -> None:
    size = 123_457
    _probe(link, size)
    (up, down), (up_pkts, down_pkts) = counters.read()["n"], counters.read(column=0)["n"]
    # every payload byte, plus at most one IP+TCP header per packet (handshake, ACKs, FIN)
    assert size <= up <= size + MAX_HEADERS * up_pkts
    assert size <= down <= size + MAX_HEADERS * down_pkts
    assert up_pkts >= 3 and down_pkts >= 2  # handshake and data were counted as packets


def test_a_reset_cut_carries_only_refused_connection_attempts(
    link: ToxiproxyLink, counters: LinkCounters
) -> None:
    with link.cut(mode="reset"):
        before = counters.read()["n"]
        for _ in range(3):
            with pytest.raises(OSError):
                _probe(link, 1000)
        up, down = (a - b for a, b in zip(counters.read()["n"], before, strict=True))
    # three SYNs out, three RSTs back: headers only, no payload
    assert 3 * 40 <= up <= 3 * MAX_HEADERS
    assert 3 * 40 <= down <= 3 * MAX_HEADERS


def test_counts_only_its_own_links(make_link: MakeLink, echo: EchoServer) -> None:
    a, b = make_link(echo.address), make_link(echo.address)
    try:
        counters = LinkCounters({"a": [a.listen], "b": [b.listen]})
    except NotSupportedError as exc:
        pytest.skip(str(exc))
    try:
        _probe(a, 7777)
        read = counters.read()
        assert read["b"] == (0, 0) and read["a"][0] >= 7777
    finally:
        counters.close()


def test_close_and_reaper_leave_no_chain(link: ToxiproxyLink) -> None:
    dead = next(p for p in range(4_000_000, 4_100_000) if not pid_alive(p))
    stale = f"EBT-{dead}-0"
    if subprocess.run(["iptables", "-w", "-N", stale], capture_output=True).returncode:
        pytest.skip("iptables not usable here")
    subprocess.run(["iptables", "-w", "-I", "OUTPUT", "1", "-j", stale], check=True)
    counters = LinkCounters({"n": [link.listen]})  # reaps the chain of the dead process
    counters.close()
    rules = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True)
    assert stale not in rules.stdout and counters.chain not in rules.stdout


def test_a_link_on_a_namespace_host_side_is_counted_both_ways() -> None:
    """An agent in a node namespace dials the host side of its veth: its bytes arrive in
    INPUT (up) and the answers leave in OUTPUT (down)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    payload = 50_000
    with NodeNamespace.create(f"tr-{os.getpid()}", "edge-0") as ns:
        server = socket.create_server((ns.host_addr, 0))
        port = server.getsockname()[1]
        ns.allow_ports([port])
        counters = LinkCounters({"edge-0": [f"{ns.host_addr}:{port}"]})
        try:
            before = counters.read()["edge-0"]
            send = (
                "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])));"
                f" s.sendall(b'x' * {payload}); s.shutdown(socket.SHUT_WR); s.recv(1)"
            )
            client = subprocess.Popen(
                ns.exec_argv([sys.executable, "-c", send, ns.host_addr, str(port)], hostname=False)
            )
            conn, _ = server.accept()
            got = 0
            while chunk := conn.recv(65536):
                got += len(chunk)
            conn.sendall(b"k" * 1000)
            conn.close()
            assert client.wait(timeout=30) == 0 and got == payload
            up, down = (a - b for a, b in zip(counters.read()["edge-0"], before, strict=True))
            assert payload <= up <= payload + 80 * (payload // 1000 + 20), up
            assert 1000 <= down <= 1000 + 80 * 60, down
        finally:
            counters.close()
            server.close()
