"""bench.scenario.workload.namespace: the namespace is gone before the next case starts.

Its teardown (the namespace controller deleting its pods, each deletion sent to an agent) used
to run on into the next case and land inside that case's cut, where TCP's retransmission
backoff of that first dropped data decided when the nodes recovered (docs/recovery.md).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest
from kubernetes import client

from bench.scenario import workload

API = cast(client.ApiClient, object())  # never used: CoreV1Api is replaced


class FakeCore:
    """A CoreV1Api whose namespaces disappear ``lingers`` reads after their deletion."""

    def __init__(self, lingers: int | None) -> None:
        self.lingers = lingers  # None: never disappears
        self.calls: list[str] = []
        self.deleted: set[str] = set()
        self.reads_after_delete = 0

    def create_namespace(self, body: Any) -> None:
        self.calls.append("create")

    def delete_namespace(self, name: str, grace_period_seconds: int | None = None) -> None:
        self.calls.append("delete")
        self.deleted.add(name)

    def read_namespace(self, name: str) -> dict[str, Any]:
        self.calls.append("read")
        if name in self.deleted:
            self.reads_after_delete += 1
            if self.lingers is not None and self.reads_after_delete > self.lingers:
                raise client.ApiException(status=404, reason="Not Found")
        return {"metadata": {"name": name}}


def test_leaving_waits_until_the_namespace_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    core = FakeCore(lingers=3)
    monkeypatch.setattr(workload.client, "CoreV1Api", lambda api: core)
    with workload.namespace(API, "eb-t", poll_s=0.0) as ns:
        assert ns.startswith("eb-t-")
        assert core.calls == ["create"]
    # deleted, then read until the API said 404: three reads still saw it, the fourth did not
    assert core.calls == ["create", "delete", "read", "read", "read", "read"]


def test_a_namespace_that_lingers_is_given_up_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    core = FakeCore(lingers=None)
    monkeypatch.setattr(workload.client, "CoreV1Api", lambda api: core)
    with (
        caplog.at_level(logging.WARNING),
        workload.namespace(API, "eb-t", gone_s=0.05, poll_s=0.01),
    ):
        pass
    assert core.calls[:2] == ["create", "delete"] and core.reads_after_delete >= 2
    assert "still there" in caplog.text


def test_the_body_error_is_not_hidden_by_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    core = FakeCore(lingers=0)
    monkeypatch.setattr(workload.client, "CoreV1Api", lambda api: core)
    with (
        pytest.raises(RuntimeError, match="the case failed"),
        workload.namespace(API, "eb-t", poll_s=0.0),
    ):
        raise RuntimeError("the case failed")
    assert core.calls == ["create", "delete", "read"]
