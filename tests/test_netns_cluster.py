"""A local cluster with every edge node in its own network namespace: agents run inside,
reach the control plane only through their own link, and kernel faults act on their side."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from bench.distros.local.cluster import LocalSettings
from bench.distros.local.kwok import KwokLocal
from bench.faults import FaultKind
from bench.faults.composite import CompositeLink
from bench.model import ClusterSpec
from bench.netns import leftovers, unavailable_reason
from bench.observe.watch import ClusterObserver
from edgebench_fixtures.cluster import require_available
from edgebench_fixtures.options import in_ci

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

CONNECT = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)"


@pytest.fixture(scope="module")
def kwok(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KwokLocal]:
    reason = unavailable_reason()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    require_available(KwokLocal)
    spec = ClusterSpec(
        name=f"t-netns-{os.getpid()}",
        edge_nodes=2,
        profile="fast",
        state_root=tmp_path_factory.mktemp("clusters"),
        provider_settings=LocalSettings(netns=True),
    )
    with KwokLocal(spec) as cluster:
        yield cluster
    assert leftovers(spec.name) == [], "namespaces, veths or chains left after down()"


def test_agents_run_inside_their_own_namespaces(kwok: KwokLocal) -> None:
    own = os.readlink("/proc/self/ns/net")
    seen = set()
    for name, agent in kwok.agents.items():
        assert agent.pid is not None
        net = os.readlink(f"/proc/{agent.pid}/ns/net")
        assert net != own, f"the agent of {name} runs in the host's network namespace"
        seen.add(net)
    assert len(seen) == 2
    apiserver = kwok.control_plane.addresses.apiserver
    for node in kwok.edge_nodes:
        ns = kwok.namespaces[node.name]
        assert node.dial_for(apiserver).startswith(f"{ns.host_addr}:")
    with ClusterObserver(kwok.api).running() as obs:
        assert all(obs.node_ready(n.name) == "True" for n in kwok.edge_nodes)


def test_the_api_server_is_reachable_only_through_the_link(kwok: KwokLocal) -> None:
    ns = kwok.namespaces["edge-0"]
    node = kwok.node("edge-0")
    port = kwok.control_plane.addresses.apiserver_port
    link_host, link_port = node.dial_for(kwok.control_plane.addresses.apiserver).split(":")
    assert ns.run([sys.executable, "-c", CONNECT, link_host, link_port]).ok
    for host in ("127.0.0.1", ns.host_addr, kwok.namespaces["edge-1"].host_addr):
        result = ns.run([sys.executable, "-c", CONNECT, host, str(port)])
        assert not result.ok, f"the API server's own port {host}:{port} answered from inside"


def test_faults_go_to_the_backend_that_does_them(kwok: KwokLocal) -> None:
    link = kwok.node("edge-1").link
    assert isinstance(link, CompositeLink)
    assert link.backend_for(FaultKind.CUT_BLACKHOLE) == "kernel"
    assert link.backend_for(FaultKind.LOSS) == "kernel"
    assert link.backend_for(FaultKind.LATENCY) == "toxiproxy"
    with link.latency(10) as fault:
        assert fault.label == "latency via toxiproxy"


def test_a_kernel_blackhole_silences_one_node_and_keeps_its_connection(kwok: KwokLocal) -> None:
    ns = kwok.namespaces["edge-1"]
    _, port = kwok.node("edge-1").dial_for(kwok.control_plane.addresses.apiserver).split(":")
    with ClusterObserver(kwok.api).running() as obs:
        with kwok.node("edge-1").link.cut(mode="blackhole") as fault:
            assert fault.label == "cut/blackhole via kernel"
            assert fault.started_mono is not None
            t = kwok.timings
            obs.events.wait_for(
                lambda e: e.kind == "node" and e.node == "edge-1" and e.ready != "True",
                timeout=2 * t.detect_bound_s + 10,
                since_mono=fault.started_mono,
                what="edge-1 not Ready",
            )
            assert obs.node_ready("edge-0") == "True"
            established = ns.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"])
            assert established.ok and established.out.strip(), "the agent's connection is gone"
        obs.events.wait_until(
            lambda: obs.node_ready("edge-1") == "True", timeout=120, what="edge-1 Ready again"
        )
