"""control_plane_outage: every edge node loses the control plane at once, then all reconnect.

Measures the edge-side view during the outage and each node's recovery on mass reconnect.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from bench.scenario import workload
from bench.scenario.run import ScenarioFactory

pytestmark = pytest.mark.scenario
SCENARIO = "control_plane_outage"
REPLICAS = 2


@pytest.mark.parametrize("case", [pytest.param("all-nodes", marks=pytest.mark.smoke)])
def test_control_plane_outage(scenario_run: ScenarioFactory, repeat: int, case: str) -> None:
    run = scenario_run(SCENARIO, case, repeat)
    nodes = run.cluster.edge_nodes
    outage = run.cluster.timings.short_outage_s

    with workload.namespace(run.cluster.api, "eb-cpout") as ns:
        expected: dict[str, list[str]] = {}
        for node in nodes:
            workload.deployment(run.cluster.api, ns, f"app-{node.name}", node.name, REPLICAS)
        for node in nodes:
            app = f"app-{node.name}"
            run.wait_pods_ready(ns, app, REPLICAS, node.name, run.recover_timeout)
            expected[node.name] = [p.name for p in run.app_pods(ns, app)]

        with contextlib.ExitStack() as stack:
            faults = [stack.enter_context(node.link.cut()) for node in nodes]
            starts = [f.started_mono for f in faults]
            assert all(m is not None for m in starts)
            cut_at = max(m for m in starts if m is not None)
            for node in nodes:  # the fault had its effect on every node
                run.wait_node(node.name, ready=False, since_mono=cut_at, timeout=run.detect_timeout)
            time.sleep(max(0.0, outage - (time.monotonic() - cut_at)))
            for node in nodes:
                run.record_edge_view("edge_pods_running", node.name, expected[node.name])
        for node, fault in zip(nodes, faults, strict=True):
            run.journal_fault(fault, [node.name])

        # Every node against its own link's restore (the stack restores them in turn).
        for node, fault in zip(nodes, faults, strict=True):
            assert fault.ended_mono is not None
            back = run.wait_node(
                node.name, ready=True, since_mono=fault.ended_mono, timeout=run.recover_timeout
            )
            run.record("recover_s", back.mono - fault.ended_mono, node=node.name)
        for node in nodes:
            run.wait_pods_ready(ns, f"app-{node.name}", REPLICAS, node.name, run.recover_timeout)
        run.assert_baseline()
        run.journal_ready([n.name for n in nodes], cut_at - 1)
