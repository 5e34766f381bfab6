"""Names, addresses and state files of edgebench's network namespaces.

Everything edgebench creates for a node is recognisable by name (``eb-`` namespaces, ``ebh``
host-side and ``ebn`` node-side veths, ``ebi``/``ebp`` ifb devices, ``EDGEBENCH`` chains;
the traffic counters' ``EBT-<pid>-<n>`` chains are named in :mod:`bench.observe.traffic`) and
recorded in a state file ``$EDGEBENCH_HOME/netns/<namespace>.json`` naming the cluster, the
node and the owning process, so a reaper can remove what a dead harness left behind.

Addresses come from 10.254.0.0/16, which edgebench owns: slot ``s`` is the /30
``10.254.0.0 + 4s``, the host side ``.1``, the node ``.2``. Slots are allocated under a file
lock, skipping any address already configured on the host.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.build.tools import edgebench_home
from bench.errors import ClusterError

NETWORK = ipaddress.IPv4Network("10.254.0.0/16")
NS_PREFIX = "eb-"
VETH_HOST_PREFIX = "ebh"
VETH_NODE_PREFIX = "ebn"
#: prefixes of every link edgebench may create (veths, the kernel link's ifb, the netem probe)
LINK_PREFIXES = ("ebh", "ebn", "ebi", "ebp")
IFNAMSIZ = 15
_SLOTS = NETWORK.num_addresses // 4


def state_dir() -> Path:
    return edgebench_home() / "netns"


def cluster_tag(cluster: str) -> str:
    """Six hex digits naming a cluster inside interface names (15 characters at most)."""
    return hashlib.sha256(cluster.encode()).hexdigest()[:6]


def process_start(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie is gone for our purposes
    return int(fields[19])


@dataclass(frozen=True)
class NamespaceSpec:
    """One node's namespace: names, addresses and owner (the content of its state file)."""

    cluster: str
    node: str
    index: int
    slot: int
    owner_pid: int
    owner_start: int | None
    created_at: str

    @property
    def tag(self) -> str:
        return cluster_tag(self.cluster)

    @property
    def name(self) -> str:
        return f"{NS_PREFIX}{self.tag}-{self.index}"

    @property
    def veth_host(self) -> str:
        return f"{VETH_HOST_PREFIX}{self.tag}{self.index}"

    @property
    def veth_node(self) -> str:
        return f"{VETH_NODE_PREFIX}{self.tag}{self.index}"

    @property
    def ifb(self) -> str:
        return f"ebi{self.tag}{self.index}"

    @property
    def host_addr(self) -> str:
        return str(NETWORK.network_address + 4 * self.slot + 1)

    @property
    def node_addr(self) -> str:
        return str(NETWORK.network_address + 4 * self.slot + 2)

    @property
    def hostname(self) -> str:
        """The node name made a valid hostname (letters, digits, dashes; 63 at most)."""
        name = re.sub(r"[^A-Za-z0-9-]+", "-", self.node).strip("-")[:63]
        return name or self.name

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.name}.json"

    def owner_alive(self) -> bool:
        start = process_start(self.owner_pid)
        return start is not None and (self.owner_start is None or start == self.owner_start)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        data = asdict(self) | {
            "namespace": self.name,
            "veth_host": self.veth_host,
            "veth_node": self.veth_node,
            "host_addr": self.host_addr,
            "node_addr": self.node_addr,
        }
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> NamespaceSpec | None:
        try:
            data = json.loads(path.read_text())
            return cls(
                cluster=str(data["cluster"]),
                node=str(data["node"]),
                index=int(data["index"]),
                slot=int(data["slot"]),
                owner_pid=int(data["owner_pid"]),
                owner_start=None if data["owner_start"] is None else int(data["owner_start"]),
                created_at=str(data["created_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def all_specs() -> list[NamespaceSpec]:
    """Every namespace recorded in the state directory."""
    folder = state_dir()
    if not folder.is_dir():
        return []
    specs = (NamespaceSpec.load(p) for p in sorted(folder.glob(f"{NS_PREFIX}*.json")))
    return [s for s in specs if s is not None]


def _lock_path() -> Path:
    # One lock for the whole machine (not per EDGEBENCH_HOME): slots are host addresses.
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK):
        return run_lock / "edgebench-netns.lock"
    state_dir().mkdir(parents=True, exist_ok=True)
    return state_dir() / ".lock"


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Held while a namespace is allocated and its host side configured (machine-wide)."""
    with open(_lock_path(), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _host_addresses() -> set[ipaddress.IPv4Address]:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    found = set()
    for match in re.finditer(r"\binet (\d+\.\d+\.\d+\.\d+)/", out):
        found.add(ipaddress.IPv4Address(match.group(1)))
    return found


def _host_namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def allocate(cluster: str, node: str, owner_pid: int) -> NamespaceSpec:
    """Reserve names and a /30 for ``node`` of ``cluster`` and write its state file.

    Call it holding :func:`locked` until the host side of the veth carries its address, so
    a concurrent allocation (even under another ``EDGEBENCH_HOME``) sees it as taken.
    """
    if not cluster or not node:
        raise ClusterError("a node namespace needs a cluster name and a node name")
    specs = all_specs()
    tag = cluster_tag(cluster)
    for spec in specs:
        if spec.tag == tag and spec.cluster != cluster:
            raise ClusterError(
                f"cluster name {cluster!r} hashes like the running cluster "
                f"{spec.cluster!r} ({tag}); choose another --cluster-name"
            )
        if spec.cluster == cluster and spec.node == node:
            raise ClusterError(
                f"node {node} of cluster {cluster} already has namespace {spec.name} "
                f"(owner pid {spec.owner_pid}); remove it first "
                "(`python -m bench.netns --cleanup-orphans` reaps dead owners)"
            )
    existing = _host_namespaces()
    indexes = {s.index for s in specs if s.tag == tag}
    index = next(
        i
        for i in range(len(indexes) + len(existing) + 1)
        if i not in indexes and f"{NS_PREFIX}{tag}-{i}" not in existing
    )
    if len(f"{VETH_HOST_PREFIX}{tag}{index}") > IFNAMSIZ:
        raise ClusterError(f"cluster {cluster} has too many node namespaces ({index})")
    used = {s.slot for s in specs}
    taken = _host_addresses()
    for slot in range(_SLOTS):
        base = NETWORK.network_address + 4 * slot
        if slot in used or any(base + i in taken for i in range(4)):
            continue
        break
    else:
        raise ClusterError(f"no free /30 left in {NETWORK} for node namespaces")
    spec = NamespaceSpec(
        cluster=cluster,
        node=node,
        index=index,
        slot=slot,
        owner_pid=owner_pid,
        owner_start=process_start(owner_pid),
        created_at=datetime.now(UTC).isoformat(timespec="microseconds"),
    )
    spec.save()
    return spec


def release(spec: NamespaceSpec) -> None:
    with contextlib.suppress(OSError):
        spec.path.unlink()
