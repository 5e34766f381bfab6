"""The container specs of the docker provider, pinned against what issue 12 states about
k3s in containers (no engine needed)."""

from __future__ import annotations

import os

import pytest

from bench.build import versions
from bench.distros import DEFAULT_PROVIDER, driver_class
from bench.distros.docker import k3s_spec, labels, network
from bench.distros.docker.spec import (
    ALL_BUT_SYS_RESOURCE,
    PRIVILEGED,
    SECURITY_MODES,
    host_address,
    refused,
)
from bench.distros.local.controlplane import KUBELET_FAST
from bench.model import ClusterSpec

SPEC = ClusterSpec(name="docker-dev", edge_nodes=2)


def server(timings=KUBELET_FAST):  # type: ignore[no-untyped-def]
    return k3s_spec.server_spec(SPEC, "run1", "edgebench-docker-dev", "10.253.7.2", "tok", timings)


def agent(timings=KUBELET_FAST):  # type: ignore[no-untyped-def]
    return k3s_spec.agent_spec(
        SPEC, "run1", "edge-1", "edgebench-docker-dev", "10.253.7.11", "10.253.7.2", "tok", timings
    )


def test_k3s_is_registered_with_docker_as_its_default_provider() -> None:
    assert DEFAULT_PROVIDER["k3s"] == "docker"
    cls = driver_class("k3s")
    assert (cls.name, cls.provider) == ("k3s", "docker")


def test_image_is_the_pinned_v1_32_rancher_k3s() -> None:
    assert versions.K3S.startswith("v1.32.")
    assert versions.K3S.removesuffix("+k3s1")[1:] == versions.KUBERNETES[1:]  # same patch
    assert f"rancher/k3s:{versions.K3S.replace('+', '-')}" == k3s_spec.IMAGE
    assert "+" not in k3s_spec.IMAGE  # docker tags cannot hold a '+'
    assert server().image == agent().image == k3s_spec.IMAGE


def test_server_command_disables_addons_and_names_itself_in_its_certificate() -> None:
    s = server()
    assert s.command[0] == "server"
    assert "--disable=traefik,servicelb,metrics-server" in s.command
    assert "--tls-san=edgebench-docker-dev-server" in s.command
    assert "--tls-san=10.253.7.2" in s.command
    assert s.environment["K3S_TOKEN"] == "tok"
    assert s.ip == "10.253.7.2" and s.network == "edgebench-docker-dev"
    # the scenarios' workloads must not land on the server's own node
    assert f"--node-taint={k3s_spec.SERVER_TAINT}" in s.command


def test_fast_profile_flags_reach_controller_manager_apiserver_and_kubelet() -> None:
    s = server()
    assert "--kube-controller-manager-arg=node-monitor-grace-period=16s" in s.command
    assert "--kube-controller-manager-arg=node-monitor-period=1s" in s.command
    assert "--kube-apiserver-arg=default-unreachable-toleration-seconds=10" in s.command
    assert "--kube-apiserver-arg=default-not-ready-toleration-seconds=10" in s.command
    assert "--kubelet-arg=node-status-update-frequency=10s" in s.command
    assert "--kubelet-arg=node-status-update-frequency=10s" in agent().command
    # the default profile: upstream defaults, no lifecycle flags at all
    assert not [a for a in server(None).command if "-arg=" in a]
    assert not [a for a in agent(None).command if "-arg=" in a]


def test_agent_joins_by_url_and_token_and_waits_for_its_steering() -> None:
    a = agent()
    assert a.environment == {"K3S_URL": "https://10.253.7.2:6443", "K3S_TOKEN": "tok"}
    assert a.command[:2] == ("k3s", "agent")
    assert "--node-name=edge-1" in a.command
    assert "--node-label=edgebench.io/edge=true" in a.command
    assert a.entrypoint is not None and a.entrypoint[:2] == ("/bin/sh", "-c")
    script = a.entrypoint[2]
    assert k3s_spec.STEERED_MARKER in script and 'exec /bin/k3s "$@"' in script
    # the marker lives on the tmpfs: a restarted container waits for its rule again
    assert k3s_spec.STEERED_MARKER.startswith("/run/")
    assert a.name == "edgebench-docker-dev-edge-1" and a.hostname == "edge-1"


@pytest.mark.parametrize("make", [server, agent])
def test_tmpfs_run_and_var_run(make) -> None:  # type: ignore[no-untyped-def]
    assert dict(make().tmpfs) == {"/run": "rw", "/var/run": "rw"}
    kwargs = make().run_kwargs(PRIVILEGED)
    assert kwargs["tmpfs"] == {"/run": "rw", "/var/run": "rw"}


@pytest.mark.parametrize("make", [server, agent])
def test_labels_name_cluster_run_and_owner(make) -> None:  # type: ignore[no-untyped-def]
    got = make().labels
    assert got[labels.CLUSTER] == "docker-dev"
    assert got[labels.RUN_ID] == "run1"
    assert got[labels.OWNER_PID] == str(os.getpid())
    assert got[labels.MANAGED] == "true"


def test_privileged_first_then_all_caps_but_sys_resource() -> None:
    assert SECURITY_MODES == (PRIVILEGED, ALL_BUT_SYS_RESOURCE)
    assert PRIVILEGED.run_kwargs() == {"privileged": True}
    assert ALL_BUT_SYS_RESOURCE.run_kwargs() == {
        "privileged": False,
        "cap_add": ["ALL"],
        "cap_drop": ["SYS_RESOURCE"],
        "security_opt": ["seccomp=unconfined"],
    }
    kwargs = server().run_kwargs(ALL_BUT_SYS_RESOURCE)
    assert kwargs["cap_add"] == ["ALL"] and kwargs["privileged"] is False


