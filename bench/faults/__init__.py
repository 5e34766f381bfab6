"""Network faults between edge nodes and their control plane.

A :class:`Link` is one edge node's path to its control plane, backend-neutral; each backend
(``bench.faults.toxiproxy``, ...) implements it and states which fault kinds it can do.

    from bench.faults import Toxiproxy

    with Toxiproxy.start() as tp:
        link = tp.link("edge-1", upstream="127.0.0.1:6443")
        with link.latency(100), link.bandwidth(50):
            ...  # clients use link.listen instead of the upstream
        with link.cut(mode="blackhole") as fault:
            ...
        print(fault.label, fault.started_at, fault.duration_s)
"""

from bench.faults.base import (
    CUT_MODES,
    DIRECTIONS,
    Cut,
    CutMode,
    Direction,
    Fault,
    FaultKind,
    Flap,
    Link,
    check_cut_mode,
)
from bench.faults.toxiproxy import TOXIC_TYPES, Proxy, ToxicFault, Toxiproxy, ToxiproxyLink

__all__ = [
    "CUT_MODES",
    "DIRECTIONS",
    "TOXIC_TYPES",
    "Cut",
    "CutMode",
    "Direction",
    "Fault",
    "FaultKind",
    "Flap",
    "Link",
    "Proxy",
    "ToxicFault",
    "Toxiproxy",
    "ToxiproxyLink",
    "check_cut_mode",
]
