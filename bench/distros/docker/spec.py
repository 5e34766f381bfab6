"""What one container should be, as plain data: built by pure functions (tested without an
engine) and turned into Docker SDK arguments in one place.

Security is the one thing that depends on the machine. A user's Docker normally allows
``--privileged`` (what k3s in containers is made for); some hosts refuse it because their
bounding set lacks ``CAP_SYS_RESOURCE``, and there the same container runs with every other
capability and no seccomp filter. :data:`SECURITY_MODES` is the order to try them in; the mode
used is written to ``run.json``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Security:
    """How much of the host a container may touch."""

    name: str
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()

    def run_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"privileged": self.privileged}
        if self.cap_add:
            kwargs["cap_add"] = list(self.cap_add)
        if self.cap_drop:
            kwargs["cap_drop"] = list(self.cap_drop)
        if self.security_opt:
            kwargs["security_opt"] = list(self.security_opt)
        return kwargs


PRIVILEGED = Security("privileged", privileged=True)
#: ``--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined``
ALL_BUT_SYS_RESOURCE = Security(
    "all-caps-but-sys-resource",
    cap_add=("ALL",),
    cap_drop=("SYS_RESOURCE",),
    security_opt=("seccomp=unconfined",),
)
#: privileged first; where the engine refuses it, the fallback
SECURITY_MODES: tuple[Security, ...] = (PRIVILEGED, ALL_BUT_SYS_RESOURCE)
#: what an engine says when the host cannot grant a mode (try the next one)
_REFUSALS = ("operation not permitted", "permission denied", "unable to apply caps")


def refused(error: str) -> bool:
    """Whether an engine error creating or starting a container is a refusal of its security
    mode (then the next mode is tried), rather than another failure."""
    text = error.lower()
    return any(r in text for r in _REFUSALS)


@dataclass(frozen=True)
class ContainerSpec:
    """One container: everything ``docker run`` is told, without the security mode."""

    name: str
    image: str
    command: tuple[str, ...]
    labels: Mapping[str, str]
    network: str
    ip: str | None = None
    hostname: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    #: path in the container -> mount options (``--tmpfs /run``)
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    #: host path -> (path in the container, "ro" or "rw")
    binds: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: named volume -> path in the container
    volumes: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] | None = None

    def run_kwargs(self, security: Security) -> dict[str, Any]:
        """Keyword arguments of ``client.containers.create`` (the network is connected with
        its address separately)."""
        volumes: dict[str, dict[str, str]] = {
            host: {"bind": path, "mode": mode} for host, (path, mode) in self.binds.items()
        }
        volumes.update({vol: {"bind": path, "mode": "rw"} for vol, path in self.volumes.items()})
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": list(self.command),
            "name": self.name,
            "hostname": self.hostname or self.name,
            "labels": dict(self.labels),
            "environment": dict(self.environment),
            "tmpfs": dict(self.tmpfs),
            "volumes": volumes,
            "detach": True,
            **security.run_kwargs(),
        }
        if self.entrypoint is not None:
            kwargs["entrypoint"] = list(self.entrypoint)
        return kwargs


def host_address(subnet: str, index: int) -> str:
    """The ``index``-th address of ``subnet`` (1 is the gateway by Docker's convention)."""
    net = ipaddress.ip_network(subnet)
    if not 0 < index < net.num_addresses - 1:
        raise ValueError(f"{subnet} has no host number {index}")
    return str(net.network_address + index)
