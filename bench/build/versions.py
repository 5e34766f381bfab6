"""Pinned versions of every tool edgebench builds. This is the only place they are set."""

from __future__ import annotations

TOXIPROXY = "v2.12.0"
ETCD = "v3.5.21"
# v1.32.9: the newest 1.32 patch for which the module proxy serves every staging module the
# control plane binaries need (v1.32.10+ lack k8s.io/endpointslice or kubectl at this proxy).
KUBERNETES = "v1.32.9"
KWOK = "v0.8.0"
# The only KubeEdge release the module proxy serves (v1.19.1-v1.22.x are refused). It builds
# against KubeEdge's fork of Kubernetes v1.30.7 (edged is a 1.30 kubelet; within skew of 1.32).
KUBEEDGE = "v1.20.0"
# KubeEdge's beehive staging module is not served; this archived release is, and edgebench's
# patch (bench/build/gosrc/kubeedge/beehive-compat.patch) brings it to the API v1.20 expects.
BEEHIVE_BASE = "v1.7.0"
# k3s in containers (``--distro=k3s``, docker provider): the same Kubernetes minor as the rest.
# Docker tags spell the ``+`` of a k3s version as ``-``.
K3S = "v1.32.9+k3s1"
# KubeEdge in containers (``--distro=kubeedge --provider=docker``, upstream recipe): the edge
# node is a kind node image (systemd, containerd, runc, CNI plugins, a preloaded pause image), as
# KubeEdge's own keink and hack/local-up-kubeedge.sh run edgecore; v1.30 matches edged's kubelet
# (KubeEdge v1.20 builds against Kubernetes v1.30.7). The edgecore binary comes from the
# release's kubeedge/installation-package image; cloudcore from kubeedge/cloudcore (same tag).
KIND_NODE = "v1.30.0"
