"""Bytes on an edge node's link, from Toxiproxy's own counters (``-proxy-metrics``).

Toxiproxy adds a connection's bytes to ``toxiproxy_proxy_received_bytes_total`` when that
direction of the connection ends, so its counters are exact between two moments at which the
link has no open connection. A ``reset`` cut gives the first: disabling the proxies closes
every connection and refuses new ones, so once the counters stop moving (:func:`settled`) they
hold every byte up to the cut, and nothing can add to them until the restore. The second is
made after the node's recovery is confirmed: :meth:`ToxiproxyLink.connections_closed` (the
agent sees one reset and reconnects; the bytes of that reconnect fall outside the window).

- ``offline_bytes_attempted``: counters at the restore minus counters once the cut settled;
  with a reset cut, nothing reaches the proxy (it listens on nothing), so this reads 0 by
  construction and is recorded as read.
- ``resync_bytes_up`` / ``resync_bytes_down``: counters after the post-recovery close minus
  counters once the cut settled: every byte of every connection from the restore until the
  node's recovery was confirmed (Ready, and Ready for the stable hold).

Up is what the proxy read from the agent, down what it read from the control plane (bytes
read, not written: Toxiproxy counts a written stream only when it ended without error).
A ``blackhole`` cut keeps connections open across the window bounds, so these counters can
not split bytes by window there: such rows are recorded empty with that reason.
"""

from __future__ import annotations

import time

from bench.faults import ToxiproxyLink
from bench.faults.base import Link

SOURCE = "toxiproxy -proxy-metrics received_bytes_total"


def counters(link: Link) -> tuple[int, int] | None:
    """(up, down) bytes of ``link``'s closed connections; None where no exact counter exists."""
    if not isinstance(link, ToxiproxyLink):
        return None
    return link.bytes_read()


def settled(link: Link, timeout: float = 5.0, step: float = 0.1) -> tuple[int, int] | None:
    """:func:`counters` once three reads ``step`` seconds apart agree (the connections that
    were closing have all been counted); the last read at ``timeout``."""
    deadline = time.monotonic() + timeout
    reads = [counters(link)]
    while time.monotonic() < deadline:
        time.sleep(step)
        reads.append(counters(link))
        if len(reads) >= 3 and reads[-1] == reads[-2] == reads[-3]:
            break
    return reads[-1]


def flush(link: Link) -> tuple[int, int] | None:
    """Close the link's connections and return the counters once they have been counted."""
    if not isinstance(link, ToxiproxyLink):
        return None
    with link.connections_closed():
        return settled(link)
