"""The Toxiproxy link backend: a real toxiproxy-server (Go-built), its REST API, and links of
one or more proxies. Toxiproxy is TCP-only: no packet loss, no UDP."""

from bench.faults.toxiproxy.api import TOXIC_TYPES
from bench.faults.toxiproxy.link import Proxy, SharedToxiproxyLink, ToxicFault, ToxiproxyLink
from bench.faults.toxiproxy.server import Toxiproxy

__all__ = [
    "TOXIC_TYPES",
    "Proxy",
    "SharedToxiproxyLink",
    "ToxicFault",
    "Toxiproxy",
    "ToxiproxyLink",
]
