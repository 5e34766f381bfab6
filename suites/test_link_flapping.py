"""link_flapping: the link goes down and up repeatedly, with periods around the grace period.

Counts not-Ready flaps and evictions until the node is stable again, and times how long the
node takes after the last restore to be Ready and stay Ready (``converge_s``).
"""

from __future__ import annotations

import pytest

from bench.faults import CutMode
from bench.scenario import workload
from bench.scenario.run import ScenarioFactory

pytestmark = pytest.mark.scenario
SCENARIO = "link_flapping"
REPLICAS = 2
CYCLES = 3


@pytest.mark.parametrize(
    ("down_factor", "up_factor"),
    [
        pytest.param(0.5, 0.5, id="down-half-grace"),
        pytest.param(1.5, 1.0, id="down-1.5x-grace", marks=pytest.mark.smoke),
    ],
)
def test_link_flapping(
    scenario_run: ScenarioFactory,
    repeat: int,
    cut_mode: CutMode,
    down_factor: float,
    up_factor: float,
) -> None:
    case = f"down-{down_factor:g}x-up-{up_factor:g}x-grace/{cut_mode}"
    run = scenario_run(SCENARIO, case, repeat)
    node = run.cluster.edge_nodes[0]
    run.expect(["notready_flaps", "evicted_pods", "converge_s", "relapses"], [node.name])
    t = run.cluster.timings
    down_s = down_factor * t.node_monitor_grace_period_s
    up_s = up_factor * t.node_monitor_grace_period_s

    with workload.namespace(run.cluster.api, "eb-flap") as ns:
        workload.deployment(run.cluster.api, ns, "app", node.name, REPLICAS)
        run.wait_pods_ready(ns, "app", REPLICAS, node.name, run.recover_timeout)
        baseline = {p.uid for p in run.app_pods(ns, "app")}

        with node.link.flap(up_s=up_s, down_s=down_s, cycles=CYCLES, mode=cut_mode) as flap:
            assert flap.started_mono is not None
            flap.wait(timeout=CYCLES * (up_s + down_s) + 30)
        end = flap.last_up_mono
        start = flap.started_mono
        assert end is not None

        # The fault must have had an effect: heartbeats stalled for most of a down period.
        gap = run.heartbeat_gap_max(node.name, start, end)
        assert gap >= 0.8 * down_s, f"lease renewals never stalled (max gap {gap:.1f}s)"

        rec = run.node_recovery(node.name, start, end)
        settled = rec.stable_mono if rec.stable_mono is not None else rec.until_mono
        run.record("converge_s", rec.stable_recover_s, node=node.name, note=rec.note)
        run.record("relapses", rec.relapses, node=node.name, note="after the last restore")
        run.record("notready_flaps", run.notready_flaps(node.name, start, settled), node=node.name)
        run.record("evicted_pods", run.deleted_pods(baseline, start, settled), node=node.name)
        run.wait_pods_ready(ns, "app", REPLICAS, node.name, run.recover_timeout)
        run.assert_baseline()
