"""Provider part for edgebench's own agents in containers: the local provider's control plane
and Toxiproxy on this machine, each edge node's agent in its own container (the agents image of
``edgebench images build``) on the cluster's network. Subclasses give the agent's command.

Each node's link is a Toxiproxy listener on this machine's address on that network (the
gateway), the only address in the node's kubeconfig; the API server's certificate names it.
Where this machine allows it (root, ``nsenter``, ``iptables``, ``tc``), the link also has a
kernel part inside the container's network namespace, scoped to that listener, composed as the
local provider's namespaced nodes are: cuts, packet loss and bandwidth in the kernel, latency
and Toxiproxy's own toxics in the proxy.

Restarting the agent restarts its container (with a fake runtime: a reboot), which gets a new
network namespace. The agent's entrypoint waits for a marker on the container's tmpfs ``/run``
(:data:`GATE`) that edgebench writes once the kernel faults in force are installed in the new
namespace, so a node restarted while cut comes back cut.
"""

from __future__ import annotations

import abc
import contextlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench.distros.docker import engine, images, network, reaper
from bench.distros.docker import labels as lbl
from bench.distros.docker.agent import ContainerAgent
from bench.distros.docker.k3s import run_id
from bench.distros.docker.nsrunner import ContainerNetns
from bench.distros.docker.spec import ContainerSpec, Security, host_address
from bench.distros.links import ToxiproxyLinks
from bench.distros.local.cluster import LocalCluster
from bench.distros.local.controlplane import write_kubeconfig
from bench.distros.state import StateDir
from bench.errors import ClusterError, EnvironmentUnavailableError, NotSupportedError
from bench.faults import FaultKind
from bench.faults.composite import CompositeLink
from bench.faults.kernel import KernelLink, listener_endpoints
from bench.model import ClusterSpec, EdgeNode, ProviderSettings
from bench.netns import unavailable_reason

if TYPE_CHECKING:
    import docker

    from bench.runner import Runner

#: edgebench's agents need no privilege: they run no containers of their own
UNPRIVILEGED = Security("unprivileged")
FIRST_NODE_HOST = 10  # edge-i gets host number 10 + i of the cluster's /24
#: the agent starts once this file exists: written after the node's link is in place in the
#: container's namespace (on a tmpfs, so a restarted container waits again)
GATE = "/run/edgebench-linked"
_WAIT_THEN_AGENT = f'until [ -e {GATE} ]; do sleep 0.1; done; exec "$@"'


@dataclass(frozen=True)
class DockerSettings(ProviderSettings):
    """``kernel``: each node's link has a kernel part in its container's namespace (cuts,
    packet loss, bandwidth), beside its Toxiproxy listener; False: the listener alone (every
    fault, cuts too, made by Toxiproxy)."""

    kernel: bool = False


