"""The footprint sampler (bench.observe.footprint) against real processes of known size and
known CPU use."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from bench.observe.footprint import Sampler

MB = 1024 * 1024
# Allocates SIZE MiB and touches every page, says so, spins CPU for SPIN seconds of its own
# CPU time when told, then waits.
CHILD = """
import sys, time
size, spin = int(sys.argv[1]), float(sys.argv[2])
block = bytearray(size * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
print("allocated", flush=True)
sys.stdin.readline()
start = time.process_time()
while time.process_time() - start < spin:
    pass
print("spun", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, "200", "0.8"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "allocated"
        yield proc
        proc.kill()


def _baseline_rss_mb() -> float:
    """RSS of the same interpreter without the allocation: what the child carries besides."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, "0", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"allocated"
        rss = float(psutil.Process(proc.pid).memory_info().rss) / MB
        proc.kill()
        return rss


def test_rss_of_a_process_with_a_known_allocation(child: subprocess.Popen[str]) -> None:
    interpreter = _baseline_rss_mb()
    sampler = Sampler(lambda: {"agent": [child.pid]}, interval_s=0.05).start()
    try:
        time.sleep(0.3)
        end = sampler.mark()
    finally:
        sampler.stop()
    usage = sampler.usage("agent", 0.0, end)
    assert usage.rss_peak_mb is not None
    # 200 MiB touched, plus the interpreter (measured above), within 10 MiB of page noise
    assert 200 + interpreter - 10 <= usage.rss_peak_mb <= 200 + interpreter + 10


def test_cpu_between_marks_is_the_processes_own(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None and child.stdout is not None
    sampler = Sampler(lambda: {"agent": [child.pid]}, interval_s=0.5).start()
    try:
        idle_start = sampler.mark()
        time.sleep(0.3)
        spin_start = sampler.mark()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "spun"
        spin_end = sampler.mark()
    finally:
        sampler.stop()
    idle = sampler.usage("agent", idle_start, spin_start)
    spin = sampler.usage("agent", spin_start, spin_end)
    assert idle.cpu_s is not None and idle.cpu_s < 0.05
    # it spun for 0.8 s of its own CPU time; the kernel counts in ticks of 10 ms
    assert spin.cpu_s is not None and 0.78 <= spin.cpu_s <= 0.9
    assert not spin.restarted


def test_a_process_started_in_the_window_counts_from_zero() -> None:
    pids: list[int] = []
    sampler = Sampler(lambda: {"agent": list(pids)}, interval_s=0.05).start()
    start = sampler.mark()
    time.sleep(0.05)
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, "0", "0.3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"allocated"
            pids.append(proc.pid)
            cpu_before = sum(psutil.Process(proc.pid).cpu_times()[:2])
            end = sampler.mark()
        finally:
            sampler.stop()
            proc.kill()
    usage = sampler.usage("agent", start, end)
    assert usage.restarted
    # its start-up CPU (the interpreter loading) counts: it was spent inside the window
    assert usage.cpu_s is not None and usage.cpu_s >= cpu_before - 0.011
