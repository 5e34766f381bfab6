"""Test helper: what ``docker ps -a``, ``docker network ls`` and ``docker volume ls`` list as
labelled with a cluster."""

from __future__ import annotations

import subprocess

from bench.distros.docker import labels


def leftovers(cluster: str) -> list[str]:
    """Everything labelled with ``cluster``, as ``"<kind> <id>"``."""
    found = []
    for kind in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
        out = subprocess.run(
            ["docker", *kind, "-q", "--filter", f"label={labels.CLUSTER}={cluster}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        found += [f"{kind[0]} {x}" for x in out]
    return found
