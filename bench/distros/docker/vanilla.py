"""``--distro=vanilla --provider=docker``: each edge node a kubemark hollow kubelet (the real
kubelet code with a fake runtime) in its own container, behind its own link; see
:mod:`bench.distros.docker.cluster`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bench.distros.docker import images
from bench.distros.docker.cluster import DockerAgents
from bench.distros.local.cluster import LocalCluster
from bench.distros.local.controlplane import KUBELET_FAST
from bench.distros.local.vanilla import VanillaLocal
from bench.model import Capability, EdgeNode, Timings

READ_ONLY_PORT = 10255


class VanillaDocker(DockerAgents):
    name = "vanilla"
    AGENT_BINARIES = ("kubemark",)
    FAST_TIMINGS: ClassVar[Timings] = KUBELET_FAST
    CAPABILITIES = LocalCluster.CAPABILITIES | {Capability.EDGE_POD_VIEW}
    LACKS: ClassVar[Mapping[Capability, str]] = VanillaLocal.LACKS

    def agent_command(self, node: EdgeNode, ip: str) -> tuple[str, ...]:
        self.read_only_ports[node.name] = READ_ONLY_PORT
        return (
            f"{images.BIN_DIR}/kubemark",
            "--morph=kubelet",
            f"--name={node.name}",
            f"--kubeconfig={self.node_kubeconfig(node)}",
            "--kubelet-port=10250",
            f"--kubelet-read-only-port={READ_ONLY_PORT}",
            "--use-host-image-service=false",
            "--node-labels=edgebench.io/edge=true",
            "--max-pods=110",
        )
