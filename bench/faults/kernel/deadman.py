"""The dead-man timer: a fault that outlives its harness must not partition a node forever.

When a kernel fault goes in, a detached ``sh`` is started where the rules live (inside the
node's namespace, or on the node over SSH). It runs the link's teardown script after
``hold_s + margin_s`` seconds (whole seconds: never earlier, at most one second later), or
as soon as the harness process (``owner_pid``, when the harness shares the machine) is gone
or a zombie, whichever comes first. Removing the last fault disarms it. Plain POSIX ``sh``,
``sleep`` and ``kill -0``: no systemd, works on OpenRC nodes and over SSH.
"""

from __future__ import annotations

import math
import shlex

from bench.errors import FaultError
from bench.runner import Completed

#: ``$0`` of every dead-man process: how it is recognised before a kill and by the leak check
MARKER = "edgebench-deadman"


def watcher_script(
    teardown: str, hold_s: float, margin_s: float, owner_pid: int | None, poll_s: float
) -> str:
    """The body of the dead-man process."""
    owner = "" if owner_pid is None else str(owner_pid)
    return "\n".join(
        [
            # whole seconds: +1 so that it never fires before hold + margin (at most 1 s after)
            f"end=$(( $(date +%s) + {math.ceil(hold_s + margin_s) + 1} ))",
            f"owner={owner}",
            'while [ "$(date +%s)" -lt "$end" ]; do',
            '  if [ -n "$owner" ]; then',
            '    kill -0 "$owner" 2>/dev/null || break',
            '    grep -q "^State:.*Z" "/proc/$owner/status" 2>/dev/null && break',
            "  fi",
            f"  sleep {poll_s:g}",
            "done",
            teardown,
        ]
    )


def arm_script(name: str, body: str) -> str:
    """Start the watcher detached (own session, no terminal) and print its pid."""
    return (
        f"setsid sh -c {shlex.quote(body)} {shlex.quote(f'{MARKER}:{name}')}"
        " </dev/null >/dev/null 2>&1 &\necho $!"
    )


def disarm_script(pid: int) -> str:
    """Kill the watcher's process group if that pid is still our watcher; print what was found.

    ``armed`` means it was still waiting (and is now stopped); ``gone`` that it had already
    exited, i.e. it fired (or was killed) before the fault was removed.
    """
    return (
        f"if grep -q {MARKER} /proc/{pid}/cmdline 2>/dev/null; then "
        f"kill -TERM -- -{pid} 2>/dev/null || kill -TERM {pid}; echo armed; "
        "else echo gone; fi"
    )


class DeadMan:
    """One armed (or not) dead-man timer of one link."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid: int | None = None
        #: set when the watcher was found gone while faults were on: it tore them down early
        self.fired = False

    def arm_prefix(
        self, teardown: str, hold_s: float, margin_s: float, owner_pid: int | None, poll_s: float
    ) -> str:
        """Shell lines that arm the timer and print its pid as the script's last line."""
        return arm_script(self.name, watcher_script(teardown, hold_s, margin_s, owner_pid, poll_s))

    def alive_test(self) -> str:
        """A shell test, true while the armed watcher still runs."""
        return f"grep -q {MARKER} /proc/{self.pid}/cmdline 2>/dev/null"

    def disarm_lines(self) -> str:
        return disarm_script(self.pid) if self.pid is not None else ""

    def armed_from(self, result: Completed) -> None:
        """Take the pid from the output of a script that ended with :meth:`arm_prefix`."""
        last = result.out.strip().splitlines()[-1:] if result.out.strip() else []
        if not last or not last[0].isdigit():
            raise FaultError(f"dead-man timer for {self.name} did not start: {result.explain()}")
        self.pid = int(last[0])
