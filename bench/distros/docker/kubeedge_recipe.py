"""Which KubeEdge recipe ``--distro=kubeedge --provider=docker`` runs: upstream KubeEdge when
this machine's engine holds its images, else the hollowedge stand-in; and the settings that say
which ran and why (``run.json``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.distros.docker import engine
from bench.distros.docker.cluster import DockerSettings
from bench.distros.readiness import progress
from bench.errors import EnvironmentUnavailableError

if TYPE_CHECKING:
    from bench.distros.base import Distro

STAND_IN = "hollowedge"
STAND_IN_AGENT = (
    "hollowedge: edgebench's stand-in for edgecore (KubeEdge v1.20.0 edged/edgehub/metaManager "
    "over a fake runtime)"
)


@dataclass(frozen=True)
class KubeEdgeDockerSettings(DockerSettings):
    """Which KubeEdge recipe runs (``upstream`` or the ``hollowedge`` stand-in), its edge
    agent, and why that recipe was chosen."""

    recipe: str = STAND_IN
    edge_agent: str = STAND_IN_AGENT
    why: str = ""


def upstream_missing() -> str | None:
    """None when the engine holds every image of the upstream recipe (cloudcore's, the
    installation package's, the kind node's: what its ``check_available`` asks for);
    otherwise why not."""
    from bench.distros.docker import kubeedge_spec

    try:
        client = engine.connect()
    except EnvironmentUnavailableError as exc:
        return str(exc)
    try:
        for image in kubeedge_spec.UPSTREAM_IMAGES:
            engine.require_image(client, image, kubeedge_spec.pull_hint())
    except EnvironmentUnavailableError as exc:
        return str(exc)
    finally:
        client.close()
    return None


@functools.cache
def choose_driver() -> type[Distro]:
    """The upstream recipe when its images are here, else the stand-in; says which (once per
    process)."""
    why = upstream_missing()
    if why is None:
        from bench.distros.docker import kubeedge_spec
        from bench.distros.docker.kubeedge_upstream import KubeEdgeUpstreamDocker

        progress(
            "kubeedge/docker: the upstream images are present: running upstream KubeEdge "
            f"({', '.join(kubeedge_spec.UPSTREAM_IMAGES)})"
        )
        return KubeEdgeUpstreamDocker
    from bench.distros.docker.kubeedge import KubeEdgeDocker

    progress(
        "kubeedge/docker: running the stand-in (cloudcore built from the Go module proxy on "
        f"this machine, hollowedge in the agents image), because {why}"
    )
    return KubeEdgeDocker
