"""degraded_link: the link stays up but slow: latency with jitter, or a bandwidth cap.

For a fixed window (scaled by the profile's grace period) the suite counts how often the node
flaps to not Ready, times a new pod pinned to the node from creation to Ready, and finds the
longest gap between node Lease renewals.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.faults import Fault, FaultKind
from bench.faults.kernel.rules import burst_bytes
from bench.model import Capability, EdgeNode
from bench.scenario import workload
from bench.scenario.run import ScenarioFactory

pytestmark = [pytest.mark.scenario, pytest.mark.requires(Capability.LINK_PROBE)]
SCENARIO = "degraded_link"
LATENCY = pytest.mark.requires(FaultKind.LATENCY)
BANDWIDTH = pytest.mark.requires(FaultKind.BANDWIDTH, "backend:toxiproxy")
KERNEL_BANDWIDTH = pytest.mark.requires(FaultKind.BANDWIDTH, "backend:kernel")
LOSS = pytest.mark.requires(FaultKind.LOSS)
#: below this share of lost packets a window may see no drop at all: the effect is not asserted
LOSS_ASSERTED_FROM = 5.0


@contextlib.contextmanager
def degrade(node: EdgeNode, kind: str, amount: float) -> Iterator[Fault | None]:
    if kind == "latency" and amount == 0:
        yield None  # the undegraded reference case
    elif kind == "latency":
        # Half the delay each way, so a round trip takes `amount` more, with 10 % jitter.
        with node.link.latency(amount / 2, jitter_ms=amount / 20) as fault:
            yield fault
    elif kind == "loss":
        with node.link.loss(amount) as fault:
            yield fault
    else:  # bandwidth, by the backend the case names
        backend = "kernel" if kind == "kernel-bandwidth" else "toxiproxy"
        with node.link.part(backend).bandwidth(amount) as fault:
            yield fault


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        pytest.param("latency", 0, id="latency-0ms"),
        pytest.param("latency", 200, id="latency-200ms", marks=[pytest.mark.smoke, LATENCY]),
        pytest.param("latency", 1000, id="latency-1s", marks=LATENCY),
        pytest.param("latency", 3000, id="latency-3s", marks=LATENCY),
        pytest.param("bandwidth", 8, id="bandwidth-8KBps", marks=BANDWIDTH),
        pytest.param("kernel-bandwidth", 8, id="kernel-bandwidth-8KBps", marks=KERNEL_BANDWIDTH),
        pytest.param("loss", 1, id="loss-1pct", marks=LOSS),
        pytest.param("loss", 5, id="loss-5pct", marks=LOSS),
        pytest.param("loss", 20, id="loss-20pct", marks=LOSS),
    ],
)
def test_degraded_link(
    scenario_run: ScenarioFactory, repeat: int, kind: str, amount: float
) -> None:
    unit = {"latency": "ms", "loss": "pct"}.get(kind, "KBps")
    case = f"{kind}-{amount:g}{unit}"
    run = scenario_run(SCENARIO, case, repeat)
    node = run.cluster.edge_nodes[0]
    run.expect(["notready_flaps", "heartbeat_gap_max_s", "pod_start_s"], [node.name])
    timings = run.cluster.timings
    window = 2 * timings.node_monitor_grace_period_s + timings.node_lease_duration_s
    probe_path = "/apis"  # a few KB of discovery data
    base_s, size = run.cluster.probe_link(node.name, probe_path)

    with (
        workload.namespace(run.cluster.api, "eb-degraded") as ns,
        degrade(node, kind, amount) as fault,
    ):
        if kind == "loss":
            pass  # its effect is checked on the kernel's drop counters at the window's end
        elif fault is not None:
            # The fault must have an effect: the same request through the link is slower by
            # about the added delay, or by the time the cap needs for its bytes.
            slow_s, _ = run.cluster.probe_link(node.name, probe_path)
            if kind == "latency":
                added = 0.8 * amount / 1000
            else:  # the kernel's token bucket lets its burst through at line rate first
                burst = burst_bytes(amount * 1000) if kind == "kernel-bandwidth" else 0
                added = 0.5 * max(0, size - burst) / (amount * 1000)
            assert slow_s >= base_s + added, (
                f"{case}: probe took {slow_s:.3f}s against {base_s:.3f}s undegraded; "
                f"expected at least {added:.3f}s more"
            )
        start = time.monotonic()  # the window opens once the fault is known to bite
        created = time.monotonic()
        workload.pod(run.cluster.api, ns, "probe", node.name)
        run.wait_pods_ready(ns, "probe", 1, node.name, run.recover_timeout + window)
        ready_at = run.ready_since(run.live_pods(ns, "probe", node.name)[0].uid)
        assert ready_at is not None
        time.sleep(max(0.0, window - (time.monotonic() - start)))
        end = time.monotonic()
        run.record("notready_flaps", run.notready_flaps(node.name, start, end), node=node.name)
        run.record(
            "heartbeat_gap_max_s", run.heartbeat_gap_max(node.name, start, end), node=node.name
        )
        run.record("pod_start_s", ready_at - created, node=node.name)
        if kind == "loss":
            kernel: Any = node.link.part("kernel")
            dropped = kernel.dropped_packets()
            assert dropped > 0 or amount < LOSS_ASSERTED_FROM, (
                f"{case}: the kernel dropped no packet of the link in {window:.0f}s"
            )
    run.assert_baseline()
