"""The containers of upstream KubeEdge on Docker, as pure functions of the cluster."""

from __future__ import annotations

from bench.build import versions

CLOUDCORE_IMAGE = f"kubeedge/cloudcore:{versions.KUBEEDGE}"
INSTALLATION_IMAGE = f"kubeedge/installation-package:{versions.KUBEEDGE}"
NODE_BASE_IMAGE = f"kindest/node:{versions.KIND_NODE}"
#: the images a user supplies (nothing is pulled during a run)
UPSTREAM_IMAGES = (CLOUDCORE_IMAGE, INSTALLATION_IMAGE, NODE_BASE_IMAGE)


def pull_hint() -> str:
    """What to run to have the upstream recipe."""
    return "; ".join(f"docker pull {image}" for image in UPSTREAM_IMAGES)
