"""``--distro=kubeedge --provider=docker`` with upstream KubeEdge: ``kubeedge/cloudcore`` in a
container and, in each edge node's container, the release's ``edgecore`` with containerd (the
containers of :mod:`bench.distros.docker.kubeedge_spec`). Chosen when the engine holds the
cloudcore image (:func:`bench.distros.docker.kubeedge_recipe.choose_driver`).

Status: written against KubeEdge's keink and ``hack/local-up-kubeedge.sh``, pinned by unit
tests, **never run**: no registry is reachable where it was written, so its images could not
be had there. The API server, the controllers and Toxiproxy run on this machine as for the
stand-in; cloudcore reaches the API server through a listener of its own on the cluster
network (never faulted), each edge node reaches cloudhub only through its own link (DNAT).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from bench.build import tools, versions
from bench.distros.docker import crictl, engine, kubeedge_spec, network, steering
from bench.distros.docker import labels as lbl
from bench.distros.docker.agent import ContainerAgent
from bench.distros.docker.cluster import UNPRIVILEGED
from bench.distros.docker.k3s import check_host_tools
from bench.distros.docker.kubeedge import KubeEdgeDocker
from bench.distros.docker.kubeedge_recipe import KubeEdgeDockerSettings
from bench.distros.docker.spec import SECURITY_MODES, ContainerSpec, host_address
from bench.distros.local.controlplane import write_kubeconfig
from bench.distros.readiness import progress
from bench.errors import ClusterError, EnvironmentUnavailableError, UsageError
from bench.model import Capability, ClusterSpec, EdgeNode
from bench.procs import port_open, wait_for
from bench.scenario import workload

if TYPE_CHECKING:
    import docker

CLOUD_HOST = 3  # cloudcore's host number on the cluster's /24 (agents start at 10)
UPSTREAM_AGENT = (
    f"edgecore {versions.KUBEEDGE} ({kubeedge_spec.INSTALLATION_IMAGE}) with containerd "
    f"({kubeedge_spec.NODE_BASE_IMAGE})"
)


def build_edge_image(client: docker.DockerClient) -> str:
    """The edge image (:func:`kubeedge_spec.edge_dockerfile`), built once from local images."""
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(kubeedge_spec.EDGE_IMAGE)
        return kubeedge_spec.EDGE_IMAGE
    with tempfile.TemporaryDirectory(prefix="edgebench-kubeedge-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(kubeedge_spec.edge_dockerfile())
        (ctx / "edgecore.service").write_text(kubeedge_spec.EDGECORE_UNIT)
        progress(f"building {kubeedge_spec.EDGE_IMAGE} (once)...")
        client.images.build(path=str(ctx), tag=kubeedge_spec.EDGE_IMAGE, rm=True, pull=False)
    return kubeedge_spec.EDGE_IMAGE


class KubeEdgeUpstreamDocker(KubeEdgeDocker):
    """Upstream cloudcore and edgecore in containers, each node behind its own link."""

    AGENT_BINARIES: tuple[str, ...] = ()  # nothing of edgebench's own runs at the edge
    CAPABILITIES = frozenset(
        {
            Capability.AGENT_RESTART,
            Capability.REBOOT,
            Capability.EDGE_POD_VIEW,
            Capability.LINK_PROBE,
        }
    )
    LACKS: ClassVar[Mapping[Capability, str]] = {
        Capability.REAL_RUNTIME: "an agent restart restarts the whole edge container (a "
        "reboot); restarting edgecore alone inside it is not implemented",
        Capability.EDGE_VOLUME_VIEW: "not implemented for upstream KubeEdge in containers",
        Capability.FOOTPRINT: "an edge container's first process is systemd, not edgecore: "
        "finding edgecore's pid in it is not implemented",
    }

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.image = kubeedge_spec.EDGE_IMAGE
        self.cloud_ip = ""
        self.kernel = False  # whatever settings the spec carries: see provider_settings

    @classmethod
    def provider_settings(cls, options: Mapping[str, Any]) -> KubeEdgeDockerSettings:
        """Links are Toxiproxy's alone: kernel parts in the kind node containers (and their
        re-installing after a restart) are not wired for this recipe, which never ran here;
        ``--netns`` asks for them and is refused."""
        if options.get("netns") is True:
            raise UsageError(
                "kubeedge/docker with upstream images: --netns (kernel links in the edge "
                "containers) is not supported by this recipe yet; leave it out or use --no-netns"
            )
        return KubeEdgeDockerSettings(
            kernel=False,
            recipe="upstream",
            edge_agent=UPSTREAM_AGENT,
            why="the upstream images are present",
        )

    @classmethod
    def check_available(cls) -> None:
        for binary in cls.required_binaries():
            tools.tool_path(binary)
        if not cls.crds_dir().is_dir():
            raise EnvironmentUnavailableError(
                f"KubeEdge's CRDs are not installed (looked in {cls.crds_dir()}): "
                "edgebench tools install kubeedge"
            )
        client = engine.connect()
        try:
            for image in kubeedge_spec.UPSTREAM_IMAGES:
                engine.require_image(client, image, kubeedge_spec.pull_hint())
        finally:
            client.close()
        check_host_tools()

    @staticmethod
    def crds_dir() -> Path:
        return tools.TOOLSETS["kubeedge"].bin_dir.parent / "crds"

    @property
    def version(self) -> str:
        return versions.KUBEEDGE

    def tool_versions(self) -> dict[str, str]:
        versions_ = tools.tool_versions(self.required_binaries())
        return {
            **versions_,
            "kubeedge/cloudcore": kubeedge_spec.CLOUDCORE_IMAGE.split(":", 1)[1],
            "kubeedge-edge-agent": UPSTREAM_AGENT,
            "kubeedge-edge-image": kubeedge_spec.EDGE_IMAGE,
        }

    def link_upstreams(self) -> list[str]:
        return [f"{self.cloud_ip}:{port}" for port in kubeedge_spec.STEERED_PORTS]

    # --- cloud --------------------------------------------------------------------------

    def _up(self) -> None:
        build_edge_image(self.client)
        super()._up()

    def start_cloud(self) -> None:
        """CRDs, then cloudcore's container on its own address; ready once cloudhub answers
        and the join token is published."""
        for path in sorted(self.crds_dir().rglob("*.yaml")):
            self._apply(path)
        self.cloud_ip = host_address(self.subnet, CLOUD_HOST)
        config_dir = self.state_dir / "cloudcore"
        config_dir.mkdir(parents=True, exist_ok=True)
        # the API server through a listener of its own on the cluster network (never cut)
        api = self.links.make("cloudcore-api", [self.control_plane.addresses.apiserver])
        write_kubeconfig(
            config_dir / Path(kubeedge_spec.CLOUDCORE_KUBECONFIG).name,
            f"https://{api.dial_for(self.control_plane.addresses.apiserver)}",
            self.control_plane.ca_cert,
            self.control_plane.client_cert("system:kubeedge:cloudcore", "system:masters"),
        )
        config = kubeedge_spec.cloudcore_config(self.cloud_ip)
        (config_dir / Path(kubeedge_spec.CLOUDCORE_CONFIG).name).write_text(
            yaml.safe_dump(config, sort_keys=False)
        )
        spec = kubeedge_spec.cloudcore_spec(
            self.spec,
            self.run_id,
            network.network_name(self.spec.name),
            self.cloud_ip,
            str(config_dir),
            str(self.control_plane.pki_dir),
        )
        cloud = ContainerAgent(
            self.client, spec, self.state_dir / "logs" / "cloudcore.log", (UNPRIVILEGED,)
        )
        self.cloud.append(cloud.start())
        wait_for(
            lambda: (
                port_open(self.cloud_ip, kubeedge_spec.WEBSOCKET_PORT)
                and port_open(self.cloud_ip, kubeedge_spec.HTTPS_PORT)
                and self._token() is not None
            ),
            120,
            "cloudcore to serve cloudhub and publish its token",
            interval=0.5,
            alive=cloud.check_alive,
        )

    def _apply(self, path: Path) -> None:
        from kubernetes import utils

        try:
            utils.create_from_yaml(self.api, str(path))
        except utils.FailToCreateError as exc:
            if any(getattr(e, "status", None) != 409 for e in exc.api_exceptions):
                raise

    # --- edge ---------------------------------------------------------------------------

    def agent_command(self, node: EdgeNode, ip: str) -> tuple[str, ...]:
        return ()  # the edge image's own entrypoint (kind's, then systemd)

    def agent_spec(self, node: EdgeNode, index: int) -> ContainerSpec:
        token = self._token()
        if token is None:
            raise ClusterError("cloudcore has not published its join token")
        node_dir = self.state_dir / "nodes" / node.name
        node_dir.mkdir(parents=True, exist_ok=True)
        ip = host_address(self.subnet, 10 + index)
        requested = self.timings if self.spec.profile == "fast" else None
        config = kubeedge_spec.edgecore_config(node.name, ip, self.cloud_ip, token, requested)
        (node_dir / "edgecore.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (node_dir / "cni.conflist").write_text(
            kubeedge_spec.cni_conflist(kubeedge_spec.pod_subnet(index))
        )
        volume = kubeedge_spec.edge_volume(self.spec.name, node.name)
        self.client.volumes.create(
            volume,
            labels=lbl.labels(self.spec.name, self.run_id, "volume", detached=self.spec.detached),
        )
        net = network.network_name(self.spec.name)
        return kubeedge_spec.edge_spec(self.spec, self.run_id, node.name, net, ip, str(node_dir))

    def start_agent(self, node: EdgeNode) -> ContainerAgent:
        index = self.node_names().index(node.name)
        agent = ContainerAgent(
            self.client, self.agent_spec(node, index), self.agent_log(node.name), SECURITY_MODES
        )
        agent.start()
        self._steer(node, agent)
        if index == 0:
            self._use_preloaded_image(agent)
        return agent

    def _steer(self, node: EdgeNode, agent: ContainerAgent) -> None:
        """Put the node's DNAT rules into its container's namespace, then let edgecore run."""
        assert agent.container is not None
        proxies = {
            port: node.dial_for(f"{self.cloud_ip}:{port}") for port in kubeedge_spec.STEERED_PORTS
        }
        rules = kubeedge_spec.dnat_rules(self.cloud_ip, proxies)
        steering.steer(agent.container, rules, kubeedge_spec.STEERED_MARKER, node.name)

    def _use_preloaded_image(self, agent: ContainerAgent) -> None:
        """The scenarios' pods run the pause image the kind node preloads (nothing pulled)."""
        assert agent.container is not None
        res = agent.container.exec_run(["containerd", "config", "dump"])
        image = kubeedge_spec.sandbox_image(res.output.decode(errors="replace"))
        if image is None:
            raise ClusterError(f"no sandbox_image in {agent.name}'s containerd config")
        workload.use_image(image)

    def restart_agent(self, node: str) -> None:
        """Restart the node's container (a reboot with its on-disk state: containerd's and
        edgecore's); the new namespace gets its DNAT rules before edgecore starts."""
        agent = self.agents[node]
        assert isinstance(agent, ContainerAgent)
        agent.restart()
        self._steer(self.node(node), agent)

    def edge_pods(self, node: str) -> dict[str, str]:
        """Pod sandboxes containerd in the edge container holds (``crictl pods``)."""
        return crictl.edge_pods(kubeedge_spec.edge_name(self.spec.name, node))

    def down(self, keep_logs: bool = False) -> None:
        """As the stand-in's (which removes every labelled container, network and volume),
        and the workload image back to the default."""
        workload.use_image(None)
        super().down(keep_logs=keep_logs)
