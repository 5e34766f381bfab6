"""Kernel link faults: iptables and tc in the node's network namespace (or on the node).

See :mod:`bench.faults.kernel.link` and docs/kernel-faults.md.
"""

from bench.faults.kernel.link import KernelFault, KernelLink
from bench.faults.kernel.rules import Endpoint, listener_endpoints

__all__ = ["Endpoint", "KernelFault", "KernelLink", "listener_endpoints"]
