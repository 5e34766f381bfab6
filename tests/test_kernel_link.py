"""The kernel link backend, for real: iptables and tc inside a node's namespace.

A TCP echo server listens on the host side of the node's veth; a client runs inside the
namespace (tests/ns_client.py). Each test checks what the packets did, not what rules exist.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_support import EchoServer, Inside, Sink, assert_clean, require_netns, udp_count

from bench.errors import FaultError, NotSupportedError
from bench.faults.base import FaultKind
from bench.faults.kernel import Endpoint, KernelLink
from bench.faults.kernel.rules import (
    LinkConfig,
    LinkState,
    Shape,
    iptables_payload,
    shaping_script,
    teardown_script,
)
from bench.netns import NodeNamespace
from bench.netns.reaper import deadman_processes

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def ns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NodeNamespace]:
    require_netns()
    monkeypatch.setenv("EDGEBENCH_HOME", str(tmp_path / "home"))
    cluster = f"k{os.getpid()}-{os.urandom(3).hex()}"
    with NodeNamespace.create(cluster, "edge-1") as namespace:
        yield namespace
    assert_clean(cluster, ("edge-1",))


@pytest.fixture
def echo(ns: NodeNamespace) -> Iterator[EchoServer]:
    server = EchoServer(ns.host_addr)
    yield server
    server.close()


@pytest.fixture
def link(ns: NodeNamespace, echo: EchoServer) -> Iterator[KernelLink]:
    link = ns.kernel_link([echo.port])
    yield link
    link.restore()
    rules = ns.run([link.iptables, "-S"]).out
    assert "EDGEBENCH-IN" not in rules and "EDGEBENCH-OUT" not in rules
    assert " eb0: " not in ns.run(["tc", "qdisc", "show"]).out
    assert link.cfg.ifb not in ns.run(["ip", "-o", "link"]).out
    # no process left in the namespace: the dead-man timer and its sleep are gone
    deadline = time.monotonic() + 2
    while ns_pids(ns) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ns_pids(ns) == []


def ns_pids(ns: NodeNamespace) -> list[str]:
    out = subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True, text=True).stdout
    return out.split()


def established(ns: NodeNamespace, port: int) -> list[str]:
    out = ns.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"]).out
    return [line for line in out.splitlines() if line.strip()]


def test_capabilities_and_the_binary_used(link: KernelLink) -> None:
    assert link.backend == "kernel"
    assert link.iptables in ("iptables-nft", "iptables-legacy", "iptables")
    assert {FaultKind.CUT_BLACKHOLE, FaultKind.CUT_RESET, FaultKind.LOSS} <= link.capabilities()
    if not link.netem:  # this kernel has no netem: latency stays with Toxiproxy
        with pytest.raises(NotSupportedError, match="kernel link backend cannot do latency"):
            link.latency(100)
    with pytest.raises(NotSupportedError, match="cannot do timeout"):
        link.timeout(100)
    with pytest.raises(FaultError, match=r"0\.\.100"):
        link.loss(120)
    with pytest.raises(FaultError, match="not an IPv4"):
        Endpoint("edge-1")


def test_blackhole_keeps_the_connection_established_and_silent(
    ns: NodeNamespace, echo: EchoServer, link: KernelLink
) -> None:
    with Inside(ns) as inside:
        assert inside.ask(f"connect {ns.host_addr} {echo.port} 2") == "ok"
        with link.cut("blackhole") as cut:
            assert inside.ask("send during") == "ok"
            assert inside.ask("recv 2") == "timeout"  # no answer, no error: silence
            assert len(established(ns, echo.port)) == 1  # still ESTABLISHED, retransmitting
            # a new connection is not refused either: its SYNs vanish
            with Inside(ns) as other:
                assert other.ask(f"connect {ns.host_addr} {echo.port} 1") == "timeout"
            assert echo.ends == []
        assert cut.label == "cut/blackhole via kernel" and cut.duration_s is not None
        # the link is back: TCP's next retransmission delivers the data held back
        assert inside.ask("recv 10") == "data during"


def test_reset_closes_the_connection_and_refuses_new_ones(
    ns: NodeNamespace, echo: EchoServer, link: KernelLink
) -> None:
    with Inside(ns) as inside:
        assert inside.ask(f"connect {ns.host_addr} {echo.port} 2") == "ok"
        assert inside.ask("send before") == "ok" and inside.ask("recv 2") == "data before"
        with link.cut("reset"):
            assert inside.ask("recv 2") in (
                "error ConnectionAbortedError",
                "error ConnectionResetError",
            )
            assert established(ns, echo.port) == []
            with Inside(ns) as other:
                assert other.ask(f"connect {ns.host_addr} {echo.port} 2") == (
                    "error ConnectionRefusedError"
                )
            deadline = time.monotonic() + 5
            while not echo.ends and time.monotonic() < deadline:
                time.sleep(0.05)
            assert echo.ends in (["ConnectionResetError"], ["eof"])  # the RST reached the server
        with Inside(ns) as after:
            assert after.ask(f"connect {ns.host_addr} {echo.port} 2") == "ok"


def test_a_flap_alternates_and_ends_up(
    ns: NodeNamespace, echo: EchoServer, link: KernelLink
) -> None:
    with link.flap(up_s=0.5, down_s=0.5, cycles=2) as flap:
        assert "-j DROP" in ns.run([link.iptables, "-S", "EDGEBENCH-OUT"]).out  # starts down
        flap.wait(10)
        assert [state for _, _, state in flap.transitions] == ["down", "up", "down", "up"]
        assert _reachable(ns, echo)
    assert not link.deadman.armed  # the last up disarmed the timer


def test_a_cut_touches_only_its_endpoints(ns: NodeNamespace, link: KernelLink) -> None:
    other = EchoServer(ns.host_addr)  # same address, a port the link is not scoped to
    try:
        with link.cut("blackhole"), Inside(ns) as inside:
            assert inside.ask(f"connect {ns.host_addr} {other.port} 2") == "ok"
            assert inside.ask("send free") == "ok" and inside.ask("recv 2") == "data free"
    finally:
        other.close()


def _binomial_band(n: int, p: float, sigmas: float = 5.0) -> tuple[float, float]:
    # Each datagram is dropped independently with probability p: the count lost is
    # Binomial(n, p), sd = sqrt(n p (1-p)). +-5 sd leaves a false failure rate below 1e-6.
    sd = math.sqrt(n * p * (1 - p))
    return n * p - sigmas * sd, n * p + sigmas * sd


def test_twenty_percent_loss_upstream(ns: NodeNamespace) -> None:
    n = 1000
    port_and_count: list[int] = []
    counter = udp_count(ns.host_addr, port_and_count, seconds=6.0)
    link = ns.kernel_link([port_and_count[0]], protocol="udp")
    try:
        with link.loss(20), Inside(ns) as inside:
            answer = inside.ask(f"udp {ns.host_addr} {port_and_count[0]} {n} 0.001")
            counter.join()
    finally:
        link.restore()
    lost = n - port_and_count[1]
    # a drop in OUTPUT is reported to a UDP sender as EPERM: exactly the datagrams lost
    assert answer == f"ok {lost}"
    low, high = _binomial_band(n, 0.20)
    assert low <= lost <= high, f"lost {lost} of {n}; 20 % +-5 sd is {low:.0f}..{high:.0f}"


def test_loss_downstream_only_spares_upstream(ns: NodeNamespace) -> None:
    n, port = 1000, 40_000 + os.getpid() % 20_000
    link = ns.kernel_link()  # every packet to and from the host side
    try:
        with link.loss(20, direction="downstream"), Inside(ns) as inside:
            inside.start(f"udpcount {port} 6")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((ns.host_addr, 0))
                for i in range(n):
                    s.sendto(str(i).encode(), (ns.node_addr, port))
                    time.sleep(0.001)
            received = int(inside.answer().split()[1])
            # upstream untouched: every one of a burst arrives
            got: list[int] = []
            counter = udp_count(ns.host_addr, got, seconds=3.0)
            assert inside.ask(f"udp {ns.host_addr} {got[0]} 200 0.001") == "ok 0"
            counter.join()
    finally:
        link.restore()
    low, high = _binomial_band(n, 0.20)
    assert low <= n - received <= high, f"lost {n - received} of {n}"
    assert got[1] == 200


def test_bandwidth_caps_both_directions(ns: NodeNamespace) -> None:
    kbps, seconds = 100, 3.0  # 100 kB/s
    cap = kbps * 1000
    # baseline: unshaped, the same transfer is far faster than the cap (so the test can fail)
    sink = Sink(ns.host_addr, 1.0)
    with Inside(ns) as inside:
        inside.ask(f"bulk {ns.host_addr} {sink.port} 1.0")
    sink.thread.join()
    assert sink.got / sink.took > 20 * cap
    link = ns.kernel_link()
    try:
        with link.bandwidth(kbps):
            up = Sink(ns.host_addr, seconds)
            with Inside(ns) as inside:
                inside.ask(f"bulk {ns.host_addr} {up.port} {seconds + 1}")
            up.thread.join()
            down_got, down_took = _download(ns, seconds)
    finally:
        link.restore()
    # htb lets a burst of 20 ms of rate (3 kB at least) through above the rate; measured from
    # the first byte over 3 s, the rate is within a few % of the cap. 0.7..1.3 leaves room for
    # a loaded 2-core machine (a late reader sees less) without letting "no cap" pass.
    for what, rate in (("upstream", up.got / up.took), ("downstream", down_got / down_took)):
        assert 0.7 * cap <= rate <= 1.3 * cap, f"{what}: {rate / 1000:.1f} kB/s, cap {kbps} kB/s"


def _download(ns: NodeNamespace, seconds: float) -> tuple[float, float]:
    """Bytes a sink inside the namespace got from the host, and over how long."""
    port = 40_000 + os.getpid() % 20_000
    with Inside(ns) as inside:
        inside.start(f"sink {port} {seconds}")
        with socket.create_connection((ns.node_addr, port), timeout=5) as s:
            s.settimeout(0.5)
            end = time.monotonic() + seconds + 1
            while time.monotonic() < end:
                with contextlib.suppress(TimeoutError, OSError):
                    s.send(b"y" * 16384)
        got, took = (float(x) for x in inside.answer().split()[1:])
    return got, took


def test_faults_nest_and_restore_removes_everything(
    ns: NodeNamespace, echo: EchoServer, link: KernelLink
) -> None:
    outer = link.cut("blackhole")
    with outer, link.loss(5), link.bandwidth(500):
        with link.cut("blackhole"):
            pass
        rules = ns.run([link.iptables, "-S", "EDGEBENCH-OUT"]).out
        assert "-j DROP" in rules and "statistic" in rules  # the outer cut still holds
        with pytest.raises(FaultError, match="cannot nest"):
            link.cut("reset").apply()
        link.restore()  # mid-fault: everything goes, the link is up
        with Inside(ns) as inside:
            assert inside.ask(f"connect {ns.host_addr} {echo.port} 2") == "ok"
    link.restore()  # twice: no error


def test_rules_are_exactly_scoped() -> None:
    cfg = LinkConfig(
        "EDGEBENCH", "ebn0", "ebi0", "iptables-nft", (Endpoint("10.254.0.1", (6443,)),)
    )
    text = iptables_payload(cfg, LinkState(cut="reset", losses=((0.2, "in"),)))
    inp = "-A EDGEBENCH-IN -s 10.254.0.1/32 -p tcp -m multiport --sports 6443"
    out = "-A EDGEBENCH-OUT -d 10.254.0.1/32 -p tcp -m multiport --dports 6443"
    assert text.splitlines() == [
        "*filter",
        ":EDGEBENCH-IN - [0:0]",
        ":EDGEBENCH-OUT - [0:0]",
        f"{inp} --tcp-flags RST RST -j RETURN",
        f"{inp} -j REJECT --reject-with tcp-reset",
        f"{inp} -m statistic --mode random --probability 0.200000 -j DROP",
        f"{out} --tcp-flags RST RST -j RETURN",
        f"{out} -j REJECT --reject-with tcp-reset",
        "COMMIT",
    ]


def test_latency_renders_netem_under_the_class() -> None:
    cfg = LinkConfig("EDGEBENCH", "ebn0", "ebi0", "iptables-nft", (Endpoint("10.254.0.1"),))
    shaped = LinkState(egress=Shape(delay_ms=100, jitter_ms=10))
    script = shaping_script(cfg, shaped)
    assert "qdisc add dev ebn0 parent eb0:10 handle eb1: netem delay 100ms 10ms" in script
    assert "ebi0" not in script.split("EDGEBENCH_TC")[1]  # egress only: no ifb


HARNESS = textwrap.dedent(
    """
    import sys, time
    from bench.faults.kernel import Endpoint, KernelLink
    from bench.runner import PrefixRunner
    ns, host, port, dev, hold = sys.argv[1:6]
    run = PrefixRunner(("ip", "netns", "exec", ns))
    link = KernelLink("edge-1", run, [Endpoint(host, (int(port),))], dev,
                      hold_s=float(hold), margin_s=1.0, poll_s=0.2)
    link.cut("blackhole").apply()
    print("cut", flush=True)
    time.sleep(600)
    """
)


def _reachable(ns: NodeNamespace, echo: EchoServer) -> bool:
    with Inside(ns) as inside:
        return inside.ask(f"connect {ns.host_addr} {echo.port} 0.3") == "ok"


def test_dead_man_timer_restores_the_link_when_the_harness_is_killed(
    ns: NodeNamespace, echo: EchoServer
) -> None:
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, ns.name, ns.host_addr, str(echo.port), ns.veth_node, "600"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert harness.stdout is not None
    try:
        assert harness.stdout.readline().strip() == "cut"
        assert not _reachable(ns, echo)
        harness.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        harness.wait()
    finally:
        harness.kill()
        harness.wait()
        harness.stdout.close()
    # poll 0.2 s: the timer notices within a poll and tears down; 1 s margin is plenty
    while not _reachable(ns, echo):
        assert time.monotonic() - killed < 5, "the node is still partitioned 5 s after the kill"
        time.sleep(0.1)
    print(f"reachable {time.monotonic() - killed:.2f} s after the SIGKILL")
    assert "EDGEBENCH-OUT" not in ns.run(["iptables-nft", "-S"]).out


def test_dead_man_timer_fires_after_hold_plus_margin(
    ns: NodeNamespace, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    link = ns.kernel_link([echo.port], hold_s=1.0, margin_s=1.0, poll_s=0.2)
    try:
        with link.cut("blackhole"):
            start = time.monotonic()
            assert not _reachable(ns, echo)
            while not _reachable(ns, echo):
                assert time.monotonic() - start < 6, "the timer did not fire"
                time.sleep(0.1)
            assert time.monotonic() - start >= 1.9  # not before hold + margin (2 s)
            # the next change notices, re-installs the whole state (the cut too) and re-arms
            with link.loss(1):
                assert link.deadman.fired and link.deadman.armed
                assert not _reachable(ns, echo)
    finally:
        link.restore()
    assert link.deadman.fired
    assert "fired before its faults were removed" in caplog.text


def test_reinstall_puts_the_faults_back_into_a_replaced_namespace(
    ns: NodeNamespace, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A restarted container's namespace is new and empty: ``reinstall`` installs the link's
    faults there again, with one dead-man timer, and does not take it for a firing."""
    link = ns.kernel_link([echo.port])
    try:
        with link.cut("blackhole"), link.bandwidth(100):
            ns.run(["sh", "-c", teardown_script(link.cfg)])  # as bare as a new namespace
            assert _reachable(ns, echo)
            link.reinstall()
            assert not _reachable(ns, echo)
            assert " eb0: " in ns.run(["tc", "qdisc", "show"]).out
            assert not link.deadman.fired and link.deadman.armed
            assert len([p for p in deadman_processes() if link.deadman.tag in p]) == 1
        assert _reachable(ns, echo)
        link.reinstall()  # no fault: nothing to put back, no timer armed
        assert _reachable(ns, echo) and not link.deadman.armed
        assert [p for p in deadman_processes() if link.deadman.tag in p] == []
    finally:
        link.restore()
    assert "fired" not in caplog.text


def test_listener_endpoints_group_a_links_listeners_by_host() -> None:
    from bench.faults.kernel import Endpoint, listener_endpoints

    found = listener_endpoints(["10.253.0.1:4002", "10.253.0.1:4001", "10.253.1.1:80"])
    assert found == [Endpoint("10.253.0.1", (4001, 4002)), Endpoint("10.253.1.1", (80,))]


def test_reinstall_after_the_timers_deadline_leaves_the_faults_off_and_says_so(
    ns: NodeNamespace, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Back after the dead-man timer would have fired (a long reboot): not cut again for a
    token second but left restored, as the timer would have left it, with ``fired`` set."""
    link = ns.kernel_link([echo.port])
    try:
        with link.cut("blackhole"):
            ns.run(["sh", "-c", teardown_script(link.cfg)])  # as bare as a new namespace
            assert link._deadline is not None
            link._deadline = time.monotonic() - 5  # the hold and margin are over
            assert link.reinstall() is False
            assert _reachable(ns, echo)
            assert link.deadman.fired and not link.deadman.armed
    finally:
        link.restore()
    assert "its dead-man timer would have fired" in caplog.text
