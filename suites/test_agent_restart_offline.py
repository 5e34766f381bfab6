"""agent_restart_offline: only the edge agent restarts while its link is down; the containers
stay (real runtimes only). Does the agent pick its running pods up again while still offline,
and how does it converge once the link is back?
"""

from __future__ import annotations

import pytest

from bench.faults import CutMode
from bench.model import Capability
from bench.scenario import workload
from bench.scenario.run import ScenarioFactory

pytestmark = [
    pytest.mark.scenario,
    pytest.mark.requires(Capability.AGENT_RESTART, Capability.REAL_RUNTIME),
]
SCENARIO = "agent_restart_offline"
REPLICAS = 3


@pytest.mark.parametrize("case", [pytest.param("tolerating", marks=pytest.mark.smoke)])
def test_agent_restart_offline(
    scenario_run: ScenarioFactory, repeat: int, cut_mode: CutMode, case: str
) -> None:
    run = scenario_run(SCENARIO, f"{case}/{cut_mode}", repeat)
    cluster = run.cluster
    node = cluster.edge_nodes[0]
    run.expect(["edge_pods_running_after_restart"], [node.name])

    with workload.namespace(cluster.api, "eb-restart") as ns:
        workload.deployment(cluster.api, ns, "app", node.name, REPLICAS, tolerate_unreachable=True)
        run.wait_pods_ready(ns, "app", REPLICAS, node.name, run.recover_timeout)
        baseline = {p.uid for p in run.app_pods(ns, "app")}
        expected = [p.name for p in run.app_pods(ns, "app")]

        with run.outage([node], cut_mode, cluster.timings.short_outage_s) as outage:
            run.restart_agent_offline(node.name, "edge_pods_running_after_restart", expected)
        run.recover(ns, "app", REPLICAS, node.name, outage.fault(node.name), baseline)
