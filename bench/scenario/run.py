"""The building blocks every scenario shares: baseline checks, waits on watch events, the
measurements derived from them, and journaling of fault windows and Ready transitions.

A scenario has one shape: baseline, inject, assert the fault had an effect, hold, restore,
wait for recovery (bounded), assert the cluster is back to its baseline, record; see
:mod:`bench.scenario.template`. Fault windows are journaled when the link applies and removes
a fault; Ready transitions and the rows of a failed case when the case ends (:meth:`finish`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.distros.base import Distro
from bench.errors import ClusterError, ClusterTimeoutError, EdgebenchError
from bench.faults import CutMode, Fault
from bench.model import Capability, EdgeNode
from bench.observe import timeline
from bench.observe.timeline import PodsRecovery, Recovery
from bench.observe.watch import ClusterObserver, Event
from bench.results.records import EventJournal, Recorder
from bench.scenario import template
from bench.scenario.resources import CaseResources
from bench.scenario.subcloud import METRICS, SubcloudWatch
from bench.scenario.workload import APP_LABEL

log = logging.getLogger(__name__)
#: how long a restarted agent may take to answer on its local endpoint, and the gap between
#: the two answers that must agree (it may still be loading what it kept on disk)
AGENT_START_TIMEOUT_S = 60.0
AGENT_SETTLE_S = 2.0


def _is_ready(event: Event) -> bool:
    return event.ready == "True"


@dataclass
class ScenarioRun:
    """One case of one scenario, one repeat: what it measures goes through :meth:`record`."""

    cluster: Distro
    observer: ClusterObserver
    recorder: Recorder
    journal: EventJournal
    scenario: str
    case: str
    repeat: int
    recorded: dict[tuple[str, str], float | None] = field(default_factory=dict)
    #: (metric, node) pairs the case means to record: a failed case records them empty
    expected: set[tuple[str, str]] = field(default_factory=set)
    started_mono: float = field(default_factory=time.monotonic)
    #: the fault label of each node's current or last fault, for row notes
    fault_labels: dict[str, str] = field(default_factory=dict)
    #: agent footprint and link traffic of the case's offline windows (rows at finish)
    resources: CaseResources = field(init=False)

    def __post_init__(self) -> None:
        self.resources = CaseResources(self.cluster)
        for node in self.cluster.edge_nodes:
            node.link.listeners.append(self._on_fault)

    # --- journaling -----------------------------------------------------------------------

    def _on_fault(self, fault: Fault) -> None:
        """Journal a fault window edge as the link applies or removes the fault."""
        ended = fault.ended_mono is not None
        wall = fault.ended_at if ended else fault.started_at
        mono = fault.ended_mono if ended else fault.started_mono
        if wall is None or mono is None:
            return
        self.fault_labels[fault.link.name] = fault.label
        self.resources.on_fault(fault)
        self.journal.add(
            scenario=self.scenario,
            case=self.case,
            repeat=self.repeat,
            node=fault.link.name,
            kind="fault_end" if ended else "fault_start",
            wall=wall,
            mono=mono,
            value=fault.label,
        )

    def journal_event(self, kind: str, value: str, node: str = "") -> None:
        """Journal a case event of the harness's own (``events.csv``), stamped now."""
        self.journal.add(
            scenario=self.scenario,
            case=self.case,
            repeat=self.repeat,
            node=node,
            kind=kind,
            wall=datetime.now(UTC),
            mono=time.monotonic(),
            value=value,
        )

    def expect(self, metrics: Iterable[str], nodes: Iterable[str]) -> None:
        """Declare the rows this case records, so that a failure still leaves each of them
        (empty, with a note saying the case failed)."""
        self.expected |= {(m, n) for m in metrics for n in nodes}

    def finish(self, error: str | None = None) -> None:
        """End the case: journal the Ready transitions since it began, record every expected
        row it did not get to (empty, noting ``error``), stop listening to the links."""
        for node in self.cluster.edge_nodes:
            with contextlib.suppress(ValueError):
                node.link.listeners.remove(self._on_fault)
        self.journal_ready([n.name for n in self.cluster.edge_nodes], self.started_mono - 1)
        try:
            self.resources.finish(lambda m, v, n, note: self.record(m, v, node=n, note=note))
        except Exception as exc:  # the case's own rows below must still be written
            log.warning(
                "footprint and traffic rows of %s/%s lost: %s", self.scenario, self.case, exc
            )
        for metric, name in sorted(self.expected - set(self.recorded)):
            why = f"case failed: {error}" if error else "case ended without measuring it"
            self.record(metric, None, node=name, note=why[:300])

    # --- bounds derived from the cluster's timings --------------------------------------

    @property
    def detect_timeout(self) -> float:
        t = self.cluster.timings
        return 2 * t.detect_bound_s + 10

    @property
    def recover_timeout(self) -> float:
        """The bound on a recovery: status updates and grace periods of the control plane,
        plus the time the agent may keep a silent connection after a blackhole."""
        t = self.cluster.timings
        control_plane = 3 * t.node_status_update_period_s + 2 * t.node_monitor_grace_period_s
        return max(60.0, control_plane) + t.agent_silent_link_s

    # --- recording ------------------------------------------------------------------------

    def record(self, metric: str, value: float | None, node: str = "", note: str = "") -> None:
        label = self.fault_labels.get(node, "")
        if label and label not in note:
            note = f"{note}; {label}" if note else label
        self.recorder.record(
            scenario=self.scenario,
            case=self.case,
            repeat=self.repeat,
            node=node,
            metric_name=metric,
            value=value,
            note=note,
        )
        self.recorded[(metric, node)] = value

    def edge_view(self, node: str, timeout: float = 0, settle: float = 0) -> dict[str, str]:
        """The edge agent's own view of its pods. Waits up to ``timeout`` seconds for an agent
        that is (re)starting to answer and, with ``settle``, until two answers ``settle``
        seconds apart agree (a starting agent may still be loading what it kept on disk).
        :class:`NotSupportedError` when the agent has no such view."""
        deadline = time.monotonic() + timeout
        last: dict[str, str] | None = None
        while True:
            try:
                view = self.cluster.edge_pods(node)
            except ClusterError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)  # a local endpoint that is not up yet: no watch to wait on
                continue
            if not settle or view == last or time.monotonic() >= deadline:
                return view
            last = view
            time.sleep(settle)

    def record_edge_view(
        self,
        metric: str,
        node: str,
        expected: Iterable[str],
        timeout: float = 0,
        settle: float = 0,
        note: str = "",
    ) -> None:
        """The share of ``expected`` pods the edge agent itself reports running (``note``
        goes with the row)."""
        names = set(expected)
        extra = f"; {note}" if note else ""
        if Capability.EDGE_POD_VIEW not in self.cluster.CAPABILITIES:
            why = self.cluster.LACKS.get(Capability.EDGE_POD_VIEW, "")
            self.record(metric, None, node=node, note=f"no edge-side view of pods: {why}{extra}")
            return
        view = self.edge_view(node, timeout, settle)
        if not names:
            self.record(metric, None, node=node, note=f"no pods were expected on the node{extra}")
            return
        phases = [view.get(name, "absent") for name in sorted(names)]
        running = phases.count("Running")
        others = sorted({p for p in phases if p != "Running"})
        counts = ", ".join(f"{p}={phases.count(p)}" for p in others)
        self.record(
            metric, running / len(names), node=node, note="; ".join(filter(None, [counts, note]))
        )

    def restart_agent_offline(
        self, node: str, metric: str, expected: Iterable[str], reboot: bool = False
    ) -> None:
        """Restart ``node``'s agent, or reboot the node with ``reboot`` (while its link is cut:
        the driver keeps it cut through the reboot), and record ``metric``: the share of
        ``expected`` pods the restarted agent holds once two of its answers agree. A reboot's
        note (how long it took) goes with the row, and so does a Ready of the node seen
        during the reboot (the node reached its control plane before it was cut again)."""
        since = time.monotonic()
        note = ""
        if reboot:
            note = self.cluster.reboot(node)
            if _turned_ready(self.observer.events.snapshot(), node, since):
                note += (
                    f"{'; ' if note else ''}the node turned Ready during the reboot (its agent "
                    "reached the control plane before the cut was back)"
                )
        else:
            self.cluster.restart_agent(node)
        self.record_edge_view(
            metric, node, expected, timeout=AGENT_START_TIMEOUT_S, settle=AGENT_SETTLE_S, note=note
        )

    @contextlib.contextmanager
    def subcloud_watch(self) -> Iterator[SubcloudWatch]:
        """StarlingX: poll the system controller's view of the subcloud (see
        :mod:`bench.scenario.subcloud`); the rows are expected from here, so a failed case
        still leaves them (empty). Polling stops when the block ends."""
        try:
            poller = self.cluster.subcloud_poller()
            watch = SubcloudWatch(poller)
        except EdgebenchError as exc:  # a subcloud whose controller cannot be asked
            watch = SubcloudWatch(None, why=str(exc))
        if watch.active:
            self.expect(METRICS, [watch.node])
        if watch.poller is not None:
            watch.poller.start()
        try:
            yield watch
        finally:
            watch.stop()

    def record_subcloud(self, watch: SubcloudWatch, outage: template.Outage) -> None:
        """The subcloud rows of ``outage`` (nothing for a cluster that is no subcloud)."""
        watch.record(outage, lambda m, v, n, note: self.record(m, v, node=n, note=note))

    def outage(
        self,
        nodes: Sequence[EdgeNode],
        mode: CutMode,
        hold_s: float,
        record_detect: bool = False,
        expect_not_ready: bool = True,
    ) -> contextlib.AbstractContextManager[template.Outage]:
        """Cut, assert the effect, hold, restore: see :func:`bench.scenario.template.outage`."""
        return template.outage(self, nodes, mode, hold_s, record_detect, expect_not_ready)

    def journal_ready(self, nodes: Iterable[str], since_mono: float) -> None:
        wanted = set(nodes)
        for e in self.observer.events.snapshot(since_mono):
            if e.kind == "node" and e.node in wanted:
                self.journal.add(
                    scenario=self.scenario,
                    case=self.case,
                    repeat=self.repeat,
                    node=e.node,
                    kind="ready",
                    wall=e.wall,
                    mono=e.mono,
                    value=str(e.ready),
                )

    # --- baseline and waits -----------------------------------------------------------------

    def settled(self, node: str) -> bool:
        """Ready, with a Lease renewal arrived since it last turned Ready: heartbeats flow.
        (Ready alone is not enough: an agent may post its status once after a reconnect and
        still fail to renew its Lease, and lose Ready again one grace period later.)"""
        if self.observer.node_ready(node) != "True":
            return False
        since = self._last_ready_transition(lambda e: e.kind == "node" and e.node == node)
        lease = self.observer.leases.get(node)
        return since is not None and lease is not None and lease.mono > since

    def assert_baseline(self) -> None:
        """Every edge node settled, within the recovery bound (a prior case may still settle)."""
        __tracebackhide__ = True
        names = [n.name for n in self.cluster.edge_nodes]
        try:
            self.observer.events.wait_until(
                lambda: all(self.settled(n) for n in names),
                self.recover_timeout,
                what="every edge node Ready with its heartbeats flowing (baseline)",
            )
        except ClusterTimeoutError:
            states = {n: (self.observer.node_ready(n), self.settled(n)) for n in names}
            raise AssertionError(
                f"baseline: not every edge node is Ready and heartbeating: {states}"
            ) from None

    def wait_node(self, node: str, ready: bool, since_mono: float, timeout: float) -> Event:
        """The first Ready (or not-Ready) event of ``node`` at or after ``since_mono``."""
        __tracebackhide__ = True
        want = "Ready" if ready else "not Ready"
        try:
            return self.observer.events.wait_for(
                lambda e: e.kind == "node" and e.node == node and _is_ready(e) == ready,
                timeout,
                since_mono=since_mono,
                what=f"{node} {want}",
            )
        except ClusterTimeoutError:
            before = (
                ""
                if self._ready_at(node, since_mono) != ready
                else (f"; it was already {want} when the wait began")
            )
            raise AssertionError(
                f"{node} did not turn {want} within {timeout:.0f}s (now: "
                f"Ready={self.observer.node_ready(node)}{before}); timings {self.cluster.timings}"
            ) from None

    def app_pods(self, ns: str, app: str) -> list[Event]:
        """The current pods of ``app`` (by its label) in ``ns``."""
        return self.observer.pods_where(
            lambda e: e.name.startswith(f"{ns}/") and (APP_LABEL, app) in e.labels
        )

    def live_pods(self, ns: str, app: str, node: str) -> list[Event]:
        """Pods of ``app`` bound to ``node`` and not being deleted."""
        return [p for p in self.app_pods(ns, app) if not p.deleting and p.node == node]

    def wait_pods_ready(self, ns: str, app: str, count: int, node: str, timeout: float) -> None:
        """Wait until exactly ``count`` live pods of ``app`` are Ready on ``node``."""
        __tracebackhide__ = True

        def done() -> bool:
            live = self.live_pods(ns, app, node)
            return len(live) == count and all(_is_ready(p) for p in live)

        try:
            self.observer.events.wait_until(
                done, timeout, what=f"{count} pods of {app} Ready on {node}"
            )
        except ClusterTimeoutError:
            pods = [(p.name, p.node, p.phase, p.ready, p.deleting) for p in self.app_pods(ns, app)]
            raise AssertionError(
                f"{count} pods of {ns}/{app} not Ready on {node} within {timeout:.0f}s: {pods}"
            ) from None

    # --- recovery that holds ----------------------------------------------------------------

    @property
    def hold_s(self) -> float:
        """How long a node must stay Ready to count as recovered (see docs/recovery.md)."""
        return timeline.stable_hold_s(self.cluster.timings)

    def node_recovery(self, node: str, cut_mono: float, restore_mono: float) -> Recovery:
        """Wait (bounded by the run's timings) until ``node`` is stable after the restore and
        return its recovery; a node that never got there comes back with ``stable_mono`` None
        and a note saying why, never a made-up value."""

        def judge() -> Recovery:
            events = self.observer.events.snapshot(cut_mono - 1)
            return timeline.recovery(
                events, node, cut_mono, restore_mono, self.hold_s, time.monotonic()
            )

        with contextlib.suppress(ClusterTimeoutError):
            self.observer.events.wait_until(
                lambda: judge().stable,
                max(0.0, restore_mono + self.recover_timeout + self.hold_s - time.monotonic()),
                what=f"{node} Ready and staying Ready for {self.hold_s:g}s",
            )
        rec = judge()
        self.resources.on_recovered(node, rec.stable)
        return rec

    def outage_recoveries(self, outage: template.Outage) -> list[Recovery]:
        """Each cut node's recovery against its own link's restore (the links are restored in
        turn), recorded; in the order of the cuts."""
        recoveries = []
        for node, fault in outage.faults.items():
            assert fault.started_mono is not None and fault.ended_mono is not None
            rec = self.node_recovery(node, fault.started_mono, fault.ended_mono)
            self.record_recovery(rec)
            recoveries.append(rec)
        return recoveries

    def record_recovery(self, rec: Recovery, first_ready: bool = True) -> None:
        """Record ``first_ready_s``, ``stable_recover_s``, ``relapses`` and ``notready_span_s``
        of one node's recovery (notes say why a value is empty)."""
        note = rec.note
        if first_ready:
            self.record("first_ready_s", rec.first_ready_s, node=rec.node, note=note)
        self.record("stable_recover_s", rec.stable_recover_s, node=rec.node, note=note)
        self.record("relapses", rec.relapses, node=rec.node, note=note)
        self.record("notready_span_s", rec.notready_span_s, node=rec.node, note=note)

    def pods_recovery(self, ns: str, app: str, node: str, restore_mono: float) -> PodsRecovery:
        """Wait (bounded) until the live pods of ``app`` on ``node`` are all Ready and stay
        Ready for the hold period after ``restore_mono``; return their recovery."""

        def judge() -> PodsRecovery | None:
            uids = [p.uid for p in self.live_pods(ns, app, node)]
            if not uids:
                return None
            events = timeline.pod_events(self.observer.events.snapshot(restore_mono - 1), uids)
            return timeline.pods_recovery(events, restore_mono, self.hold_s, time.monotonic())

        with contextlib.suppress(ClusterTimeoutError):
            self.observer.events.wait_until(
                lambda: (r := judge()) is not None and r.stable_mono is not None,
                max(0.0, restore_mono + self.recover_timeout + self.hold_s - time.monotonic()),
                what=f"pods of {app} on {node} Ready and staying Ready",
            )
        result = judge()
        if result is None:
            raise AssertionError(f"no live pod of {ns}/{app} on {node} after the restore")
        return result

    def recover(
        self, ns: str, app: str, replicas: int, node: str, fault: Fault, baseline: set[str]
    ) -> Recovery:
        """After a restore that follows a detected outage: wait (bounded) for the node to be
        Ready and stay Ready, and for ``replicas`` pods of ``app`` to do the same; record the
        node's recovery metrics, ``pods_first_ready_s``, ``pods_stable_s`` and
        ``recreated_pods``; assert the cluster is back to its baseline."""
        __tracebackhide__ = True
        assert fault.started_mono is not None and fault.ended_mono is not None
        self.expect(["first_ready_s", "stable_recover_s", "relapses", "notready_span_s"], [node])
        rec = self.node_recovery(node, fault.started_mono, fault.ended_mono)
        self.record_recovery(rec)
        self.wait_pods_ready(ns, app, replicas, node, self.recover_timeout)
        pods = self.pods_recovery(ns, app, node, fault.ended_mono)
        self.record("pods_first_ready_s", pods.first_ready_s, node=node, note=pods.note)
        self.record("pods_stable_s", pods.stable_s, node=node, note=pods.note)
        live = {p.uid for p in self.live_pods(ns, app, node)}
        self.record("recreated_pods", len(live - baseline), node=node)
        self.assert_baseline()
        return rec

    # --- measurements from the event log (pure functions in bench.observe.timeline) -----

    def _last_ready_transition(self, match: Callable[[Event], bool]) -> float | None:
        return timeline.ready_since(e for e in self.observer.events.snapshot() if match(e))

    def ready_since(self, uid: str) -> float | None:
        """Monotonic arrival of the pod's last transition to Ready (None: not Ready now)."""
        return self._last_ready_transition(lambda e: e.kind == "pod" and e.uid == uid)

    def deleted_pods(self, uids: set[str], since_mono: float, until_mono: float) -> int:
        """How many of the pods ``uids`` were deleted (or marked for deletion) in the window."""
        events = self.observer.events.snapshot(since_mono)
        return timeline.deleted_pods(events, uids, since_mono, until_mono)

    def notready_flaps(self, node: str, since_mono: float, until_mono: float) -> int:
        """Ready -> not Ready transitions of ``node`` in the window."""
        events = self.observer.events.snapshot()
        return timeline.notready_flaps(events, node, since_mono, until_mono)

    def heartbeat_gap_max(self, node: str, since_mono: float, until_mono: float) -> float:
        """The longest stretch of the window without a Lease renewal of ``node`` arriving."""
        events = self.observer.events.snapshot(since_mono)
        return timeline.heartbeat_gap_max(events, node, since_mono, until_mono)

    def _ready_at(self, node: str, mono: float) -> bool:
        events = [e for e in self.observer.events.snapshot() if e.mono <= mono]
        return timeline.ready_since(timeline.node_events(events, node)) is not None


#: what the ``scenario_run`` fixture gives a suite: ``make(scenario, case, repeat)``
ScenarioFactory = Callable[[str, str, int], ScenarioRun]


def _turned_ready(events: Iterable[Event], node: str, since: float) -> bool:
    """Whether ``node`` went from not Ready to Ready at or after ``since``: a Ready=True
    event after a non-True one (the last event before ``since`` counts as the state then).
    A True event on a node that was Ready all along (a taint change early in a cut) is not."""
    was: str | None = None
    for event in events:
        if event.kind != "node" or event.node != node or event.ready is None:
            continue
        if event.mono >= since and event.ready == "True" and was not in (None, "True"):
            return True
        was = event.ready
    return False
