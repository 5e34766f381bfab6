"""Pinned versions of every tool edgebench builds. This is the only place they are set."""

from __future__ import annotations

TOXIPROXY = "v2.12.0"
ETCD = "v3.5.21"
# v1.32.9: the newest 1.32 patch for which the module proxy serves every staging module the
# control plane binaries need (v1.32.10+ lack k8s.io/endpointslice or kubectl at this proxy).
KUBERNETES = "v1.32.9"
KWOK = "v0.8.0"
