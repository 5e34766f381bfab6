"""Workloads the scenarios place on edge nodes: a namespace per test and Deployments pinned
to one node, with or without a toleration that keeps pods bound while the node is
unreachable."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client

log = logging.getLogger(__name__)

APP_LABEL = "edgebench.io/app"
IMAGE = "registry.invalid/edgebench/pause:1"  # never pulled: fake runtimes run nothing
_image = IMAGE


def use_image(image: str | None) -> None:
    """The image of every workload from now on (a real runtime's, pre-pulled on the nodes:
    a lab's ``workload_image``); None: back to the fake runtimes' stand-in."""
    global _image
    _image = image or IMAGE


#: how long leaving :func:`namespace` waits for the namespace to be gone
NAMESPACE_GONE_S = 120.0


@contextlib.contextmanager
def namespace(
    api: client.ApiClient, prefix: str, gone_s: float = NAMESPACE_GONE_S, poll_s: float = 0.25
) -> Iterator[str]:
    """A fresh namespace, deleted afterwards and waited for until it is gone (at most
    ``gone_s``; never raises on teardown).

    Why wait: the namespace controller deletes the namespace's pods a few seconds after the
    call, and each deletion is sent to the agent of the pod's node. Left running, that teardown
    landed inside the next case's cut (4.2 to 4.8 s after it on the local provider, 0.9 to 2.6 s
    on the remote one, by how long each takes to set a case up), where it is the first data the
    cut drops towards every node at once: TCP then retransmits it on exponential backoff, and
    the stream to the agent resumed only about 26.5 s after that drop (the retransmission after
    a 21 s cut), so the previous case decided when the next case's nodes recovered.
    """
    core = client.CoreV1Api(api)
    name = f"{prefix[:40].rstrip('-')}-{os.urandom(3).hex()}".replace("_", "-").lower()
    body: Any = {"metadata": {"name": name, "labels": {"edgebench.io/test": "1"}}}
    core.create_namespace(body)  # the client takes plain dicts as bodies
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, grace_period_seconds=0)
            _wait_gone(core, name, gone_s, poll_s)
        except Exception as exc:  # teardown never hides the test's own error
            log.warning("could not delete namespace %s: %s", name, exc)


def _wait_gone(core: client.CoreV1Api, name: str, gone_s: float, poll_s: float) -> None:
    """Return once namespace ``name`` is gone (404), or after ``gone_s`` with a warning."""
    deadline = time.monotonic() + gone_s
    while True:
        try:
            core.read_namespace(name)
        except client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        if time.monotonic() >= deadline:
            log.warning(
                "namespace %s still there %.0fs after its deletion; the next case may see "
                "its teardown",
                name,
                gone_s,
            )
            return
        time.sleep(poll_s)


def pod_spec(node: str, tolerate_unreachable: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/hostname": node},
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": _image, "imagePullPolicy": "IfNotPresent"}],
    }
    if tolerate_unreachable:
        # No tolerationSeconds: bound for as long as the node is unreachable or not ready.
        spec["tolerations"] = [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        ]
    return spec


def deployment(
    api: client.ApiClient,
    ns: str,
    name: str,
    node: str,
    replicas: int,
    tolerate_unreachable: bool = False,
    labels: dict[str, str] | None = None,
) -> None:
    """A Deployment of ``replicas`` pods pinned to ``node``."""
    match = {APP_LABEL: name}
    body: Any = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {"labels": {**match, **(labels or {})}},
                "spec": pod_spec(node, tolerate_unreachable),
            },
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(ns, body)


def pod(
    api: client.ApiClient, ns: str, name: str, node: str, extra: dict[str, Any] | None = None
) -> None:
    """A bare pod pinned to ``node`` (no controller recreates it)."""
    spec = pod_spec(node, tolerate_unreachable=False)
    spec.update(extra or {})
    body: Any = {"metadata": {"name": name, "labels": {APP_LABEL: name}}, "spec": spec}
    client.CoreV1Api(api).create_namespaced_pod(ns, body)