def kernel_unavailable_reason() -> str | None:
    """Why kernel links cannot be put into containers' namespaces here, or None."""
    reason = unavailable_reason()
    if reason is None and shutil.which("nsenter") is None:
        reason = "nsenter is not installed (Debian: apt-get install util-linux)"
    if reason is None:
        return None
    return f"kernel links in the agents' containers: {reason}"


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
        #: whether the nodes' links have a kernel part in their containers' namespaces
        self.kernel = self.settings_of(spec).kernel

    @classmethod
    def provider_settings(cls, options: Mapping[str, Any]) -> DockerSettings:
        """Each container is a network namespace already; ``--netns`` (automatic: where this
        machine allows it) says whether the links get a kernel part in it, ``--no-netns``
        keeps them Toxiproxy's alone. Asked for where it cannot be had: an
        :class:`EnvironmentUnavailableError` with the reason."""
        wanted = options.get("netns")
        reason = kernel_unavailable_reason() if wanted is not False else None
        if wanted is True and reason is not None:
            raise EnvironmentUnavailableError(reason)
        return DockerSettings(kernel=wanted is not False and reason is None)

    @classmethod
    def settings_of(cls, spec: ClusterSpec) -> DockerSettings:
        """The spec's docker settings (automatic when the spec was made without them)."""
        settings = spec.provider_settings
        return settings if isinstance(settings, DockerSettings) else cls.provider_settings({})

    @classmethod
    def link_backends(cls, spec: ClusterSpec) -> frozenset[str]:
        if cls.settings_of(spec).kernel:
            return frozenset({"kernel", "toxiproxy"})
        return frozenset({"toxiproxy"})

    @classmethod
    def link_faults(cls, spec: ClusterSpec) -> frozenset[FaultKind]:
        faults = ToxiproxyLinks.faults()
        if cls.settings_of(spec).kernel:
            faults |= {FaultKind.LOSS}  # the kernel part adds packet loss (and does the cuts)
        return faults

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

    def _agent(self, node: str) -> ContainerAgent:
        agent = self.agents[node]
        assert isinstance(agent, ContainerAgent)
        return agent

    def agent_address(self, node: str) -> str:
        return self._agent(node).address

    def node_runner(self, node: str) -> Runner | None:
        """The node's container namespace: probes of its link start where its packets do
        (through the kernel part, if any), and an agent endpoint on its loopback is reached."""
        agent = self.agents.get(node)
        if isinstance(agent, ContainerAgent) and agent.container is not None:
            return ContainerNetns(agent.container)
        return None

    def agent_pids(self, node: str) -> list[int]:
        """The host pid of the node's agent (its container's first process: the gate execs
        the agent), for the footprint samples; none while the container is not running."""
        agent = self.agents.get(node)
        if isinstance(agent, ContainerAgent) and agent.container is not None:
            with contextlib.suppress(ClusterError):
                return [engine.init_pid(agent.container)]
        return []

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
            tmpfs={"/run": "rw"},  # the gate's marker: gone when the container restarts
            entrypoint=("sh", "-c", _WAIT_THEN_AGENT, "edgebench-gate"),
        )

    def start_agent(self, node: EdgeNode) -> ContainerAgent:
        """Start the node's container; its agent waits at the gate (:meth:`_add_node`)."""
        index = self.node_names().index(node.name)
        agent = ContainerAgent(
            self.client, self.agent_spec(node, index), self.agent_log(node.name), (UNPRIVILEGED,)
        )
        return agent.start()

    def _add_node(self, name: str) -> None:
        """The node's Toxiproxy link, its container (the agent waiting at its gate), then the
        kernel link in the container's namespace composed with the Toxiproxy one as the node's
        link (the kernel part first: it does the cuts), then the agent starts."""
        node = self.links.make(name, self.link_upstreams())
        self._nodes.append(node)
        agent = self.start_agent(node)
        self.agents[name] = agent
        if self.kernel:
            kernel = self._new_kernel_link(node, agent)
            self._nodes[-1] = EdgeNode(name, CompositeLink(name, [kernel, node.link]), node.dial)
        agent.release(GATE)

    def _state_extra(self) -> dict[str, Any]:
        """The agents' containers, and whether the links have kernel parts in them."""
        containers = {
            name: agent.spec.name
            for name, agent in self.agents.items()
            if isinstance(agent, ContainerAgent)
        }
        return {"containers": containers, "kernel": self.kernel}

    def _new_kernel_link(self, node: EdgeNode, agent: ContainerAgent) -> KernelLink:
        """A kernel link (iptables/tc) inside the container's namespace, scoped to all of the
        node's Toxiproxy listeners (the API server's; cloudhub's two for KubeEdge); the
        container's pid is looked up at each command."""
        container = agent.container
        if container is None:
            raise ClusterError(f"{node.name} has no container")
        endpoints = listener_endpoints(node.dial.values())
        return KernelLink(node.name, ContainerNetns(container), endpoints, "eth0")

    def kernel_link(self, node: str) -> KernelLink:
        """The kernel part of ``node``'s link (:class:`NotSupportedError` without one)."""
        link = self.node(node).link
        if not isinstance(link, CompositeLink):
            raise NotSupportedError(
                f"{self.name}/{self.provider}: the link of {node} has no kernel part "
                f"({kernel_unavailable_reason() or 'run without --no-netns'})"
            )
        return cast(KernelLink, link.part("kernel"))

    def restart_agent(self, node: str) -> None:
        """Restart the node's container: the agent starts afresh (with a fake runtime, a
        reboot) in a new network namespace. It waits at its gate until the link's kernel
        faults in force are installed there again (with a dead-man timer), so a node
        restarted while cut stays cut."""
        agent = self._agent(node)
        agent.restart()
        try:
            if self.kernel:
                self.kernel_link(node).reinstall()
        finally:  # a failed re-install is raised, and the agent must not stay at its gate
            agent.release(GATE)

    def _save_agent_logs(self) -> None:
        for agent in self.agents.values():
            if isinstance(agent, ContainerAgent):
                agent.save_log()

    def collect_logs(self, dest: Path) -> None:
        self._save_agent_logs()
        super().collect_logs(dest)

    def down(self, keep_logs: bool = False) -> None:
        """Restore the links (the kernel parts while their containers live), remove the
        agents' containers and stop the rest, then remove whatever the cluster labelled."""
        if not self.state.held:
            return
        self._save_agent_logs()
        try:
            super().down(keep_logs=keep_logs)
        finally:
            with contextlib.suppress(Exception):
                reaper.remove(self.client, self.spec.name)
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
                self._client = None

    @classmethod
    def teardown(cls, state: StateDir) -> list[str]:
        return reaper.teardown(state)
