"""The labels every container, network and volume of the docker provider carries.

They name the cluster and the run that made a resource and the process that owns it, so
``edgebench down NAME`` finds a cluster's resources and the reaper
(:mod:`bench.distros.docker.reaper`) removes those whose owner is gone, even after SIGKILL.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from bench.procs import pid_alive

PREFIX = "io.edgebench"
CLUSTER = f"{PREFIX}.cluster"
RUN_ID = f"{PREFIX}.run-id"
OWNER_PID = f"{PREFIX}.owner-pid"
OWNER_HOST = f"{PREFIX}.owner-host"
ROLE = f"{PREFIX}.role"  # server, agent, network, ...
#: every resource edgebench creates has this label (the filter of ``docker ps -a``)
MANAGED = f"{PREFIX}.managed"


#: the owner of a cluster ``edgebench up`` left running: only ``edgebench down`` removes it
DETACHED = "detached"


def labels(
    cluster: str, run_id: str, role: str, owner_pid: int | None = None, detached: bool = False
) -> dict[str, str]:
    """The labels of one resource of ``cluster`` made by run ``run_id``, owned by this process
    (or ``owner_pid``) on this machine, or by nobody (``detached``)."""
    owner = DETACHED if detached else str(owner_pid if owner_pid is not None else os.getpid())
    return {
        MANAGED: "true",
        CLUSTER: cluster,
        RUN_ID: run_id,
        ROLE: role,
        OWNER_PID: owner,
        OWNER_HOST: socket.gethostname(),
    }


def cluster_filter(cluster: str | None = None) -> dict[str, list[str]]:
    """A docker SDK ``filters`` argument selecting edgebench's resources (of ``cluster``)."""
    wanted = [f"{MANAGED}=true"]
    if cluster is not None:
        wanted.append(f"{CLUSTER}={cluster}")
    return {"label": wanted}


def owner_gone(resource_labels: Mapping[str, str], alive: set[int] | None = None) -> bool:
    """Whether the process that owns a resource with these labels no longer runs here.

    A resource made on another machine (an engine shared over TCP) is never ours to judge;
    ``alive`` (for tests) replaces the check of ``/proc``.
    """
    if resource_labels.get(OWNER_HOST) != socket.gethostname():
        return False
    if resource_labels.get(OWNER_PID) == DETACHED:
        return False
    try:
        pid = int(resource_labels.get(OWNER_PID, ""))
    except ValueError:
        return True  # labelled by edgebench but with no owner: nobody will remove it
    if alive is not None:
        return pid not in alive
    return not pid_alive(pid)
