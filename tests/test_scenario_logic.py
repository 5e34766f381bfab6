"""The measurements scenarios derive from watch events, on hand-made event sequences."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from bench.errors import ClusterTimeoutError
from bench.observe.watch import ClusterObserver, Event, EventLog
from bench.results.records import EventJournal, Recorder, RunContext
from bench.scenario.run import ScenarioRun
from bench.scenario.workload import APP_LABEL

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def node(mono: float, ready: str, name: str = "edge-0", kind: str = "MODIFIED") -> Event:
    return Event("node", kind, name, name, T0, mono, ready=ready)


def lease(mono: float, renew: float, name: str = "edge-0", kind: str = "MODIFIED") -> Event:
    return Event("lease", kind, name, name, T0, mono, server_time=T0 + dt.timedelta(seconds=renew))


def pod(
    mono: float,
    uid: str,
    ready: str = "True",
    deleting: bool = False,
    kind: str = "MODIFIED",
    name: str | None = None,
) -> Event:
    return Event(
        "pod",
        kind,
        f"ns/{name or uid}",
        "edge-0",
        T0,
        mono,
        ready=ready,
        phase="Running",
        uid=uid,
        deleting=deleting,
        labels=((APP_LABEL, "app"),),
    )


@pytest.fixture
def observer() -> ClusterObserver:
    return ClusterObserver(client.ApiClient())  # never started: events are fed by hand


@pytest.fixture
def run(observer: ClusterObserver, tmp_path: Path) -> ScenarioRun:
    ctx = RunContext("r", "t", "kwok", "local", "fast")
    return ScenarioRun(
        cluster=SimpleNamespace(edge_nodes=[], CAPABILITIES=frozenset()),  # type: ignore[arg-type]
        observer=observer,
        recorder=Recorder(tmp_path, ctx),  # type: ignore[arg-type]
        journal=EventJournal(tmp_path, "r"),
        scenario="s",
        case="c",
        repeat=0,
    )


def feed(observer: ClusterObserver, *events: Event) -> None:
    handlers = {"node": observer._on_node, "lease": observer._on_lease, "pod": observer._on_pod}
    for e in events:
        handlers[e.kind](e, None)


def test_wait_for_sees_events_from_another_thread() -> None:
    log = EventLog()
    log.append(node(1.0, "True"))
    threading.Timer(0.1, lambda: log.append(node(5.0, "Unknown"))).start()
    got = log.wait_for(lambda e: e.ready == "Unknown", timeout=5, since_mono=2.0)
    assert got.mono == 5.0
    with pytest.raises(ClusterTimeoutError, match="no edge-0 Ready within"):
        log.wait_for(lambda e: e.ready == "Maybe", timeout=0.1, what="edge-0 Ready")


def test_a_relist_is_no_heartbeat(observer: ClusterObserver) -> None:
    feed(
        observer, lease(1.0, renew=1.0), lease(3.0, renew=3.0), lease(65.0, renew=3.0, kind="SYNC")
    )
    assert [e.mono for e in observer.events.snapshot()] == [1.0, 3.0]


def test_objects_deleted_while_not_watching_are_forgotten(observer: ClusterObserver) -> None:
    feed(observer, pod(1.0, "a"), pod(1.0, "b"))
    forget = observer._watchers[2].on_listed
    assert forget is not None
    forget({"ns/a"}, (T0, 9.0))
    assert set(observer.pods) == {"ns/a"}
    gone = observer.events.snapshot()[-1]
    assert (gone.type, gone.uid, gone.mono) == ("DELETED", "b", 9.0)


def test_node_events_only_on_ready_or_taint_changes(observer: ClusterObserver) -> None:
    feed(observer, node(1.0, "True"), node(2.0, "True"), node(3.0, "Unknown"))
    assert [e.ready for e in observer.events.snapshot()] == ["True", "Unknown"]


def test_notready_flaps_and_ready_since(observer: ClusterObserver, run: ScenarioRun) -> None:
    feed(
        observer,
        node(0.0, "True"),
        node(10.0, "Unknown"),
        node(12.0, "True"),
        node(20.0, "Unknown"),
        node(25.0, "True"),
        node(40.0, "Unknown"),
    )
    assert run.notready_flaps("edge-0", 5.0, 30.0) == 2
    assert run.notready_flaps("edge-0", 11.0, 30.0) == 1  # already not Ready at 11
    assert run.notready_flaps("edge-0", 0.0, 50.0) == 3
    feed(observer, node(41.0, "True"))
    assert run._ready_at("edge-0", 45.0)
    assert not run._ready_at("edge-0", 40.5)


def test_heartbeat_gap_includes_the_window_edges(
    observer: ClusterObserver, run: ScenarioRun
) -> None:
    feed(observer, lease(1.0, 1.0), lease(3.0, 3.0), lease(11.0, 11.0), lease(12.0, 12.0))
    assert run.heartbeat_gap_max("edge-0", 2.0, 12.5) == 8.0
    assert run.heartbeat_gap_max("edge-0", 12.5, 20.0) == 7.5  # no renewal at all


def test_deleted_pods_count_uids_once_within_the_window(
    observer: ClusterObserver, run: ScenarioRun
) -> None:
    feed(
        observer,
        pod(1.0, "a"),
        pod(1.0, "b"),
        pod(1.0, "c"),
        pod(5.0, "a", deleting=True),
        pod(5.5, "a", kind="DELETED"),
        pod(30.0, "b", kind="DELETED"),
    )
    assert run.deleted_pods({"a", "b", "c"}, 2.0, 20.0) == 1
    assert run.deleted_pods({"a", "b", "c"}, 2.0, 40.0) == 2


def test_settled_needs_a_heartbeat_after_turning_ready(
    observer: ClusterObserver, run: ScenarioRun
) -> None:
    feed(observer, lease(5.0, 5.0), node(1.0, "True"), node(8.0, "Unknown"), node(10.0, "True"))
    assert not run.settled("edge-0")  # Ready again, but no renewal since
    feed(observer, lease(12.0, 12.0))
    assert run.settled("edge-0")
    feed(observer, node(30.0, "Unknown"))
    assert not run.settled("edge-0")


READY_NOTE = (
    "; the node turned Ready during the reboot (its agent reached the control plane before "
    "the cut was back)"
)


@pytest.mark.parametrize(
    ("before", "during", "noted"),
    [
        ([], ["Unknown", "True"], True),  # lost, then reached its control plane
        (["Unknown"], ["True"], True),  # not Ready when the reboot began
        (["True"], ["True+taint", "Unknown"], False),  # a taint change while still Ready
        (["True"], ["Unknown", "False"], False),
        ([], ["True"], False),  # nothing says it was ever not Ready
    ],
)
def test_a_reboot_offline_notes_how_it_went_and_a_ready_seen_during_it(
    observer: ClusterObserver, tmp_path: Path, before: list[str], during: list[str], noted: bool
) -> None:
    import time

    from bench.model import Capability

    feed(observer, *(node(time.monotonic() - 10 + i, r) for i, r in enumerate(before)))

    def event(ready: str) -> Event:
        e = node(time.monotonic(), ready.removesuffix("+taint"))
        return replace(e, taints=("example.com/maintenance:NoSchedule",)) if "+" in ready else e

    def reboot(name: str) -> str:
        feed(observer, *(event(r) for r in during))
        return "rebooted: SSH down after 1.0s"

    rows: list[dict[str, object]] = []
    cluster = SimpleNamespace(
        edge_nodes=[],
        CAPABILITIES=frozenset({Capability.EDGE_POD_VIEW}),
        reboot=reboot,
        restart_agent=lambda name: pytest.fail("a reboot is not an agent restart"),
        edge_pods=lambda name: {"ns/a": "Running", "ns/b": "Running"},
    )
    run = ScenarioRun(
        cluster=cluster,  # type: ignore[arg-type]
        observer=observer,
        recorder=SimpleNamespace(record=lambda **row: rows.append(row)),  # type: ignore[arg-type]
        journal=EventJournal(tmp_path, "r"),
        scenario="s",
        case="c",
        repeat=0,
    )
    run.restart_agent_offline("edge-0", "edge_pods_running_after_reboot", ["ns/a", "ns/b"], True)
    (row,) = rows
    assert (row["value"], row["note"]) == (
        1.0,
        "rebooted: SSH down after 1.0s" + (READY_NOTE if noted else ""),
    )


def test_the_cut_phase_is_random_within_one_status_period_and_replayable() -> None:
    from types import SimpleNamespace

    from bench.scenario.template import cut_phase

    def run(repeat: int, run_id: str = "r1") -> Any:
        timings = SimpleNamespace(node_status_update_period_s=10.0)
        return SimpleNamespace(
            cluster=SimpleNamespace(timings=timings),
            journal=SimpleNamespace(run_id=run_id),
            scenario="control_plane_outage",
            case="all-nodes/blackhole",
            repeat=repeat,
        )

    phases = [cut_phase(run(r)) for r in range(40)]
    assert all(0.0 <= p < 10.0 for p in phases)
    assert cut_phase(run(3)) == phases[3]  # the same run id replays the same phases
    assert cut_phase(run(3, "r2")) != phases[3]
    assert min(phases) < 2.5 and max(phases) > 7.5  # spread over the period, not one point


class _OrderedFault:
    """A fault that says when it was removed (the outage template's restore order)."""

    def __init__(self, name: str, removed: list[str]) -> None:
        self.name, self.removed = name, removed
        self.started_mono: float | None = time.monotonic()
        self.ended_mono: float | None = None

    def __enter__(self) -> _OrderedFault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        if self.ended_mono is None:
            self.ended_mono = time.monotonic()
            self.removed.append(self.name)


def _outage_run(waited: list[str]) -> Any:
    def wait_node(node: str, **_: Any) -> Any:
        waited.append(node)
        return SimpleNamespace(mono=time.monotonic())

    timings = SimpleNamespace(node_status_update_period_s=0.01)
    return SimpleNamespace(
        cluster=SimpleNamespace(timings=timings),
        journal=SimpleNamespace(run_id="r"),
        scenario="control_plane_outage",
        case="all-nodes/blackhole",
        repeat=0,
        journal_event=lambda *a, **k: None,
        wait_node=wait_node,
        detect_timeout=1.0,
    )


@pytest.mark.parametrize("expect_not_ready", [True, False])
def test_an_outage_restores_in_cut_order_and_waits_for_not_ready_only_when_told(
    expect_not_ready: bool,
) -> None:
    from bench.scenario.template import outage

    removed: list[str] = []
    waited: list[str] = []
    nodes = [
        SimpleNamespace(
            name=n, link=SimpleNamespace(cut=lambda mode, n=n: _OrderedFault(n, removed))
        )
        for n in ("edge-0", "edge-1", "edge-2")
    ]
    with outage(_outage_run(waited), nodes, "blackhole", 0.0, expect_not_ready=expect_not_ready):  # type: ignore[arg-type]
        pass
    assert removed == ["edge-0", "edge-1", "edge-2"]  # first cut, first restored
    assert waited == (["edge-0", "edge-1", "edge-2"] if expect_not_ready else [])


def test_a_subcloud_never_seen_offline_fails_the_cut_it_keeps_its_own_kubernetes() -> None:
    from bench.scenario.subcloud import SubcloudWatch

    poller = SimpleNamespace(subcloud="subcloud1", wait_for=lambda *a: False)
    watch = SubcloudWatch(poller, offline_bound_s=0.1)  # type: ignore[arg-type]
    assert watch.own_kubernetes
    with pytest.raises(AssertionError, match="did not see subcloud:subcloud1 offline"):
        watch.wait_offline(time.monotonic())
    seen = SubcloudWatch(SimpleNamespace(subcloud="subcloud1", wait_for=lambda *a: True))  # type: ignore[arg-type]
    seen.wait_offline(time.monotonic())
    assert not SubcloudWatch(None, why="no system controller").own_kubernetes
