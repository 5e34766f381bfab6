"""node_reboot_offline: the edge node reboots while its link is down.

With the in-process fake runtimes of the local provider, restarting the agent is the reboot:
every container is gone and the agent starts with whatever it kept on disk. What does it run
while still offline, and how does it converge once the link is back?
"""

from __future__ import annotations

import time

import pytest

from bench.scenario import workload
from bench.scenario.run import ScenarioFactory

pytestmark = pytest.mark.scenario
SCENARIO = "node_reboot_offline"
REPLICAS = 3
AGENT_START_TIMEOUT = 60


@pytest.mark.parametrize(
    "tolerate",
    [
        pytest.param(True, id="tolerating", marks=pytest.mark.smoke),
        pytest.param(False, id="evictable"),
    ],
)
def test_node_reboot_offline(scenario_run: ScenarioFactory, repeat: int, tolerate: bool) -> None:
    case = "tolerating" if tolerate else "evictable"
    run = scenario_run(SCENARIO, case, repeat)
    cluster = run.cluster
    node = cluster.edge_nodes[0]
    t = cluster.timings
    outage = t.short_outage_s

    with workload.namespace(cluster.api, "eb-reboot") as ns:
        workload.deployment(cluster.api, ns, "app", node.name, REPLICAS, tolerate)
        run.wait_pods_ready(ns, "app", REPLICAS, node.name, run.recover_timeout)
        baseline = {p.uid for p in run.app_pods(ns, "app")}
        expected = [p.name for p in run.app_pods(ns, "app")]

        with node.link.cut() as fault:
            assert fault.started_mono is not None
            run.wait_node(
                node.name, ready=False, since_mono=fault.started_mono, timeout=run.detect_timeout
            )
            cluster.restart_agent(node.name)
            run.record_edge_view(
                "edge_pods_running_after_reboot",
                node.name,
                expected,
                timeout=AGENT_START_TIMEOUT,
                settle=2.0,
            )
            time.sleep(max(0.0, outage - (time.monotonic() - fault.started_mono)))
        run.recover(ns, "app", REPLICAS, node.name, fault, baseline)
