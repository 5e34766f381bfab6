"""kubeedge/local for real: cloudcore and hollow edgecores behind their own cloudhub links;
metaManager's store keeps the node's pods through a reboot while offline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.distros.local.kubeedge import KubeEdgeLocal
from bench.model import ClusterSpec
from bench.observe.watch import ClusterObserver
from bench.procs import port_open, wait_for
from bench.scenario import workload
from edgebench_fixtures.cluster import require_available

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture(scope="module")
def kubeedge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEdgeLocal]:
    require_available(KubeEdgeLocal)
    spec = ClusterSpec(
        name="t-kubeedge",
        edge_nodes=2,
        profile="fast",
        state_root=tmp_path_factory.mktemp("clusters"),
    )
    with KubeEdgeLocal(spec) as cluster:
        yield cluster


def test_edge_nodes_reach_cloudhub_only_through_their_links(kubeedge: KubeEdgeLocal) -> None:
    ws, https = kubeedge.link_upstreams()
    listens = {n.dial_for(ws) for n in kubeedge.edge_nodes}
    assert len(listens) == 2 and ws not in listens
    # The API server is not among any link's upstreams: edge nodes talk to cloudcore only.
    assert all(set(n.dial) == {ws, https} for n in kubeedge.edge_nodes)
    assert kubeedge.version == "v1.20.0"
    with ClusterObserver(kubeedge.api).running() as obs:
        assert [obs.node_ready(n.name) for n in kubeedge.edge_nodes] == ["True", "True"]


def test_pods_survive_a_reboot_while_offline(kubeedge: KubeEdgeLocal) -> None:
    with (
        ClusterObserver(kubeedge.api).running() as obs,
        workload.namespace(kubeedge.api, "t-kubeedge") as ns,
    ):
        workload.pod(kubeedge.api, ns, "p", "edge-1")
        obs.events.wait_for(
            lambda e: e.kind == "pod" and e.name == f"{ns}/p" and e.ready == "True",
            timeout=90,
            what="pod p Ready",
        )
        assert kubeedge.edge_pods("edge-1").get(f"{ns}/p") == "Running"
        with kubeedge.node("edge-1").link.cut() as cut:
            kubeedge.restart_agent("edge-1")
            port = kubeedge.read_only_ports["edge-1"]
            wait_for(lambda: port_open("127.0.0.1", port), 60, "the restarted edge to serve")
            views: list[dict[str, str]] = []
            wait_for(
                lambda: bool(views.append(kubeedge.edge_pods("edge-1")) or views[-1]),
                30,
                "the restarted edge to load its pods from its local store",
            )
            assert views[-1].get(f"{ns}/p") == "Running"  # learnt offline, from SQLite
        assert cut.ended_mono is not None
        # The restarted agent reconnects: its heartbeats reach the control plane again.
        obs.events.wait_for(
            lambda e: e.kind == "lease" and e.node == "edge-1",
            timeout=120,
            since_mono=cut.ended_mono,
            what="a Lease renewal of edge-1",
        )
        obs.events.wait_until(
            lambda: obs.node_ready("edge-1") == "True", timeout=120, what="edge-1 Ready"
        )
