"""metadata_resync: the cloud changes while the edge node is offline; how fast, and how
completely, do edge and control plane agree again once the link is back?

While the link is down: a ConfigMap mounted by a pod on the node is updated, a Deployment
pinned to the node is scaled up, one of its pods is deleted, and a new pod is created for the
node. After the restore the suite waits (bounded) until every change is applied on both sides.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from bench.faults import CutMode
from bench.model import Capability
from bench.scenario import workload
from bench.scenario.run import ScenarioFactory, ScenarioRun

pytestmark = pytest.mark.scenario
SCENARIO = "metadata_resync"
REPLICAS = 2
POLL_S = 0.2  # the edge-side views are local endpoints and files: polled, not watched


def _edge_agrees(run: ScenarioRun, ns: str, node: str) -> bool | None:
    """Whether the pods the edge agent holds in ``ns`` are exactly the control plane's live
    pods of ``node`` in ``ns``; None when the agent has no edge-side view."""
    if Capability.EDGE_POD_VIEW not in run.cluster.CAPABILITIES:
        return None
    view = run.edge_view(node)
    held = {
        name for name, phase in view.items() if name.startswith(f"{ns}/") and phase == "Running"
    }
    live = run.observer.pods_where(
        lambda e: e.name.startswith(f"{ns}/") and e.node == node and not e.deleting
    )
    return held == {e.name for e in live}


@pytest.mark.parametrize(
    ("case", "narrow_kbps"),
    [
        pytest.param("cm-scale-delete-create", None, marks=pytest.mark.smoke),
        # the reconnect and resync through a 64 KB/s link (capped from just before the restore
        # until the node's recovery is confirmed): resync_s and resync bytes on a narrow link
        pytest.param("cm-scale-delete-create-64kBps", 64),
    ],
)
def test_metadata_resync(
    scenario_run: ScenarioFactory,
    repeat: int,
    cut_mode: CutMode,
    case: str,
    narrow_kbps: int | None,
) -> None:
    run = scenario_run(SCENARIO, f"{case}/{cut_mode}", repeat)
    cluster = run.cluster
    api = cluster.api
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    node = cluster.edge_nodes[0]
    run.expect(["lost_updates", "resync_s", "stale_status_s"], [node.name])

    with workload.namespace(api, "eb-resync") as ns:
        cm: Any = {"metadata": {"name": "settings"}, "data": {"mode": "before"}}
        core.create_namespaced_config_map(ns, cm)
        volume = {"name": "settings", "configMap": {"name": "settings"}}
        workload.pod(
            api,
            ns,
            "reader",
            node.name,
            extra={
                "volumes": [volume],
                "containers": [
                    {
                        "name": "app",
                        "image": workload.IMAGE,
                        "volumeMounts": [{"name": "settings", "mountPath": "/etc/s"}],
                    }
                ],
                "tolerations": workload.pod_spec(node.name, True)["tolerations"],
            },
        )
        workload.deployment(api, ns, "app", node.name, REPLICAS, tolerate_unreachable=True)
        run.wait_pods_ready(ns, "app", REPLICAS, node.name, run.recover_timeout)
        run.wait_pods_ready(ns, "reader", 1, node.name, run.recover_timeout)
        reader_uid = run.app_pods(ns, "reader")[0].uid
        victim = sorted(p.name for p in run.app_pods(ns, "app"))[0]

        with contextlib.ExitStack() as narrow:
            with run.outage([node], cut_mode, cluster.timings.short_outage_s) as outage:
                patch: Any = {"data": {"mode": "after"}}
                core.patch_namespaced_config_map("settings", ns, patch)
                scale: Any = {"spec": {"replicas": REPLICAS + 1}}
                apps.patch_namespaced_deployment_scale("app", ns, scale)
                core.delete_namespaced_pod(victim.split("/", 1)[1], ns, grace_period_seconds=0)
                workload.pod(api, ns, "newcomer", node.name)
                if narrow_kbps:  # in place before the restore: the reconnect goes through it
                    narrow.enter_context(node.link.bandwidth(narrow_kbps))
            fault = outage.fault(node.name)
            restored = fault.ended_mono
            assert restored is not None and fault.started_mono is not None

            deadline = restored + 2 * run.recover_timeout
            done: dict[str, float] = {}
            unsupported: set[str] = set()

            # Control-plane side, from watch events: the scale-up and the new pod, Ready.
            for name, app, count in (("scale", "app", REPLICAS + 1), ("create", "newcomer", 1)):
                try:
                    run.wait_pods_ready(
                        ns, app, count, node.name, max(0.0, deadline - time.monotonic())
                    )
                except AssertionError:
                    continue
                times = [run.ready_since(p.uid) for p in run.live_pods(ns, app, node.name)]
                done[name] = max(t for t in times if t is not None)

            # Edge side, polled (local endpoints and files have no watch): the mounted ConfigMap
            # content, and the agent holding exactly the control plane's pods (so the pod deleted
            # while offline is gone from the edge too).
            def configmap_applied() -> bool | None:
                if Capability.EDGE_VOLUME_VIEW not in cluster.CAPABILITIES:
                    return None
                text = cluster.edge_volume_file(node.name, reader_uid, "settings", "mode")
                return text == "after"

            edge_checks: dict[str, Callable[[], bool | None]] = {
                "configmap": configmap_applied,
                "edge_view": lambda: _edge_agrees(run, ns, node.name),
            }
            while time.monotonic() < deadline and len(done) + len(unsupported) < 4:
                for name, check in edge_checks.items():
                    if name in done or name in unsupported:
                        continue
                    result = check()
                    if result is None:
                        unsupported.add(name)
                    elif result:
                        done[name] = time.monotonic()
                time.sleep(POLL_S)

            rec = run.node_recovery(node.name, fault.started_mono, restored)
            narrow.close()  # the link's full width back once the node is judged
            run.record_recovery(rec)
            run.assert_baseline()
            lost = sorted({"scale", "create", *edge_checks} - set(done) - unsupported)
            note = (
                f"not applied within {deadline - restored:.0f}s: {', '.join(lost)}" if lost else ""
            )
            if unsupported:
                note = (note + "; " if note else "") + (
                    f"no edge-side view for: {', '.join(sorted(unsupported))}"
                )
            run.record("lost_updates", len(lost), node=node.name, note=note)
            run.record(
                "resync_s",
                max(done.values()) - restored if not lost else None,
                node=node.name,
                note=note or f"edge views polled every {POLL_S}s",
            )
            stale = run.pods_recovery(ns, "reader", node.name, restored)
            run.record(
                "stale_status_s",
                stale.stable_s,
                node=node.name,
                note="restore until the untouched pod's status is Ready and stays Ready"
                + (f" ({stale.note})" if stale.note else ""),
            )
