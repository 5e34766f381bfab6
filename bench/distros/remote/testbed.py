"""A lab you can run here: an sshd inside each node namespace, and the lab file for it.

Each :class:`~bench.netns.NodeNamespace` gets a second veth pair, the management path
(``ebm<tag><i>`` on the host, ``10.255.x.y+1/30``; ``ebs<tag><i>`` inside, ``+2``), and a
Debian sshd listening on the inside address only: key-only, root by key, its throw-away host
and client keys under ``folder`` (the cluster's state dir). Faults never touch that path:
the lab's endpoints are the namespace's node link (``10.254.x.y+1`` and the agent's ports),
and the namespace's guard chain lets the management interface through. Everything goes with
the namespace (``NodeNamespace.remove`` kills the sshd and deletes both veth pairs).

    keys = Keys(state / "ssh").make()
    nodes = [start_node_sshd(ns, keys, state / "ssh") for ns in namespaces]
    write_lab(state / "lab.yaml", "vanilla", kubeconfig, nodes, keys, timings)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.distros.remote.sshd import Keys, Sshd
from bench.errors import ClusterError
from bench.faults.kernel.rules import Endpoint
from bench.netns import NodeNamespace
from bench.netns.names import NETWORK
from bench.runner import run_local

#: the management addresses: the node link's /30 moved from 10.254.0.0/16 into this network
MANAGEMENT = ipaddress.ip_network("10.255.0.0/16")
SSH_PORT = 22


@dataclass(frozen=True)
class LabNodeNs:
    """One node of the local lab: its namespace, management address and sshd."""

    ns: NodeNamespace
    address: str  # inside the namespace, on the management veth
    host_side: str
    sshd: Sshd

    @property
    def name(self) -> str:
        return self.ns.spec.node


def management_addresses(ns: NodeNamespace) -> tuple[str, str]:
    """(host side, inside) of ``ns``'s management /30: its node link's slot in 10.255/16."""
    offset = int(ipaddress.ip_address(ns.host_addr)) - int(NETWORK.network_address)
    host = ipaddress.ip_address(int(MANAGEMENT.network_address) + offset)
    return str(host), str(host + 1)


def start_node_sshd(
    ns: NodeNamespace, keys: Keys, folder: Path, detached: bool = False
) -> LabNodeNs:
    """Add the management veth to ``ns`` and start an sshd on its inside address."""
    host_side, inside = management_addresses(ns)
    suffix = ns.veth_host[3:]
    outer, inner = f"ebm{suffix}", f"ebs{suffix}"
    script = "\n".join(
        [
            f"link add {outer} type veth peer name {inner} netns {ns.name}",
            f"addr add {host_side}/30 dev {outer}",
            f"link set {outer} up",
            "",
        ]
    )
    result = run_local(["ip", "-batch", "-"], script)
    if not result.ok:
        raise ClusterError(f"management veth of {ns.name}: {result.explain()}")
    inside_script = "\n".join(
        [
            "set -e",
            f"ip addr add {inside}/30 dev {inner}",
            f"ip link set {inner} up",
            # the namespace's guard rejects what is not for its node link; SSH replies pass
            f"{ns.iptables} -w -I OUTPUT 1 -o {inner} -j ACCEPT",
        ]
    )
    result = ns.run(["sh", "-c", inside_script])
    if not result.ok:
        raise ClusterError(f"management path inside {ns.name}: {result.explain()}")
    sshd = Sshd(
        folder,
        keys,
        inside,
        SSH_PORT,
        prefix=ns.exec_argv([]),
        name=f"sshd-{ns.spec.node}",
        detached=detached,  # inside the namespace: removing the namespace stops it anyway
    ).start()
    return LabNodeNs(ns, inside, host_side, sshd)


def lab_document(
    distro: str,
    kubeconfig: Path,
    nodes: Sequence[tuple[LabNodeNs, Sequence[Endpoint]]],
    keys: Keys,
    timings: Mapping[str, float] | None = None,
    restart_commands: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The lab file of the local lab, as a YAML-ready mapping."""
    doc: dict[str, Any] = {
        "distro": distro,
        "kubeconfig": str(kubeconfig),
        "runtime": "fake",
        "agent": "",  # hollow agents: no service to restart (restart_commands may name one)
        "nodes": [
            {
                "name": node.name,
                "host": f"ssh://root@{node.address}:{SSH_PORT}",
                "identity_file": str(keys.client_key),
                "known_hosts": str(keys.known_hosts),
                "dev": node.ns.veth_node,
                "endpoints": [
                    {"address": e.address, "ports": list(e.ports), "protocol": e.protocol}
                    for e in endpoints
                ],
                **(
                    {"restart_command": restart_commands[node.name]}
                    if restart_commands and node.name in restart_commands
                    else {}
                ),
            }
            for node, endpoints in nodes
        ],
    }
    if timings:
        doc["timings"] = dict(timings)
    return doc


def write_lab(path: Path, document: Mapping[str, Any]) -> Path:
    header = (
        "# The local lab: node namespaces reached over SSH on their management veth\n"
        "# (written by edgebench; see docs/labs.md)\n"
    )
    path.write_text(header + yaml.safe_dump(dict(document), sort_keys=False))
    return path


