"""A real reboot of a lab node over SSH (``allow_reboot: true``), keeping it cut when it was.

    times = reboot_node(host, lab_node, link, timeout_s=lab.reboot_timeout_s)
    times.note()   # "SSH down after 3.1s, back after 48.0s, cut again at 48.3s, ..."

The sequence, one deadline (``reboot_timeout_s`` from the command) for all of it:

1. the node's boot id (``/proc/sys/kernel/random/boot_id``) is read;
2. the reboot command (``systemctl reboot || reboot``, or the lab's ``reboot_command``) is
   started detached on the node, one second later, so the SSH session that starts it ends
   cleanly before the machine goes down;
3. SSH is polled until it stops answering (the node went down), then until it answers again;
4. at once, the link's faults are installed again: iptables rules, qdiscs and the dead-man
   timer do not survive a reboot, so a kernel cut is re-installed and its timer re-armed for
   the time it had left (a Toxiproxy cut lives on the proxy and needs nothing);
5. the agent is waited for (``systemctl is-active --quiet <agent>``, or the lab's
   ``agent_active_command``);
6. the boot id is read again: unchanged means the command did not reboot the kernel (a
   stand-in), which the note says.

Between the node's boot and step 4 the agent may reach its control plane (it starts at boot,
possibly before sshd answers); the scenario notes a Ready seen in that window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.distros.remote.lab import LabNode
from bench.errors import ClusterTimeoutError, HostError
from bench.faults.base import Link

if TYPE_CHECKING:
    from bench.hosts import Host

BOOT_ID = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class RebootTimes:
    """Seconds from the reboot command to each step (None: the step had nothing to do)."""

    down_s: float
    back_s: float
    recut_s: float | None
    active_s: float
    boot_id_changed: bool

    def note(self) -> str:
        parts = [f"SSH down after {self.down_s:.1f}s", f"back after {self.back_s:.1f}s"]
        if self.recut_s is not None:
            parts.append(f"cut again at {self.recut_s:.1f}s")
        parts.append(f"agent active at {self.active_s:.1f}s")
        text = "rebooted: " + ", ".join(parts)
        if not self.boot_id_changed:
            text += "; boot id unchanged: the reboot command did not restart the kernel"
        return text


def _answers(host: Host) -> bool:
    try:
        return host.run("true").succeeded
    except HostError:
        return False


def _boot_id(host: Host) -> str:
    try:
        return host.read(BOOT_ID).strip()
    except HostError:
        return ""


def reboot_node(
    host: Host,
    node: LabNode,
    link: Link | None,
    timeout_s: float,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> RebootTimes:
    """Reboot ``node`` through ``host`` and wait until it is back with its faults and its
    agent (see the module docstring); :class:`ClusterTimeoutError` naming the step that did
    not happen within ``timeout_s``."""
    __tracebackhide__ = True
    before = _boot_id(host)
    host.check("setsid sh -c %s </dev/null >/dev/null 2>&1 &", f"sleep 1; {node.reboot}")
    start = clock()

    def wait(done: Callable[[], bool], what: str) -> float:
        while not done():
            if clock() - start > timeout_s:
                raise ClusterTimeoutError(
                    f"lab node {node.name}: {what} within {timeout_s:g}s of `{node.reboot}` "
                    "(reboot_timeout_s in the lab file)"
                )
            time.sleep(poll_s)
        return clock() - start

    down = wait(lambda: not _answers(host), "SSH kept answering: the node did not go down")
    back = wait(lambda: _answers(host), "SSH did not answer again after the node went down")
    recut = clock() - start if link is not None and link.reinstall() else None
    active = wait(
        lambda: host.run(node.agent_active).succeeded,
        f"the agent was not active again (`{node.agent_active}`)",
    )
    after = _boot_id(host)
    return RebootTimes(down, back, recut, active, bool(before) and before != after)
