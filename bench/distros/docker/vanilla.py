"""``--distro=vanilla --provider=docker``: the local provider's control plane on this machine,
each edge node a kubemark hollow kubelet in its own container (the agents image of
``edgebench images build``) on the cluster's network.

Each node's link is a Toxiproxy listener on this machine's address on that network (the
gateway), the only address in the node's kubeconfig; the API server's certificate names it.
The container reaches nothing else of this machine's control plane. Restarting the agent
restarts its container (the hollow kubelet's fake runtime: a reboot).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bench.distros.docker import engine, images, network, reaper
from bench.distros.docker import labels as lbl
from bench.distros.docker.agent import ContainerAgent
from bench.distros.docker.k3s import run_id
from bench.distros.docker.nsrunner import ContainerNetns
from bench.distros.docker.spec import ContainerSpec, Security, host_address
from bench.distros.local.cluster import LocalCluster
from bench.distros.local.controlplane import KUBELET_FAST, write_kubeconfig
from bench.distros.local.vanilla import VanillaLocal
from bench.distros.state import StateDir
from bench.faults.kernel import Endpoint, KernelLink
from bench.model import Capability, ClusterSpec, EdgeNode, Timings
from bench.procs import Supervised

if TYPE_CHECKING:
    import docker

#: kubemark needs no privilege: it runs no containers of its own
UNPRIVILEGED = Security("unprivileged")
READ_ONLY_PORT = 10255
FIRST_NODE_HOST = 10  # edge-i gets host number 10 + i of the cluster's /24


class VanillaDocker(LocalCluster):
    name = "vanilla"
    provider = "docker"
    AGENT_BINARIES = ("kubemark",)
    FAST_TIMINGS: ClassVar[Timings] = KUBELET_FAST
    CAPABILITIES = LocalCluster.CAPABILITIES | {Capability.EDGE_POD_VIEW}
    LACKS: ClassVar[Mapping[Capability, str]] = VanillaLocal.LACKS

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.run_id = run_id()
        self._client: docker.DockerClient | None = None
        self.subnet = ""
        self.gateway = ""
        self.image = images.agents_image()

    @classmethod
    def check_available(cls) -> None:
        super().check_available()  # the host-side binaries
        from bench.distros.docker.k3s import check_host_tools

        client = engine.connect()
        try:
            engine.require_image(
                client, images.agents_image(), "build it with: edgebench images build"
            )
        finally:
            client.close()
        check_host_tools()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.connect()
        return self._client

    def tool_versions(self) -> dict[str, str]:
        return {**super().tool_versions(), "agents-image": self.image}

    def agent_address(self, node: str) -> str:
        agent = self.agents[node]
        assert isinstance(agent, ContainerAgent)
        return agent.address

    def _up(self) -> None:
        reaper.reap(self.client)  # what killed sessions left behind
        net = network.create(self.client, self.spec.name, self.run_id, self.spec.detached)
        self.subnet, self.gateway = network.subnet_of(net)
        # the agents dial the gateway: the API server's certificate must name it
        self.control_plane.extra_sans = (*self.control_plane.extra_sans, self.gateway)
        self.links.listen_host = self.gateway
        super()._up()

    def agent_spec(self, node: EdgeNode, index: int) -> ContainerSpec:
        node_dir = self.state_dir / "nodes" / node.name
        kubeconfig = write_kubeconfig(
            node_dir / "kubeconfig",
            f"https://{node.dial_for(self.control_plane.addresses.apiserver)}",
            self.control_plane.ca_cert,
            self.control_plane.client_cert(f"system:node:{node.name}", "system:nodes"),
        )
        pki = str(self.control_plane.pki_dir)
        return ContainerSpec(
            name=f"edgebench-{self.spec.name}-{node.name}",
            image=self.image,
            command=(
                f"{images.BIN_DIR}/kubemark",
                "--morph=kubelet",
                f"--name={node.name}",
                f"--kubeconfig={kubeconfig}",
                "--kubelet-port=10250",
                f"--kubelet-read-only-port={READ_ONLY_PORT}",
                "--use-host-image-service=false",
                "--node-labels=edgebench.io/edge=true",
                "--max-pods=110",
            ),
            labels={
                **lbl.labels(self.spec.name, self.run_id, "agent"),
                f"{lbl.PREFIX}.node": node.name,
            },
            network=network.network_name(self.spec.name),
            ip=host_address(self.subnet, FIRST_NODE_HOST + index),
            hostname=node.name,
            # certificates and kubeconfig at the same paths as on this machine, read-only
            binds={pki: (pki, "ro"), str(node_dir): (str(node_dir), "ro")},
        )

    def start_agent(self, node: EdgeNode) -> Supervised:
        index = self.node_names().index(node.name)
        self.read_only_ports[node.name] = READ_ONLY_PORT
        agent = ContainerAgent(
            self.client, self.agent_spec(node, index), self.agent_log(node.name), (UNPRIVILEGED,)
        )
        return agent.start()

    def kernel_link(self, node: str, **kwargs: Any) -> KernelLink:
        """A kernel link (iptables/tc) inside ``node``'s container namespace, scoped to its
        Toxiproxy listener; ``kwargs`` go to :class:`KernelLink`."""
        agent = self.agents[node]
        assert isinstance(agent, ContainerAgent) and agent.container is not None
        host, _, port = (
            self.node(node).dial_for(self.control_plane.addresses.apiserver).rpartition(":")
        )
        endpoint = Endpoint(host, (int(port),))
        return KernelLink(node, ContainerNetns(agent.container), [endpoint], "eth0", **kwargs)

    def restart_agent(self, node: str) -> None:
        """Restart the node's container: the hollow kubelet starts afresh (a reboot)."""
        agent = self.agents[node]
        assert isinstance(agent, ContainerAgent)
        agent.restart()

    def _save_agent_logs(self) -> None:
        for agent in self.agents.values():
            if isinstance(agent, ContainerAgent):
                agent.save_log()

    def collect_logs(self, dest: Path) -> None:
        self._save_agent_logs()
        super().collect_logs(dest)

    def down(self, keep_logs: bool = False) -> None:
        if not self.state.held:
            return
        self._save_agent_logs()
        with contextlib.suppress(Exception):
            reaper.remove(self.client, self.spec.name)
        super().down(keep_logs=keep_logs)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    @classmethod
    def teardown(cls, state: StateDir) -> list[str]:
        return reaper.teardown(state)
