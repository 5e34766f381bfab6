"""``edgebench up --lab-out lab.yaml``: a running local cluster with node namespaces exported
as a lab, so the remote provider can be exercised here exactly as on a user's lab: each node's
namespace gets a management veth that faults never touch and a key-only Debian sshd on it
(throw-away keys under the cluster's state folder), and the lab file names every node's SSH
address and the control-plane endpoints its agent talks to (its link's listeners)."""

from __future__ import annotations

from pathlib import Path

from bench.distros.local.cluster import LocalCluster
from bench.distros.remote.sshd import Keys
from bench.distros.remote.testbed import lab_document, start_node_sshd, write_lab
from bench.errors import UsageError


def export_lab(cluster: LocalCluster, out: Path) -> Path:
    """Start an sshd in every node namespace of ``cluster`` and write its lab file to
    ``out``. The sshds run inside the namespaces, so removing the cluster removes them."""
    if not cluster.namespaces:
        raise UsageError("--lab-out needs node namespaces: run edgebench up without --no-netns")
    folder = cluster.state_dir / "ssh"
    keys = Keys(folder).make()
    nodes = []
    for node in cluster.edge_nodes:
        ns = cluster.namespaces[node.name]
        ports = sorted(int(address.rsplit(":", 1)[1]) for address in node.dial.values())
        lab_node = start_node_sshd(ns, keys, folder, detached=cluster.spec.detached)
        nodes.append((lab_node, [ns.endpoint(ports)]))
    document = lab_document(
        cluster.name,
        cluster.kubeconfig,
        nodes,
        keys,
        timings={k: v for k, v in cluster.timings.as_dict().items() if v is not None},
    )
    for entry in document["nodes"]:
        port = cluster.read_only_ports.get(entry["name"])
        if port is not None:  # the agent's own /pods, on the namespace's loopback
            entry["pods_url"] = f"http://127.0.0.1:{port}/pods"
    return write_lab(out, document)
