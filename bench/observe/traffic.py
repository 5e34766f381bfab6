"""Bytes on each edge node's link, from the kernel's own packet counters (iptables).

Where an agent dials its link on this machine's loopback (the local provider without
namespaces), every packet between the agent and its link's proxy leaves through the ``OUTPUT``
chain once; where it dials the host side of its namespace, the agent's packets arrive through
``INPUT`` and the answers leave through ``OUTPUT``. A
:class:`LinkCounters` adds one chain with two counting rules per listen port of each link
(to the port: up, what the agent sends; from the port: down, what it receives) and reads
their byte counters whenever asked: live, exact and without touching a connection. The
counts are IP packets: payload plus 20 bytes of IPv4 and 20 to 60 of TCP header per packet
(handshakes, pure ACKs and retransmissions included), i.e. what a metered link carries
(layer 3; no link-layer framing). Toxiproxy's own ``-proxy-metrics`` counters were not used:
it adds a connection's bytes only when that connection closes, so a window's bytes would need
the agent's connections closed at each bound.

Windows (see :mod:`bench.scenario.resources`): ``offline_bytes_attempted`` from the cut to the
restore (with a ``reset`` cut: connection attempts refused by the kernel; with ``blackhole``,
also what the proxy accepted and dropped); ``resync_bytes_up`` / ``_down`` from the restore
until the node's recovery was confirmed.

Needs root and iptables. Each chain is named ``EBT-<owner pid>-<n>``; :func:`counter_chains`
finds them in both iptables backends (nft and legacy) and :func:`reap_chains` removes those
whose owner is gone (after a SIGKILL): the next :class:`LinkCounters` does, and so does
``python -m bench.netns --cleanup-orphans``; ``--check-clean`` lists every one.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.errors import NotSupportedError
from bench.procs import pid_alive

SOURCE = "host iptables byte counters (IP packets, headers included)"
CHAIN_PREFIX = "EBT-"
#: the iptables backends a chain may be in: ``iptables`` is one of them (update-alternatives)
BACKENDS = ("iptables-nft", "iptables-legacy")
_CHAIN = re.compile(rf"^-N ({CHAIN_PREFIX}(\d+)-\d+)$", re.M)
_seq = itertools.count()


def _iptables(*args: str) -> str:
    proc = subprocess.run(
        ["iptables", "-w", "-t", "filter", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise NotSupportedError(f"iptables {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


@dataclass(frozen=True)
class CounterChain:
    """A counting chain in the host's filter table: its backend, name and owner."""

    backend: str
    name: str
    owner_pid: int

    def owner_alive(self) -> bool:
        return pid_alive(self.owner_pid)


def counter_chains() -> list[CounterChain]:
    """Every ``EBT-<pid>-<n>`` chain in the filter table of either backend (none where a
    backend is missing or unusable)."""
    found = []
    for backend in BACKENDS:
        try:
            proc = subprocess.run(
                [backend, "-w", "-t", "filter", "-S"], capture_output=True, text=True, check=False
            )
        except OSError:
            continue
        for match in _CHAIN.finditer(proc.stdout):
            found.append(CounterChain(backend, match.group(1), int(match.group(2))))
    return found


def reap_chains() -> list[CounterChain]:
    """Remove the chains (and their jumps) of edgebench processes that are gone; those
    removed. Never raises."""
    gone = [chain for chain in counter_chains() if not chain.owner_alive()]
    for chain in gone:
        _remove(chain.name, chain.backend)
    return gone


def _remove(chain: str, backend: str = "iptables") -> None:
    for args in (
        ("-D", "OUTPUT", "-j", chain),
        ("-D", "INPUT", "-j", chain),
        ("-F", chain),
        ("-X", chain),
    ):
        try:
            subprocess.run([backend, "-w", "-t", "filter", *args], capture_output=True, check=False)
        except OSError:
            return


def _rules(host: str, port: int) -> list[tuple[str, list[str]]]:
    """The two counting rules of one listener: what the agent sends to it (up) and what it
    sends back (down)."""
    if host == "127.0.0.1":
        return [
            ("up", ["-o", "lo", "-p", "tcp", "--dport", str(port)]),
            ("down", ["-o", "lo", "-p", "tcp", "--sport", str(port)]),
        ]
    return [
        ("up", ["!", "-o", "lo", "-d", host, "-p", "tcp", "--dport", str(port)]),
        ("down", ["!", "-i", "lo", "-s", host, "-p", "tcp", "--sport", str(port)]),
    ]


class LinkCounters:
    """Counting rules for the links of ``links`` (node -> the addresses its agent dials)."""

    def __init__(self, links: Mapping[str, Sequence[str]]) -> None:
        if os.geteuid() != 0 or shutil.which("iptables") is None:
            raise NotSupportedError("kernel byte counters need root and iptables")
        self.ports = {node: [_split(a) for a in addresses] for node, addresses in links.items()}
        if not any(self.ports.values()):
            raise NotSupportedError("no link listens on this machine")
        reap_chains()
        self.chain = f"{CHAIN_PREFIX}{os.getpid()}-{next(_seq)}"
        self._rules: list[tuple[str, str]] = []  # (node, "up" | "down") in rule order
        _iptables("-N", self.chain)
        try:
            for node, listeners in self.ports.items():
                for host, port in listeners:
                    for way, rule in _rules(host, port):
                        _iptables("-A", self.chain, *rule)
                        self._rules.append((node, way))
            # A loopback listener sees each packet once in OUTPUT (``-o lo``); a listener on
            # a node namespace's host side sees the agent's packets arrive in INPUT (up) and
            # the proxy's answers leave in OUTPUT (down).
            _iptables("-I", "OUTPUT", "1", "-j", self.chain)
            _iptables("-I", "INPUT", "1", "-j", self.chain)
        except BaseException:
            _remove(self.chain)
            raise

    def read(self, column: int = 1) -> dict[str, tuple[int, int]]:
        """Per node: (up, down) bytes counted since the rules were made (``column`` 0:
        packets instead)."""
        lines = _iptables("-L", self.chain, "-v", "-x", "-n").splitlines()[2:]
        if len(lines) != len(self._rules):
            raise NotSupportedError(f"chain {self.chain} was changed from outside")
        totals = {node: [0, 0] for node in self.ports}
        for (node, way), line in zip(self._rules, lines, strict=True):
            totals[node][0 if way == "up" else 1] += int(line.split()[column])
        return {node: (up, down) for node, (up, down) in totals.items()}

    def close(self) -> None:
        _remove(self.chain)
