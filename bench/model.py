"""The data every provider and scenario shares: timing settings, what a cluster should be
(:class:`ClusterSpec`), its edge nodes, and the optional abilities a driver declares."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bench.errors import UsageError

if TYPE_CHECKING:
    from bench.faults import Link


class Capability(enum.StrEnum):
    """An optional ability of a distro driver; scenarios that need one declare it with
    ``@pytest.mark.requires(...)`` and are skipped at collection time where it is absent."""

    EDGE_POD_VIEW = "edge pod view"  # the agent's (or runtime's) own list of pods
    EDGE_VOLUME_VIEW = "edge volume view"  # files the agent wrote for a ConfigMap volume
    AGENT_RESTART = "agent restart"  # restart the edge agent process
    REBOOT = "reboot"  # every container gone and the agent restarted (fake runtimes: restart)
    REAL_RUNTIME = "real runtime"  # containers that outlive an agent restart
    LINK_PROBE = "link probe"  # time one fresh request through the node's link
    FOOTPRINT = "footprint"  # pids of each edge agent and of the control plane, on this host


@dataclass(frozen=True)
class ProviderSettings:
    """Settings only one provider understands; each provider subclasses it (typed fields)."""


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
    #: how long the edge agent keeps a connection that went silent before it gives it up and
    #: dials again (after a blackhole, a hung connection may hold recovery back this long);
    #: from the agent's own settings, 0 when unknown
    agent_silent_link_s: float = 0.0
    #: the node lifecycle controller's zone rule (None: not read from the running process)
    unhealthy_zone_threshold: float | None = None
    large_cluster_size_threshold: float | None = None
    node_eviction_rate: float | None = None
    secondary_node_eviction_rate: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The settings that are known (the zone rule only where it was read back)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

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
    state_root: Path | None = None  # default: $EDGEBENCH_HOME/clusters
    detached: bool = False  # processes outlive the Python process (``edgebench up``)
    #: what only one provider understands (e.g. :class:`LocalSettings`); typed per provider
    provider_settings: ProviderSettings = field(default_factory=lambda: ProviderSettings())

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
    """One edge node: its Kubernetes name, the link between it and its control plane, and
    the addresses its agent dials for each control-plane endpoint (through the link)."""

    name: str
    link: Link
    dial: Mapping[str, str] = field(default_factory=dict)

    def dial_for(self, upstream: str) -> str:
        """The ``host:port`` the agent uses instead of ``upstream`` (the control plane's)."""
        try:
            return self.dial[upstream]
        except KeyError:
            raise KeyError(
                f"edge node {self.name} has no path to {upstream!r}; it dials: {dict(self.dial)}"
            ) from None
