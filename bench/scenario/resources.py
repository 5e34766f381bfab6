"""Per case: the edge agents' footprint and each cut link's traffic in three windows, from
the case's own fault and recovery events (see docs in :mod:`bench.observe.footprint` and
:mod:`bench.observe.traffic`).

Windows per node that had a cut (or flap): baseline = case start to the first cut; offline =
first cut to last restore; resync = last restore until :meth:`ScenarioRun.node_recovery`
confirmed the node stable (Ready, and Ready for the stable hold). A node with a cut and no
confirmed recovery gets its resync window up to the end of the case, and a note saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.distros.base import Distro
from bench.errors import NotSupportedError
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
    #: (up, down) link byte counters at the first cut, the last restore, the recovery
    at_cut: tuple[int, int] | None = None
    at_restore: tuple[int, int] | None = None
    at_recovered: tuple[int, int] | None = None
    traffic_error: str = ""
    #: the backend that cut the link: a kernel cut drops the agent's packets inside its
    #: namespace, before they reach the host's counters
    cut_backend: str = ""


class CaseResources:
    """Samples the agents (and the control plane) of ``cluster`` from construction until
    :meth:`finish`, which records the rows."""

    def __init__(self, cluster: Distro) -> None:
        self.cluster = cluster
        self.started_mono = time.monotonic()
        self.windows: dict[str, NodeWindow] = {}
        self.sampler: Sampler | None = None
        if Capability.FOOTPRINT in cluster.CAPABILITIES:
            self.sampler = Sampler(self._targets).start()
        self.counters: traffic.LinkCounters | None = None
        self.counters_why = ""
        try:
            links = {n.name: list(n.dial.values()) for n in cluster.edge_nodes}
            self.counters = traffic.LinkCounters(links) if links else None
        except NotSupportedError as exc:
            self.counters_why = f"no exact byte counter: {exc}"

    def _targets(self) -> dict[str, list[int]]:
        pids = {n.name: self.cluster.agent_pids(n.name) for n in self.cluster.edge_nodes}
        for name, pid in self.cluster.control_plane_pids().items():
            pids[CP_PREFIX + name] = [pid]
        return pids

    def mark(self, node: str | None = None) -> float:
        """A window bound: sample ``node``'s agent (all processes, without ``node``) now."""
        if self.sampler is None:
            return time.monotonic()
        return self.sampler.mark(None if node is None else [node])

    # --- events (from ScenarioRun) --------------------------------------------------------

    def on_fault(self, fault: Fault) -> None:
        if fault.kind not in OFFLINE_KINDS:
            return
        node = fault.link.name
        w = self.windows.setdefault(node, NodeWindow())
        if fault.ended_mono is None:
            if w.cut_mono is None:
                w.cut_mono = self.mark(node)
                w.at_cut = self._bytes(node, w)
                w.cut_backend = fault.backend
        else:
            w.restore_mono = self.mark(node)
            w.at_restore = self._bytes(node, w)
            w.recovered_mono = w.at_recovered = None

    def _bytes(self, node: str, w: NodeWindow) -> tuple[int, int] | None:
        if self.counters is None:
            return None
        try:
            return self.counters.read().get(node)
        except NotSupportedError as exc:  # an unreadable counter is an empty row
            w.traffic_error = f"counters unreadable: {exc}"[:200]
            return None

    def on_recovered(self, node: str, stable: bool) -> None:
        """``node_recovery`` returned: close the node's resync window (once, when stable)."""
        w = self.windows.get(node)
        if w is None or w.restore_mono is None or w.recovered_mono is not None or not stable:
            return
        w.recovered_mono = self.mark(node)
        w.at_recovered = self._bytes(node, w)

    # --- rows -----------------------------------------------------------------------------

    def usage(self, key: str | Sequence[str], start: float, end: float) -> Usage | None:
        return self.sampler.usage(key, start, end) if self.sampler else None

    def finish(self, record: Record) -> None:
        end = self.mark()
        if self.sampler is not None:
            self.sampler.stop()
        if self.counters is not None:
            self.counters.close()
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
        why = w.traffic_error or self.counters_why
        if why or w.at_cut is None:
            for metric in metrics:
                record(metric, None, node, why or "no counter for this node's link")
            return
        source = f"source: {traffic.SOURCE}"
        if w.at_restore is None or w.restore_mono is None or w.cut_mono is None:
            for metric in metrics:
                record(metric, None, node, "no restore in the case")
            return
        up = w.at_restore[0] - w.at_cut[0]
        down = w.at_restore[1] - w.at_cut[1]
        if w.cut_backend == "kernel":
            record(
                "offline_bytes_attempted",
                None,
                node,
                "not measured: the kernel cut drops the agent's packets inside its namespace, "
                "before any counter on the host (--no-netns measures it at the proxy)",
            )
        else:
            record(
                "offline_bytes_attempted",
                float(up),
                node,
                f"agent to link, first cut to last restore ({w.restore_mono - w.cut_mono:.1f}s;"
                f" {down} bytes the other way); {source}",
            )
        if w.at_recovered is None or w.recovered_mono is None:
            for metric in metrics[1:]:
                record(metric, None, node, "no confirmed recovery: the window never closed")
            return
        span = w.recovered_mono - w.restore_mono
        note = f"restore until recovery confirmed (stable hold included), {span:.1f}s; {source}"
        record("resync_bytes_up", float(w.at_recovered[0] - w.at_restore[0]), node, note)
        record("resync_bytes_down", float(w.at_recovered[1] - w.at_restore[1]), node, note)
