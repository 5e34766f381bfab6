"""The dead-man timer: a fault that outlives its harness must not partition a node forever.

When a kernel fault goes in, a detached ``sh`` is started where the rules live (inside the
node's namespace, or on the node over SSH). It runs the link's teardown script after
``seconds`` (whole seconds: never earlier, at most one second later), or as soon as the
harness process (``owner_pid``, when the harness shares the machine) is gone or a zombie,
whichever comes first. Plain POSIX ``sh``, ``sleep`` and ``kill -0``: no systemd, works on
OpenRC nodes and over SSH.

Every change the harness makes first *claims* the timer (:func:`claim_script`): a waiting
timer is killed; one already firing ignores SIGTERM (it runs its teardown as
``edgebench-deadman-firing:NAME``) and is waited for, so a teardown never interleaves with
the harness's own rules. The harness then installs its state and arms a fresh timer for the
time left; a missing jump to the link's chain tells it the timer fired (``fired=1``).
"""

from __future__ import annotations

import math
import shlex

from bench.errors import FaultError
from bench.runner import Completed

#: prefix of ``$0`` of every dead-man process: recognised before a kill and by the leak check
MARKER = "edgebench-deadman"
WAITING = f"{MARKER}:"
FIRING = f"{MARKER}-firing:"


def watcher_script(
    name: str, teardown: str, seconds: float, owner_pid: int | None, poll_s: float
) -> str:
    """The body of the dead-man process."""
    owner = "" if owner_pid is None else str(owner_pid)
    return "\n".join(
        [
            # whole seconds: +1 so that it never fires early (at most 1 s late)
            f"end=$(( $(date +%s) + {math.ceil(seconds) + 1} ))",
            f"owner={owner}",
            'while [ "$(date +%s)" -lt "$end" ]; do',
            '  if [ -n "$owner" ]; then',
            '    kill -0 "$owner" 2>/dev/null || break',
            '    grep -q "^State:.*Z" "/proc/$owner/status" 2>/dev/null && break',
            "  fi",
            f"  sleep {poll_s:g}",
            "done",
            "trap '' TERM",  # inherited through exec: the teardown always completes
            f"exec sh -c {shlex.quote(teardown)} {shlex.quote(FIRING + name)}",
        ]
    )


def arm_script(name: str, body: str) -> str:
    """Start the watcher detached (own session, no terminal) and print its pid."""
    return (
        f"setsid sh -c {shlex.quote(body)} {shlex.quote(WAITING + name)}"
        " </dev/null >/dev/null 2>&1 &\necho $!"
    )


def claim_script(pid: int | None, fired_test: str) -> str:
    """Stop the timer ``pid`` (or wait for its teardown to finish); ``fired=1`` if it fired.

    ``fired_test`` is a shell test that is true when the teardown removed the link's rules
    (checked only when a timer was armed). Prints ``fired`` when it did.
    """
    if pid is None:
        return "fired=0"
    cmdline = f"/proc/{pid}/cmdline"
    return "\n".join(
        [
            "fired=0",
            f"grep -q {shlex.quote(WAITING)} {cmdline} 2>/dev/null"
            # the group (the sh and its sleep); dash's kill takes no "--"
            f" && {{ kill -TERM -{pid} 2>/dev/null || kill -TERM {pid}; }}",
            f"while grep -q {MARKER} {cmdline} 2>/dev/null; do sleep 0.02; done",
            f"if {fired_test}; then fired=1; echo fired; fi",
        ]
    )


class DeadMan:
    """The dead-man timer of one link: its pid while armed, whether it ever fired."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid: int | None = None
        #: set when the timer was found to have fired while faults were on
        self.fired = False

    def arm_lines(self, teardown: str, seconds: float, owner_pid: int | None, poll_s: float) -> str:
        """Shell lines that arm the timer and print its pid as the script's last line."""
        return arm_script(
            self.name, watcher_script(self.name, teardown, seconds, owner_pid, poll_s)
        )

    def armed_from(self, result: Completed) -> None:
        """Take the pid from the output of a script that ended with :meth:`arm_lines`."""
        last = result.out.strip().splitlines()[-1:] if result.out.strip() else []
        if not last or not last[0].isdigit():
            raise FaultError(f"dead-man timer for {self.name} did not start: {result.explain()}")
        self.pid = int(last[0])
