"""A lab's effective timings, each with where it came from: the cluster's own configuration
(controller-manager flags, kubelet/edgecore config), else the lab file, else the Kubernetes
defaults of the API server's version.

Only text is parsed here (command lines, manifests, config files), so the rules are unit
tested on recorded output; :func:`gather` reads that text over SSH.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.model import Timings

#: controller-manager flag -> Timings field
CONTROLLER_FLAGS = {
    "node-monitor-grace-period": "node_monitor_grace_period_s",
    "node-monitor-period": "node_monitor_period_s",
    "default-unreachable-toleration-seconds": "unreachable_toleration_s",
    "default-not-ready-toleration-seconds": "not_ready_toleration_s",
    # the zone rule of the node lifecycle controller (mass outages: evictions slow or stop)
    "unhealthy-zone-threshold": "unhealthy_zone_threshold",
    "large-cluster-size-threshold": "large_cluster_size_threshold",
    "node-eviction-rate": "node_eviction_rate",
    "secondary-node-eviction-rate": "secondary_node_eviction_rate",
}
#: agent config key or flag -> Timings field (kubelet config, kubelet flags, edgecore.yaml)
AGENT_KEYS = {
    "nodeStatusUpdateFrequency": "node_status_update_period_s",
    "node-status-update-frequency": "node_status_update_period_s",
    "nodeLeaseDurationSeconds": "node_lease_duration_s",
    "node-lease-duration-seconds": "node_lease_duration_s",
}
#: where the control plane's flags are looked for (static pod, k3s config), besides ``ps``
CONTROL_PLANE_FILES = (
    "/etc/kubernetes/manifests/kube-controller-manager.yaml",
    "/etc/rancher/k3s/config.yaml",
)
AGENT_FILES = ("/var/lib/kubelet/config.yaml", "/etc/kubeedge/config/edgecore.yaml")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """Seconds of a Go duration (``40s``, ``1m30s``, ``500ms``) or a plain number of seconds."""
    text = text.strip().strip("\"'")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def find_settings(text: str, keys: Mapping[str, str]) -> dict[str, float]:
    """Every ``key`` of ``keys`` set in ``text``: ``--key=V``, ``--key V``, ``key: V``,
    ``key=V`` (k3s ``kube-controller-manager-arg``) or YAML ``key: V``; the last one wins."""
    found: dict[str, float] = {}
    for key, name in keys.items():
        pattern = re.compile(rf"(?<![\w]){re.escape(key)}(?:\s*[:=]\s*|\s+)\"?([\w.]+)")
        for match in pattern.finditer(text):
            value = parse_duration(match.group(1))
            if value is not None:
                found[name] = value
    return found


def kubernetes_defaults(minor: int | None) -> dict[str, float]:
    """The upstream defaults; the grace period became 50 s in 1.29 (40 s before). The zone
    rule's have not changed since NodeLease (1.14)."""
    grace = 50.0 if minor is None or minor >= 29 else 40.0
    return {
        "node_monitor_grace_period_s": grace,
        "node_monitor_period_s": 5.0,
        "node_status_update_period_s": 10.0,
        "node_lease_duration_s": 40.0,
        "unreachable_toleration_s": 300.0,
        "not_ready_toleration_s": 300.0,
        "unhealthy_zone_threshold": 0.55,
        "large_cluster_size_threshold": 50.0,
        "node_eviction_rate": 0.1,
        "secondary_node_eviction_rate": 0.01,
    }


@dataclass(frozen=True)
class SourcedTimings:
    """The effective timings and, per field, where each value came from."""

    timings: Timings
    sources: dict[str, str]


def combine(
    defaults: Mapping[str, float],
    default_source: str | Mapping[str, str],
    lab: Mapping[str, float],
    cluster: Mapping[str, tuple[float, str]],
) -> SourcedTimings:
    """Cluster over lab file over defaults, field by field; ``default_source`` names where the
    defaults come from, one name for all or per field."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, value in defaults.items():
        if name in cluster:
            values[name], sources[name] = cluster[name]
        elif name in lab:
            values[name], sources[name] = lab[name], "lab file"
        else:
            source = default_source if isinstance(default_source, str) else default_source[name]
            values[name], sources[name] = value, source
    return SourcedTimings(Timings(**values), sources)


def from_texts(texts: Mapping[str, str], keys: Mapping[str, str]) -> dict[str, tuple[float, str]]:
    """Settings found in each ``where -> text``, tagged with where (the first text wins)."""
    out: dict[str, tuple[float, str]] = {}
    for where, text in texts.items():
        for name, value in find_settings(text, keys).items():
            out.setdefault(name, (value, where))
    return out


def read_texts(host: Any, process: str, files: tuple[str, ...], label: str) -> dict[str, str]:
    """The command lines of ``process`` and the files that exist, over ``host`` (best effort)."""
    texts: dict[str, str] = {}
    ps = host.run("ps -eo args | grep -E %s | grep -v grep", process)
    if ps.succeeded and ps.stdout.strip():
        texts[f"{label}: {process} command line"] = ps.stdout
    for path in files:
        result = host.run("cat -- %s", path)
        if result.succeeded:
            texts[f"{label}: {path}"] = result.stdout
    return texts
