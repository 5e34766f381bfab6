"""Provider part: one link per edge node through a Toxiproxy server on this machine.

Any provider whose edge agents can reach this machine uses it: the server is started once,
each node gets one proxy per control-plane endpoint, and :meth:`ToxiproxyLinks.make` returns
the node with the addresses its agent must dial instead of the control plane's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from bench.faults import FaultKind, Toxiproxy, ToxiproxyLink
from bench.model import EdgeNode


class ToxiproxyLinks:
    """A toxiproxy-server and the links it serves, one per edge node."""

    def __init__(self, log_dir: Path, detached: bool = False, listen_host: str = "127.0.0.1"):
        self.log_dir = log_dir
        self.detached = detached
        self.listen_host = listen_host
        self.server: Toxiproxy | None = None

    @staticmethod
    def faults() -> frozenset[FaultKind]:
        return ToxiproxyLink.CAPABILITIES

    def start(self) -> None:
        self.server = Toxiproxy.start(log_dir=self.log_dir, detached=self.detached)

    def make(self, node: str, upstreams: Sequence[str], listen_host: str | None = None) -> EdgeNode:
        """A link for ``node`` with one proxy per upstream, listening on ``listen_host``."""
        assert self.server is not None, "start() first"
        link = self.server.link(
            node, upstream=list(upstreams), listen=f"{listen_host or self.listen_host}:0"
        )
        return EdgeNode(node, link, dial={p.upstream: p.listen for p in link.proxies})

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server else None

    @property
    def url(self) -> str | None:
        return self.server.url if self.server else None

    def stop(self) -> None:
        """Stop the server; never raises."""
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop()
