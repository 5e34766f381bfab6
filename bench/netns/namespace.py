"""One edge node's network namespace: a veth pair to the host, nothing else reachable.

    ns = NodeNamespace.create("mycluster", "edge-1")
    proc = subprocess.Popen(ns.exec_argv(["kwok", ...]))  # the agent, inside, own hostname
    ns.run(["ss", "-tn"])                                  # any command inside
    link = ns.kernel_link([6443])                          # kernel faults on its link
    ns.remove()                                            # idempotent, never raises

Layout: namespace ``eb-<tag>-<i>``, veth ``ebh<tag><i>`` (host, ``10.254.x.y+1/30``) to
``ebn<tag><i>`` (node, ``+2``), loopback up, IPv6 off, a default route via the host side and
a guard chain (``EDGEBENCH-GUARD`` on OUTPUT) rejecting everything except loopback and the
host-side address (optionally only some of its ports). The host side is where the node's
links listen; the host's own addresses and loopback are not reachable from inside.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from bench.errors import ClusterError, EnvironmentUnavailableError, UsageError
from bench.faults.kernel.link import IPTABLES_CANDIDATES, KernelLink
from bench.faults.kernel.rules import Endpoint, Protocol
from bench.netns.names import NamespaceSpec, all_specs, allocate, locked, release
from bench.runner import Completed, run_local

log = logging.getLogger(__name__)

GUARD_CHAIN = "EDGEBENCH-GUARD"
_CAP_NET_ADMIN, _CAP_SYS_ADMIN = 12, 21


def local_iptables() -> str | None:
    """The iptables binary namespaces use here (``EDGEBENCH_IPTABLES`` overrides)."""
    wanted = os.environ.get("EDGEBENCH_IPTABLES")
    for name in (wanted,) if wanted else IPTABLES_CANDIDATES:
        if shutil.which(name) and shutil.which(f"{name}-restore"):
            return name
    return None


def unavailable_reason() -> str | None:
    """Why node namespaces cannot be made on this machine, or None when they can."""
    try:
        with open("/proc/self/status") as f:
            status = f.read()
        caps = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("CapEff")), 16)
    except (OSError, StopIteration, ValueError):
        caps = 0
    missing_caps = [
        name
        for bit, name in ((_CAP_NET_ADMIN, "CAP_NET_ADMIN"), (_CAP_SYS_ADMIN, "CAP_SYS_ADMIN"))
        if not caps >> bit & 1
    ]
    if missing_caps:
        return (
            f"network namespaces need root (missing {', '.join(missing_caps)}); run as root, "
            "or use --no-netns to keep every node on the host's loopback"
        )
    tools = [t for t in ("ip", "tc", "ss", "setsid") if not shutil.which(t)]
    if local_iptables() is None:
        tools.append("iptables (iptables-nft or iptables-legacy, with -restore)")
    if tools:
        return (
            f"network namespaces need {', '.join(tools)} (Debian: apt-get install iproute2 "
            "iptables util-linux); install them, or use --no-netns"
        )
    return None


def require_netns() -> None:
    """:class:`EnvironmentUnavailableError` saying what is missing unless namespaces work."""
    reason = unavailable_reason()
    if reason is not None:
        raise EnvironmentUnavailableError(reason)


def guard_payload(spec: NamespaceSpec, allow_ports: Sequence[int] | None) -> str:
    """iptables-restore input: only loopback and the host side (its ``allow_ports``) go out."""
    host = spec.host_addr
    allowed = (
        [f"-A {GUARD_CHAIN} -d {host}/32 -j RETURN"]
        if allow_ports is None
        else [
            f"-A {GUARD_CHAIN} -d {host}/32 -p tcp -m multiport --dports "
            f"{','.join(map(str, allow_ports[i : i + 15]))} -j RETURN"
            for i in range(0, len(allow_ports), 15)
        ]
        + [f"-A {GUARD_CHAIN} -d {host}/32 -p icmp -j RETURN"]
    )
    return "\n".join(
        [
            "*filter",
            f":{GUARD_CHAIN} - [0:0]",
            f"-A {GUARD_CHAIN} -o lo -j RETURN",
            # replies to connections the host opened into the node
            f"-A {GUARD_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -d {host}/32 -j RETURN",
            *allowed,
            f"-A {GUARD_CHAIN} -p tcp -j REJECT --reject-with tcp-reset",
            f"-A {GUARD_CHAIN} -j REJECT --reject-with icmp-net-unreachable",
            "COMMIT",
            "",
        ]
    )


class NodeNamespace:
    """A node's namespace, made by :meth:`create` (or re-attached with :meth:`attach`)."""

    def __init__(self, spec: NamespaceSpec, iptables: str | None = None) -> None:
        self.spec = spec
        self.iptables = iptables or local_iptables() or "iptables"

    def __repr__(self) -> str:
        s = self.spec
        return f"<NodeNamespace {s.name} {s.cluster}/{s.node} {s.node_addr}<->{s.host_addr}>"

    # --- names ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def host_addr(self) -> str:
        """The host side of the veth: where the node's links listen."""
        return self.spec.host_addr

    @property
    def node_addr(self) -> str:
        return self.spec.node_addr

    @property
    def veth_host(self) -> str:
        return self.spec.veth_host

    @property
    def veth_node(self) -> str:
        return self.spec.veth_node

    # --- life ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        cluster: str,
        node: str,
        owner_pid: int | None = None,
        allow_ports: Sequence[int] | None = None,
    ) -> NodeNamespace:
        """Make the namespace of ``node`` in ``cluster``.

        ``owner_pid`` (default: this process) is the process whose death makes the namespace
        an orphan for :func:`~bench.netns.reaper.cleanup_orphans`; a detached cluster passes
        a process that lives as long as the cluster. ``allow_ports`` restricts what of the
        host side the node may reach (TCP ports; None: every port of the host-side address).
        """
        require_netns()
        with locked():
            spec = allocate(cluster, node, os.getpid() if owner_pid is None else owner_pid)
            ns = cls(spec)
            try:
                ns._build_host()
            except BaseException:
                ns.remove()
                raise
        try:
            ns._build_inside(allow_ports)
        except BaseException:
            ns.remove()
            raise
        log.info("namespace up: %r", ns)
        return ns

    def _build_host(self) -> None:
        s = self.spec
        host = "\n".join(
            [
                f"netns add {s.name}",
                f"link add {s.veth_host} type veth peer name {s.veth_node} netns {s.name}",
                f"addr add {s.host_addr}/30 dev {s.veth_host}",
                f"link set {s.veth_host} up",
                "",
            ]
        )
        self._check(run_local(["ip", "-batch", "-"], host), "creating")

    def _build_inside(self, allow_ports: Sequence[int] | None) -> None:
        s = self.spec
        ipt = shlex.quote(self.iptables)
        inside = "\n".join(
            [
                "set -e",
                "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6",
                "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
                "ip link set lo up",
                f"ip addr add {s.node_addr}/30 dev {s.veth_node}",
                f"ip link set {s.veth_node} up",
                f"ip route add default via {s.host_addr}",
                f"{ipt}-restore -w --noflush <<'EDGEBENCH_IPT'",
                guard_payload(s, allow_ports).rstrip("\n"),
                "EDGEBENCH_IPT",
                f"{ipt} -w -A OUTPUT -j {GUARD_CHAIN}",
            ]
        )
        self._check(self.run(["sh", "-c", inside]), "configuring")

    def allow_ports(self, ports: Sequence[int] | None) -> None:
        """Replace what the node may reach on the host side: these TCP ports (None: all).

        For links whose listeners are known only after the namespace exists.
        """
        ipt = shlex.quote(self.iptables)
        script = "\n".join(
            [
                f"{ipt}-restore -w --noflush <<'EDGEBENCH_IPT'",
                guard_payload(self.spec, ports).rstrip("\n"),
                "EDGEBENCH_IPT",
            ]
        )
        result = self.run(["sh", "-c", script])
        if not result.ok:
            raise ClusterError(f"namespace {self.name}: allowing ports failed: {result.explain()}")

    def _check(self, result: Completed, what: str) -> None:
        if not result.ok:
            raise ClusterError(f"{what} namespace {self.name} failed: {result.explain()}")

    @classmethod
    def find(cls, cluster: str, node: str) -> NodeNamespace:
        """The namespace of ``node`` in ``cluster`` from the state files (``edgebench exec``).

        :class:`UsageError` naming the valid clusters or nodes when there is none.
        """
        specs = all_specs()
        nodes = sorted(s.node for s in specs if s.cluster == cluster)
        for spec in specs:
            if spec.cluster == cluster and spec.node == node:
                return cls(spec)
        if not nodes:
            clusters = sorted({s.cluster for s in specs})
            raise UsageError(
                f"no cluster {cluster!r} with node namespaces; "
                f"clusters with namespaces: {', '.join(clusters) or 'none'}"
            )
        raise UsageError(f"cluster {cluster} has no node {node!r}; its nodes: {', '.join(nodes)}")

    @classmethod
    def attach(cls, spec: NamespaceSpec) -> NodeNamespace:
        """A handle on an existing namespace from its state file (``edgebench down``)."""
        return cls(spec)

    def exists(self) -> bool:
        return os.path.exists(f"/run/netns/{self.name}")

    def remove(self) -> None:
        """Kill what runs inside, delete the veth and the namespace, drop the state file.

        Idempotent; never raises (a failure is logged and the leak check will report it).
        """
        s = self.spec
        script = "\n".join(
            [
                f"for p in $(ip netns pids {s.name} 2>/dev/null); do",
                "  kill -KILL $p 2>/dev/null",
                "done",
                f"ip link del {s.veth_host} 2>/dev/null",
                f"ip netns del {s.name} 2>/dev/null",
                "true",
            ]
        )
        try:
            result = run_local(["sh", "-c", script])
            if not result.ok:
                log.warning("removing namespace %s: %s", s.name, result.explain())
        except Exception as e:
            log.warning("removing namespace %s failed: %s", s.name, e)
        release(s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    # --- inside ---------------------------------------------------------------------------

    def exec_argv(self, argv: Sequence[str], hostname: bool = True) -> list[str]:
        """``argv`` prefixed to run inside the namespace, with the node's hostname (own UTS).

        ``ip netns exec``, ``unshare`` and ``sh`` all exec: the pid of the process started
        with this argv is the pid of ``argv`` itself.
        """
        prefix = ["ip", "netns", "exec", self.name]
        if not hostname:
            return [*prefix, *argv]
        return [
            *prefix,
            "unshare",
            "--uts",
            "--",
            "sh",
            "-c",
            'hostname "$0" && exec "$@"',
            self.spec.hostname,
            *argv,
        ]

    def run(self, argv: Sequence[str], stdin: str | None = None) -> Completed:
        """Run ``argv`` inside the namespace to completion (a :class:`~bench.runner.Runner`)."""
        return run_local(["ip", "netns", "exec", self.name, *argv], stdin)

    def endpoint(self, ports: Sequence[int] = (), protocol: Protocol = "tcp") -> Endpoint:
        """The host side (and ``ports`` on it) as a kernel-link endpoint."""
        return Endpoint(self.host_addr, tuple(ports), protocol)

    def kernel_link(
        self, ports: Sequence[int] = (), protocol: Protocol = "tcp", **kwargs: Any
    ) -> KernelLink:
        """A :class:`KernelLink` on this node's veth, scoped to the host side's ``ports``
        (every packet to and from the host side without ports); ``kwargs`` go to KernelLink.
        """
        kwargs.setdefault("ifb", self.spec.ifb)
        endpoint = self.endpoint(ports, protocol)
        return KernelLink(self.spec.node, self.run, [endpoint], self.veth_node, **kwargs)
