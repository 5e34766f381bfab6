"""StarlingX: the system controller's view of a subcloud through one outage of its link.

    with run.subcloud_watch() as subcloud:            # polling starts (a subcloud only)
        with run.outage(nodes, mode, hold) as outage:
            subcloud.wait_offline(outage.started_mono)  # bounded: dcmanager's audits
        ...
        subcloud.record(outage)                        # the three subcloud_* rows

For a cluster that is no subcloud the watch does nothing and records nothing; for a StarlingX
lab without a system controller the rows are recorded empty with the reason. The arithmetic
is :func:`bench.distros.remote.starlingx.subcloud_metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.distros.remote.starlingx import (
    OFFLINE_BOUND_S,
    RESYNC_BOUND_S,
    SubcloudPoller,
    subcloud_metrics,
)
from bench.scenario.template import Outage

METRICS = ("subcloud_offline_detect_s", "subcloud_online_s", "subcloud_resync_s")
Record = Callable[[str, float | None, str, str], None]  # metric, value, node, note


class SubcloudWatch:
    """The subcloud rows of one outage; ``poller`` None: rows empty with ``why`` (or no rows
    when ``why`` is empty too: the cluster is no subcloud)."""

    def __init__(
        self,
        poller: SubcloudPoller | None,
        why: str = "",
        offline_bound_s: float = OFFLINE_BOUND_S,
        resync_bound_s: float = RESYNC_BOUND_S,
    ) -> None:
        self.poller = poller
        self.why = why
        self.offline_bound_s = offline_bound_s
        self.resync_bound_s = resync_bound_s

    @property
    def active(self) -> bool:
        """Whether this watch records rows."""
        return self.poller is not None or bool(self.why)

    @property
    def own_kubernetes(self) -> bool:
        """Whether the cut nodes keep their Kubernetes control plane through the cut: a
        subcloud's nodes (the lab's kubeconfig is the subcloud's own cluster, see
        docs/labs.md) lose their system controller, not their API server, so the effect of
        the cut is the controller seeing the subcloud offline, not the nodes turning not
        Ready."""
        return self.poller is not None

    @property
    def node(self) -> str:
        """The rows' node column: the subcloud's name."""
        return f"subcloud:{self.poller.subcloud}" if self.poller else "subcloud"

    def wait_offline(self, cut_at: float) -> None:
        """Hold the outage until the controller sees the subcloud offline, at most
        ``offline_bound_s`` after the cut (its audits need time to notice); for a subcloud
        that keeps its own Kubernetes this is the cut's effect, asserted."""
        __tracebackhide__ = True
        if self.poller is None:
            return
        left = self.offline_bound_s - (time.monotonic() - cut_at)
        seen = self.poller.wait_for(lambda s: s.availability == "offline", cut_at, max(0.0, left))
        if not seen and self.own_kubernetes:
            raise AssertionError(
                f"the system controller did not see {self.node} offline within "
                f"{self.offline_bound_s:g} s of the cut (dcmanager subcloud show)"
            )

    def record(self, outage: Outage, record: Record) -> None:
        """Wait (bounded) for the subcloud online and in-sync after the last restore, stop
        polling and record the three rows: from the last link down (the subcloud cut off)
        to the last link back (every path to it restored)."""
        if not self.active:
            return
        if self.poller is None:
            for metric in METRICS:
                record(metric, None, self.node, f"no subcloud view: {self.why}")
            return
        ends = [f.ended_mono for f in outage.faults.values() if f.ended_mono is not None]
        restore_at = max(ends) if ends else time.monotonic()
        left = self.resync_bound_s - (time.monotonic() - restore_at)
        self.poller.wait_for(
            lambda s: s.availability == "online" and s.in_sync, restore_at, max(0.0, left)
        )
        self.poller.stop()
        samples = self.poller.samples()
        errors = self.poller.errors
        values = subcloud_metrics(samples, outage.started_mono, restore_at, self.poller.poll_s)
        held = outage_note(restore_at - outage.started_mono, outage.hold_s)
        for metric in METRICS:
            value, note = values[metric]
            note += f"; {held}"
            if errors:
                note += f"; {len(errors)} failed polls, last: {errors[-1][:150]}"
            record(metric, value, self.node, note)

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()


def outage_note(length_s: float, hold_s: float | None) -> str:
    """How long every link was cut, and why when that is beyond the hold asked for: the
    offline wait holds the cut up to :data:`OFFLINE_BOUND_S` after it, under the same case
    name, so cases of different distros may differ in outage length."""
    text = f"outage {length_s:.1f}s"
    if hold_s is not None and length_s - hold_s >= 1.0:
        text += f" (hold {hold_s:g}s, held until the controller saw the subcloud offline)"
    return text
