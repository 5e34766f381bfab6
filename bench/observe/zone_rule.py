"""The node lifecycle controller's protection against mass evictions, as a pure function.

Kubernetes (``pkg/controller/nodelifecycle``) judges each zone by its not-Ready nodes:
every node not Ready is a *full disruption*; more than two not Ready and at least
``--unhealthy-zone-threshold`` of the zone is a *partial disruption*; otherwise *normal*.
Evictions (the NoExecute taints that evict pods) then run at ``--node-eviction-rate`` nodes
per second in a normal zone; in a partially disrupted zone at ``--secondary-node-eviction-rate``
if the zone has more than ``--large-cluster-size-threshold`` nodes, and not at all otherwise;
and when every zone is fully disrupted the controller assumes its own connectivity is at fault
and stops evicting anywhere. (A fully disrupted zone among healthy ones evicts at the normal
rate.) Edge nodes carry no zone label here, so they form one zone.
"""

from __future__ import annotations

from typing import Literal

from bench.model import Timings

ZoneState = Literal["normal", "partial", "full"]


def zone_state(not_ready: int, total: int, unhealthy_threshold: float) -> ZoneState:
    """The zone's state as ``ComputeZoneState`` computes it."""
    if total and not_ready == total:
        return "full"
    if not_ready > 2 and total and not_ready / total >= unhealthy_threshold:
        return "partial"
    return "normal"


def eviction_rate(not_ready: int, total: int, t: Timings) -> tuple[float, str]:
    """Nodes per second the controller evicts in a one-zone cluster with ``not_ready`` of
    ``total`` nodes not Ready, and why; ValueError when the rule's flags were not read."""
    if None in (
        t.unhealthy_zone_threshold,
        t.large_cluster_size_threshold,
        t.node_eviction_rate,
        t.secondary_node_eviction_rate,
    ):
        raise ValueError(f"the zone rule's flags were not read from the controller: {t}")
    assert t.unhealthy_zone_threshold is not None and t.node_eviction_rate is not None
    assert t.large_cluster_size_threshold is not None
    assert t.secondary_node_eviction_rate is not None
    state = zone_state(not_ready, total, t.unhealthy_zone_threshold)
    share = f"{not_ready}/{total} not Ready"
    if state == "full":
        return 0.0, f"{share}: every zone fully disrupted, evictions stop"
    if state == "partial":
        if total > t.large_cluster_size_threshold:
            rate = t.secondary_node_eviction_rate
            return rate, f"{share} >= {t.unhealthy_zone_threshold:g}: secondary rate {rate:g}/s"
        return 0.0, (
            f"{share} >= {t.unhealthy_zone_threshold:g} in a cluster of at most "
            f"{t.large_cluster_size_threshold:g} nodes: evictions stop"
        )
    return t.node_eviction_rate, f"{share}: normal zone, rate {t.node_eviction_rate:g}/s"
