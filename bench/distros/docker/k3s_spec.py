"""The containers of a k3s cluster (``rancher/k3s``), as pure functions of the cluster.

A server and one agent per edge node on the cluster's own network, each with tmpfs ``/run``
and ``/var/run`` (what k3s in containers needs, as k3d and testcontainers run it).

The trap: an agent dials ``K3S_URL`` only at first; its client-side load balancer and its
websocket tunnel then switch to the addresses in the ``default/kubernetes`` endpoints, i.e.
the server's own address, bypassing any proxy put in front of the server. So the agent is
told the server's real address, and inside the agent's network namespace a DNAT rule sends
every connection to ``server:6443`` to that node's own link (its Toxiproxy listener):
load balancer, tunnel and kubelet all go through the link, whatever address they pick.
The agent waits for that rule before it starts (:data:`STEERED_MARKER`, on the tmpfs, so a
restarted container waits again for the rule to be put back in its new namespace).
"""

from __future__ import annotations

import re
import shlex

from bench.build import versions
from bench.distros.docker import labels as lbl
from bench.distros.docker.spec import ContainerSpec
from bench.distros.local.controlplane import parse_go_duration
from bench.model import ClusterSpec, Timings

IMAGE = f"rancher/k3s:{versions.K3S.replace('+', '-')}"
API_PORT = 6443  # the API server and the supervisor (agents' join and tunnel) share it
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
#: what the server logs once the node lifecycle controller runs: the cluster is usable
READY_LINE = "Node controller sync successful"
#: disabled add-ons: none of them is part of what the scenarios measure
DISABLED = ("traefik", "servicelb", "metrics-server")
EDGE_LABEL = "edgebench.io/edge=true"
SERVER_TAINT = "node-role.kubernetes.io/control-plane=true:NoSchedule"
TMPFS = {"/run": "rw", "/var/run": "rw"}
STEERED_MARKER = "/run/edgebench-steered"
# The agent's entrypoint: wait until the host has put the DNAT rule in place, then k3s.
_WAIT_THEN_K3S = f'until [ -e {STEERED_MARKER} ]; do sleep 0.2; done; exec /bin/k3s "$@"'

# Upstream defaults (k3s sets no node-lifecycle flags of its own); the effective values are
# read back from the server's "Running kube-..." log lines (see effective_timings).
UPSTREAM_DEFAULTS = Timings(
    node_monitor_grace_period_s=50,
    node_monitor_period_s=5,
    node_status_update_period_s=10,
    node_lease_duration_s=40,
    unreachable_toleration_s=300,
    not_ready_toleration_s=300,
)


def server_name(cluster: str) -> str:
    return f"edgebench-{cluster}-server"


def agent_name(cluster: str, node: str) -> str:
    return f"edgebench-{cluster}-{node}"


def profile_flags(timings: Timings | None) -> list[str]:
    """The server flags setting the node lifecycle of ``timings`` (None: upstream defaults).

    The kubelet's heartbeat is its Lease, renewed every quarter of its 40 s duration whatever
    ``--node-status-update-frequency`` says, so a fast grace period must stay above 10 s.
    """
    if timings is None:
        return []
    return [
        f"--kube-controller-manager-arg=node-monitor-grace-period="
        f"{timings.node_monitor_grace_period_s:g}s",
        f"--kube-controller-manager-arg=node-monitor-period={timings.node_monitor_period_s:g}s",
        f"--kube-apiserver-arg=default-unreachable-toleration-seconds="
        f"{int(timings.unreachable_toleration_s)}",
        f"--kube-apiserver-arg=default-not-ready-toleration-seconds="
        f"{int(timings.not_ready_toleration_s)}",
    ]


def kubelet_flags(timings: Timings | None) -> list[str]:
    """The kubelet flags of every k3s node for ``timings`` (None: upstream defaults)."""
    if timings is None:
        return []
    return [f"--kubelet-arg=node-status-update-frequency={timings.node_status_update_period_s:g}s"]