# --- the host lab: a local cluster's nodes reached over SSH on this machine ----------------
#
# Until the local provider puts its agents in namespaces, its edge nodes all live on this
# machine: a lab of them has one sshd (on 127.0.0.2, so the SSH session never shares an
# address with the nodes' links on 127.0.0.1) and one chain per node, cutting exactly the
# node's link listeners. Timings are read from the cluster's processes (their command lines).

HOST_LAB_ADDRESS = "127.0.0.2"
#: flags of the local control plane's processes -> Timings fields
_PROCESS_FLAGS = {
    "kube-controller-manager": ("node-monitor-grace-period", "node-monitor-period"),
    "kube-apiserver": (
        "default-unreachable-toleration-seconds",
        "default-not-ready-toleration-seconds",
    ),
}


def process_timings(pids: Mapping[str, int]) -> dict[str, float]:
    """The timings the local control plane's processes run with (from /proc/PID/cmdline);
    the agent side is kubelet's defaults (10 s status, 40 s lease: hollow kubelets fix them)."""
    from bench.distros.remote.timings import CONTROLLER_FLAGS, find_settings

    found: dict[str, float] = {"node_status_update_period_s": 10.0, "node_lease_duration_s": 40.0}
    for process, flags in _PROCESS_FLAGS.items():
        if process not in pids:
            continue
        try:
            cmdline = (
                Path(f"/proc/{pids[process]}/cmdline").read_bytes().decode().replace("\0", " ")
            )
        except OSError:
            continue
        found.update(find_settings(cmdline, {f: CONTROLLER_FLAGS[f] for f in flags}))
    return found


def _pods_url(pid: int | None) -> dict[str, str]:
    """The agent's read-only ``/pods`` URL, from its command line (hollow kubelet or edge)."""
    if pid is None:
        return {}
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return {}
    for arg in cmdline:
        for flag in ("--kubelet-read-only-port=", "--readonly-port="):
            if arg.startswith(flag) and arg[len(flag) :].isdigit():
                return {"pods_url": f"http://127.0.0.1:{arg[len(flag) :]}/pods"}
    return {}


def host_lab(cluster: str, out: Path) -> tuple[Path, int]:
    """Write ``out``, a lab of the running local cluster ``cluster``; start its sshd (detached,
    pid in the cluster's state dir: ``stop_host_lab`` stops it). Returns the lab and sshd pid."""

    from bench.distros.state import StateDir
    from bench.procs import free_port

    state = StateDir(cluster)
    recorded = state.read()
    if recorded is None:
        raise ClusterError(f"no local cluster named {cluster!r}; start one with edgebench up")
    folder = state.path / "ssh"
    keys = Keys(folder).make()
    sshd = Sshd(
        folder, keys, HOST_LAB_ADDRESS, free_port(HOST_LAB_ADDRESS), name="sshd-lab", detached=True
    )
    sshd.start()
    (folder / "sshd.pid").write_text(str(sshd.pid))
    config = folder / "ssh_config"
    config.write_text(f"Host *\n  BindAddress {HOST_LAB_ADDRESS}\n")
    nodes = []
    pids = recorded.get("pids", {})
    for name, links in recorded.get("links", {}).items():
        ports = sorted({int(listen.rsplit(":", 1)[1]) for listen in links.values()})
        nodes.append(
            {
                "name": name,
                "host": f"ssh://root@{HOST_LAB_ADDRESS}:{sshd.port}",
                "identity_file": str(keys.client_key),
                "known_hosts": str(keys.known_hosts),
                "ssh_config": str(config),
                "dev": "lo",
                "chain": f"EBLAB-{name}"[:24],
                "endpoints": [{"address": "127.0.0.1", "ports": ports}],
                **_pods_url(pids.get(f"agent-{name}")),
            }
        )
    doc = {
        "distro": recorded["distro"],
        "kubeconfig": recorded["kubeconfig"],
        "runtime": "fake",
        "agent": "",  # the cluster's agents are the harness's processes: no service to restart
        "nodes": nodes,
        "timings": process_timings(recorded.get("pids", {})),
    }
    write_lab(out, doc)
    return out, int(sshd.pid or 0)


def stop_host_lab(cluster: str) -> bool:
    """Stop the host lab's sshd of ``cluster`` (True if one was running)."""
    import os
    import signal

    from bench.distros.state import StateDir

    pid_file = StateDir(cluster).path / "ssh" / "sshd.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench.distros.remote.testbed",
        description="a lab file (and its sshd) for a running local cluster",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("host-lab", help="start the sshd and write the lab file")
    up.add_argument("cluster")
    up.add_argument("--out", type=Path, required=True)
    stop = sub.add_parser("stop", help="stop the host lab's sshd")
    stop.add_argument("cluster")
    args = parser.parse_args(argv)
    if args.command == "host-lab":
        path, pid = host_lab(args.cluster, args.out)
        print(f"wrote {path}; sshd pid {pid} (stop: python -m bench.distros.remote.testbed stop "
              f"{args.cluster})")  # fmt: skip
        return 0
    return 0 if stop_host_lab(args.cluster) else 1


if __name__ == "__main__":
    raise SystemExit(main())
