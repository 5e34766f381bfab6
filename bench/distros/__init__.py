"""The distro driver registry: ``(distro, provider)`` to a driver class, imported lazily.

Only drivers that exist are listed. Importing a driver module happens when it is chosen, so a
driver's heavy dependencies cost nothing to users of another. A target may also name a function
of no arguments that returns the class: a driver chosen by what this machine has.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from bench.errors import UnknownDistroError

if TYPE_CHECKING:
    from bench.distros.base import Distro

# (distro, provider) -> "module:Class"
DRIVERS: dict[tuple[str, str], str] = {
    ("kwok", "local"): "bench.distros.local.kwok:KwokLocal",
    ("vanilla", "local"): "bench.distros.local.vanilla:VanillaLocal",
    ("kubeedge", "local"): "bench.distros.local.kubeedge:KubeEdgeLocal",
    ("k3s", "remote"): "bench.distros.remote.drivers:K3sRemote",
    ("kubeedge", "remote"): "bench.distros.remote.drivers:KubeEdgeRemote",
    ("starlingx", "remote"): "bench.distros.remote.drivers:StarlingXRemote",
    ("vanilla", "remote"): "bench.distros.remote.drivers:VanillaRemote",
    ("k3s", "docker"): "bench.distros.docker.k3s:K3sDocker",
    ("vanilla", "docker"): "bench.distros.docker.vanilla:VanillaDocker",
    ("kwok", "docker"): "bench.distros.docker.kwok:KwokDocker",
    # upstream images when present, else the stand-in (hollowedge): see that module
    ("kubeedge", "docker"): "bench.distros.docker.kubeedge_recipe:choose_driver",
}
DEFAULT_PROVIDER: dict[str, str] = {
    "kwok": "local",
    "vanilla": "local",
    "kubeedge": "local",
    "k3s": "docker",
    "starlingx": "remote",
}
DEFAULT_DISTRO = "kwok"


def distro_names() -> list[str]:
    return sorted({d for d, _ in DRIVERS})


def provider_for(distro: str, provider: str | None) -> str:
    """The provider to use for ``distro``: the given one, or the distro's default."""
    if distro not in DEFAULT_PROVIDER:
        raise UnknownDistroError(
            f"unknown distro {distro!r}; valid distros: {', '.join(distro_names())}"
        )
    return provider or DEFAULT_PROVIDER[distro]


def driver_class(distro: str, provider: str | None = None) -> type[Distro]:
    """The driver class for ``distro`` on ``provider`` (its default provider when None)."""
    provider = provider_for(distro, provider)
    try:
        target = DRIVERS[(distro, provider)]
    except KeyError:
        providers = sorted(p for d, p in DRIVERS if d == distro)
        raise UnknownDistroError(
            f"distro {distro!r} has no provider {provider!r}; valid providers: "
            f"{', '.join(providers)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    found = getattr(importlib.import_module(module_name), class_name)
    # a function instead of a class chooses the driver by what this machine has
    cls: type[Distro] = found if isinstance(found, type) else found()
    return cls
