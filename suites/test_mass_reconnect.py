"""mass_reconnect: a site-wide outage. Every edge link is cut at once, held past detection and
past the eviction bound, and restored at once; how recovery and the control plane's load grow
with the number of nodes that reconnect together.

The size is the cluster's: run the suite once per ``--edge-nodes`` N (the case name carries N,
``n50/reset``), e.g. ``--edge-nodes 10`` then ``--edge-nodes 50`` into one results folder.
Per node ``stable_recover_s`` (its own link's restore to stable); per case ``all_recovered_s``
(last restore to the last node stable), ``reconnect_p95_s``, ``apiserver_requests`` and the
control plane's footprint from just before the restore until the last node's recovery was
confirmed, and ``evicted_pods`` against the node lifecycle controller's zone rule (every node
of the only zone unreachable: evictions stop, see :mod:`bench.observe.zone_rule`).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.errors import NotSupportedError
from bench.faults import CutMode
from bench.observe import timeline, zone_rule
from bench.observe.apiserver_metrics import request_total
from bench.scenario import workload
from bench.scenario.resources import CP_PREFIX
from bench.scenario.run import ScenarioFactory, ScenarioRun

pytestmark = pytest.mark.scenario
SCENARIO = "mass_reconnect"
SITE = ""  # node-less rows: the whole site, the control plane
SITE_METRICS = [
    "all_recovered_s",
    "reconnect_p95_s",
    "apiserver_requests",
    "evicted_pods",
    "controlplane_rss_peak_mb",
    "controlplane_cpu_s",
]


def _requests(run: ScenarioRun) -> int | None:
    try:
        return request_total(run.cluster.apiserver_metrics())
    except NotSupportedError:
        return None


def _record_control_plane(run: ScenarioRun, start: float, end: float) -> None:
    try:
        names = sorted(run.cluster.control_plane_pids())
    except NotSupportedError as exc:
        for metric in ("controlplane_rss_peak_mb", "controlplane_cpu_s"):
            run.record(metric, None, node=SITE, note=str(exc))
        return
    usage = run.resources.usage([CP_PREFIX + n for n in names], start, end)
    note = f"{', '.join(names)} summed; restore until the last recovery confirmed"
    run.record(
        "controlplane_rss_peak_mb", usage.rss_peak_mb if usage else None, node=SITE, note=note
    )
    run.record("controlplane_cpu_s", usage.cpu_s if usage else None, node=SITE, note=note)


def test_mass_reconnect(
    scenario_run: ScenarioFactory, repeat: int, cut_mode: CutMode, edge_node_count: int
) -> None:
    run = scenario_run(SCENARIO, f"n{edge_node_count}/{cut_mode}", repeat)
    cluster = run.cluster
    t = cluster.timings
    nodes = cluster.edge_nodes
    names = [n.name for n in nodes]
    run.expect(["stable_recover_s", "first_ready_s", "relapses", "notready_span_s"], names)
    run.expect(SITE_METRICS, [SITE])

    with workload.namespace(cluster.api, "eb-mass") as ns:
        for node in nodes:  # one evictable pod per node: what the zone rule protects
            workload.pod(cluster.api, ns, f"p-{node.name}", node.name)
        for node in nodes:
            run.wait_pods_ready(ns, f"p-{node.name}", 1, node.name, run.recover_timeout)
        pods = {p.uid for node in nodes for p in run.app_pods(ns, f"p-{node.name}")}

        hold = t.evict_bound_s + 2 * t.node_monitor_period_s + 2  # past the eviction bound
        with run.outage(nodes, cut_mode, hold) as outage:
            time.sleep(max(0.0, hold - (time.monotonic() - outage.started_mono)))
            requests_before = _requests(run)
            before_mono = run.resources.mark()

        recoveries = run.outage_recoveries(outage)
        requests_after = _requests(run)
        end_mono = run.resources.mark()

        site = timeline.site_recovery(recoveries)
        run.record("all_recovered_s", site.stable_recover_s, node=SITE, note=site.note)
        stable = [r.stable_recover_s for r in recoveries]
        p95 = (
            None
            if None in stable
            else float(np.percentile([s for s in stable if s is not None], 95))
        )
        run.record("reconnect_p95_s", p95, node=SITE, note=f"over {len(stable)} nodes")
        if requests_before is None or requests_after is None:
            run.record("apiserver_requests", None, node=SITE, note="no API server /metrics")
        else:
            run.record(
                "apiserver_requests",
                requests_after - requests_before,
                node=SITE,
                note=f"apiserver_request_total delta over {end_mono - before_mono:.1f}s: "
                "just before the restore until the last recovery confirmed",
            )
        _record_control_plane(run, before_mono, end_mono)

        cut_mono = min(f.started_mono for f in outage.faults.values() if f.started_mono)
        until = site.stable_mono if site.stable_mono is not None else time.monotonic()
        evicted = run.deleted_pods(pods, cut_mono, until)
        try:
            rate, why = zone_rule.eviction_rate(len(nodes), len(nodes), t)
            note = f"zone rule: {why}"
            if rate == 0 and evicted:  # see tests/test_zone_rule.py
                note += (
                    f"; {evicted} evicted: nodes seen not Ready while the zone was still normal "
                    "may be tainted before the whole zone is"
                )
        except ValueError as exc:
            note = str(exc)
        run.record("evicted_pods", evicted, node=SITE, note=note)
        run.assert_baseline()
