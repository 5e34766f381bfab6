"""DNAT steering of an agent container's traffic to its node's link (see
``docs/containers.md``): rules put into the container's network namespace from this machine,
then a marker that lets the agent in the container start."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bench.distros.docker import engine
from bench.distros.docker.k3s_spec import dnat_command, shell_line
from bench.errors import ClusterError

if TYPE_CHECKING:
    from docker.models.containers import Container


def steer(container: Container, rules: Sequence[list[str]], marker: str, node: str) -> None:
    """Put each of ``rules`` (iptables argv with ``-A``) into ``container``'s namespace once,
    then create ``marker`` in it (the agent waits for it)."""
    pid = engine.init_pid(container)
    for rule in rules:
        argv = dnat_command(pid, rule)
        check = [a if a != "-A" else "-C" for a in argv]
        if subprocess.run(check, capture_output=True).returncode == 0:
            continue  # already there
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise ClusterError(f"cannot steer {node}: {shell_line(argv)}: {done.stderr}")
    res = container.exec_run(["touch", marker])
    if res.exit_code != 0:
        raise ClusterError(f"cannot start the agent in {container.name}: {res.output!r}")
