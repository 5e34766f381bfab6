"""The catalogue of metric names, their units and which direction is better.

Suites record metrics by name; the unit and the direction come from here, so the same metric
never appears with two units in one results file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["lower", "higher", "none"]


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    better: Better
    description: str


_ALL = [
    Metric("detect_s", "s", "lower", "link cut to the node leaving Ready in the control plane"),
    Metric("evicted_pods", "count", "lower", "pods on the node deleted during the outage"),
    Metric("edge_pods_running", "ratio", "higher", "edge-side view of pods running at outage end"),
    Metric("recover_s", "s", "lower", "link restore to the node Ready again"),
    Metric("pods_ready_s", "s", "lower", "link restore to all the node's pods Ready"),
    Metric("recreated_pods", "count", "lower", "pods recreated under a new UID after the outage"),
    Metric(
        "edge_pods_running_after_reboot",
        "ratio",
        "higher",
        "edge-side view of pods running after a reboot, still offline",
    ),
    Metric(
        "edge_pods_running_after_restart",
        "ratio",
        "higher",
        "edge-side view of pods running after an agent restart, still offline",
    ),
    Metric("resync_s", "s", "lower", "link restore to edge and control plane agreeing"),
    Metric("lost_updates", "count", "lower", "offline changes not applied within the bound"),
    Metric("stale_status_s", "s", "lower", "how long the control plane showed stale pod status"),
    Metric("notready_flaps", "count", "lower", "Ready to not-Ready transitions in the window"),
    Metric("pod_start_s", "s", "lower", "creation to Running of a new pod pinned to the node"),
    Metric("heartbeat_gap_max_s", "s", "lower", "largest gap between Lease renewals"),
    Metric("converge_s", "s", "lower", "last restore to a stable, fully Ready node"),
    Metric("fault_apply_s", "s", "lower", "time to apply a Toxiproxy fault"),
    Metric("fault_remove_s", "s", "lower", "time to remove a Toxiproxy fault"),
    Metric("bringup_s", "s", "lower", "cluster start to every edge node Ready"),
    Metric("teardown_s", "s", "lower", "time to stop every process of a cluster"),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}


def metric(name: str) -> Metric:
    """Return the catalogue entry for ``name``; unknown names are a programming error."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(
            f"unknown metric {name!r}; add it to bench/metrics.py (known: {', '.join(METRICS)})"
        ) from None
