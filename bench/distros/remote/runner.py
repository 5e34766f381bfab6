"""A :class:`bench.runner.Runner` over a :class:`bench.hosts.Host`: the kernel link backend's
commands sent to a lab node over SSH (through sudo when the lab says so)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.errors import HostError
from bench.hosts import Host
from bench.runner import Completed


@dataclass(frozen=True)
class HostRunner:
    """Runs an argv on ``host``; an unreachable host is status 255 with ssh's reason."""

    host: Host

    def __call__(self, argv: Sequence[str], stdin: str | None = None) -> Completed:
        words = " ".join(["%s"] * len(argv))
        args = list(argv)
        if stdin is not None:
            words = f"printf '%%s' %s | {words}"
            args.insert(0, stdin)
        try:
            result = self.host.run(words, *args)
        except HostError as exc:
            return Completed(tuple(argv), 255, "", str(exc))
        return Completed(tuple(argv), result.exit_status, result.stdout, result.stderr)
