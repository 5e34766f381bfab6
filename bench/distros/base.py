"""The small abstract driver every distribution implements, with the abilities it declares.

A driver states up front which optional abilities it has (:class:`~bench.model.Capability`)
and which link fault kinds its links can do; for every ability it lacks it may say why (shown
in the skip reason of a case that needs it). Scenarios never find out mid-case.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from bench.errors import NotSupportedError
from bench.faults.base import FaultKind
from bench.model import Capability, ClusterSpec, EdgeNode, ProviderSettings, Timings

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from bench.distros.remote.starlingx import SubcloudPoller
    from bench.distros.state import StateDir
    from bench.observe.watch import ClusterObserver


class Distro(abc.ABC):
    """A distribution stood up by one provider. Subclasses are a few hundred lines at most."""

    name: ClassVar[str]
    provider: ClassVar[str]
    #: the optional abilities this driver has
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset()
    #: why it lacks an ability, for skip reasons; under ``CI=true`` a case skipped for an
    #: ability the driver lacks *without* a stated reason fails (a lost ability is a bug)
    LACKS: ClassVar[Mapping[Capability, str]] = {}

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`~bench.errors.ToolError` (or another EdgebenchError saying what to
        supply) if this driver cannot run on this machine."""
        return None

    @classmethod
    def provider_settings(cls, options: Mapping[str, Any]) -> ProviderSettings:
        """This provider's settings from the resolved run options (``bench.settings``);
        :class:`~bench.errors.EnvironmentUnavailableError` when one asked for cannot be had
        here, saying what is needed and what runs without it."""
        return ProviderSettings()

    def run_extra(self) -> dict[str, Any]:
        """Anything else ``run.json`` should carry about this cluster (under ``extra``)."""
        return {}

    @classmethod
    def link_faults(cls, spec: ClusterSpec) -> frozenset[FaultKind]:
        """The fault kinds the links of a cluster of ``spec`` can do."""
        return frozenset()

    @classmethod
    def link_backends(cls, spec: ClusterSpec) -> frozenset[str]:
        """The link backends the links of a cluster of ``spec`` are made of."""
        return frozenset()

    @classmethod
    def lacks(cls, ability: Capability | FaultKind | str, spec: ClusterSpec) -> str | None:
        """None when the driver has ``ability`` (a capability, a fault kind, or a link
        backend as ``"backend:<name>"``); otherwise why not ("" if it never said)."""
        if isinstance(ability, str) and ability.startswith("backend:"):
            backend = ability.split(":", 1)[1]
            if backend in cls.link_backends(spec):
                return None
            have = ", ".join(sorted(cls.link_backends(spec))) or "none"
            return f"its links have no {backend} backend (they have: {have})"
        if isinstance(ability, FaultKind):
            if ability in cls.link_faults(spec):
                return None
            return f"its links cannot do {ability}"
        capability = Capability(ability)
        if capability in cls.CAPABILITIES:
            return None
        return cls.LACKS.get(capability, "")

    @abc.abstractmethod
    def up(self) -> None:
        """Start everything and return once every edge node is Ready."""

    @abc.abstractmethod
    def down(self) -> None:
        """Stop every process and proxy and remove the cluster's state. Never raises."""

    @property
    @abc.abstractmethod
    def kubeconfig(self) -> Path:
        """A kubeconfig for the control plane (direct, not through any link)."""

    @property
    @abc.abstractmethod
    def api(self) -> ApiClient:
        """A Kubernetes API client for the control plane (direct, not through any link)."""

    def observer(self, namespace: str | None = None) -> ClusterObserver:
        """Watches of nodes, Leases and pods (of ``namespace``, or all) of this cluster."""
        from bench.observe.watch import ClusterObserver

        return ClusterObserver(self.api, namespace)

    @property
    @abc.abstractmethod
    def edge_nodes(self) -> list[EdgeNode]: ...

    @property
    @abc.abstractmethod
    def timings(self) -> Timings: ...

    @property
    @abc.abstractmethod
    def version(self) -> str: ...

    def tool_versions(self) -> dict[str, str]:
        return {}

    def node(self, name: str) -> EdgeNode:
        for node in self.edge_nodes:
            if node.name == name:
                return node
        raise KeyError(f"no edge node {name!r}; nodes: {[n.name for n in self.edge_nodes]}")

    def collect_logs(self, dest: Path) -> None:
        """Copy the logs of every process the driver started into ``dest`` (best effort)."""
        return None

    # Optional abilities; drivers that have them override these.

    def edge_pods(self, node: str) -> dict[str, str]:
        """What the edge agent itself believes runs there: pod ``ns/name`` to phase."""
        raise NotSupportedError(
            f"{self.name}/{self.provider} has no edge-side view of pods (no runtime on the node)"
        )

    def edge_volume_file(self, node: str, pod_uid: str, volume: str, key: str) -> str | None:
        """The content of a ConfigMap volume file as the edge agent wrote it (None: absent)."""
        raise NotSupportedError(f"{self.name}/{self.provider} has no edge-side view of volumes")

    def probe_link(self, node: str, path: str = "/version") -> tuple[float, int]:
        """Seconds one fresh request to the control plane takes through ``node``'s link, and
        the bytes it brought back."""
        raise NotSupportedError(f"{self.name}/{self.provider} cannot probe its links")

    def restart_agent(self, node: str) -> None:
        """Restart the edge agent of ``node`` (for fake runtimes this is a reboot)."""
        raise NotSupportedError(f"{self.name}/{self.provider} cannot restart its edge agent")

    def reboot(self, node: str) -> str:
        """Reboot ``node``: every container gone, the agent started again with what it kept on
        disk, the node's faults still in force when it is back. Returns a note on how it went
        ("" when there is nothing to say). Where the agent is a process of this machine (fake
        runtimes) or a node container, restarting it is that reboot."""
        if Capability.REBOOT not in self.CAPABILITIES:
            raise NotSupportedError(f"{self.name}/{self.provider} cannot reboot a node")
        self.restart_agent(node)
        return ""

    def subcloud_poller(self) -> SubcloudPoller | None:
        """StarlingX: a poller of the system controller's view of this cluster (a subcloud);
        None for a cluster that is no subcloud. :class:`NotSupportedError` saying why when
        it is one but the controller cannot be asked (its rows are then empty with that)."""
        return None

    def agent_pids(self, node: str) -> list[int]:
        """The pids of ``node``'s edge agent process(es) on this machine, now (an agent
        restart changes them): what :mod:`bench.observe.footprint` samples."""
        raise NotSupportedError(f"{self.name}/{self.provider} has no local agent processes")

    def apiserver_metrics(self) -> str:
        """The API server's ``/metrics`` text (as the admin)."""
        raise NotSupportedError(f"{self.name}/{self.provider} cannot read the API server metrics")

    def control_plane_pids(self) -> dict[str, int]:
        """The control plane's processes on this machine (API server, etcd, cloud-side
        processes such as cloudcore) by name."""
        raise NotSupportedError(f"{self.name}/{self.provider} has no local control plane")

    @classmethod
    def teardown(cls, state: StateDir) -> list[str]:
        """``edgebench down NAME``: undo everything a cluster of this driver recorded in its
        state folder (processes, namespaces, containers, ...), from another process; returns
        what was stopped. Drivers that create anything override it."""
        state.remove()
        return []

    def __enter__(self) -> Self:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
