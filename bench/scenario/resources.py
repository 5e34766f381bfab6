"""Per case: the edge agents' footprint and each cut link's traffic in three windows, from
the case's own fault and recovery events (see docs in :mod:`bench.observe.footprint` and
:mod:`bench.observe.traffic`).

Windows per node that had a cut (or flap): baseline = case start to the first cut; offline =
first cut to last restore; resync = last restore until :meth:`ScenarioRun.node_recovery`
confirmed the node stable (Ready, and Ready for the stable hold). A node with a cut and no
confirmed recovery gets its resync window up to the end of the case, and a note saying so.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from bench.distros.base import Distro
from bench.faults import Fault
from bench.model import Capability
from bench.observe import traffic
from bench.observe.footprint import Sampler, Usage

#: the fault kinds that take a node offline (their windows are the case's offline windows)
OFFLINE_KINDS = ("cut", "flap")
CP_PREFIX = "cp:"

FOOTPRINT_METRICS = (
    "agent_rss_baseline_mb",
    "agent_rss_peak_mb",
    "agent_cpu_baseline_s",
    "agent_cpu_offline_s",
    "agent_cpu_resync_s",
)
Record = Callable[[str, float | None, str, str], None]  # metric, value, node, note


@dataclass
class NodeWindow:
    cut_mono: float | None = None
    restore_mono: float | None = None
    recovered_mono: float | None = None
    exact: bool = True  # every offline fault a reset cut: traffic counters split exactly
    at_cut: tuple[int, int] | None = None  # settled counters after the first cut
    at_restore: tuple[int, int] | None = None
    at_recovered: tuple[int, int] | None = None
    flushed_mono: float | None = None  # when the connections were closed for the count
    traffic_error: str = ""


class CaseResources:
    """Samples the agents (and the control plane) of ``cluster`` from construction until
    :meth:`finish`, which records the rows."""

    def __init__(self, cluster: Distro) -> None:
        self.cluster = cluster
        self.started_mono = time.monotonic()
        self.windows: dict[str, NodeWindow] = {}
        self._threads: list[threading.Thread] = []
        self._defer = False
        self.sampler: Sampler | None = None
        if Capability.FOOTPRINT in cluster.CAPABILITIES:
            self.sampler = Sampler(self._targets).start()

    def _targets(self) -> dict[str, list[int]]:
        pids = {n.name: self.cluster.agent_pids(n.name) for n in self.cluster.edge_nodes}
        for name, pid in self.cluster.control_plane_pids().items():
            pids[CP_PREFIX + name] = [pid]
        return pids

    def mark(self) -> float:
        return self.sampler.mark() if self.sampler else time.monotonic()

    # --- events (from ScenarioRun) --------------------------------------------------------

    def on_fault(self, fault: Fault) -> None:
        if fault.kind not in OFFLINE_KINDS:
            return
        node = fault.link.name
        w = self.windows.setdefault(node, NodeWindow())
        if fault.mode != "reset" or fault.kind != "cut":
            w.exact = False
        if fault.ended_mono is None:
            if w.cut_mono is None:
                w.cut_mono = self.mark()
                if w.exact:
                    thread = threading.Thread(target=self._settle_cut, args=(fault, w))
                    thread.start()
                    self._threads.append(thread)
        else:
            w.restore_mono = self.mark()
            w.recovered_mono = None
            if w.exact:
                w.at_restore = self._read(w, lambda: traffic.counters(fault.link))

    def _settle_cut(self, fault: Fault, w: NodeWindow) -> None:
        w.at_cut = self._read(w, lambda: traffic.settled(fault.link))

    @staticmethod
    def _read(w: NodeWindow, read: Callable[[], tuple[int, int] | None]) -> tuple[int, int] | None:
        try:
            return read()
        except Exception as exc:  # a counter we cannot read is an empty row, not a failure
            w.traffic_error = f"counters unreadable: {exc}"[:200]
            return None

    def on_recovered(self, node: str, stable: bool) -> None:
        """``node_recovery`` returned: close the window (once, for a stable node)."""
        w = self.windows.get(node)
        if w is None or w.restore_mono is None or w.recovered_mono is not None or not stable:
            return
        w.recovered_mono = self.mark()
        if not self._defer:
            self._flush(node, w)

    def _flush(self, node: str, w: NodeWindow) -> None:
        for thread in self._threads:
            thread.join()
        if w.exact and w.at_recovered is None:
            w.at_recovered = self._read(w, lambda: traffic.flush(self.cluster.node(node).link))
            w.flushed_mono = time.monotonic()

    @contextlib.contextmanager
    def deferred_flush(self) -> Iterator[None]:
        """Inside, a confirmed recovery does not yet close its link's connections (their
        reconnects would add to what a mass reconnect measures on the control plane); on
        exit, every recovered node's link is closed and counted."""
        self._defer = True
        try:
            yield
        finally:
            self._defer = False
            for node, w in sorted(self.windows.items()):
                if w.recovered_mono is not None:
                    self._flush(node, w)

    # --- rows -----------------------------------------------------------------------------

    def usage(self, key: str | Sequence[str], start: float, end: float) -> Usage | None:
        return self.sampler.usage(key, start, end) if self.sampler else None

    def finish(self, record: Record) -> None:
        end = self.mark()
        if self.sampler is not None:
            self.sampler.stop()
        for thread in self._threads:
            thread.join()
        for node, w in sorted(self.windows.items()):
            if w.cut_mono is None:
                continue
            self._record_footprint(record, node, w, end)
            self._record_traffic(record, node, w)

    def _record_footprint(self, record: Record, node: str, w: NodeWindow, end: float) -> None:
        assert w.cut_mono is not None
        if self.sampler is None:
            why = self.cluster.LACKS.get(Capability.FOOTPRINT, "no local agent processes")
            for metric in FOOTPRINT_METRICS:
                record(metric, None, node, f"no footprint: {why}")
            return
        restore = w.restore_mono if w.restore_mono is not None else end
        recovered = w.recovered_mono if w.recovered_mono is not None else end
        open_end = "" if w.recovered_mono is not None else " (no confirmed recovery: to case end)"
        every = f"psutil every {self.sampler.interval_s:g}s + at each window bound"
        windows = {
            "baseline": (self.started_mono, w.cut_mono),
            "offline": (w.cut_mono, restore),
            "resync": (restore, recovered),
        }
        used = {name: self.sampler.usage(node, a, b) for name, (a, b) in windows.items()}
        for name, (a, b) in windows.items():
            u = used[name]
            note = f"{name} window {b - a:.1f}s; {every}"
            if name == "resync":
                note += open_end
            if u.restarted:
                note += "; agent restarted in the window (old process: up to one interval lost)"
            record(f"agent_cpu_{name}_s", u.cpu_s, node, note)
        # the sample at the cut's mark: the end of the baseline window
        record("agent_rss_baseline_mb", used["offline"].rss_start_mb, node, f"at the cut; {every}")
        peak = [u.rss_peak_mb for u in used.values() if u.rss_peak_mb is not None]
        record(
            "agent_rss_peak_mb",
            max(peak) if peak else None,
            node,
            f"highest sample from case start to recovery{open_end}; {every}",
        )

    def _record_traffic(self, record: Record, node: str, w: NodeWindow) -> None:
        metrics = ("offline_bytes_attempted", "resync_bytes_up", "resync_bytes_down")
        if not w.exact:
            why = (
                "not exact with Toxiproxy counters: a blackhole cut keeps connections open "
                "across the window bounds (they are counted when they close)"
            )
            for metric in metrics:
                record(metric, None, node, why)
            return
        note = f"source: {traffic.SOURCE}"
        if w.traffic_error or w.at_cut is None:
            why = w.traffic_error or "no exact counter on this link backend"
            for metric in metrics:
                record(metric, None, node, why)
            return
        up0, down0 = w.at_cut
        if w.at_restore is not None:
            up1 = w.at_restore[0]
            record("offline_bytes_attempted", float(up1 - up0), node, f"reset cut; {note}")
        else:
            record("offline_bytes_attempted", None, node, "no restore in the case")
        if w.at_recovered is None:
            for metric in metrics[1:]:
                record(metric, None, node, "no confirmed recovery: the window never closed")
            return
        up2, down2 = w.at_recovered
        span = (w.flushed_mono or 0) - (w.restore_mono or 0)
        note = f"restore until recovery confirmed (stable hold included), {span:.1f}s; {note}"
        record("resync_bytes_up", float(up2 - up0), node, note)
        record("resync_bytes_down", float(down2 - down0), node, note)
