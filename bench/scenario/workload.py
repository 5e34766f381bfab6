"""Workloads the scenarios place on edge nodes: a namespace per test and Deployments pinned
to one node, with or without a toleration that keeps pods bound while the node is
unreachable."""

from __future__ import annotations

import contextlib
import logging
import os
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


@contextlib.contextmanager
def namespace(api: client.ApiClient, prefix: str) -> Iterator[str]:
    """A fresh namespace, deleted afterwards (without waiting; never raises on teardown)."""
    core = client.CoreV1Api(api)
    name = f"{prefix[:40].rstrip('-')}-{os.urandom(3).hex()}".replace("_", "-").lower()
    body: Any = {"metadata": {"name": name, "labels": {"edgebench.io/test": "1"}}}
    core.create_namespace(body)  # the client takes plain dicts as bodies
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, grace_period_seconds=0)
        except Exception as exc:  # teardown never hides the test's own error
            log.warning("could not delete namespace %s: %s", name, exc)


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
