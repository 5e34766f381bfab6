"""One Docker network per cluster, in a private range only edgebench uses.

Each cluster gets a /24 of ``10.253.0.0/16`` (the netns provider uses ``10.254.0.0/16``);
the gateway (``.1``) is this machine's address on it, where the links listen. Two sessions
racing for the same /24 do not clash: the engine refuses an overlapping pool and the next
free /24 is tried.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bench.distros.docker import labels as lbl
from bench.errors import ClusterError

if TYPE_CHECKING:
    import docker
    from docker.models.networks import Network

RANGE = ipaddress.ip_network("10.253.0.0/16")
PREFIX = 24


def network_name(cluster: str) -> str:
    return f"edgebench-{cluster}"


def free_subnets(used: Iterable[str]) -> list[str]:
    """The /24s of :data:`RANGE` that overlap none of ``used`` (any size), lowest first."""
    taken = [ipaddress.ip_network(u, strict=False) for u in used]
    return [
        str(net)
        for net in RANGE.subnets(new_prefix=PREFIX)
        if not any(net.overlaps(t) for t in taken)
    ]


def _used_subnets(client: docker.DockerClient) -> list[str]:
    used = []
    for net in client.networks.list():
        for pool in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if pool.get("Subnet"):
                used.append(pool["Subnet"])
    return used


def create(
    client: docker.DockerClient, cluster: str, run_id: str, detached: bool = False
) -> Network:
    """The cluster's labelled bridge network on the first free /24."""
    import docker

    errors = []
    for subnet in free_subnets(_used_subnets(client))[:8]:
        gateway = str(ipaddress.ip_network(subnet).network_address + 1)
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=subnet, gateway=gateway)]
        )
        try:
            return client.networks.create(
                network_name(cluster),
                driver="bridge",
                ipam=ipam,
                labels=lbl.labels(cluster, run_id, "network", detached=detached),
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            errors.append(f"{subnet}: {exc}")
            if "overlap" not in str(exc).lower():
                break
    raise ClusterError(f"cannot create network {network_name(cluster)}: {'; '.join(errors)}")


def subnet_of(network: Network) -> tuple[str, str]:
    """``(subnet, gateway)`` of a network made by :func:`create`."""
    network.reload()
    pool = network.attrs["IPAM"]["Config"][0]
    return pool["Subnet"], pool["Gateway"]
