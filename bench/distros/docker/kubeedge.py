"""``--distro=kubeedge --provider=docker``: the stand-in that runs here.

Two recipes, chosen by what this machine's engine holds
(:func:`bench.distros.docker.kubeedge_recipe.choose_driver`):

- **upstream** (:mod:`bench.distros.docker.kubeedge_upstream`): ``kubeedge/cloudcore`` in a
  container and the real ``edgecore`` with containerd in each edge node's container, when
  ``docker image inspect kubeedge/cloudcore:<version>`` succeeds;
- **the stand-in** (:class:`KubeEdgeDocker`, this module): the local provider's cloudcore
  (v1.20.0 built from the Go module proxy) on this machine, as the docker provider's control
  plane is, and each edge node's ``hollowedge`` (edgebench's stand-in for edgecore: KubeEdge's
  edged, edgehub and metaManager over a fake runtime, see ``docs/kubeedge-build.md``) in its
  own container from the agents image, behind its own Toxiproxy link, as vanilla/docker does.

Which one ran, and why, is printed at start and written to ``run.json`` (``tools`` and
``provider_settings``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bench.distros.docker import images
from bench.distros.docker import kubeedge_recipe as recipe
from bench.distros.docker.cluster import DockerAgents
from bench.distros.docker.spec import ContainerSpec
from bench.distros.local.kubeedge import KubeEdgeLocal
from bench.errors import ClusterError
from bench.model import EdgeNode

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

#: hollowedge's kubelet read-only port, on the container's loopback (edged binds 127.0.0.1)
READ_ONLY_PORT = 10350
#: hollowedge's per-node state (SQLite store, certificates, kubelet root) in the container's
#: own filesystem: it outlives a container restart, as edgecore's /var/lib/kubeedge does
DATA_DIR = "/var/lib/hollowedge"


class KubeEdgeDocker(DockerAgents, KubeEdgeLocal):
    """The stand-in: this machine's cloudcore, each node's hollowedge in its own container;
    each node reaches cloudhub (websocket and https) only through its own link."""

    name = "kubeedge"

    @classmethod
    def provider_settings(cls, options: Mapping[str, Any]) -> recipe.KubeEdgeDockerSettings:
        why = recipe.upstream_missing() or "chosen explicitly"
        return recipe.KubeEdgeDockerSettings(
            kernel=super().provider_settings(options).kernel, why=why
        )

    def tool_versions(self) -> dict[str, str]:
        return {**super().tool_versions(), "kubeedge-edge-agent": recipe.STAND_IN_AGENT}

    def cloudcore_config(self) -> dict[str, Any]:
        """The local provider's, with the cluster network's gateway (where the links listen,
        the address every node dials) among cloudhub's certificate addresses."""
        config = super().cloudcore_config()
        config["modules"]["cloudHub"]["advertiseAddress"].append(self.gateway)
        return config

    def agent_command(self, node: EdgeNode, ip: str) -> tuple[str, ...]:
        token = self._token()
        if token is None:
            raise ClusterError("cloudcore has not published its join token")
        self.read_only_ports[node.name] = READ_ONLY_PORT
        ws, https = self.link_upstreams()
        return (
            f"{images.BIN_DIR}/hollowedge",
            f"--name={node.name}",
            f"--data-dir={DATA_DIR}",
            f"--token={token}",
            f"--websocket-server={node.dial_for(ws)}",
            f"--http-server=https://{node.dial_for(https)}",
            f"--readonly-port={READ_ONLY_PORT}",
            f"--node-ip={ip}",
        )

    def agent_spec(self, node: EdgeNode, index: int) -> ContainerSpec:
        """vanilla/docker's agent container, with ``/dev/null`` as ``/dev/kmsg``: edged's
        kubelet will not start without one to watch for OOM kills (an unprivileged container
        has none; the fake runtime has no OOM kills to see)."""
        spec = super().agent_spec(node, index)
        return dataclasses.replace(spec, binds={**spec.binds, "/dev/null": ("/dev/kmsg", "ro")})

    def agent_address(self, node: str) -> str:
        return "127.0.0.1"  # inside the node's namespace (see node_runner)
