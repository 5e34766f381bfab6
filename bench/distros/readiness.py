"""Provider part: wait for edge nodes to turn Ready after bring-up, with progress lines."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable

from bench.observe.watch import ClusterObserver

log = logging.getLogger(__name__)


def progress(message: str) -> None:
    """One progress line on stderr (bring-up is long work; users should see it move)."""
    print(f"edgebench: {message}", file=sys.stderr, flush=True)


def wait_all_ready(
    observer: ClusterObserver,
    names: Iterable[str],
    timeout: float,
    alive: Callable[[], None] | None = None,
    started_mono: float | None = None,
) -> None:
    """Wait (bounded) until every node of ``names`` is Ready, printing ``node k/N Ready``."""
    wanted = sorted(names)
    started = started_mono if started_mono is not None else time.monotonic()
    seen: set[str] = set()

    def all_ready() -> bool:
        ready = {n for n in wanted if observer.node_ready(n) == "True"}
        step = max(1, len(wanted) // 10)  # at most about ten lines for a large cluster
        for name in sorted(ready - seen):
            seen.add(name)
            if len(wanted) <= 10 or len(seen) % step == 0 or len(seen) == len(wanted):
                progress(
                    f"node {len(seen)}/{len(wanted)} Ready ({name}, "
                    f"+{time.monotonic() - started:.1f}s)"
                )
        return len(ready) == len(wanted)

    observer.events.wait_until(
        all_ready, timeout=timeout, what=f"all {len(wanted)} edge nodes Ready", alive=alive
    )
