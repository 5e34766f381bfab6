"""node_reboot_offline: the edge node reboots while its link is down.

With the in-process fake runtimes of the local provider, restarting the agent is the reboot:
every container is gone and the agent starts with whatever it kept on disk. On a lab node
(``allow_reboot: true``) the machine itself reboots over SSH, and the cut is installed again
once it is back. What does it run while still offline, and how does it converge once the
link is back?
"""

from __future__ import annotations

import pytest

from bench.faults import CutMode
from bench.model import Capability
from bench.scenario import workload
from bench.scenario.run import ScenarioFactory

pytestmark = [pytest.mark.scenario, pytest.mark.requires(Capability.REBOOT)]
SCENARIO = "node_reboot_offline"
REPLICAS = 3


@pytest.mark.parametrize(
    "tolerate",
    [
        pytest.param(True, id="tolerating", marks=pytest.mark.smoke),
        pytest.param(False, id="evictable"),
    ],
)
def test_node_reboot_offline(
    scenario_run: ScenarioFactory, repeat: int, cut_mode: CutMode, tolerate: bool
) -> None:
    case = f"{'tolerating' if tolerate else 'evictable'}/{cut_mode}"
    run = scenario_run(SCENARIO, case, repeat)
    cluster = run.cluster
    node = cluster.edge_nodes[0]
    run.expect(["edge_pods_running_after_reboot"], [node.name])

    with workload.namespace(cluster.api, "eb-reboot") as ns:
        workload.deployment(cluster.api, ns, "app", node.name, REPLICAS, tolerate)
        run.wait_pods_ready(ns, "app", REPLICAS, node.name, run.recover_timeout)
        baseline = {p.uid for p in run.app_pods(ns, "app")}
        expected = [p.name for p in run.app_pods(ns, "app")]

        with run.outage([node], cut_mode, cluster.timings.short_outage_s) as outage:
            run.restart_agent_offline(
                node.name, "edge_pods_running_after_reboot", expected, reboot=True
            )
        run.recover(ns, "app", REPLICAS, node.name, outage.fault(node.name), baseline)
