"""The small abstract driver every distribution implements."""

from __future__ import annotations

import abc
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from bench.errors import NotSupportedError, UsageError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from bench.faults import Link
    from bench.observe.watch import ClusterObserver

Profile = Literal["fast", "default"]
PROFILES: tuple[Profile, ...] = ("fast", "default")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")


@dataclass(frozen=True)
class Timings:
    """The effective timing settings of a cluster, written to ``run.json`` under ``timings``."""

    node_monitor_grace_period_s: float
    node_monitor_period_s: float
    node_status_update_period_s: float
    node_lease_duration_s: float
    unreachable_toleration_s: float
    not_ready_toleration_s: float

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @property
    def detect_bound_s(self) -> float:
        """The longest a healthy control plane may take to mark a silent node not Ready."""
        return self.node_monitor_grace_period_s + 2 * self.node_monitor_period_s

    @property
    def short_outage_s(self) -> float:
        """An outage that is detected but shorter than grace period plus toleration."""
        return self.node_monitor_grace_period_s + self.unreachable_toleration_s / 2

    @property
    def evict_bound_s(self) -> float:
        """The longest from a link cut until pods without extra tolerations are evicted."""
        return self.detect_bound_s + self.unreachable_toleration_s + 2 * self.node_monitor_period_s


@dataclass(frozen=True)
class ClusterSpec:
    """What the user asked for: a named cluster of N edge nodes in a timing profile."""

    name: str = "edgebench"
    edge_nodes: int = 3
    profile: Profile = "fast"
    state_root: Path | None = None
    detached: bool = False  # processes outlive the Python process (``edgebench up``)
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise UsageError(
                f"cluster name {self.name!r} must be lower-case letters, digits and dashes"
            )
        if not 1 <= self.edge_nodes <= 500:
            raise UsageError(f"--edge-nodes must be between 1 and 500, got {self.edge_nodes}")
        if self.profile not in PROFILES:
            raise UsageError(f"unknown profile {self.profile!r}; valid: {', '.join(PROFILES)}")


@dataclass(frozen=True)
class EdgeNode:
    """One edge node: its Kubernetes name and the link between it and its control plane."""

    name: str
    link: Link


class Distro(abc.ABC):
    """A distribution stood up by one provider. Subclasses are a few hundred lines at most."""

    name: ClassVar[str]
    provider: ClassVar[str]

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`EnvironmentUnavailableError` (or ToolError) if this cannot run here."""
        return None

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

    def __enter__(self) -> Distro:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
