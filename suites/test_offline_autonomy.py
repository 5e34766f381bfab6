"""offline_autonomy: an edge node loses its control plane for a while, then comes back.

Cases by outage length (shorter than grace period plus toleration, and longer), by whether
the pods carry a toleration that keeps them bound while the node is unreachable, and by cut
mode (``--cut``).
"""

from __future__ import annotations

import pytest

from bench.faults import CutMode
from bench.model import Timings
from bench.scenario import workload
from bench.scenario.run import ScenarioFactory

pytestmark = pytest.mark.scenario
SCENARIO = "offline_autonomy"
REPLICAS = 3


def outage_s(length: str, t: Timings) -> float:
    if length == "short":  # detected, but shorter than grace period plus toleration
        return t.short_outage_s
    # past the point where pods without an extra toleration are evicted
    return t.evict_bound_s + 2 * t.node_monitor_period_s + 2


@pytest.mark.parametrize(
    ("length", "tolerate"),
    [
        pytest.param("short", False, id="short-evictable"),
        pytest.param("long", False, id="long-evictable", marks=pytest.mark.smoke),
        pytest.param("short", True, id="short-tolerating"),
        pytest.param("long", True, id="long-tolerating"),
    ],
)
def test_offline_autonomy(
    scenario_run: ScenarioFactory, repeat: int, cut_mode: CutMode, length: str, tolerate: bool
) -> None:
    case = f"{length}-{'tolerating' if tolerate else 'evictable'}/{cut_mode}"
    run = scenario_run(SCENARIO, case, repeat)
    cluster = run.cluster
    node = cluster.edge_nodes[0]
    run.expect(["detect_s", "evicted_pods", "edge_pods_running"], [node.name])

    with workload.namespace(cluster.api, "eb-offline") as ns:
        workload.deployment(cluster.api, ns, "app", node.name, REPLICAS, tolerate)
        run.wait_pods_ready(ns, "app", REPLICAS, node.name, run.recover_timeout)
        baseline = {p.uid for p in run.app_pods(ns, "app")}
        expected = [p.name for p in run.app_pods(ns, "app")]

        hold = outage_s(length, cluster.timings)
        with run.outage([node], cut_mode, hold, record_detect=True) as outage:
            run.record_edge_view("edge_pods_running", node.name, expected)
        fault = outage.fault(node.name)
        rec = run.recover(ns, "app", REPLICAS, node.name, fault, baseline)
        assert fault.started_mono is not None
        # Evictions may still land after the restore, until the node is stable again.
        until = rec.stable_mono if rec.stable_mono is not None else rec.until_mono
        run.record(
            "evicted_pods", run.deleted_pods(baseline, fault.started_mono, until), node=node.name
        )
