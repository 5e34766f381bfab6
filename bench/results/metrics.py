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
    Metric("first_ready_s", "s", "lower", "link restore to the node's first Ready (may relapse)"),
    Metric(
        "stable_recover_s",
        "s",
        "lower",
        "link restore to the node Ready and staying Ready for one grace period, two monitor "
        "periods and one Lease renewal (the headline recovery figure)",
    ),
    Metric(
        "relapses",
        "count",
        "lower",
        "Ready to not-Ready transitions between the first Ready after the restore and the "
        "stable point",
    ),
    Metric(
        "notready_span_s",
        "s",
        "lower",
        "first not-Ready after the cut to stable recovery: how long the control plane saw the "
        "node down (what decides evictions)",
    ),
    Metric("pods_first_ready_s", "s", "lower", "link restore to all the node's pods first Ready"),
    Metric(
        "pods_stable_s",
        "s",
        "lower",
        "link restore to all the node's pods Ready and staying Ready for the same hold period "
        "as the node",
    ),
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
    Metric(
        "converge_s",
        "s",
        "lower",
        "last restore of a flapping link to the node Ready and staying Ready (stable)",
    ),
    # StarlingX distributed cloud: the system controller's view of a subcloud, polled with
    # ``dcmanager subcloud show`` (bench/distros/remote/starlingx.py)
    Metric(
        "subcloud_offline_detect_s",
        "s",
        "lower",
        "link cut to dcmanager reporting the subcloud's availability offline",
    ),
    Metric(
        "subcloud_online_s",
        "s",
        "lower",
        "link restore to dcmanager reporting the subcloud's availability online",
    ),
    Metric(
        "subcloud_resync_s",
        "s",
        "lower",
        "link restore to every endpoint of the subcloud in-sync (statuses in the note)",
    ),
    # --- resource constraint and scale (issue 14): footprint, link traffic, mass reconnect --
    Metric(
        "agent_rss_baseline_mb",
        "MiB",
        "lower",
        "resident memory of the node's edge agent process(es) at the cut (end of baseline)",
    ),
    Metric(
        "agent_rss_peak_mb",
        "MiB",
        "lower",
        "highest sampled resident memory of the edge agent from case start to its recovery",
    ),
    Metric(
        "agent_cpu_baseline_s",
        "s",
        "lower",
        "CPU seconds (user+system) of the edge agent from case start to the cut",
    ),
    Metric(
        "agent_cpu_offline_s",
        "s",
        "lower",
        "CPU seconds of the edge agent while cut off (first cut to last restore)",
    ),
    Metric(
        "agent_cpu_resync_s",
        "s",
        "lower",
        "CPU seconds of the edge agent from the restore until its recovery was confirmed",
    ),
    Metric(
        "offline_bytes_attempted",
        "bytes",
        "lower",
        "IP bytes (headers included) the agent sent toward its link while cut, first cut to "
        "last restore",
    ),
    Metric(
        "resync_bytes_up",
        "bytes",
        "lower",
        "IP bytes (headers included) from the agent over its link, restore until its recovery "
        "was confirmed",
    ),
    Metric(
        "resync_bytes_down",
        "bytes",
        "lower",
        "IP bytes (headers included) to the agent over its link, restore until its recovery "
        "was confirmed",
    ),
    Metric(
        "all_recovered_s",
        "s",
        "lower",
        "mass reconnect: last restore to the last node stable (Ready and staying Ready)",
    ),
    Metric(
        "reconnect_p95_s",
        "s",
        "lower",
        "mass reconnect: 95th percentile of the nodes' stable_recover_s",
    ),
    Metric(
        "apiserver_requests",
        "count",
        "lower",
        "mass reconnect: API server requests (apiserver_request_total delta) from just before "
        "the restore until the last node's recovery was confirmed",
    ),
    Metric(
        "controlplane_rss_peak_mb",
        "MiB",
        "lower",
        "mass reconnect: highest sampled resident memory of the control plane processes "
        "(summed) from just before the restore until the last node's recovery was confirmed",
    ),
    Metric(
        "controlplane_cpu_s",
        "s",
        "lower",
        "mass reconnect: CPU seconds of the control plane processes (summed) from just before "
        "the restore until the last node's recovery was confirmed",
    ),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}

#: How metric names of ``schema_version`` 1 files are read today. A metric that kept its
#: meaning under a new name is renamed; one whose definition changed gets a ``@v1`` suffix, so
#: it is never compared with today's meaning (it shows as missing/added instead).
#: v1 -> v2: recovery is measured to the stable point (no relapse), not to the first Ready.
V1_METRICS: dict[str, str] = {
    "recover_s": "first_ready_s",  # v1 recover_s was restore -> first Ready
    # v1 pods_ready_s: restore -> each pod's *last* Ready transition once the node had settled
    # (first Ready if the Lease kept up, after the relapse if it did not): neither meaning today
    "pods_ready_s": "pods_ready_s@v1",
    "converge_s": "converge_s@v1",  # v1: last restore -> last Ready transition (may relapse)
}


def metric(name: str) -> Metric:
    """Return the catalogue entry for ``name``; unknown names are a programming error."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(
            f"unknown metric {name!r}; add it to bench/metrics.py (known: {', '.join(METRICS)})"
        ) from None


#: Scenarios whose schema_version 1 cases were all cut by a disabled Toxiproxy proxy, i.e. in
#: today's ``reset`` mode; their v1 case names are read with ``/reset`` appended (today's case
#: names carry the cut mode), so a v1 case compares with its reset-mode counterpart only.
V1_RESET_SCENARIOS: frozenset[str] = frozenset(
    {
        "offline_autonomy",
        "node_reboot_offline",
        "metadata_resync",
        "link_flapping",
        "control_plane_outage",
    }
)