def test_refusals_fall_back_other_errors_do_not() -> None:
    assert refused(
        "500 Server Error: OCI runtime create failed: unable to apply caps: operation not permitted"
    )
    assert not refused("404 Client Error: No such image: rancher/k3s:v1.32.9-k3s1")


def test_dnat_steers_the_server_port_to_the_nodes_own_link() -> None:
    rules = k3s_spec.dnat_rules("10.253.7.2", "10.253.7.1:40123")
    assert rules == [
        [
            "iptables", "-w", "-t", "nat", "-A", "OUTPUT",
            "-d", "10.253.7.2", "-p", "tcp", "--dport", "6443",
            "-j", "DNAT", "--to-destination", "10.253.7.1:40123",
        ]
    ]  # fmt: skip
    cmd = k3s_spec.dnat_command(4242, rules[0])
    assert cmd[:5] == ["nsenter", "-t", "4242", "-n", "iptables"]


K3S_LOG = """\
time="2026-11-27T18:00:01Z" level=info msg="Running kube-apiserver --advertise-address=10.253.7.2 --default-not-ready-toleration-seconds=10 --default-unreachable-toleration-seconds=10 --secure-port=6444"
time="2026-11-27T18:00:03Z" level=info msg="Running kube-controller-manager --allocate-node-cidrs=true --node-monitor-grace-period=16s --node-monitor-period=1s --use-service-account-credentials=true"
time="2026-11-27T18:00:09Z" level=info msg="Node controller sync successful"
"""  # noqa: E501


def test_effective_timings_come_from_the_running_lines() -> None:
    t = k3s_spec.effective_timings(K3S_LOG, KUBELET_FAST)
    assert t is not None
    assert t.node_monitor_grace_period_s == 16 and t.node_monitor_period_s == 1
    assert t.unreachable_toleration_s == 10 and t.not_ready_toleration_s == 10
    assert k3s_spec.effective_timings(K3S_LOG.splitlines()[0], None) is None  # kcm not yet


def test_without_flags_the_upstream_defaults_apply() -> None:
    log = (
        'msg="Running kube-apiserver --secure-port=6444"\n'
        'msg="Running kube-controller-manager --allocate-node-cidrs=true"\n'
    )
    t = k3s_spec.effective_timings(log, None)
    assert t == k3s_spec.UPSTREAM_DEFAULTS
    assert t.node_monitor_grace_period_s == 50  # v1.32's default


def test_kubeconfig_points_at_the_server_container() -> None:
    text = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n"
    assert "server: https://10.253.7.2:6443\n" in k3s_spec.rewrite_kubeconfig(text, "10.253.7.2")


def test_networks_use_free_slash24s_of_edgebenchs_range() -> None:
    free = network.free_subnets(["172.17.0.0/16", "10.253.0.0/24", "10.253.2.0/23"])
    assert free[:2] == ["10.253.1.0/24", "10.253.4.0/24"]
    assert all(s.startswith("10.253.") for s in free)
    assert host_address("10.253.4.0/24", 1) == "10.253.4.1"
    with pytest.raises(ValueError):
        host_address("10.253.4.0/24", 255)


def test_owner_gone_only_for_this_machines_dead_owners() -> None:
    mine = labels.labels("c", "r", "agent", owner_pid=123)
    assert labels.owner_gone(mine, alive={1})
    assert not labels.owner_gone(mine, alive={123})
    other_host = {**mine, labels.OWNER_HOST: "some-other-machine"}
    assert not labels.owner_gone(other_host, alive=set())
    assert labels.owner_gone(labels.labels("c", "r", "agent")) is False  # this process


def test_agents_links_say_which_backends_they_have(monkeypatch: pytest.MonkeyPatch) -> None:
    """vanilla and kwok in containers: kernel + Toxiproxy where this machine allows kernel
    links in the containers' namespaces; Toxiproxy alone with --no-netns or where it cannot."""
    from bench.distros.docker import cluster
    from bench.distros.docker.cluster import DockerSettings
    from bench.errors import EnvironmentUnavailableError
    from bench.faults.base import FaultKind

    for name in ("vanilla", "kwok"):
        cls = driver_class(name, "docker")
        kernel = ClusterSpec(name="d", provider_settings=DockerSettings(kernel=True))
        assert cls.link_backends(kernel) == {"kernel", "toxiproxy"}
        assert FaultKind.LOSS in cls.link_faults(kernel)
        plain = ClusterSpec(name="d", provider_settings=cls.provider_settings({"netns": False}))
        assert cls.link_backends(plain) == {"toxiproxy"}
        assert FaultKind.LOSS not in cls.link_faults(plain)
        assert cls.lacks("backend:kernel", plain) is not None

    monkeypatch.setattr(cluster, "unavailable_reason", lambda: "network namespaces need root")
    vanilla = driver_class("vanilla", "docker")
    assert vanilla.provider_settings({"netns": None}) == DockerSettings(kernel=False)
    with pytest.raises(EnvironmentUnavailableError, match="kernel links in the agents"):
        vanilla.provider_settings({"netns": True})
    monkeypatch.setattr(cluster, "unavailable_reason", lambda: None)
    monkeypatch.setattr(cluster.shutil, "which", lambda _: "/usr/bin/nsenter")
    assert vanilla.provider_settings({"netns": None}) == DockerSettings(kernel=True)
