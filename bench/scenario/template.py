"""The shape every scenario shares, as code: baseline (asserted by the ``scenario_run``
fixture), inject, assert the fault had an effect, hold, restore, bounded recovery, assert back
to baseline, record. A suite states only what differs:

    with run.outage([node], mode=cut_mode, hold_s=t.short_outage_s) as outage:
        run.record_edge_view("edge_pods_running", node.name, expected)  # while cut
    run.recover(ns, "app", REPLICAS, node.name, outage.fault(node.name), baseline)

Fault windows and Ready transitions are journaled by :class:`~bench.scenario.run.ScenarioRun`
itself (the link reports each fault it applies), not by the suite.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.faults import CutMode, Fault
from bench.model import EdgeNode

if TYPE_CHECKING:
    from bench.observe.watch import Event
    from bench.scenario.run import ScenarioRun


@dataclass
class Outage:
    """The cut links of an outage: per node its fault and when the control plane noticed."""

    faults: dict[str, Fault] = field(default_factory=dict)
    detected: dict[str, Event] = field(default_factory=dict)
    #: the hold asked for (the body may hold the cut longer: a subcloud's offline wait)
    hold_s: float | None = None

    def fault(self, node: str) -> Fault:
        return self.faults[node]

    @property
    def started_mono(self) -> float:
        """When the last link went down (every node is cut from here on)."""
        starts = [f.started_mono for f in self.faults.values() if f.started_mono is not None]
        return max(starts)


@contextlib.contextmanager
def outage(
    run: ScenarioRun,
    nodes: Sequence[EdgeNode],
    mode: CutMode,
    hold_s: float,
    record_detect: bool = False,
    expect_not_ready: bool = True,
) -> Iterator[Outage]:
    """Wait a random phase (:func:`cut_phase`); cut every link of ``nodes`` in ``mode``;
    assert the fault had its effect (each node not Ready within the detection bound,
    optionally recorded as ``detect_s``); run the body; hold until ``hold_s`` after the cut;
    restore on exit, in the order of the cuts so that every node is cut as long (also on
    failure and Ctrl-C). ``expect_not_ready`` False: the cut is not expected to make the nodes
    not Ready (a StarlingX subcloud keeps its own Kubernetes); the caller asserts the effect."""
    result = Outage(hold_s=hold_s)
    delay = cut_phase(run)
    run.journal_event("cut_phase", f"{delay:.3f}")
    time.sleep(delay)
    with contextlib.ExitStack() as stack:
        for node in nodes:
            result.faults[node.name] = stack.enter_context(node.link.cut(mode=mode))
        cut_at = result.started_mono
        for node in nodes if expect_not_ready else ():  # the fault had its effect on each
            lost = run.wait_node(
                node.name, ready=False, since_mono=cut_at, timeout=run.detect_timeout
            )
            result.detected[node.name] = lost
            if record_detect:
                started = result.faults[node.name].started_mono
                assert started is not None
                run.record("detect_s", lost.mono - started, node=node.name)
        yield result
        time.sleep(max(0.0, hold_s - (time.monotonic() - cut_at)))
        for fault in result.faults.values():  # first cut, first restored (the stack is LIFO)
            fault.remove()


def cut_phase(run: ScenarioRun) -> float:
    """A random wait of up to one node-status period before a cut, drawn per case and
    repeat (seeded by the run id, so a run can be replayed).

    An agent's timers (node status every 10 s, Lease renewals) and TCP's retransmission
    backoff of the first data the cut drops lock recovery to where the cut falls in those
    periods; without a random phase, every repeat of a case cuts at the same point of them
    (the harness's own timing sets it) and its repeats are not independent samples: two
    providers whose set-up takes different times then differ by seconds for no reason of
    theirs. The wait is journaled (``events.csv`` kind ``cut_phase``)."""
    period = run.cluster.timings.node_status_update_period_s
    seed = f"{run.journal.run_id}/{run.scenario}/{run.case}/{run.repeat}"
    return random.Random(seed).uniform(0.0, period)
