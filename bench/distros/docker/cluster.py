"""Provider part for edgebench's own agents in containers: the local provider's control plane
and Toxiproxy on this machine, each edge node's agent in its own container (the agents image of
``edgebench images build``) on the cluster's network. Subclasses give the agent's command.

Each node's link is a Toxiproxy listener on this machine's address on that network (the
gateway), the only address in the node's kubeconfig; the API server's certificate names it.
Restarting the agent restarts its container (with a fake runtime: a reboot). Kernel links act
inside the container's namespace (:meth:`DockerAgents.kernel_link`).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.distros.docker import engine, images, network, reaper
from bench.distros.docker import labels as lbl
from bench.distros.docker.agent import ContainerAgent
from bench.distros.docker.k3s import run_id
from bench.distros.docker.nsrunner import ContainerNetns
from bench.distros.docker.spec import ContainerSpec, Security, host_address
from bench.distros.local.cluster import LocalCluster, LocalSettings
from bench.distros.local.controlplane import write_kubeconfig
from bench.distros.state import StateDir
from bench.faults.kernel import Endpoint, KernelLink
from bench.model import ClusterSpec, EdgeNode
from bench.procs import Supervised

if TYPE_CHECKING:
    import docker

#: edgebench's agents need no privilege: they run no containers of their own
UNPRIVILEGED = Security("unprivileged")
FIRST_NODE_HOST = 10  # edge-i gets host number 10 + i of the cluster's /24


class DockerAgents(LocalCluster):
    """A local cluster whose agents run in containers; subclasses give each agent's command."""

    provider = "docker"

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.run_id = run_id()
        self._client: docker.DockerClient | None = None
        self.subnet = ""
        self.gateway = ""
        self.image = images.agents_image()

    @classmethod
    def provider_settings(cls, options: Mapping[str, Any]) -> LocalSettings:
        """A container is a network namespace already: no node namespaces of the local
        provider here (``--netns`` does not apply); links are Toxiproxy's."""
        return LocalSettings(netns=False)

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

    @abc.abstractmethod
    def agent_command(self, node: EdgeNode, ip: str) -> tuple[str, ...]:
        """The agent's command line in its container (at address ``ip``); files it names must
        be under the state folder's ``pki`` or ``nodes/<node>`` (mounted read-only)."""

    def node_kubeconfig(self, node: EdgeNode) -> Path:
        """A kubeconfig for ``node`` whose only server is its link."""
        return write_kubeconfig(
            self.state_dir / "nodes" / node.name / "kubeconfig",
            f"https://{node.dial_for(self.control_plane.addresses.apiserver)}",
            self.control_plane.ca_cert,
            self.control_plane.client_cert(f"system:node:{node.name}", "system:nodes"),
        )

    def agent_spec(self, node: EdgeNode, index: int) -> ContainerSpec:
        node_dir = self.state_dir / "nodes" / node.name
        node_dir.mkdir(parents=True, exist_ok=True)
        ip = host_address(self.subnet, FIRST_NODE_HOST + index)
        pki = str(self.control_plane.pki_dir)
        return ContainerSpec(
            name=f"edgebench-{self.spec.name}-{node.name}",
            image=self.image,
            command=self.agent_command(node, ip),
            labels={
                **lbl.labels(self.spec.name, self.run_id, "agent", detached=self.spec.detached),
                f"{lbl.PREFIX}.node": node.name,
            },
            network=network.network_name(self.spec.name),
            ip=ip,
            hostname=node.name,
            # certificates and kubeconfig at the same paths as on this machine, read-only
            binds={pki: (pki, "ro"), str(node_dir): (str(node_dir), "ro")},
        )

    def start_agent(self, node: EdgeNode) -> Supervised:
        index = self.node_names().index(node.name)
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
        """Restart the node's container: the agent starts afresh (with a fake runtime, a
        reboot); a kernel link's rules go with the old namespace."""
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
