"""vanilla/local for real: hollow kubelets behind their own links, the kubelet's own view of
its pods, and a reboot while offline that leaves the kubelet without API-sourced pods."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.distros.local.vanilla import VanillaLocal
from bench.model import ClusterSpec
from bench.observe.watch import ClusterObserver
from bench.procs import wait_for
from bench.scenario import workload
from edgebench_fixtures.cluster import require_available

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture(scope="module")
def vanilla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VanillaLocal]:
    require_available(VanillaLocal)
    spec = ClusterSpec(
        name="t-vanilla",
        edge_nodes=2,
        profile="fast",
        state_root=tmp_path_factory.mktemp("clusters"),
    )
    with VanillaLocal(spec) as cluster:
        yield cluster


def test_kubelet_view_and_reboot_while_offline(vanilla: VanillaLocal) -> None:
    t = vanilla.timings
    assert t.node_lease_duration_s == 40 and t.node_monitor_grace_period_s == 16
    with (
        ClusterObserver(vanilla.api).running() as obs,
        workload.namespace(vanilla.api, "t-vanilla") as ns,
    ):
        workload.pod(vanilla.api, ns, "p", "edge-1")
        obs.events.wait_for(
            lambda e: e.kind == "pod" and e.name == f"{ns}/p" and e.ready == "True",
            timeout=60,
            what="pod p Ready",
        )
        assert vanilla.edge_pods("edge-1").get(f"{ns}/p") == "Running"
        assert f"{ns}/p" not in vanilla.edge_pods("edge-0")
        with vanilla.node("edge-1").link.cut():
            assert vanilla.edge_pods("edge-1").get(f"{ns}/p") == "Running"  # still held
            old_pid = vanilla.agents["edge-1"].pid
            vanilla.restart_agent("edge-1")
            assert vanilla.agents["edge-1"].pid != old_pid
            views: list[dict[str, str]] = []
            wait_for(
                lambda: bool(views.append(vanilla.edge_pods("edge-1")) or True),
                60,
                "the restarted kubelet to answer",
            )
            assert f"{ns}/p" not in views[-1]
        obs.events.wait_for(
            lambda e: e.kind == "pod" and e.name == f"{ns}/p" and e.ready == "True",
            timeout=120,
            what="pod p Ready again",
            since_mono=obs.events.snapshot()[-1].mono,
        )
