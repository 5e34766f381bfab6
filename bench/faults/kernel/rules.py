"""What the kernel backend installs, as text: iptables-restore payloads and shell scripts.

Pure functions of the link's configuration and its active faults, so the exact rules are
tested without a kernel and documented in docs/kernel-faults.md. Two chains per link,
``<CHAIN>-IN`` (jumped from INPUT: control plane to node) and ``<CHAIN>-OUT`` (from OUTPUT:
node to control plane); every rule matches an :class:`Endpoint`, so nothing else (an SSH
session, DNS, ...) is touched. Shaping uses htb with handle ``eb0:`` on the device (egress)
and on an ifb device the ingress traffic to the endpoints is redirected to.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bench.errors import FaultError

Protocol = Literal["tcp", "udp"]
#: the htb handle edgebench's shaping qdiscs carry (recognised, and removed, by teardown)
TC_HANDLE = "eb0"
_MULTIPORT_MAX = 15


@dataclass(frozen=True)
class Endpoint:
    """A control-plane address (or CIDR) and optionally its ports (``protocol`` then applies).

    Without ports every packet to and from the address is in scope, whatever the protocol.
    """

    address: str
    ports: tuple[int, ...] = ()
    protocol: Protocol = "tcp"

    def __post_init__(self) -> None:
        try:
            net = ipaddress.ip_network(self.address, strict=False)
        except ValueError:
            raise FaultError(
                f"endpoint address {self.address!r} is not an IPv4 address or CIDR"
            ) from None
        if net.version != 4:
            raise FaultError(f"endpoint {self.address!r}: the kernel backend does IPv4 only")
        for port in self.ports:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise FaultError(f"endpoint {self.address!r}: port {port!r} is not 1..65535")
        if self.protocol not in ("tcp", "udp"):
            raise FaultError(f"endpoint protocol must be tcp or udp, got {self.protocol!r}")

    @property
    def cidr(self) -> str:
        return str(ipaddress.ip_network(self.address, strict=False))

    def matches(self, direction: Literal["in", "out"]) -> list[str]:
        """iptables match arguments, one string per rule needed (ports chunked by 15)."""
        addr = f"-s {self.cidr}" if direction == "in" else f"-d {self.cidr}"
        if not self.ports:
            return [addr]
        flag = "--sports" if direction == "in" else "--dports"
        chunks = [
            self.ports[i : i + _MULTIPORT_MAX] for i in range(0, len(self.ports), _MULTIPORT_MAX)
        ]
        return [
            f"{addr} -p {self.protocol} -m multiport {flag} {','.join(map(str, c))}" for c in chunks
        ]

    def u32(self, direction: Literal["in", "out"]) -> list[str]:
        """tc u32 match arguments, one per filter needed."""
        where = "src" if direction == "in" else "dst"
        port_where = "sport" if direction == "in" else "dport"
        base = f"match ip {where} {self.cidr}"
        if not self.ports:
            return [base]
        proto = 6 if self.protocol == "tcp" else 17
        return [
            f"{base} match ip protocol {proto} 0xff match ip {port_where} {p} 0xffff"
            for p in self.ports
        ]


def listener_endpoints(addresses: Iterable[str]) -> list[Endpoint]:
    """``host:port`` listeners (a node's link, e.g. its Toxiproxy listeners) as endpoints,
    one per host with its ports: what a cut of that link is scoped to."""
    by_host: dict[str, list[int]] = {}
    for address in addresses:
        host, _, port = address.rpartition(":")
        by_host.setdefault(host, []).append(int(port))
    return [Endpoint(host, tuple(sorted(ports))) for host, ports in sorted(by_host.items())]


@dataclass(frozen=True)
class Shape:
    """Shaping of one direction: a rate cap (bytes/s) and/or a netem delay."""

    rate_bps: float | None = None
    delay_ms: float | None = None
    jitter_ms: float = 0.0


@dataclass(frozen=True)
class LinkState:
    """Everything the backend has in force on one link right now."""

    cut: Literal["blackhole", "reset"] | None = None
    #: (probability 0..1, "in"|"out") per active loss rule
    losses: tuple[tuple[float, Literal["in", "out"]], ...] = ()
    egress: Shape = field(default_factory=Shape)
    ingress: Shape = field(default_factory=Shape)

    @property
    def shaped(self) -> bool:
        return self.egress != Shape() or self.ingress != Shape()

    @property
    def empty(self) -> bool:
        return self.cut is None and not self.losses and not self.shaped


@dataclass(frozen=True)
class LinkConfig:
    """Where a link's rules go: chain prefix, device, ifb name, iptables binary, endpoints."""

    chain: str
    dev: str
    ifb: str
    iptables: str
    endpoints: tuple[Endpoint, ...]

    @property
    def chain_in(self) -> str:
        return f"{self.chain}-IN"

    @property
    def chain_out(self) -> str:
        return f"{self.chain}-OUT"


def iptables_payload(cfg: LinkConfig, state: LinkState, jumps: bool = False) -> str:
    """The ``iptables-restore --noflush`` input that makes both chains exactly ``state``.

    Declaring a chain creates it, or flushes it when it exists; ``jumps`` also inserts the
    jumps from INPUT and OUTPUT (once per link: the teardown removes every copy).
    """
    lines = ["*filter", f":{cfg.chain_in} - [0:0]", f":{cfg.chain_out} - [0:0]"]
    if jumps:
        lines += [f"-I INPUT 1 -j {cfg.chain_in}", f"-I OUTPUT 1 -j {cfg.chain_out}"]
    for direction, chain in (("in", cfg.chain_in), ("out", cfg.chain_out)):
        matches = [m for e in cfg.endpoints for m in e.matches(direction)]  # type: ignore[arg-type]
        if state.cut == "blackhole":
            lines += [f"-A {chain} {m} -j DROP" for m in matches]
        elif state.cut == "reset":
            for m in matches:
                if " -p udp" in m:
                    lines.append(f"-A {chain} {m} -j REJECT --reject-with icmp-port-unreachable")
                    continue
                tcp = m if " -p tcp" in m else f"{m} -p tcp"
                # RSTs pass, so the peer of a socket killed with `ss -K` learns it is closed.
                lines.append(f"-A {chain} {tcp} --tcp-flags RST RST -j RETURN")
                lines.append(f"-A {chain} {tcp} -j REJECT --reject-with tcp-reset")
                if " -p tcp" not in m:
                    lines.append(f"-A {chain} {m} -j REJECT --reject-with icmp-port-unreachable")
        for probability, where in state.losses:
            if where == direction:
                lines += [
                    f"-A {chain} {m} -m statistic --mode random --probability {probability:.6f}"
                    " -j DROP"
                    for m in matches
                ]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def teardown_script(cfg: LinkConfig) -> str:
    """Remove every rule, chain, qdisc and ifb of the link; safe to run twice, never fails.

    Only qdiscs edgebench installed are removed: the root qdisc when its handle is ours, the
    ingress qdisc when it redirects to our ifb device.
    """
    ipt = shlex.quote(cfg.iptables)
    dev, ifb = shlex.quote(cfg.dev), shlex.quote(cfg.ifb)
    lines = []
    for chain, parent in ((cfg.chain_in, "INPUT"), (cfg.chain_out, "OUTPUT")):
        lines += [
            f"while {ipt} -w -D {parent} -j {chain} 2>/dev/null; do :; done",
            f"{ipt} -w -F {chain} 2>/dev/null",
            f"{ipt} -w -X {chain} 2>/dev/null",
        ]
    lines += [
        f"tc qdisc show dev {dev} root 2>/dev/null | grep -q ' {TC_HANDLE}: '"
        f" && tc qdisc del dev {dev} root",
        f"tc filter show dev {dev} parent ffff: 2>/dev/null | grep -q {ifb}"
        f" && tc qdisc del dev {dev} ingress",
        f"ip link del {ifb} 2>/dev/null",
        "true",
    ]
    return "\n".join(lines)


def _rate(bytes_per_s: float) -> str:
    return f"{max(8, round(bytes_per_s * 8))}bit"


def burst_bytes(bytes_per_s: float | None) -> int:
    """The token bucket of a bandwidth cap: at least two full frames, otherwise 20 ms worth
    of the rate; that many bytes pass at line rate before the cap bites."""
    return max(3028, round((bytes_per_s or 0) / 50))


def _shape_commands(dev: str, shape: Shape, u32: Iterable[str] | None) -> list[str]:
    """tc -batch lines: htb root ``eb0:``, one class for the endpoints, netem leaf if delayed."""
    h = TC_HANDLE
    rate = shape.rate_bps if shape.rate_bps is not None else 1.25e9  # 10 Gbit/s: no cap
    default = "" if u32 is not None else " default 10"
    cmds = [
        f"qdisc add dev {dev} root handle {h}: htb{default}",
        f"class add dev {dev} parent {h}: classid {h}:10 htb rate {_rate(rate)} "
        f"ceil {_rate(rate)} burst {burst_bytes(rate)} cburst {burst_bytes(rate)}",
    ]
    if shape.delay_ms is not None:
        jitter = f" {shape.jitter_ms:g}ms" if shape.jitter_ms else ""
        cmds.append(
            f"qdisc add dev {dev} parent {h}:10 handle eb1: netem delay {shape.delay_ms:g}ms"
            f"{jitter} limit 10000"
        )
    for match in u32 or ():
        cmds.append(
            f"filter add dev {dev} parent {h}: protocol ip prio 1 u32 {match} flowid {h}:10"
        )
    return cmds


def shaping_script(cfg: LinkConfig, state: LinkState) -> str:
    """Shell lines replacing the link's shaping with ``state``'s (nothing when unshaped).

    Egress (node to control plane) is shaped on the device itself, only for packets to the
    endpoints (htb default 0 sends every other packet unshaped). Ingress packets from the
    endpoints are redirected to the link's ifb device and shaped there.
    """
    dev, ifb = shlex.quote(cfg.dev), shlex.quote(cfg.ifb)
    lines = [
        f"tc qdisc show dev {dev} root 2>/dev/null | grep -q ' {TC_HANDLE}: '"
        f" && tc qdisc del dev {dev} root",
        f"tc filter show dev {dev} parent ffff: 2>/dev/null | grep -q {ifb}"
        f" && tc qdisc del dev {dev} ingress",
        f"ip link del {ifb} 2>/dev/null",
    ]
    batch: list[str] = []
    if state.egress != Shape():
        out = [m for e in cfg.endpoints for m in e.u32("out")]
        batch += _shape_commands(cfg.dev, state.egress, out)
    if state.ingress != Shape():
        lines += [f"ip link add {ifb} type ifb || exit 1", f"ip link set {ifb} up || exit 1"]
        batch.append(f"qdisc add dev {cfg.dev} handle ffff: ingress")
        for match in (m for e in cfg.endpoints for m in e.u32("in")):
            batch.append(
                f"filter add dev {cfg.dev} parent ffff: protocol ip prio 1 u32 {match} "
                f"action mirred egress redirect dev {cfg.ifb}"
            )
        batch += _shape_commands(cfg.ifb, state.ingress, None)
    if batch:
        lines.append("tc -batch - <<'EDGEBENCH_TC' || exit 1")
        lines += batch
        lines.append("EDGEBENCH_TC")
    return "\n".join(lines)


def kill_filters(endpoints: Sequence[Endpoint]) -> list[str]:
    """``ss`` filters selecting the node's TCP sockets to the endpoints (for a reset cut)."""
    out = []
    for e in endpoints:
        if e.ports and e.protocol != "tcp":
            continue
        ports = " or ".join(f"dport = :{p}" for p in e.ports)
        out.append(f"dst {e.cidr}" + (f" '( {ports} )'" if ports else ""))
    return out
