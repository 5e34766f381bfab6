"""A real reboot of a lab node over SSH (``allow_reboot: true``), keeping it cut when it was.

    times = reboot_node(host, lab_node, link, timeout_s=lab.reboot_timeout_s)
    times.note()   # "SSH down after 3.1s, back after 48.0s, cut again at 48.3s, ..."

The sequence, one deadline (``reboot_timeout_s`` from the command) for all of it:

1. the node's boot id (``/proc/sys/kernel/random/boot_id``, or the lab's ``boot_id_command``)
   is read;
2. the reboot command (``systemctl reboot || reboot``, or the lab's ``reboot_command``) is
   started detached on the node, one second later, so the SSH session that starts it ends
   cleanly before the machine goes down;
3. SSH is polled, each attempt bounded by a short connect timeout, until it stops answering
   (the node went down), then until it reads a boot id that is not the one of step 1 (the
   node is back: an SSH hiccup before the reboot does not change the boot id). When step 1
   read nothing, any boot id read after the node went down counts, which the note says;
4. at once, the link's faults are installed again: iptables rules, qdiscs and the dead-man
   timer do not survive a reboot, so a kernel cut is re-installed and its timer re-armed for
   the time it had left (a Toxiproxy cut lives on the proxy and needs nothing);
5. the agent is waited for (``systemctl is-active --quiet <agent>``, or the lab's
   ``agent_active_command``).

A command that does not restart the kernel never changes the boot id: the case fails naming
step 3. Between the node's boot and step 4 the agent may reach its control plane (it starts
at boot, possibly before sshd answers); the scenario notes a Ready seen in that window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bench.distros.remote.lab import LabNode
from bench.errors import ClusterTimeoutError, HostError
from bench.faults.base import Link

if TYPE_CHECKING:
    from bench.hosts import Host

#: seconds an SSH poll may take to connect while the node goes down and boots: a poll against
#: a machine that is off waits this long, so it bounds the resolution of down_s and back_s
POLL_CONNECT_S = 2


@dataclass(frozen=True)
class RebootTimes:
    """Seconds from the reboot command to each step (None: the step had nothing to do)."""

    down_s: float
    back_s: float
    recut_s: float | None
    active_s: float
    #: the boot id was read before the command (else "back" is any boot id read after "down")
    boot_id_known: bool
    #: how often SSH was polled and how long one poll could wait to connect
    poll_s: float = 0.5
    connect_s: float = POLL_CONNECT_S

    def note(self) -> str:
        parts = [f"SSH down after {self.down_s:.1f}s", f"back after {self.back_s:.1f}s"]
        if self.recut_s is not None:
            parts.append(f"cut again at {self.recut_s:.1f}s")
        parts.append(f"agent active at {self.active_s:.1f}s")
        text = "rebooted: " + ", ".join(parts)
        text += (
            f"; SSH polled every {self.poll_s:g}s with a {self.connect_s:g}s connect timeout "
            f"(down and back within {self.poll_s + self.connect_s:g}s)"
        )
        if not self.boot_id_known:
            text += (
                "; the boot id could not be read before the command: back is the first boot "
                "id read after SSH went down, not a boot id seen to change"
            )
        return text


def _answers(host: Host) -> bool:
    try:
        return host.run("true").succeeded
    except HostError:
        return False


def _boot_id(host: Host, node: LabNode) -> str:
    """The node's boot id, or "" when it cannot be read (SSH down, the command failed)."""
    try:
        result = host.run(node.boot_id)
    except HostError:
        return ""
    return result.stdout.strip() if result.succeeded else ""


def reboot_node(
    host: Host,
    node: LabNode,
    link: Link | None,
    timeout_s: float,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    poll_host: Host | None = None,
) -> RebootTimes:
    """Reboot ``node`` through ``host`` and wait until it is back with its faults and its
    agent (see the module docstring); :class:`ClusterTimeoutError` naming the step that did
    not happen within ``timeout_s``. ``poll_host`` (default: ``node``'s SSH target with a
    :data:`POLL_CONNECT_S` connect timeout) is what polls while the node is down."""
    __tracebackhide__ = True
    poll = poll_host or replace(node.ssh, connect_timeout_s=POLL_CONNECT_S).host()
    before = _boot_id(host, node)
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

    def rebooted() -> bool:
        now = _boot_id(poll, node)
        return now != "" and now != before

    down = wait(lambda: not _answers(poll), "SSH kept answering: the node did not go down")
    back = wait(
        rebooted,
        f"no new boot id after SSH went down (`{node.boot_id}`): the node did not come back, "
        "or the command did not restart its kernel",
    )
    recut = clock() - start if link is not None and link.reinstall() else None
    active = wait(
        lambda: host.run(node.agent_active).succeeded,
        f"the agent was not active again (`{node.agent_active}`)",
    )
    return RebootTimes(down, back, recut, active, bool(before), poll_s, POLL_CONNECT_S)
