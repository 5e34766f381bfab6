"""A :class:`~bench.runner.Runner` into a container's network namespace: this machine's
binaries (iptables, tc, ip, sh) run with ``nsenter -t <pid> -n``, so kernel faults need nothing
installed in the image. The pid is looked up at each call: a restarted container has a new
init process (and a new, empty namespace)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.distros.docker import engine
from bench.errors import ClusterError
from bench.runner import Completed, run_local

if TYPE_CHECKING:
    from docker.models.containers import Container


@dataclass(frozen=True)
class ContainerNetns:
    container: Container

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> Completed:
        try:
            pid = engine.init_pid(self.container)
        except ClusterError as exc:
            return Completed(tuple(argv), 125, "", str(exc))
        return run_local(["nsenter", "-t", str(pid), "-n", *argv], stdin)
