"""The dead-man timer: a fault that outlives its harness must not partition a node forever.

When a kernel fault goes in, a detached ``sh`` is started where the rules live (inside the
node's namespace, or on the node over SSH). It runs the link's teardown script after
``seconds`` (whole seconds: never earlier, at most one second later), or as soon as the
harness process (``owner_pid``, when the harness shares the machine) is gone or a zombie,
whichever comes first. Plain POSIX ``sh``, ``sleep`` and ``kill -0``: no systemd, works on
OpenRC nodes and over SSH.

Every change the harness makes first *claims* the link's timers (:func:`claim_script`),
found by the link's tag in their ``$0`` (``edgebench-deadman:NAME:RANDOM``): waiting ones are
killed; one already firing ignores SIGTERM (it runs its teardown as
``edgebench-deadman-firing:NAME:RANDOM``) and is waited for, so a teardown never interleaves
with the harness's own rules. The harness then installs its state and arms a fresh timer for
the time left; a missing jump to the link's chain tells it the timer fired (``fired=1``).
"""

from __future__ import annotations

import math
import re
import secrets
import shlex

#: prefix of ``$0`` of every dead-man process: recognised before a kill and by the leak check
MARKER = "edgebench-deadman"
WAITING = f"{MARKER}:"
FIRING = f"{MARKER}-firing:"


def watcher_script(
    tag: str, teardown: str, seconds: float, owner_pid: int | None, poll_s: float
) -> str:
    """The body of the dead-man process of the link tagged ``tag``."""
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
            f"exec sh -c {shlex.quote(teardown)} {_split(FIRING, tag)}",
        ]
    )


def arm_script(tag: str, body: str) -> str:
    """Start the watcher detached (own session, no terminal)."""
    marker = _split(WAITING, tag)
    return f"setsid sh -c {shlex.quote(body)} {marker} </dev/null >/dev/null 2>&1 &"


def _split(prefix: str, tag: str) -> str:
    """``prefix + tag`` as two adjacent shell words: the process gets the marker as one
    argument, while no script that starts one contains it (so no claim matches a script)."""
    return f"{shlex.quote(prefix)}''{shlex.quote(tag)}"


def _pattern(prefix: str, tag: str) -> str:
    # "[e]dgebench..." matches the watcher's arguments but not this script's own command line
    return shlex.quote(f"[{prefix[0]}]{prefix[1:]}{tag}")


def claim_script(tag: str, fired_test: str | None) -> str:
    """Stop the link's timers (waiting ones killed, a firing one waited for, 10 s at most).

    Timers are found by their tag in ``/proc/*/cmdline`` (no pid is trusted: pids are reused
    and ``setsid`` may fork). With ``fired_test``, a shell test true when the teardown removed
    the link's rules, ``fired=1`` is set and ``fired`` printed when it did.
    """
    waiting = _pattern(WAITING, tag)
    anyone = shlex.quote(f"[{MARKER[0]}]{MARKER[1:]}[a-z-]*:{tag}")
    lines = [
        "fired=0",
        f"for f in $(grep -l {waiting} /proc/[0-9]*/cmdline 2>/dev/null); do",
        "  p=${f#/proc/}; p=${p%/cmdline}",
        '  kill -TERM -"$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null',  # its group: sh, sleep
        "done",
        "n=0",
        f"while grep -q {anyone} /proc/[0-9]*/cmdline 2>/dev/null && [ $n -lt 500 ]; do",
        "  sleep 0.02; n=$((n + 1))",
        "done",
    ]
    if fired_test is not None:
        lines.append(f"if {fired_test}; then fired=1; echo fired; fi")
    return "\n".join(lines)


class DeadMan:
    """The dead-man timer of one link: whether it is armed, whether it ever fired."""

    def __init__(self, name: str) -> None:
        self.name = name
        #: ``NAME:RANDOM``: the link's timers carry it in their ``$0``
        self.tag = f"{re.sub(r'[^A-Za-z0-9_-]', '-', name)}:{secrets.token_hex(4)}"
        self.armed = False
        #: set when the timer was found to have fired while faults were on
        self.fired = False

    def claim_lines(self, fired_test: str) -> str:
        return claim_script(self.tag, fired_test if self.armed else None)

    def arm_lines(self, teardown: str, seconds: float, owner_pid: int | None, poll_s: float) -> str:
        """Shell lines that arm the timer."""
        return arm_script(self.tag, watcher_script(self.tag, teardown, seconds, owner_pid, poll_s))
