"""Running one command somewhere: the tiny protocol kernel faults and namespaces share.

A :class:`Runner` runs an argv (with optional stdin text) and returns a :class:`Completed`. The
local runner runs it on this machine; a namespace's runner prefixes ``ip netns exec NAME``; a
remote node's runner (later) sends the same argv over SSH. Kernel faults only ever talk to a
runner, so the same rules work in a namespace here and on a real node of a lab.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Completed:
    """What one command did: exit status and its output, decoded."""

    argv: tuple[str, ...]
    status: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.status == 0

    def explain(self) -> str:
        """A one-paragraph account for an error message."""
        err = self.err.strip() or self.out.strip() or "(no output)"
        return f"`{shlex.join(self.argv)}` exited {self.status}: {err}"


class Runner(Protocol):
    """Runs ``argv`` (stdin fed from ``stdin``) to completion; never raises for a non-zero exit."""

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> Completed: ...


def run_local(argv: Sequence[str], stdin: str | None = None, timeout: float = 60.0) -> Completed:
    """Run ``argv`` on this machine; a missing binary is status 127, like a shell."""
    try:
        proc = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as e:
        return Completed(tuple(argv), 127, "", str(e))
    except subprocess.TimeoutExpired as e:
        return Completed(tuple(argv), 124, "", f"timed out after {timeout:.0f}s: {e}")
    return Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class PrefixRunner:
    """Runs every argv behind a fixed prefix (``ip netns exec NAME``, ``ssh host``, ...)."""

    prefix: tuple[str, ...]

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> Completed:
        return run_local((*self.prefix, *argv), stdin)
