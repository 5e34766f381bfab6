"""``--distro=kubeedge --provider=docker``: which KubeEdge runs, and the stand-in that runs here.

Two recipes, chosen by what this machine's engine holds (:func:`choose_driver`):

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
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.distros.docker import engine, images
from bench.distros.docker.cluster import DockerAgents, DockerSettings
from bench.distros.docker.spec import ContainerSpec
from bench.distros.local.kubeedge import KubeEdgeLocal
from bench.distros.readiness import progress
from bench.errors import ClusterError, EnvironmentUnavailableError
from bench.model import EdgeNode

if TYPE_CHECKING:
    from bench.distros.base import Distro

log = logging.getLogger(__name__)

#: hollowedge's kubelet read-only port, on the container's loopback (edged binds 127.0.0.1)
READ_ONLY_PORT = 10350
#: hollowedge's per-node state (SQLite store, certificates, kubelet root) in the container's
#: own filesystem: it outlives a container restart, as edgecore's /var/lib/kubeedge does
DATA_DIR = "/var/lib/hollowedge"
STAND_IN = "hollowedge"
STAND_IN_AGENT = (
    "hollowedge: edgebench's stand-in for edgecore (KubeEdge v1.20.0 edged/edgehub/metaManager "
    "over a fake runtime)"
)


@dataclass(frozen=True)
class KubeEdgeDockerSettings(DockerSettings):
    """Which KubeEdge recipe runs (``upstream`` or the ``hollowedge`` stand-in), its edge
    agent, and why that recipe was chosen."""

    recipe: str = STAND_IN
    edge_agent: str = STAND_IN_AGENT
    why: str = ""


def upstream_missing() -> str | None:
    """None when the engine holds every image of the upstream recipe (cloudcore's, the
    installation package's, the kind node's: what its ``check_available`` asks for);
    otherwise why not."""
    from bench.distros.docker import kubeedge_spec

    try:
        client = engine.connect()
    except EnvironmentUnavailableError as exc:
        return str(exc)
    try:
        for image in kubeedge_spec.UPSTREAM_IMAGES:
            engine.require_image(client, image, kubeedge_spec.pull_hint())
    except EnvironmentUnavailableError as exc:
        return str(exc)
    finally:
        client.close()
    return None


@functools.cache
def choose_driver() -> type[Distro]:
    """The upstream recipe when its cloudcore image is here, else the stand-in; says which
    (once per process)."""
    why = upstream_missing()
    if why is None:
        from bench.distros.docker import kubeedge_spec
        from bench.distros.docker.kubeedge_upstream import KubeEdgeUpstreamDocker

        progress(
            "kubeedge/docker: the upstream images are present: running upstream KubeEdge "
            f"({', '.join(kubeedge_spec.UPSTREAM_IMAGES)})"
        )
        return KubeEdgeUpstreamDocker
    progress(
        "kubeedge/docker: running the stand-in (cloudcore built from the Go module proxy on "
        f"this machine, hollowedge in the agents image), because {why}"
    )
    return KubeEdgeDocker


class KubeEdgeDocker(DockerAgents, KubeEdgeLocal):
    """The stand-in: this machine's cloudcore, each node's hollowedge in its own container;
    each node reaches cloudhub (websocket and https) only through its own link."""

    name = "kubeedge"

    @classmethod
    def provider_settings(cls, options: Mapping[str, Any]) -> KubeEdgeDockerSettings:
        why = upstream_missing() or "chosen explicitly"
        return KubeEdgeDockerSettings(kernel=super().provider_settings(options).kernel, why=why)

    def tool_versions(self) -> dict[str, str]:
        return {**super().tool_versions(), "kubeedge-edge-agent": STAND_IN_AGENT}

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
