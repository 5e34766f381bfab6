"""What ``edgebench lab check`` and the remote drivers' ``up()`` verify, without changing
anything on a node: the kubeconfig, each node in the cluster and Ready, SSH and sudo, the
fault backend's tools, and that the SSH path is not among the endpoints a cut severs. For
each node it also renders what a cut would do: the exact rules (from the kernel backend), or
the Toxiproxy API calls on the user's proxies (from the Toxiproxy link), or that the node is
never faulted (``fault_backend: none``).
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.distros.remote.lab import Lab, LabNode, SystemController
from bench.errors import EdgebenchError, UsageError
from bench.faults.base import check_cut_mode
from bench.faults.kernel.rules import (
    Endpoint,
    LinkConfig,
    LinkState,
    iptables_payload,
    kill_filters,
)
from bench.runner import Completed

#: the iptables binaries each kernel backend may use, first found wins (as KernelLink probes)
BACKEND_IPTABLES = {"iptables": ("iptables-nft", "iptables-legacy", "iptables"),
                    "nft": ("iptables-nft",)}  # fmt: skip
#: besides iptables, what a kernel link runs on the node
KERNEL_TOOLS = ("ip", "ss", "setsid")


class LabCheckError(UsageError):
    """A lab failed its check (exit 2): the message names the node and the reason."""


@dataclass
class NodeReport:
    """What the check found on one node."""

    name: str
    problems: list[str] = field(default_factory=list)
    #: ``node``, or ``system_controller`` (StarlingX: dcmanager answers there)
    kind: str = "node"
    ssh_client: tuple[str, int] | None = None  # the harness's address and port as the node sees it
    iptables: str = ""
    dev: str = ""
    tools: dict[str, bool] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)  # cut mode -> what it would install
    #: what the rules are: shell commands on the node, or calls of the Toxiproxy API
    rules_are: str = "run"
    notes: list[str] = field(default_factory=list)  # facts worth showing, not problems

    @property
    def ok(self) -> bool:
        return not self.problems


def cluster_nodes(lab: Lab) -> dict[str, bool]:
    """Every node of the lab's cluster and whether it is Ready (LabCheckError when the
    kubeconfig does not work)."""
    from kubernetes import client, config

    try:
        api = config.new_client_from_config(str(lab.kubeconfig), context=lab.context)
        items = client.CoreV1Api(api).list_node(_request_timeout=15).items
    except Exception as exc:  # any failure of the kubeconfig or the API server
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabCheckError(
            f"kubeconfig {lab.kubeconfig}: cannot list the cluster's nodes: {reason}"
        ) from None
    out: dict[str, bool] = {}
    for item in items:
        conditions = (item.status.conditions or []) if item.status else []
        name = str(item.metadata.name) if item.metadata else ""
        out[name] = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return out


def host_runner(node: LabNode) -> Any:
    """A :class:`bench.runner.Runner` running argvs on the node over SSH (sudo as the lab says)."""
    from bench.distros.remote.runner import HostRunner

    return HostRunner(node.ssh.host())


_SSH_REASONS = (
    "Permission denied",
    "Connection refused",
    "timed out",
    "No route",
    "Could not resolve",
    "Host key verification failed",
    "Connection closed",
)


def _ssh_reason(text: str) -> str:
    """The line of an ssh failure that says why (not the testinfra wrapper around it)."""
    lines = [ln.strip() for ln in text.replace("\\r\\n", "\n").splitlines() if ln.strip()]
    for key in _SSH_REASONS:
        for line in lines:
            if key in line:
                return line[line.find(key) :].split("'")[0]
    return lines[-1] if lines else "no answer"


def probe_script(node: LabNode) -> str:
    """One read-only shell round trip: who we are, the SSH connection, tools, route."""
    candidates = BACKEND_IPTABLES.get(node.fault_backend, ())
    first = node.endpoints[0].cidr.split("/")[0] if node.endpoints else ""
    lines = [
        "echo uid=$(id -u)",
        'echo "ssh=$SSH_CONNECTION"',
        "echo ports=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)",
    ]
    if candidates:
        lines += [
            f"for b in {' '.join(candidates)}; do",
            '  if command -v "$b" >/dev/null && command -v "$b-restore" >/dev/null; then',
            '    echo "iptables=$b"; break; fi',
            "done",
        ]
        lines += [f"command -v {t} >/dev/null && echo tool_{t}=1" for t in (*KERNEL_TOOLS, "tc")]
        if node.dev:
            lines.append(f"echo dev={shlex.quote(node.dev)}")
        elif first:
            sed = "sed -n 's/.* dev \\([^ ]*\\).*/dev=\\1/p'"
            lines.append(f"ip -o -4 route get {first} 2>/dev/null | {sed}")
    lines.append("true")
    return "\n".join(lines)


def ssh_path_cut(
    endpoints: Sequence[Endpoint], client: str, ephemeral: tuple[int, int]
) -> Endpoint | None:
    """The endpoint whose rules would match the SSH session from ``client``, if any.

    Rules match packets from the endpoint (``-s CIDR --sports P``) and to it (``-d CIDR
    --dports P``); the harness's side of the SSH session has an ephemeral port, so an
    endpoint containing the harness's address cuts SSH when it has no ports or lists a
    port of the node's ephemeral range.
    """
    addr = ipaddress.ip_address(client)
    low, high = ephemeral
    for e in endpoints:
        if addr not in ipaddress.ip_network(e.cidr):
            continue
        if not e.ports or (e.protocol == "tcp" and any(low <= p <= high for p in e.ports)):
            return e
    return None


def cut_rules(node: LabNode, iptables: str, dev: str, mode: str) -> str:
    """The exact commands a cut in ``mode`` installs on ``node`` (KernelLink's rules)."""
    cfg = LinkConfig(node.chain, dev or "?", "ebi-lab", iptables, tuple(node.endpoints))
    state = LinkState(cut="blackhole" if mode == "blackhole" else "reset")
    lines = [f"{iptables}-restore -w --noflush <<EOF", iptables_payload(cfg, state).rstrip()]
    lines += ["EOF"]
    lines += [f"{iptables} -w -I INPUT 1 -j {cfg.chain_in}",
              f"{iptables} -w -I OUTPUT 1 -j {cfg.chain_out}"]  # fmt: skip
    if mode == "reset":
        lines += [f"ss -K -tn {k}" for k in kill_filters(cfg.endpoints)]
    return "\n".join(lines)


def check_node(
    lab: Lab,
    node: LabNode,
    cluster: Mapping[str, bool] | None,
    cut_modes: Sequence[str] = ("blackhole", "reset"),
) -> NodeReport:
    """Check one node; every problem found is in ``report.problems`` (nothing is changed)."""
    report = NodeReport(node.name)
    if cluster is not None:
        if node.name not in cluster:
            known = ", ".join(sorted(cluster)) or "none"
            report.problems.append(f"not a node of the cluster (its nodes: {known})")
        elif not cluster[node.name]:
            report.problems.append("is not Ready in the cluster")
    try:
        result: Completed = host_runner(node)(["sh", "-c", probe_script(node)])
    except EdgebenchError as exc:
        report.problems.append(f"cannot use {node.ssh.spec}: {exc}")
        return report
    if result.status == 255:
        report.problems.append(f"SSH to {node.ssh.spec} failed: {_ssh_reason(result.err)}")
        return report
    found = dict(line.split("=", 1) for line in result.out.splitlines() if "=" in line)
    if "uid" not in found:
        report.problems.append(f"SSH to {node.ssh.spec} runs no shell: {result.explain()}")
        return report
    if found["uid"] != "0" and node.fault_backend in BACKEND_IPTABLES:
        hint = "set sudo: true" if not node.ssh.sudo else "sudo does not make it root"
        report.problems.append(
            f"commands run as uid {found['uid']}, not root; the fault backend needs root ({hint})"
        )
    if not result.ok and node.ssh.sudo:
        report.problems.append(f"sudo failed: {result.err.strip().splitlines()[-1:]}")
    ssh = found.get("ssh", "").split()
    if len(ssh) == 4:
        report.ssh_client = (ssh[0], int(ssh[1]))
    ports = found.get("ports", "").split()
    ephemeral = (int(ports[0]), int(ports[1])) if len(ports) == 2 else (32768, 60999)
    report.tools = {t: found.get(f"tool_{t}") == "1" for t in (*KERNEL_TOOLS, "tc")}
    if node.fault_backend in BACKEND_IPTABLES:
        report.iptables = found.get("iptables", "")
        report.dev = found.get("dev", "")
        wanted = BACKEND_IPTABLES[node.fault_backend]
        if not report.iptables:
            report.problems.append(
                f"fault_backend {node.fault_backend} needs {' or '.join(wanted)} (with its "
                "-restore) on the node; none found (Debian: apt-get install iptables)"
            )
        missing = [t for t in KERNEL_TOOLS if not report.tools[t]]
        if missing:
            report.problems.append(
                f"fault_backend {node.fault_backend} needs {', '.join(missing)} on the node "
                "(Debian: apt-get install iproute2 util-linux)"
            )
        if not report.dev:
            report.problems.append(f"no route from the node to {node.endpoints[0].cidr}")
        if report.ssh_client is not None:
            cut = ssh_path_cut(node.endpoints, report.ssh_client[0], ephemeral)
            if cut is not None:
                report.problems.append(
                    f"endpoint {cut.cidr}{':' + ','.join(map(str, cut.ports)) if cut.ports else ''}"
                    f" would cut the SSH path (the harness reaches the node from "
                    f"{report.ssh_client[0]}); list the control-plane endpoints only"
                )
        if report.iptables:
            report.rules = {m: cut_rules(node, report.iptables, report.dev, m) for m in cut_modes}
    elif node.fault_backend == "toxiproxy":
        _check_toxiproxy(node, report, cut_modes)
    else:
        report.notes.append("fault_backend none: observed only; no fault is ever applied")
    return report


def _check_toxiproxy(node: LabNode, report: NodeReport, cut_modes: Sequence[str]) -> None:
    """The user's Toxiproxy answers and has the node's proxies, enabled; the API calls a cut
    would make (from :meth:`ToxiproxyLink.cut_calls`), none of them made."""
    from bench.faults.toxiproxy import SharedToxiproxyLink
    from bench.faults.toxiproxy.api import Api

    assert node.toxiproxy_api is not None  # the lab file requires it
    api = Api(node.toxiproxy_api, timeout=5.0)
    try:
        found = api.call("GET", "/proxies") or {}
        link = SharedToxiproxyLink.of(api, node.name, node.toxiproxy_proxies)
    except EdgebenchError as exc:
        report.problems.append(str(exc))
        return
    finally:
        api.close()
    for proxy in link.proxies:
        info = found[proxy.name]
        report.notes.append(f"proxy {proxy.name}: {proxy.listen} -> {proxy.upstream}")
        if not info.get("enabled", True):
            report.problems.append(
                f"toxiproxy proxy {proxy.name} is disabled: the agent cannot reach its control "
                "plane through it (a harness killed during a reset cut leaves it so); enable it "
                f"first: curl -X POST {node.toxiproxy_api}/proxies/{proxy.name} "
                "-d '{\"enabled\": true}'"
            )
        names = sorted(str(t["name"]) for t in info.get("toxics") or [])
        ours = [t for t in names if t.startswith(link.TOXIC_PREFIX)]
        theirs = [t for t in names if t not in ours]
        if theirs:
            report.notes.append(
                f"proxy {proxy.name} has toxics {', '.join(theirs)}: left alone (edgebench adds "
                "and removes only edgebench_* toxics)"
            )
        if ours:
            report.notes.append(
                f"proxy {proxy.name} has toxics {', '.join(ours)} left by an earlier run: the "
                "first restore removes them"
            )
    report.rules_are = f"call {node.toxiproxy_api}"
    for mode in cut_modes:
        calls = link.cut_calls(check_cut_mode(mode))
        report.rules[mode] = "\n".join(
            f"{method} {path} {json.dumps(body, sort_keys=True)}" for method, path, body in calls
        )


def check_lab(
    lab: Lab,
    cluster: Mapping[str, bool] | None = None,
    cut_modes: Sequence[str] = ("blackhole", "reset"),
) -> list[NodeReport]:
    """Check every node (``cluster``: node name to Ready; read through the kubeconfig when
    None). Raises LabCheckError only when the kubeconfig itself fails."""
    nodes = cluster if cluster is not None else cluster_nodes(lab)
    reports = [check_node(lab, n, nodes, cut_modes) for n in lab.nodes]
    if lab.system_controller is not None:
        reports.append(check_controller(lab.system_controller))
    return reports


def check_controller(controller: SystemController) -> NodeReport:
    """One ``dcmanager subcloud show`` on the system controller, as the poller will make it
    (read-only): SSH, the ``openrc`` or ``password_env``, the subcloud's name."""
    from bench.distros.remote.starlingx import SubcloudPoller

    report = NodeReport(controller.ssh.spec, kind="system_controller")
    try:
        status = SubcloudPoller(controller.ssh.host(), controller).sample().status
    except EdgebenchError as exc:
        report.problems.append(str(exc))
        return report
    report.notes.append(
        f"subcloud {controller.subcloud}: {status.availability}, {status.endpoints_note()}"
    )
    return report


def failure(reports: Sequence[NodeReport]) -> LabCheckError | None:
    """One error naming every failing node and its reasons, or None when all passed."""
    bad = [r for r in reports if not r.ok]
    if not bad:
        return None
    return LabCheckError(
        "lab check failed: " + "; ".join(f"{r.kind} {r.name}: {', '.join(r.problems)}" for r in bad)
    )