def server_spec(
    spec: ClusterSpec,
    run_id: str,
    network: str,
    ip: str,
    token: str,
    timings: Timings | None,
) -> ContainerSpec:
    """The k3s server: API server, controllers and a tainted node nothing is scheduled on."""
    name = server_name(spec.name)
    command = [
        "server",
        f"--disable={','.join(DISABLED)}",
        f"--tls-san={name}",
        f"--tls-san={ip}",
        f"--node-name={name}",
        f"--node-taint={SERVER_TAINT}",
        *profile_flags(timings),
        *kubelet_flags(timings),
    ]
    return ContainerSpec(
        name=name,
        image=IMAGE,
        command=tuple(command),
        labels=lbl.labels(spec.name, run_id, "server", detached=spec.detached),
        network=network,
        ip=ip,
        environment={"K3S_TOKEN": token, "K3S_KUBECONFIG_MODE": "644"},
        tmpfs=TMPFS,
    )


def agent_spec(
    spec: ClusterSpec,
    run_id: str,
    node: str,
    network: str,
    ip: str,
    server_ip: str,
    token: str,
    timings: Timings | None,
) -> ContainerSpec:
    """One edge node: a k3s agent told the server's real address (steered by DNAT)."""
    command = [
        "k3s",  # $0 of the wait script
        "agent",
        f"--node-name={node}",
        f"--node-label={EDGE_LABEL}",
        *kubelet_flags(timings),
    ]
    return ContainerSpec(
        name=agent_name(spec.name, node),
        image=IMAGE,
        entrypoint=("/bin/sh", "-c", _WAIT_THEN_K3S),
        command=tuple(command),
        labels={
            **lbl.labels(spec.name, run_id, "agent", detached=spec.detached),
            f"{lbl.PREFIX}.node": node,
        },
        network=network,
        ip=ip,
        hostname=node,
        environment={"K3S_URL": f"https://{server_ip}:{API_PORT}", "K3S_TOKEN": token},
        tmpfs=TMPFS,
    )


def dnat_rules(server_ip: str, proxy: str) -> list[list[str]]:
    """The iptables commands, run inside one agent's network namespace, that send every
    connection to ``server_ip:6443`` to ``proxy`` (``host:port``, the node's link)."""
    return [
        [
            "iptables", "-w", "-t", "nat", "-A", "OUTPUT",
            "-d", server_ip, "-p", "tcp", "--dport", str(API_PORT),
            "-j", "DNAT", "--to-destination", proxy,
        ],
    ]  # fmt: skip


def dnat_command(pid: int, rule: list[str]) -> list[str]:
    """``rule`` run in the network namespace of the process ``pid`` (a container's init)."""
    return ["nsenter", "-t", str(pid), "-n", *rule]


def shell_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


_RUNNING = re.compile(r'Running (kube-[a-z-]+) (.*?)"?$')
_FLAG = re.compile(r"--([a-z0-9-]+)=(\S*)")


def running_flags(log: str, component: str) -> dict[str, str]:
    """The flags the k3s server logged for ``component`` ("Running kube-controller-manager
    --flag=value ..."); empty until it logged them."""
    flags: dict[str, str] = {}
    for line in log.splitlines():
        match = _RUNNING.search(line)
        if match and match.group(1) == component:
            flags = dict(_FLAG.findall(match.group(2)))
    return flags


def effective_timings(log: str, requested: Timings | None) -> Timings | None:
    """The node lifecycle settings the server actually runs with, from its log (a flag it
    did not log has its upstream default); None until it logged both the controller
    manager's and the API server's flags."""
    kcm = running_flags(log, "kube-controller-manager")
    api = running_flags(log, "kube-apiserver")
    if not kcm or not api:
        return None
    d = UPSTREAM_DEFAULTS
    agent = requested or d
    return Timings(
        node_monitor_grace_period_s=parse_go_duration(
            kcm.get("node-monitor-grace-period", f"{d.node_monitor_grace_period_s:g}s")
        ),
        node_monitor_period_s=parse_go_duration(
            kcm.get("node-monitor-period", f"{d.node_monitor_period_s:g}s")
        ),
        node_status_update_period_s=agent.node_status_update_period_s,
        node_lease_duration_s=d.node_lease_duration_s,  # the kubelet's, not a flag here
        unreachable_toleration_s=float(
            api.get("default-unreachable-toleration-seconds", d.unreachable_toleration_s)
        ),
        not_ready_toleration_s=float(
            api.get("default-not-ready-toleration-seconds", d.not_ready_toleration_s)
        ),
    )


def rewrite_kubeconfig(text: str, server_ip: str) -> str:
    """k3s's kubeconfig with its server URL (``https://127.0.0.1:6443``) replaced by the
    server container's address, which this machine reaches on the cluster network."""
    return re.sub(r"server: https://[^\s]+", f"server: https://{server_ip}:{API_PORT}", text)
