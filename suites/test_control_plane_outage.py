"""control_plane_outage: every edge node loses the control plane at once, then all reconnect.

Measures the edge-side view during the outage, each node's recovery on mass reconnect against
its own link's restore, and the whole site's (the last node stable). On a StarlingX subcloud
(every node of it cut from its system controller), also the controller's view: the
``subcloud_*`` metrics from ``dcmanager subcloud show`` polled through the outage (the cut held
until the subcloud is seen offline, within a bound); empty with the reason when the lab names
no system controller (:mod:`bench.scenario.subcloud`).
"""

from __future__ import annotations

import pytest

from bench.faults import CutMode
from bench.observe import timeline
from bench.scenario import workload
from bench.scenario.run import ScenarioFactory

pytestmark = pytest.mark.scenario
SCENARIO = "control_plane_outage"
REPLICAS = 2


@pytest.mark.parametrize("case", [pytest.param("all-nodes", marks=pytest.mark.smoke)])
def test_control_plane_outage(
    scenario_run: ScenarioFactory, repeat: int, cut_mode: CutMode, case: str
) -> None:
    run = scenario_run(SCENARIO, f"{case}/{cut_mode}", repeat)
    nodes = run.cluster.edge_nodes
    names = [n.name for n in nodes]
    run.expect(["edge_pods_running", "first_ready_s", "stable_recover_s", "relapses"], names)
    run.expect(["stable_recover_s", "relapses"], ["site"])

    with workload.namespace(run.cluster.api, "eb-cpout") as ns:
        expected: dict[str, list[str]] = {}
        for node in nodes:
            workload.deployment(run.cluster.api, ns, f"app-{node.name}", node.name, REPLICAS)
        for node in nodes:
            app = f"app-{node.name}"
            run.wait_pods_ready(ns, app, REPLICAS, node.name, run.recover_timeout)
            expected[node.name] = [p.name for p in run.app_pods(ns, app)]

        with run.subcloud_watch() as subcloud:
            # a subcloud's nodes keep their own Kubernetes: the cut's effect is the system
            # controller seeing the subcloud offline (asserted), not the nodes not Ready
            own = subcloud.own_kubernetes
            hold = run.cluster.timings.short_outage_s
            with run.outage(nodes, cut_mode, hold, expect_not_ready=not own) as outage:
                for node in nodes:
                    run.record_edge_view("edge_pods_running", node.name, expected[node.name])
                subcloud.wait_offline(outage.started_mono)

            if own:
                why = (
                    "a subcloud's nodes keep their own Kubernetes through the cut: no node recovery"
                )
                for name in [*names, "site"]:
                    for metric in ("first_ready_s", "stable_recover_s", "relapses"):
                        if (metric, name) in run.expected:
                            run.record(metric, None, node=name, note=why)
            else:  # every node against its own link's restore
                site = timeline.site_recovery(run.outage_recoveries(outage))
                note = site.note
                run.record("stable_recover_s", site.stable_recover_s, node="site", note=note)
                run.record("relapses", site.relapses, node="site", note="summed over the nodes")
            run.record_subcloud(subcloud, outage)
        for node in nodes:
            run.wait_pods_ready(ns, f"app-{node.name}", REPLICAS, node.name, run.recover_timeout)
        run.assert_baseline()
