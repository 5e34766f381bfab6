"""``--distro=vanilla --provider=local``: the same control plane; each edge node a kubemark
hollow node, i.e. the real kubelet code with a fake container runtime, whose only route to the
API server is its own link.

The hollow kubelet verifies volumes but never mounts them, so ConfigMap contents have no
edge-side view here (``edge_volume_file`` is not supported). Kubemark fixes the kubelet's node
status period (10 s) and Lease duration (40 s, renewed every
10 s), so the ``fast`` profile here keeps a grace period above one renewal interval.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar

from bench.build import tools
from bench.distros.local.cluster import LocalCluster
from bench.distros.local.controlplane import KUBELET_FAST, write_kubeconfig
from bench.model import Capability, EdgeNode, Timings
from bench.procs import Supervised, free_port


class VanillaLocal(LocalCluster):
    name = "vanilla"
    AGENT_BINARIES = ("kubemark",)
    FAST_TIMINGS: ClassVar[Timings] = KUBELET_FAST
    CAPABILITIES = LocalCluster.CAPABILITIES | {Capability.EDGE_POD_VIEW}
    LACKS: ClassVar[Mapping[Capability, str]] = {
        **LocalCluster.LACKS,
        Capability.EDGE_VOLUME_VIEW: "kubemark's hollow kubelet never mounts volumes",
    }

    def start_agent(self, node: EdgeNode) -> Supervised:
        node_dir = self.state_dir / "nodes" / node.name
        (node_dir / "tmp").mkdir(parents=True, exist_ok=True)
        kubeconfig = write_kubeconfig(
            node_dir / "kubeconfig",
            f"https://{node.dial_for(self.control_plane.addresses.apiserver)}",
            self.control_plane.ca_cert,
            self.control_plane.client_cert(f"system:node:{node.name}", "system:nodes"),
        )
        ro_port = self.read_only_ports.setdefault(node.name, free_port())
        agent = Supervised(
            f"kubemark-{node.name}",
            self.agent_argv(
                node.name,
                [
                    tools.tool_path("kubemark"),
                    "--morph=kubelet",
                    f"--name={node.name}",
                    f"--kubeconfig={kubeconfig}",
                    f"--kubelet-port={free_port()}",
                    f"--kubelet-read-only-port={ro_port}",
                    "--use-host-image-service=false",
                    "--node-labels=edgebench.io/edge=true",
                    "--max-pods=110",
                ],
            ),
            self.agent_log(node.name),
            # kubemark makes its root directory under TMPDIR: keep it in the node's folder
            env={**os.environ, "TMPDIR": str(node_dir / "tmp")},
            detached=self.spec.detached,
        )
        return agent.start()
