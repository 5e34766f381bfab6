"""The node lifecycle controller's zone rule (bench.observe.zone_rule): the pure rule, and
measured evictions against it on a real 5-node kwok cluster (fast profile) where one node,
then more than the threshold share of the nodes, is cut."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bench.distros.local.controlplane import FAST
from bench.distros.local.kwok import KwokLocal
from bench.model import ClusterSpec
from bench.observe import timeline, zone_rule
from bench.observe.watch import ClusterObserver, Event
from bench.scenario import workload
from edgebench_fixtures.cluster import require_available

RULE = replace(
    FAST,
    unhealthy_zone_threshold=0.55,
    large_cluster_size_threshold=50,
    node_eviction_rate=0.1,
    secondary_node_eviction_rate=0.01,
)
TAINT = "node.kubernetes.io/unreachable:NoExecute"
NODES = 5


@pytest.mark.parametrize(
    ("not_ready", "total", "state", "rate"),
    [
        (0, 5, "normal", 0.1),
        (2, 2, "full", 0.0),  # every node: evictions stop
        (2, 3, "normal", 0.1),  # more than the share, but not more than two nodes
        (3, 5, "partial", 0.0),  # 60 % >= 55 % in a small cluster: evictions stop
        (2, 5, "normal", 0.1),
        (30, 51, "partial", 0.01),  # a large cluster: the secondary rate
        (28, 51, "normal", 0.1),  # 54.9 % < 55 %
    ],
)
def test_rule(not_ready: int, total: int, state: str, rate: float) -> None:
    assert zone_rule.zone_state(not_ready, total, 0.55) == state
    assert zone_rule.eviction_rate(not_ready, total, RULE)[0] == rate


def test_rule_without_the_flags_says_so() -> None:
    with pytest.raises(ValueError, match="flags were not read"):
        zone_rule.eviction_rate(1, 5, FAST)


@pytest.fixture(scope="module")
def kwok(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KwokLocal]:
    require_available(KwokLocal)
    spec = ClusterSpec(
        name="t-zone", edge_nodes=NODES, profile="fast", state_root=tmp_path_factory.mktemp("c")
    )
    with KwokLocal(spec) as cluster:
        yield cluster


def _tainted(events: list[Event], nodes: list[str], until: float) -> set[str]:
    """The nodes whose last event at or before ``until`` carries the unreachable taint."""
    last: dict[str, Event] = {}
    for e in events:
        if e.kind == "node" and e.node in nodes and e.mono <= until:
            last[e.node] = e
    return {n for n, e in last.items() if TAINT in e.taints}


@pytest.mark.integration
@pytest.mark.cluster
@pytest.mark.parametrize("cut", [1, 3])
def test_measured_evictions_follow_the_zone_rule(kwok: KwokLocal, cut: int) -> None:
    t = kwok.timings
    assert t.unhealthy_zone_threshold is not None  # read from the controller's FLAG lines
    names = [n.name for n in kwok.edge_nodes]
    victims = names[:cut]
    final_rate, why = zone_rule.eviction_rate(cut, NODES, t)
    with ClusterObserver(kwok.api).running() as obs, workload.namespace(kwok.api, "eb-zone") as ns:
        for name in names:
            workload.pod(kwok.api, ns, f"p-{name}", name)
        obs.events.wait_until(
            lambda: (
                len([p for p in obs.pods_where(lambda e: e.name.startswith(ns)) if p.ready])
                == NODES
            ),
            60,
            what="one Ready pod per node",
        )
        pods = {p.node: p.uid for p in obs.pods_where(lambda e: e.name.startswith(ns))}
        with contextlib.ExitStack() as stack:
            faults = [stack.enter_context(kwok.node(v).link.cut(mode="reset")) for v in victims]
            cut_mono = min(f.started_mono or 0 for f in faults)
            obs.events.wait_until(
                lambda: all(obs.node_ready(v) != "True" for v in victims),
                2 * t.detect_bound_s + 10,
                what="every cut node not Ready",
            )
            # the controller acts on the zone's state within a monitor period or two
            judged = time.monotonic() + 2 * t.node_monitor_period_s
            time.sleep(max(0.0, cut_mono + t.evict_bound_s + 4 - time.monotonic()))
            end = time.monotonic()
        events = obs.events.snapshot(cut_mono - 1)
        tainted_when_judged = _tainted(events, victims, judged)
        tainted_at_end = _tainted(events, victims, end)
        evicted = {n for n in names if timeline.deleted_pods(events, [pods[n]], cut_mono, end) == 1}
        # back to baseline for the next case
        obs.events.wait_until(
            lambda: all(obs.node_ready(n) == "True" for n in names), 60, what="all Ready again"
        )

    assert evicted <= set(victims), "a pod of a node that was never cut was evicted"
    assert evicted <= tainted_at_end, "an eviction without the unreachable taint"
    if final_rate > 0:  # a normal zone: the cut node is tainted and its pod evicted
        assert tainted_at_end == set(victims), why
        assert evicted == set(victims), why
    else:  # evictions stop: no node is tainted once the zone is judged past the threshold;
        # only nodes seen not Ready while the zone was still normal (at most two) may be
        assert tainted_at_end == tainted_when_judged, why
        assert len(tainted_at_end) <= 2, why
