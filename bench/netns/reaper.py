"""Finding and removing what edgebench left behind: the reaper and the leak check.

:func:`cleanup_orphans` removes the namespaces whose owning process is gone (after a SIGKILL
of the harness), :func:`cleanup_orphan_chains` the traffic counters' ``EBT-<pid>-<n>`` chains
whose owner is gone (as the next :class:`~bench.observe.traffic.LinkCounters` does);
:func:`cleanup_cluster` every namespace of one cluster (``edgebench down``); :func:`leftovers`
lists anything of edgebench still on this machine (``.ci/run`` fails on it:
``python -m bench.netns --check-clean``).
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.faults.kernel.deadman import FIRING, WAITING
from bench.faults.kernel.rules import TC_HANDLE
from bench.netns.names import (
    LINK_PREFIXES,
    NS_PREFIX,
    all_specs,
    cluster_tag,
    state_dir,
)
from bench.netns.namespace import NodeNamespace
from bench.observe import traffic
from bench.runner import run_local

CHAIN_PREFIX = "EDGEBENCH"


def cleanup_orphans() -> list[str]:
    """Remove every recorded namespace whose owner process is gone; the names removed."""
    removed = []
    for spec in all_specs():
        if not spec.owner_alive():
            NodeNamespace.attach(spec).remove()
            removed.append(spec.name)
    return removed


def cleanup_orphan_chains() -> list[str]:
    """Remove the traffic counters' chains whose owner process is gone; one line each."""
    return [f"{c.backend} chain {c.name} (host)" for c in traffic.reap_chains()]


def cleanup_cluster(cluster: str) -> list[str]:
    """Remove every namespace of ``cluster`` (whoever owns it); the names removed."""
    removed = []
    for spec in all_specs():
        if spec.cluster == cluster:
            NodeNamespace.attach(spec).remove()
            removed.append(spec.name)
    return removed


def deadman_processes() -> list[str]:
    """Running dead-man timers (anywhere on this machine), one line each."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        marks = [w for w in words if w.startswith((WAITING, FIRING))]
        if marks:
            found.append(f"dead-man timer pid {proc.name} ({marks[0]})")
    return found


def leftovers(cluster: str | None = None) -> list[str]:
    """Everything of edgebench still present, one line each (empty: clean).

    Namespaces, host-side links (veth, ifb), state files and, unless ``cluster`` narrows the
    check to one cluster's namespaces and links, host iptables chains (nft and legacy: the
    kernel link's ``EDGEBENCH*`` and the traffic counters' ``EBT-<pid>-<n>``), tc qdiscs with
    edgebench's handle and dead-man timer processes.
    """
    tag = cluster_tag(cluster) if cluster is not None else ""
    found: list[str] = []
    netns = run_local(["ip", "netns", "list"]).out
    for line in netns.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NS_PREFIX + tag):
            found.append(f"namespace {name}")
    links = run_local(["ip", "-o", "link", "show"]).out
    for match in re.finditer(r"^\d+: ([^:@]+)[:@]", links, re.MULTILINE):
        name = match.group(1)
        if any(name.startswith(p + tag) for p in LINK_PREFIXES):
            found.append(f"link {name}")
    for spec in all_specs():
        if cluster is None or spec.cluster == cluster:
            found.append(f"state file {state_dir() / (spec.name + '.json')}")
    if cluster is not None:
        return found
    for binary in ("iptables-nft", "iptables-legacy"):
        result = run_local([binary, "-w", "-S"])
        for line in result.out.splitlines():
            if line.startswith(f"-N {CHAIN_PREFIX}"):
                found.append(f"{binary} chain {line.split()[1]} (host)")
    for chain in traffic.counter_chains():
        owner = "alive" if chain.owner_alive() else "gone: --cleanup-orphans removes it"
        found.append(
            f"{chain.backend} chain {chain.name} (host; traffic counters of pid "
            f"{chain.owner_pid}, {owner})"
        )
    qdiscs = run_local(["tc", "qdisc", "show"]).out
    for line in qdiscs.splitlines():
        if f" {TC_HANDLE}: " in f"{line} ":
            found.append(f"qdisc {line.strip()} (host)")
    found += deadman_processes()
    return found
