"""Timings of a lab, read from recorded configuration text, with their sources."""

from __future__ import annotations

import pytest

from bench.distros.remote.drivers import parse_agent_pods, parse_crictl_pods
from bench.distros.remote.timings import (
    AGENT_KEYS,
    CONTROLLER_FLAGS,
    combine,
    find_settings,
    from_texts,
    kubernetes_defaults,
    parse_duration,
)

KCM_MANIFEST = """\
spec:
  containers:
  - command:
    - kube-controller-manager
    - --node-monitor-grace-period=20s
    - --node-monitor-period=2s
    - --leader-elect=true
"""
K3S_CONFIG = """\
kube-controller-manager-arg:
  - "node-monitor-grace-period=1m30s"
kube-apiserver-arg:
  - default-unreachable-toleration-seconds=60
"""
KUBELET_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
nodeStatusUpdateFrequency: 4s
nodeLeaseDurationSeconds: 20
"""
PS = "/usr/local/bin/kube-controller-manager --node-monitor-grace-period 45s --v=2\n"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("40s", 40.0), ("1m30s", 90.0), ("500ms", 0.5), ("300", 300.0), ("1h", 3600.0),
     ("abc", None), ("5x", None), ("", None)],
)  # fmt: skip
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_settings_are_found_in_manifests_k3s_configs_command_lines_and_kubelet_config() -> None:
    assert find_settings(KCM_MANIFEST, CONTROLLER_FLAGS) == {
        "node_monitor_grace_period_s": 20.0,
        "node_monitor_period_s": 2.0,
    }
    assert find_settings(K3S_CONFIG, CONTROLLER_FLAGS) == {
        "node_monitor_grace_period_s": 90.0,
        "unreachable_toleration_s": 60.0,
    }
    assert find_settings(PS, CONTROLLER_FLAGS) == {"node_monitor_grace_period_s": 45.0}
    assert find_settings(KUBELET_CONFIG, AGENT_KEYS) == {
        "node_status_update_period_s": 4.0,
        "node_lease_duration_s": 20.0,
    }


def test_cluster_over_lab_file_over_defaults_with_sources() -> None:
    cluster = from_texts(
        {"control plane: ps": PS, "control plane: manifest": KCM_MANIFEST}, CONTROLLER_FLAGS
    )
    result = combine(
        kubernetes_defaults(31),
        "kubernetes default (v1.31.2)",
        {"node_monitor_grace_period_s": 10.0, "not_ready_toleration_s": 30.0},
        cluster,
    )
    assert result.timings.node_monitor_grace_period_s == 45.0  # the first text wins
    assert result.timings.node_monitor_period_s == 2.0
    assert result.timings.not_ready_toleration_s == 30.0
    assert result.timings.unreachable_toleration_s == 300.0
    assert result.sources == {
        "node_monitor_grace_period_s": "control plane: ps",
        "node_monitor_period_s": "control plane: manifest",
        "node_status_update_period_s": "kubernetes default (v1.31.2)",
        "node_lease_duration_s": "kubernetes default (v1.31.2)",
        "unreachable_toleration_s": "kubernetes default (v1.31.2)",
        "not_ready_toleration_s": "lab file",
        **{
            name: "kubernetes default (v1.31.2)"
            for name in ("unhealthy_zone_threshold", "large_cluster_size_threshold",
                         "node_eviction_rate", "secondary_node_eviction_rate")
        },
    }  # fmt: skip
    assert kubernetes_defaults(28)["node_monitor_grace_period_s"] == 40.0


CRICTL = """{"items": [
 {"id": "a1", "metadata": {"name": "app-1", "namespace": "eb-x", "uid": "u1"},
  "state": "SANDBOX_READY"},
 {"id": "a0", "metadata": {"name": "app-1", "namespace": "eb-x", "uid": "u1"},
  "state": "SANDBOX_NOTREADY"},
 {"id": "b1", "metadata": {"name": "app-2", "namespace": "eb-x", "uid": "u2"},
  "state": "SANDBOX_NOTREADY"}
]}"""


def test_crictl_pods_become_the_edge_view() -> None:
    assert parse_crictl_pods(CRICTL) == {"eb-x/app-1": "Running", "eb-x/app-2": "NotReady"}


AGENT_PODS = """{"kind": "PodList", "items": [
 {"metadata": {"name": "app-1", "namespace": "eb-x"}, "status": {"phase": "Pending"}},
 {"metadata": {"name": "app-2", "namespace": "eb-x"}, "status": {"phase": "Succeeded"}},
 {"metadata": {"name": "app-3", "namespace": "eb-x"}, "status": {}}
]}"""


def test_an_agents_read_only_pods_become_the_edge_view() -> None:
    assert parse_agent_pods(AGENT_PODS) == {
        "eb-x/app-1": "Running",
        "eb-x/app-2": "Succeeded",
        "eb-x/app-3": "Running",
    }


def test_the_zone_rule_is_read_from_the_controller_flags_else_the_kubernetes_defaults() -> None:
    flags = "kube-controller-manager --unhealthy-zone-threshold=0.7 --node-eviction-rate 0.5\n"
    cluster = from_texts({"control plane: ps": flags}, CONTROLLER_FLAGS)
    result = combine(kubernetes_defaults(32), "kubernetes default (v1.32.9)", {}, cluster)
    assert result.timings.unhealthy_zone_threshold == 0.7
    assert result.timings.node_eviction_rate == 0.5
    assert result.timings.large_cluster_size_threshold == 50.0
    assert result.timings.secondary_node_eviction_rate == 0.01
    assert result.sources["unhealthy_zone_threshold"] == "control plane: ps"
    assert result.sources["large_cluster_size_threshold"] == "kubernetes default (v1.32.9)"


def test_defaults_carry_their_own_source_per_field() -> None:
    defaults = {**kubernetes_defaults(32), "agent_silent_link_s": 30.0}
    sources = {name: "kubernetes default" for name in defaults}
    sources["agent_silent_link_s"] = "edgecore default"
    result = combine(defaults, sources, {}, {})
    assert result.timings.agent_silent_link_s == 30.0
    assert result.sources["agent_silent_link_s"] == "edgecore default"
    assert result.sources["node_lease_duration_s"] == "kubernetes default"
