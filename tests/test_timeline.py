"""Recovery arithmetic on golden event sequences (monotonic seconds; the restore is at 100)."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from bench.distros.local.controlplane import FAST, KUBELET_FAST
from bench.observe.timeline import (
    Recovery,
    converge,
    deleted_pods,
    heartbeat_gap_max,
    is_ready,
    lease_renew_interval_s,
    notready_flaps,
    pod_events,
    pods_recovery,
    ready_since,
    recovery,
    site_recovery,
    stable_hold_s,
)
from bench.observe.watch import Event

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CUT, RESTORE, HOLD = 80.0, 100.0, 10.0


def node(mono: float, ready: str | None, name: str = "edge-0", kind: str = "MODIFIED") -> Event:
    return Event("node", kind, name, name, T0, mono, ready=ready)


def lease(mono: float, name: str = "edge-0") -> Event:
    return Event("lease", "MODIFIED", name, name, T0, mono)


def pod(
    mono: float, uid: str, ready: str = "True", deleting: bool = False, kind: str = "MODIFIED"
) -> Event:
    return Event(
        "pod", kind, f"ns/{uid}", "edge-0", T0, mono, ready=ready, uid=uid, deleting=deleting
    )


def judge(*events: Event, until: float, cut: float = CUT, hold: float = HOLD) -> Recovery:
    return recovery(events, "edge-0", cut, RESTORE, hold, until)


# --- the hold period ------------------------------------------------------------------------


def test_hold_is_grace_and_two_monitor_periods_plus_one_lease_renewal() -> None:
    assert lease_renew_interval_s(FAST) == FAST.node_lease_duration_s / 4
    assert stable_hold_s(FAST) == 8 + 2 * 1 + 2  # kwok agents in the fast profile
    assert stable_hold_s(KUBELET_FAST) == 16 + 2 * 1 + 10  # kubelet agents: 40 s Lease
    # The issue's kwok run lost Ready again 10.0 s after its first Ready (grace 8 s, monitor
    # 1 s: the controller saw the Ready up to 1 s late and looked again up to 1 s late):
    # a hold of grace + one renewal (also 10 s) would be a coin toss on that relapse.
    assert stable_hold_s(FAST) > 14.7 - 4.7


# --- one node: golden sequences ------------------------------------------------------------


def test_no_relapse() -> None:
    r = judge(node(0, "True"), node(88, "Unknown"), node(104.7, "True"), until=130)
    assert (r.first_notready_mono, r.first_ready_mono, r.stable_mono) == (88, 104.7, 104.7)
    assert r.first_ready_s == r.stable_recover_s == pytest.approx(4.7)
    assert r.relapses == 0
    assert r.detect_s == 8
    assert r.notready_span_s == pytest.approx(16.7)
    assert not r.already_not_ready and r.stable and r.note == ""


def test_the_issue_example_ready_for_a_moment_is_not_recovered() -> None:
    # Ready at +4.7 s, Unknown at +14.7 s (the Lease did not keep up), Ready for good at +44.
    r = judge(
        node(0, "True"),
        node(88, "Unknown"),
        node(104.7, "True"),
        node(114.7, "Unknown"),
        node(144.0, "True"),
        until=160,
    )
    assert r.first_ready_s == pytest.approx(4.7)
    assert r.stable_recover_s == 44.0
    assert r.relapses == 1
    assert r.notready_span_s == 144.0 - 88
    assert r.longest_notready_s == pytest.approx(144.0 - 114.7)  # the relapse, not the cut


def test_two_relapses() -> None:
    r = judge(
        node(0, "True"),
        node(88, "False"),
        node(104, "True"),
        node(114, "Unknown"),
        node(120, "True"),
        node(125, "False"),
        node(130, "True"),
        until=150,
    )
    assert (r.first_ready_s, r.stable_recover_s, r.relapses) == (4, 30, 2)
    assert r.notready_span_s == 130 - 88
    assert r.longest_notready_s == 104 - 88


def test_relapse_at_exactly_the_hold_counts() -> None:
    # A lease that never renews loses Ready one grace period after the status got through:
    # the stretch must last longer than the hold, not just as long.
    r = judge(
        node(0, "True"), node(88, "Unknown"), node(104, "True"), node(114, "Unknown"), until=200
    )
    assert r.stable_mono is None and r.relapses == 1
    assert r.note == "Ready at +4.0 s, then not Ready again at the bound (+100.0 s)"


def test_relapse_past_the_observation_bound_is_not_yet_stable() -> None:
    events = (
        node(0, "True"),
        node(88, "Unknown"),
        node(104.7, "True"),
        node(114.7, "Unknown"),
        node(144.0, "True"),
    )
    r = recovery(events, "edge-0", CUT, RESTORE, HOLD, until_mono=150)
    assert r.stable_mono is None and r.stable_recover_s is None and r.notready_span_s is None
    assert r.first_ready_s == pytest.approx(4.7)
    assert r.relapses == 1
    assert r.note == "Ready at +44.0 s but not held for 10 s before the bound (+50.0 s)"
    assert recovery(events, "edge-0", CUT, RESTORE, HOLD, until_mono=154.0).stable_mono is None
    later = recovery(events, "edge-0", CUT, RESTORE, HOLD, until_mono=154.5)
    assert later.stable_recover_s == 44.0 and later.relapses == 1


def test_ready_one_second_before_the_bound_is_not_stable() -> None:
    r = judge(node(0, "True"), node(88, "Unknown"), node(119, "True"), until=120)
    assert r.first_ready_s == 19 and r.stable_mono is None
    assert "not held for 10 s" in r.note


def test_ready_that_never_came() -> None:
    r = judge(node(0, "True"), node(88, "Unknown"), until=200)
    assert r.first_notready_mono == 88
    assert r.first_ready_mono is None and r.stable_mono is None and r.relapses == 0
    assert r.notready_span_s is None
    assert r.longest_notready_s == 200 - 88  # still running at the bound
    assert r.note == "never Ready again within the bound (+100.0 s)"


def test_already_not_ready_when_the_fault_began() -> None:
    r = judge(node(0, "True"), node(50, "False"), node(105, "True"), until=130)
    assert r.already_not_ready
    assert r.first_notready_mono == CUT and r.detect_s is None
    assert (r.first_ready_s, r.stable_recover_s) == (5, 5)
    assert r.notready_span_s == r.longest_notready_s == 105 - CUT
    assert r.note == "already not Ready when the fault began"


def test_never_left_ready() -> None:
    events = (node(0, "True"), node(50, "True"))
    r = recovery(events, "edge-0", CUT, RESTORE, HOLD, until_mono=115)
    assert r.first_notready_mono is None and r.detect_s is None
    assert (r.first_ready_s, r.stable_recover_s, r.notready_span_s) == (0, 0, 0)
    assert r.relapses == 0 and r.longest_notready_s == 0 and r.note == "never left Ready"
    early = recovery(events, "edge-0", CUT, RESTORE, HOLD, until_mono=105)
    assert early.first_ready_s == 0 and early.stable_mono is None
    assert early.note == "Ready at +0.0 s but not held for 10 s before the bound (+5.0 s)"


def test_a_short_cut_detected_after_the_restore() -> None:
    r = judge(node(0, "True"), node(103, "Unknown"), node(106, "True"), until=130, cut=95)
    assert (r.first_notready_mono, r.first_ready_mono, r.stable_mono) == (103, 106, 106)
    assert r.detect_s == 8 and r.relapses == 0 and r.notready_span_s == 3


def test_not_ready_after_the_stable_point_is_another_story() -> None:
    r = judge(node(0, "True"), node(150, "Unknown"), until=200)
    assert r.stable_recover_s == 0 and r.first_notready_mono is None and r.relapses == 0


def test_ready_again_before_the_restore_counts_from_the_restore() -> None:
    r = judge(node(0, "True"), node(88, "Unknown"), node(95, "True"), until=120)
    assert (r.first_notready_mono, r.first_ready_s, r.stable_recover_s) == (88, 0, 0)


def test_only_this_nodes_events_up_to_the_bound_count() -> None:
    r = judge(
        node(104, "True"),  # out of order in the list: arrival time decides
        node(0, "True"),
        node(88, "Unknown"),
        node(90, "True", name="edge-1"),
        pod(95, "p", ready="True"),  # a pod on edge-0 is not the node
        Event("lease", "MODIFIED", "edge-0", "edge-0", T0, 96.0),
        node(125, "Unknown"),  # after the bound
        until=120,
    )
    assert (r.first_ready_mono, r.stable_mono, r.relapses) == (104, 104, 0)


def test_a_deleted_node_is_not_ready() -> None:
    assert not is_ready(node(1, "True", kind="DELETED"))
    r = judge(node(0, "True"), node(85, "True", kind="DELETED"), node(103, "True"), until=130)
    assert (r.first_notready_mono, r.first_ready_s) == (85, 3)


def test_a_window_out_of_order_is_refused() -> None:
    with pytest.raises(ValueError, match="cut <= restore <= until"):
        recovery([], "edge-0", 100, 90, HOLD, 120)
    with pytest.raises(ValueError, match="cut <= restore <= until"):
        recovery([], "edge-0", 80, 100, HOLD, 99)
    with pytest.raises(ValueError, match="hold_s"):
        recovery([], "edge-0", 80, 100, -1, 120)


# --- one node: properties over generated sequences ----------------------------------------


def _sequences(count: int) -> list[list[Event]]:
    """Alternating Ready / not-Ready stretches of 1-25 s (integer seconds, deterministic)."""
    rng = random.Random(15)
    out = []
    for _ in range(count):
        events, t, ready = [], float(rng.randint(0, 85)), rng.random() < 0.8
        events.append(node(0, "True"))
        while t < 200:
            events.append(node(t, "True" if ready else rng.choice(["False", "Unknown"])))
            t += rng.randint(1, 25)
            ready = not ready
        out.append(events)
    return out


@pytest.mark.parametrize("until", [105.0, 130.0, 170.0, 200.0])
def test_properties_of_the_stable_point_and_the_relapses(until: float) -> None:
    for events in _sequences(200):
        r = recovery(events, "edge-0", CUT, RESTORE, HOLD, until)
        seen = sorted((e for e in events if e.mono <= until), key=lambda e: e.mono)

        def ready_at(t: float, seen: list[Event] = seen) -> bool:
            states = [is_ready(e) for e in seen if e.mono <= t]
            return bool(states) and states[-1]

        downs = [e.mono for e in seen if not is_ready(e)]
        if r.stable_mono is not None:
            # Ready from the stable point on, for longer than the hold (or up to the bound).
            assert ready_at(r.stable_mono)
            assert not [m for m in downs if r.stable_mono < m <= r.stable_mono + HOLD]
            assert until - r.stable_mono > HOLD or any(m > r.stable_mono + HOLD for m in downs)
            assert r.first_ready_mono is not None
            assert RESTORE <= r.first_ready_mono <= r.stable_mono
        # No earlier Ready stretch from the restore on lasted longer than the hold.
        end = until if r.stable_mono is None else r.stable_mono
        starts = [RESTORE] if ready_at(RESTORE) and end > RESTORE else []
        starts += [
            b.mono
            for a, b in itertools.pairwise(seen)
            if RESTORE < b.mono < end and is_ready(b) and not is_ready(a)
        ]
        for s in starts:
            next_down = min((m for m in downs if m > s), default=until)
            assert min(next_down, until) - s <= HOLD
        # Relapses: every Ready -> not-Ready transition after the first Ready, before stable.
        if r.first_ready_mono is not None:
            first = r.first_ready_mono
            transitions = [
                b.mono
                for a, b in itertools.pairwise(seen)
                if is_ready(a) and not is_ready(b) and first < b.mono <= end
            ]
            assert r.relapses == len(transitions)
        if r.stable_mono is not None and r.first_notready_mono is not None:
            assert r.notready_span_s == r.stable_mono - r.first_notready_mono
            assert 0 < r.longest_notready_s <= r.notready_span_s


# --- several nodes, flapping links ----------------------------------------------------------


def test_the_site_is_back_when_its_last_node_is_stable() -> None:
    a_events = [node(0, "True", "a"), node(88, "Unknown", "a"), node(103, "True", "a")]
    a = recovery(a_events, "a", CUT, RESTORE, HOLD, 140)
    b_events = [
        node(0, "True", "b"),
        node(88, "Unknown", "b"),
        node(104, "True", "b"),
        node(110, "Unknown", "b"),
        node(121, "True", "b"),
    ]
    b = recovery(b_events, "b", CUT, 100.5, HOLD, 140)
    site = site_recovery([a, b])
    assert (site.restore_mono, site.first_ready_mono, site.stable_mono) == (100.5, 104, 121)
    assert site.stable_recover_s == 20.5 and site.relapses == 1 and site.note == ""
    early_b = recovery(b_events, "b", CUT, 100.5, HOLD, 125)
    waiting = site_recovery([a, early_b])
    assert waiting.stable_mono is None and waiting.stable_recover_s is None
    assert waiting.note.startswith("not stable: b (Ready at +20.5 s but not held")
    with pytest.raises(ValueError, match="at least one node"):
        site_recovery([])


def test_converge_is_stable_after_the_last_restore() -> None:
    events = [
        node(0, "True"),
        node(10, "Unknown"),  # first flap
        node(22, "True"),
        node(40, "Unknown"),  # second flap
        node(62, "True"),  # last restore at 60
        node(71, "Unknown"),  # relapse after the last restore
        node(80, "True"),
    ]
    r = converge(events, "edge-0", 2, last_restore_mono=60, hold_s=HOLD, until_mono=100)
    assert (r.first_ready_s, r.stable_recover_s, r.relapses) == (2, 20, 1)
    assert r.notready_span_s == 80 - 10
    assert notready_flaps(events, "edge-0", 2, r.stable_mono or 100) == 3


# --- pods -----------------------------------------------------------------------------------


def test_pods_relapsing_with_their_node() -> None:
    events = [
        pod(1, "a"),
        pod(1, "b"),
        pod(90, "a", "False"),
        pod(90, "b", "False"),
        pod(103, "a"),
        pod(105, "b"),
        pod(110, "a", "False"),  # the node relapsed: both marked not Ready
        pod(110, "b", "False"),
        pod(125, "a"),
        pod(126, "b"),
    ]
    r = pods_recovery(pod_events(events, ["a", "b"]), RESTORE, HOLD, until_mono=150)
    assert (r.first_ready_s, r.stable_s) == (5, 26)
    assert r.relapses == 1  # the set relapsed once, not once per pod
    assert r.note == ""
    waiting = pods_recovery(pod_events(events, ["a", "b"]), RESTORE, HOLD, until_mono=130)
    assert waiting.stable_s is None and waiting.relapses == 1
    assert waiting.note == "all Ready at +26.0 s but not held for 10 s before the bound (+30.0 s)"


def test_pods_ready_through_the_restore_are_stable_at_it() -> None:
    r = pods_recovery(pod_events([pod(1, "a"), pod(2, "b")], ["a", "b"]), RESTORE, HOLD, 120)
    assert (r.first_ready_s, r.stable_s, r.relapses) == (0, 0, 0)


def test_pods_missing_or_being_deleted_are_not_ready() -> None:
    events = [pod(1, "a"), pod(1, "b"), pod(95, "b", deleting=True)]
    r = pods_recovery(pod_events(events, ["a", "b", "c"]), RESTORE, HOLD, until_mono=200)
    assert r.first_ready_mono is None and r.stable_mono is None
    assert (
        r.note == "never all Ready within the bound (+100.0 s); not Ready at the bound: ns/b, uid c"
    )
    events += [pod(104, "c")]  # c was recreated; b never came back
    late = pods_recovery(pod_events(events, ["a", "c"]), RESTORE, HOLD, until_mono=200)
    assert (late.first_ready_s, late.stable_s) == (4, 4)


def test_pods_relapsed_and_not_back_at_the_bound() -> None:
    events = [pod(1, "a"), pod(90, "a", "False"), pod(104, "a"), pod(112, "a", "False")]
    r = pods_recovery(pod_events(events, ["a"]), RESTORE, HOLD, until_mono=150)
    assert (r.first_ready_s, r.stable_s, r.relapses) == (4, None, 1)
    assert r.note == "all Ready at +4.0 s, then not again (+50.0 s); not Ready at the bound: ns/a"
    with pytest.raises(ValueError, match="at least one pod"):
        pods_recovery({}, RESTORE, HOLD, 150)


# --- counts and gaps over a window (moved from ScenarioRun) ---------------------------------


def test_notready_flaps_and_ready_since() -> None:
    events = [
        node(0.0, "True"),
        node(10.0, "Unknown"),
        node(12.0, "True"),
        node(20.0, "Unknown"),
        node(25.0, "True"),
        node(40.0, "Unknown"),
        node(15.0, "Unknown", name="edge-1"),
    ]
    assert notready_flaps(events, "edge-0", 5.0, 30.0) == 2
    assert notready_flaps(events, "edge-0", 11.0, 30.0) == 1  # already not Ready at 11
    assert notready_flaps(events, "edge-0", 0.0, 50.0) == 3
    assert notready_flaps(events, "edge-0", 10.0, 19.0) == 0  # a change at the start is before
    assert ready_since([e for e in events if e.name == "edge-0"]) is None
    assert ready_since([*events[:6], node(41.0, "True")]) == 41.0
    assert ready_since([node(1.0, "True"), node(2.0, "True")]) == 1.0
    with pytest.raises(ValueError, match="before it starts"):
        notready_flaps(events, "edge-0", 30.0, 5.0)


def test_heartbeat_gap_includes_the_window_edges() -> None:
    events = [lease(1.0), lease(3.0), lease(11.0), lease(12.0), lease(5.0, name="edge-1")]
    assert heartbeat_gap_max(events, "edge-0", 2.0, 12.5) == 8.0
    assert heartbeat_gap_max(events, "edge-0", 12.5, 20.0) == 7.5  # no renewal at all
    with pytest.raises(ValueError, match="before it starts"):
        heartbeat_gap_max(events, "edge-0", 20.0, 12.5)


def test_deleted_pods_count_uids_once_within_the_window() -> None:
    events = [
        pod(1.0, "a"),
        pod(1.0, "b"),
        pod(1.0, "c"),
        pod(5.0, "a", deleting=True),
        pod(5.5, "a", kind="DELETED"),
        pod(30.0, "b", kind="DELETED"),
        pod(6.0, "z", kind="DELETED"),  # not one of ours
    ]
    assert deleted_pods(events, {"a", "b", "c"}, 2.0, 20.0) == 1
    assert deleted_pods(events, {"a", "b", "c"}, 2.0, 40.0) == 2
