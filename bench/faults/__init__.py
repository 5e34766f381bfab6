"""Network faults between edge nodes and their control plane, injected with Toxiproxy.

    from bench.faults import Toxiproxy

    with Toxiproxy.start() as tp:
        link = tp.link("edge-1", upstream="127.0.0.1:6443")
        with link.latency(100), link.bandwidth(50):
            ...  # clients use link.listen instead of the upstream
        with link.cut() as fault:
            ...
        print(fault.started_at, fault.duration_s)

Toxiproxy is TCP-only: there is no packet loss and no UDP.
"""

from bench.faults.toxiproxy.api import DIRECTIONS, TOXIC_TYPES, Direction
from bench.faults.toxiproxy.link import Cut, Fault, Flap, Link, Proxy, ToxicFault
from bench.faults.toxiproxy.server import Toxiproxy

__all__ = [
    "DIRECTIONS",
    "TOXIC_TYPES",
    "Cut",
    "Direction",
    "Fault",
    "Flap",
    "Link",
    "Proxy",
    "ToxicFault",
    "Toxiproxy",
]
