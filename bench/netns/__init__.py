"""Network namespaces for local edge nodes; see :mod:`bench.netns.namespace`."""

from bench.netns.names import NETWORK, NamespaceSpec, all_specs, cluster_tag
from bench.netns.namespace import NodeNamespace, require_netns, unavailable_reason
from bench.netns.reaper import (
    cleanup_cluster,
    cleanup_orphan_chains,
    cleanup_orphans,
    leftovers,
)

__all__ = [
    "NETWORK",
    "NamespaceSpec",
    "NodeNamespace",
    "all_specs",
    "cleanup_cluster",
    "cleanup_orphan_chains",
    "cleanup_orphans",
    "cluster_tag",
    "leftovers",
    "require_netns",
    "unavailable_reason",
]
