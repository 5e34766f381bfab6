"""Resource footprint of local processes (edge agents, control plane) over a case.

A :class:`Sampler` thread reads, every ``interval_s``, the resident memory and CPU time
(user + system) of each tracked process with psutil, and once more at every :meth:`mark`
(a window bound: fault start, restore, recovery confirmed), so that CPU seconds between two
marks are exact to the kernel's clock tick, not to the interval. Peak RSS is the highest
sample, so a peak shorter than the interval can be missed: the interval is in every note.

Interval: :data:`INTERVAL_S`. One tick over 50 agent processes costs 1.38 ms of CPU (mean,
measured by ``tests/test_bench_footprint.py``), i.e. 0.14 % of a core at 1 s; well under 1 %.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

#: seconds between samples (see the module docstring for its cost)
INTERVAL_S = 1.0
_MB = 1024 * 1024


_TICK = os.sysconf("SC_CLK_TCK")


def started_mono(pid: int) -> float:
    """When ``pid`` started, on this process's monotonic clock (to the kernel's 10 ms tick:
    psutil's create_time rests on the boot time in whole seconds, too coarse for windows)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime since boot
    since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic() - (since_boot - ticks / _TICK)


@dataclass(frozen=True)
class Sample:
    mono: float
    key: str
    pid: int
    rss: int  # bytes
    cpu_s: float  # user + system since the process started


@dataclass(frozen=True)
class Usage:
    """What one key's processes used in a window."""

    cpu_s: float | None  # None: no process of the key was sampled in the window
    rss_peak_mb: float | None
    rss_start_mb: float | None  # at the window's start (the last tick at or before it)
    restarted: bool  # a process of the key started inside the window


class Sampler:
    """Samples the processes that ``targets()`` names (key -> pids, asked at every tick, so
    a restarted agent's new pid is picked up)."""

    def __init__(
        self, targets: Callable[[], dict[str, list[int]]], interval_s: float = INTERVAL_S
    ) -> None:
        self.targets = targets
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self.born: dict[int, float] = {}  # pid -> monotonic start time of the process
        self._procs: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, keys: Collection[str] | None = None) -> float:
        """Sample every target process (of ``keys`` only, if given) once, now; returns the
        samples' monotonic time."""
        now = time.monotonic()
        try:
            targets = self.targets()
        except Exception:  # a driver mid-restart; the next tick asks again
            return now
        if keys is not None:
            targets = {k: v for k, v in targets.items() if k in keys}
        taken: list[Sample] = []
        for key, pids in targets.items():
            for pid in pids:
                proc = self._procs.get(pid)
                try:
                    if proc is None:
                        proc = self._procs[pid] = psutil.Process(pid)
                        self.born[pid] = started_mono(pid)
                    with proc.oneshot():
                        rss = proc.memory_info().rss
                        times = proc.cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
                    self._procs.pop(pid, None)
                    continue
                taken.append(Sample(now, key, pid, rss, times.user + times.system))
        with self._lock:
            self.samples.extend(taken)
        return now

    def mark(self, keys: Collection[str] | None = None) -> float:
        """Sample now (a window bound of ``keys``, or of all); returns the sample's time."""
        return self.tick(keys)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()

    def start(self) -> Sampler:
        self.tick()
        self._thread = threading.Thread(target=self._run, name="footprint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.tick()

    def usage(self, key: str | Sequence[str], start: float, end: float) -> Usage:
        """CPU seconds, peak and starting RSS of ``key``'s processes in [start, end] (several
        keys: summed, the peak of the sum at one tick).

        CPU: per process, its CPU time at its last sample in the window minus that at its last
        sample at or before ``start`` (0 for a process that started inside the window); a
        process that ended inside the window loses at most one interval before its end."""
        with self._lock:
            keys = {key} if isinstance(key, str) else set(key)
            rows = [s for s in self.samples if s.key in keys and s.mono <= end]
        inside = [s for s in rows if s.mono >= start]
        if not inside:
            return Usage(None, None, None, False)
        cpu = 0.0
        restarted = False
        for pid in {s.pid for s in inside}:
            last = max((s for s in inside if s.pid == pid), key=lambda s: s.mono)
            before = [s for s in rows if s.pid == pid and s.mono <= start]
            if before:
                first = max(before, key=lambda s: s.mono).cpu_s
            elif self.born.get(pid, start) >= start:
                first, restarted = 0.0, True
            else:  # alive before the window but first seen in it: from its first sample
                first = min((s for s in inside if s.pid == pid), key=lambda s: s.mono).cpu_s
            cpu += last.cpu_s - first
        by_tick: dict[float, int] = {}
        for s in inside:
            by_tick[s.mono] = by_tick.get(s.mono, 0) + s.rss
        starts = [s for s in rows if s.mono <= start]
        at_start = None
        if starts:
            t0 = max(s.mono for s in starts)
            at_start = sum(s.rss for s in starts if s.mono == t0) / _MB
        return Usage(cpu, max(by_tick.values()) / _MB, at_start, restarted)
