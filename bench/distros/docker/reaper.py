"""Removal of labelled resources: one cluster's (``edgebench down``) and every one whose owner
process is gone (after a SIGKILL, a crash, a lost terminal)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from bench.distros.docker import labels as lbl

if TYPE_CHECKING:
    import docker

    from bench.distros.state import StateDir


def remove(
    client: docker.DockerClient, cluster: str | None = None, orphans_only: bool = False
) -> list[str]:
    """Remove edgebench's containers, then networks, then volumes (of ``cluster``, or all;
    with ``orphans_only`` only those whose owner process is gone); what was removed. Never
    raises for a resource that is already gone."""
    import docker

    removed: list[str] = []
    filters = lbl.cluster_filter(cluster)
    kinds = (
        ("container", client.containers.list(all=True, filters=filters)),
        ("network", client.networks.list(filters=filters)),
        ("volume", client.volumes.list(filters=filters)),
    )
    for kind, resources in kinds:
        for res in resources:
            labels = res.attrs.get("Labels") or res.attrs.get("Config", {}).get("Labels") or {}
            if orphans_only and not lbl.owner_gone(labels):
                continue
            with contextlib.suppress(docker.errors.NotFound):
                if kind == "container":
                    res.remove(force=True, v=True)
                else:
                    res.remove()
                removed.append(f"{kind} {res.name}")
    return removed


def reap(client: docker.DockerClient) -> list[str]:
    """Remove every edgebench resource whose owner process no longer runs on this machine."""
    return remove(client, orphans_only=True)


def teardown(state: StateDir) -> list[str]:
    """``edgebench down NAME`` of a docker-provider cluster: the processes its state records
    (Toxiproxy, a host-side control plane), then every container, network and volume
    labelled with its name."""
    from bench.distros.docker import engine
    from bench.distros.local.cluster import stop_recorded
    from bench.errors import EnvironmentUnavailableError

    state.acquire(adopt_detached=True)
    stopped = stop_recorded(state)
    try:
        client = engine.connect()
    except EnvironmentUnavailableError as exc:
        stopped.append(f"(containers not removed: {exc})")
    else:
        stopped += remove(client, state.name)
        client.close()
    state.remove()
    return stopped
