"""kubeedge/docker for real, as it runs here: the stand-in (this machine's cloudcore, each edge
node's hollowedge in its own container behind its own cloudhub link). A pod runs, a cut of one
node's link makes that node lose Ready while the other keeps it, a restore brings it back."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_leftovers import leftovers

from bench.distros.docker import labels
from bench.distros.docker.kubeedge import KubeEdgeDocker
from bench.distros.docker.kubeedge_recipe import STAND_IN
from bench.model import ClusterSpec
from bench.observe.watch import ClusterObserver
from bench.runner import Runner
from bench.scenario import workload
from edgebench_fixtures.cluster import require_available

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture(scope="module")
def kubeedge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEdgeDocker]:
    require_available(KubeEdgeDocker)
    spec = ClusterSpec(
        name=f"wtk-kubeedge-{os.getpid()}",
        edge_nodes=2,
        profile="fast",
        state_root=tmp_path_factory.mktemp("clusters"),
        provider_settings=KubeEdgeDocker.provider_settings({}),
    )
    with KubeEdgeDocker(spec) as cluster:
        yield cluster
    assert leftovers(spec.name) == []


def test_hollowedge_containers_reach_cloudhub_only_through_their_links(
    kubeedge: KubeEdgeDocker,
) -> None:
    agents = kubeedge.client.containers.list(filters=labels.cluster_filter(kubeedge.spec.name))
    assert sorted(c.labels[f"{labels.PREFIX}.node"] for c in agents) == ["edge-0", "edge-1"]
    ws, https = kubeedge.link_upstreams()
    for c in agents:
        node = kubeedge.node(c.labels[f"{labels.PREFIX}.node"])
        argv = c.attrs["Config"]["Cmd"]
        assert Path(argv[0]).name == STAND_IN
        assert f"--websocket-server={node.dial_for(ws)}" in argv
        assert f"--http-server=https://{node.dial_for(https)}" in argv
        assert node.dial_for(ws).startswith(f"{kubeedge.gateway}:")  # its link, nothing else
    assert "hollowedge" in kubeedge.tool_versions()["kubeedge-edge-agent"]
    # the footprint samples each node's hollowedge process (its container's first process)
    (pid,) = kubeedge.agent_pids("edge-0")
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"/hollowedge")
    settings = kubeedge.spec.provider_settings
    assert getattr(settings, "recipe", None) == STAND_IN


def test_pod_runs_a_cut_loses_the_node_a_restore_brings_it_back(kubeedge: KubeEdgeDocker) -> None:
    with (
        ClusterObserver(kubeedge.api).running() as obs,
        workload.namespace(kubeedge.api, "wtk-kubeedge") as ns,
    ):
        workload.pod(kubeedge.api, ns, "p", "edge-1")
        obs.events.wait_for(
            lambda e: e.kind == "pod" and e.name == f"{ns}/p" and e.ready == "True",
            timeout=90,
            what="pod p Ready on edge-1",
        )
        assert kubeedge.edge_pods("edge-1").get(f"{ns}/p") == "Running"
        with kubeedge.node("edge-1").link.cut() as cut:
            lost = obs.events.wait_for(
                lambda e: e.kind == "node" and e.name == "edge-1" and e.ready != "True",
                timeout=kubeedge.timings.detect_bound_s + 30,
                what="edge-1 NotReady/Unknown while its link is cut",
            )
            assert lost.ready in ("False", "Unknown")
            assert obs.node_ready("edge-0") == "True"  # only its own link was cut
            # offline autonomy: the edge still holds its pod
            assert kubeedge.edge_pods("edge-1").get(f"{ns}/p") == "Running"
        assert cut.ended_mono is not None
        obs.events.wait_for(
            lambda e: e.kind == "node" and e.name == "edge-1" and e.ready == "True",
            timeout=120,
            since_mono=cut.ended_mono,
            what="edge-1 Ready again after the restore",
        )


def _connects(run: Runner, address: str) -> bool:
    """Whether a TCP connection from the node's namespace to ``address`` opens."""
    host, _, port = address.rpartition(":")
    script = f"import socket; socket.create_connection(({host!r}, {port}), timeout=3).close()"
    return run([sys.executable, "-c", script]).ok


def test_kernel_cut_in_one_container_covers_both_cloudhub_listeners(
    kubeedge: KubeEdgeDocker,
) -> None:
    runs = {n: kubeedge.node_runner(n) for n in ("edge-0", "edge-1")}
    run0, run1 = runs["edge-0"], runs["edge-1"]
    assert run0 is not None and run1 is not None
    edge0, edge1 = kubeedge.node("edge-0"), kubeedge.node("edge-1")
    ws, https = kubeedge.link_upstreams()
    link = kubeedge.kernel_link("edge-0")
    try:
        with link.cut("reset"):
            assert not _connects(run0, edge0.dial_for(ws))
            assert not _connects(run0, edge0.dial_for(https))
            assert _connects(run1, edge1.dial_for(ws))  # the other node's link is not cut
        assert _connects(run0, edge0.dial_for(ws)) and _connects(run0, edge0.dial_for(https))
    finally:
        link.restore()
