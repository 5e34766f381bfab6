"""Recovery arithmetic over watch events: when a node (or a set of pods) was back for good.

Pure functions: no I/O, no threads, no clock. Inputs are monotonic seconds (``Event.mono``) and
the events of an :class:`~bench.observe.watch.EventLog` snapshot; the caller chooses
``until_mono``, the time up to which events have been observed, and waits (bounded) while a
result is not yet stable.

Terms used throughout (the decision is written down in ``docs/recovery.md``):

* *Ready*: the Ready condition is ``"True"`` and the object is neither deleted nor being
  deleted. ``"False"``, ``"Unknown"`` and a missing condition are all *not Ready*.
* *Ready stretch*: a time interval during which the object stays Ready.
* *Stable*: a Ready stretch that lasted longer than ``hold_s`` (see :func:`stable_hold_s`);
  a stretch that ends in a relapse at or before ``start + hold_s``, or that is still running
  at ``until_mono`` but not yet for longer than ``hold_s``, is not (yet) stable.
* *Relapse*: a Ready -> not-Ready transition after the first Ready that follows the restore.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.model import Timings
    from bench.observe.watch import Event

#: A Ready signal: ``(mono, ready)`` at each change of state, oldest first, no two equal
#: states in a row.
_Signal = list[tuple[float, bool]]

#: kubelet renews its node Lease every ``nodeLeaseDurationSeconds * 0.25``:
#: kubernetes v1.32 pkg/kubelet/kubelet.go, ``nodeLeaseRenewIntervalFraction = 0.25`` and
#: ``renewInterval := leaseDuration * nodeLeaseRenewIntervalFraction`` handed to
#: k8s.io/component-helpers apimachinery/lease/controller.go (which adds a 4 % jitter).
#: KWOK's node Lease controller uses the same fraction (sigs.k8s.io/kwok
#: pkg/kwok/controllers/controller.go, ``renewInterval := leaseDuration / 4``).
LEASE_RENEW_FRACTION = 0.25


def lease_renew_interval_s(timings: Timings) -> float:
    """How often an agent renews its node Lease: a quarter of the Lease duration."""
    return timings.node_lease_duration_s * LEASE_RENEW_FRACTION


def stable_hold_s(timings: Timings) -> float:
    """How long a node must stay Ready to count as recovered: one node-monitor grace period
    and two monitor periods, plus one Lease renewal interval.

    The node lifecycle controller stamps a heartbeat when it sees it (at its next look, up to
    one monitor period after it arrived) and marks the node Unknown at its first look more
    than one grace period later (up to one more monitor period): a node whose status got
    through once but whose Lease does not keep up loses Ready again up to grace + 2 monitor
    periods after it turned Ready (kubernetes v1.32
    pkg/controller/nodelifecycle/node_lifecycle_controller.go, ``tryUpdateNodeHealth``:
    ``probeTimestamp = nc.now()``, then ``nc.now().After(probeTimestamp.Add(gracePeriod))``,
    run every ``nodeMonitorPeriod``). The extra renewal interval makes the stretch outlast
    that moment by one renewal that must have kept the node Ready, and covers the latency of
    the API write and the watch.
    """
    return (
        timings.node_monitor_grace_period_s
        + 2 * timings.node_monitor_period_s
        + lease_renew_interval_s(timings)
    )


def is_ready(event: Event) -> bool:
    """Ready condition ``"True"`` on an object that is neither deleted nor being deleted."""
    return event.ready == "True" and event.type != "DELETED" and not event.deleting


# --- the Ready signal of one object -------------------------------------------------------


def _signal(events: Iterable[Event]) -> _Signal:
    """The changes of state among ``events``, by arrival time (ties keep arrival order)."""
    points = sorted(((e.mono, is_ready(e)) for e in events), key=lambda p: p[0])
    out: _Signal = []
    for mono, ready in points:
        if not out or out[-1][1] != ready:
            out.append((mono, ready))
    return out


def _state_at(signal: _Signal, mono: float) -> bool | None:
    """The state after every change at or before ``mono``; None if none was seen yet."""
    state = None
    for at, ready in signal:
        if at > mono:
            break
        state = ready
    return state


def _stretches(signal: _Signal, start: float, until: float) -> list[tuple[float, float | None]]:
    """Ready stretches ``(begin, end)`` in ``[start, until]``; one running at ``start`` begins
    at ``start``; ``end`` is None for a stretch still running at ``until``."""
    out: list[tuple[float, float | None]] = []
    begin = start if _state_at(signal, start) else None
    for at, ready in signal:
        if at <= start or at > until:
            continue
        if ready and begin is None:
            begin = at
        elif not ready and begin is not None:
            out.append((begin, at))
            begin = None
    if begin is not None:
        out.append((begin, None))
    return out


def _first_stable(
    stretches: Sequence[tuple[float, float | None]], hold_s: float, until: float
) -> float | None:
    for begin, end in stretches:
        if (until if end is None else end) - begin > hold_s:
            return begin
    return None


def _relapses(signal: _Signal, after: float, before: float) -> int:
    """Ready -> not-Ready changes in ``(after, before]``, ``after`` being a Ready moment."""
    return sum(1 for at, ready in signal if after < at <= before and not ready)


def _longest_down(signal: _Signal, start: float, end: float) -> float:
    """The longest not-Ready stretch within ``[start, end]`` (one still running counts to
    ``end``)."""
    longest = 0.0
    down_since = None if _state_at(signal, start) else start
    for at, ready in signal:
        if at <= start or at > end:
            continue
        if not ready and down_since is None:
            down_since = at
        elif ready and down_since is not None:
            longest = max(longest, at - down_since)
            down_since = None
    if down_since is not None:
        longest = max(longest, end - down_since)
    return longest


def _check_window(cut: float, restore: float, until: float, hold_s: float) -> None:
    if not cut <= restore <= until:
        raise ValueError(
            f"expected cut <= restore <= until, got cut={cut}, restore={restore}, until={until}: "
            "pass monotonic times of the fault's start, its end, and the last observation"
        )
    if hold_s < 0:
        raise ValueError(f"hold_s must not be negative, got {hold_s}")


# --- one node -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """How one node came back after a fault, from its Ready events (monotonic seconds).

    ``first_ready_mono`` is the first moment after the restore at which the node is Ready
    once it has been seen not Ready (the restore itself when the node was Ready by then);
    ``stable_mono`` is the start of the first Ready stretch from the restore on that lasted
    longer than ``hold_s``. A node that never left Ready is first Ready at the restore and
    stable there once it has stayed Ready ``hold_s`` longer.
    """

    node: str
    cut_mono: float
    restore_mono: float
    until_mono: float
    hold_s: float
    already_not_ready: bool
    first_notready_mono: float | None
    first_ready_mono: float | None
    stable_mono: float | None
    relapses: int
    #: the longest single not-Ready stretch from the first not-Ready to the stable point (to
    #: ``until_mono`` while not stable): the node's taints, and the eviction timers of its
    #: pods, are cleared whenever it is Ready again, so this is what decides evictions
    longest_notready_s: float
    note: str = ""

    @property
    def stable(self) -> bool:
        return self.stable_mono is not None

    @property
    def detect_s(self) -> float | None:
        """Cut to the first not-Ready (None if the node never left Ready, or had already)."""
        if self.first_notready_mono is None or self.already_not_ready:
            return None
        return self.first_notready_mono - self.cut_mono

    @property
    def first_ready_s(self) -> float | None:
        """Restore to the first Ready (may relapse)."""
        return None if self.first_ready_mono is None else self.first_ready_mono - self.restore_mono

    @property
    def stable_recover_s(self) -> float | None:
        """Restore to the start of the Ready stretch that held."""
        return None if self.stable_mono is None else self.stable_mono - self.restore_mono

    @property
    def notready_span_s(self) -> float | None:
        """First not-Ready to the stable point: how long the control plane saw the node down,
        relapses included (0 for a node that never left Ready; None while not stable)."""
        if self.stable_mono is None:
            return None
        if self.first_notready_mono is None:
            return 0.0
        return self.stable_mono - self.first_notready_mono


def node_events(events: Iterable[Event], node: str) -> list[Event]:
    """The node-object events of ``node`` (pods and Leases carry the node's name too)."""
    return [e for e in events if e.kind == "node" and e.name == node]


def recovery(
    events: Iterable[Event],
    node: str,
    cut_mono: float,
    restore_mono: float,
    hold_s: float,
    until_mono: float,
) -> Recovery:
    """Judge the recovery of ``node`` from a fault ``[cut_mono, restore_mono]``, with the
    events observed up to ``until_mono`` (later ones are ignored).

    * first not-Ready: ``cut_mono`` itself when the node was already not Ready then
      (``already_not_ready``); otherwise the first change to not Ready after the cut and
      before the stable point (a detection may come after a short fault's restore);
    * first Ready: the first Ready moment at or after both the restore and the first
      not-Ready;
    * stable: the start of the first Ready stretch from the restore on that lasted longer than
      ``hold_s`` (judged against ``until_mono``: a stretch still running is stable only once
      ``until_mono`` is more than ``hold_s`` past its start);
    * relapses: Ready -> not-Ready changes after the first Ready and before the stable point
      (up to ``until_mono`` while not stable).
    """
    _check_window(cut_mono, restore_mono, until_mono, hold_s)
    signal = [p for p in _signal(node_events(events, node)) if p[0] <= until_mono]
    stable = _first_stable(_stretches(signal, restore_mono, until_mono), hold_s, until_mono)
    horizon = until_mono if stable is None else stable

    already = _state_at(signal, cut_mono) is False
    first_down: float | None = cut_mono if already else None
    if not already:
        first_down = next(
            (at for at, ready in signal if cut_mono < at <= horizon and not ready), None
        )

    from_mono = restore_mono if first_down is None else max(restore_mono, first_down)
    if _state_at(signal, from_mono):
        first_up: float | None = from_mono
    else:
        first_up = next(
            (at for at, ready in signal if from_mono < at <= until_mono and ready), None
        )

    relapses = 0 if first_up is None else _relapses(signal, first_up, horizon)
    longest = 0.0 if first_down is None else _longest_down(signal, first_down, horizon)
    notes = []
    if already:
        notes.append("already not Ready when the fault began")
    if first_down is None and stable is not None:
        notes.append("never left Ready")
    bound = f"(+{until_mono - restore_mono:.1f} s)"
    if first_up is None:
        notes.append(f"never Ready again within the bound {bound}")
    elif stable is None:
        if _state_at(signal, until_mono):
            last_up = max(at for at, ready in signal if ready and at <= until_mono)
            since = max(last_up, first_up)
            notes.append(
                f"Ready at +{since - restore_mono:.1f} s but not held for {hold_s:g} s "
                f"before the bound {bound}"
            )
        else:
            notes.append(
                f"Ready at +{first_up - restore_mono:.1f} s, then not Ready again at the "
                f"bound {bound}"
            )
    return Recovery(
        node=node,
        cut_mono=cut_mono,
        restore_mono=restore_mono,
        until_mono=until_mono,
        hold_s=hold_s,
        already_not_ready=already,
        first_notready_mono=first_down,
        first_ready_mono=first_up,
        stable_mono=stable,
        relapses=relapses,
        longest_notready_s=longest,
        note="; ".join(notes),
    )


def converge(
    events: Iterable[Event],
    node: str,
    first_cut_mono: float,
    last_restore_mono: float,
    hold_s: float,
    until_mono: float,
) -> Recovery:
    """A flapping link judged as one fault from its first cut to its last restore:
    ``converge_s`` is the result's ``stable_recover_s`` (the last restore to the node Ready and
    staying Ready), its ``relapses`` those after the last restore. Count the flaps of the
    whole window with :func:`notready_flaps` up to ``stable_mono``."""
    return recovery(events, node, first_cut_mono, last_restore_mono, hold_s, until_mono)


@dataclass(frozen=True)
class SiteRecovery:
    """Several nodes judged together: the site is back when its last node is stable."""

    nodes: tuple[Recovery, ...]
    restore_mono: float  # the last restore: the fault is over for the whole site
    first_ready_mono: float | None  # every node has been Ready at least once
    stable_mono: float | None  # every node stable (None while any is not)
    relapses: int  # summed over the nodes
    note: str = ""

    @property
    def first_ready_s(self) -> float | None:
        return None if self.first_ready_mono is None else self.first_ready_mono - self.restore_mono

    @property
    def stable_recover_s(self) -> float | None:
        return None if self.stable_mono is None else self.stable_mono - self.restore_mono


def site_recovery(recoveries: Iterable[Recovery]) -> SiteRecovery:
    """The whole site from its nodes' :class:`Recovery`: stable at the last node's stable
    point, measured from the last restore; None (with the nodes that are not in the note)
    while any node is not stable."""
    nodes = tuple(recoveries)
    if not nodes:
        raise ValueError("site_recovery needs the Recovery of at least one node")
    firsts = [r.first_ready_mono for r in nodes]
    stables = [r.stable_mono for r in nodes]
    missing = [f"{r.node} ({r.note})" if r.note else r.node for r in nodes if not r.stable]
    return SiteRecovery(
        nodes=nodes,
        restore_mono=max(r.restore_mono for r in nodes),
        first_ready_mono=None if None in firsts else max(m for m in firsts if m is not None),
        stable_mono=None if None in stables else max(m for m in stables if m is not None),
        relapses=sum(r.relapses for r in nodes),
        note=f"not stable: {', '.join(missing)}" if missing else "",
    )


# --- a set of pods --------------------------------------------------------------------------


@dataclass(frozen=True)
class PodsRecovery:
    """When a set of pods was all Ready after a restore, and when that held.

    The set is Ready at a moment when every pod in it is Ready (a pod not seen yet, or
    deleted, is not). ``relapses`` counts the set's changes from all Ready to not all Ready
    between its first Ready and its stable point (up to ``until_mono`` while not stable).
    """

    uids: tuple[str, ...]
    restore_mono: float
    until_mono: float
    hold_s: float
    first_ready_mono: float | None
    stable_mono: float | None
    relapses: int
    note: str = ""

    @property
    def first_ready_s(self) -> float | None:
        """``pods_first_ready_s``: restore to every pod Ready (0 if they were at the restore)."""
        return None if self.first_ready_mono is None else self.first_ready_mono - self.restore_mono

    @property
    def stable_s(self) -> float | None:
        """``pods_stable_s``: restore to every pod Ready and staying Ready for ``hold_s``."""
        return None if self.stable_mono is None else self.stable_mono - self.restore_mono


def pod_events(events: Iterable[Event], uids: Iterable[str]) -> dict[str, list[Event]]:
    """The pod events of each of ``uids`` (an empty list for a pod never seen)."""
    out: dict[str, list[Event]] = {uid: [] for uid in uids}
    for e in events:
        if e.kind == "pod" and e.uid in out:
            out[e.uid].append(e)
    return out


def pods_recovery(
    events_by_uid: Mapping[str, Sequence[Event]],
    restore_mono: float,
    hold_s: float,
    until_mono: float,
) -> PodsRecovery:
    """Judge a set of pods (e.g. the live pods of a workload after the restore, built with
    :func:`pod_events`) like :func:`recovery` judges a node: first moment at or after
    ``restore_mono`` when all are Ready, and the start of the first all-Ready stretch from
    the restore on that lasted longer than ``hold_s`` as of ``until_mono``."""
    _check_window(restore_mono, restore_mono, until_mono, hold_s)
    if not events_by_uid:
        raise ValueError("pods_recovery needs at least one pod to follow")
    signals = {
        uid: [p for p in _signal(evs) if p[0] <= until_mono] for uid, evs in events_by_uid.items()
    }
    times = sorted({at for sig in signals.values() for at, _ in sig})
    together: _Signal = []
    for at in times:
        ready = all(_state_at(sig, at) for sig in signals.values())
        if not together or together[-1][1] != ready:
            together.append((at, ready))

    stable = _first_stable(_stretches(together, restore_mono, until_mono), hold_s, until_mono)
    if _state_at(together, restore_mono):
        first_up: float | None = restore_mono
    else:
        first_up = next(
            (at for at, ready in together if restore_mono < at <= until_mono and ready), None
        )
    horizon = until_mono if stable is None else stable
    relapses = 0 if first_up is None else _relapses(together, first_up, horizon)

    note = ""
    bound = f"(+{until_mono - restore_mono:.1f} s)"
    if stable is None:
        names = {uid: evs[-1].name for uid, evs in events_by_uid.items() if evs}
        down = sorted(
            names.get(uid, f"uid {uid}")
            for uid, sig in signals.items()
            if not _state_at(sig, until_mono)
        )
        if first_up is None:
            note = f"never all Ready within the bound {bound}"
        elif not down:
            since = max(first_up, max(at for at, ready in together if ready))
            note = (
                f"all Ready at +{since - restore_mono:.1f} s but not held for {hold_s:g} s "
                f"before the bound {bound}"
            )
        else:
            note = f"all Ready at +{first_up - restore_mono:.1f} s, then not again {bound}"
        if down:
            note += f"; not Ready at the bound: {', '.join(down)}"
    return PodsRecovery(
        uids=tuple(events_by_uid),
        restore_mono=restore_mono,
        until_mono=until_mono,
        hold_s=hold_s,
        first_ready_mono=first_up,
        stable_mono=stable,
        relapses=relapses,
        note=note,
    )


# --- counts and gaps over a window -----------------------------------------------------------


def ready_since(events: Iterable[Event]) -> float | None:
    """Arrival of the last change to Ready among ``events`` (one object's), if it is Ready
    after the last of them; None otherwise."""
    signal = _signal(events)
    return signal[-1][0] if signal and signal[-1][1] else None


def notready_flaps(events: Iterable[Event], node: str, since_mono: float, until_mono: float) -> int:
    """Ready -> not-Ready changes of ``node`` in ``(since_mono, until_mono]``; the state at
    ``since_mono`` is taken from the events at or before it (not Ready if none)."""
    if until_mono < since_mono:
        raise ValueError(f"window ends ({until_mono}) before it starts ({since_mono})")
    signal = _signal(node_events(events, node))
    return sum(
        1
        for i, (at, ready) in enumerate(signal)
        if i > 0 and not ready and since_mono < at <= until_mono
    )


def heartbeat_gap_max(
    events: Iterable[Event], node: str, since_mono: float, until_mono: float
) -> float:
    """The longest stretch of ``[since_mono, until_mono]`` without a Lease renewal of ``node``
    arriving (the whole window when none did)."""
    if until_mono < since_mono:
        raise ValueError(f"window ends ({until_mono}) before it starts ({since_mono})")
    times = sorted(
        e.mono
        for e in events
        if e.kind == "lease" and e.node == node and since_mono <= e.mono <= until_mono
    )
    edges = [since_mono, *times, until_mono]
    return max(b - a for a, b in itertools.pairwise(edges))


def deleted_pods(
    events: Iterable[Event], uids: Iterable[str], since_mono: float, until_mono: float
) -> int:
    """How many of the pods ``uids`` were deleted or marked for deletion in the window."""
    wanted = set(uids)
    gone = {
        e.uid
        for e in events
        if e.kind == "pod"
        and e.uid in wanted
        and since_mono <= e.mono <= until_mono
        and (e.deleting or e.type == "DELETED")
    }
    return len(gone)
