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


def start_node_sshd(ns: NodeNamespace, keys: Keys, folder: Path) -> LabNodeNs:
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
