"""Observers built on Kubernetes watches: node Ready transitions and taints, Lease renewals,
pod phases and deletions.

Each event is stamped when it arrives with the harness's UTC wall clock (microseconds) and its
monotonic clock; the server-side time (condition lastTransitionTime, Lease renewTime, deletion
timestamp) is kept beside them. Suites wait on the :class:`EventLog` instead of polling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from bench.errors import ClusterTimeoutError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One observed change of one object."""

    kind: str  # "node", "lease" or "pod"
    type: str  # ADDED, MODIFIED, DELETED (or SYNC for an object seen on a re-list)
    name: str  # node or lease name, or "namespace/name" for pods
    node: str  # the node the object belongs to ("" for an unscheduled pod)
    wall: dt.datetime
    mono: float
    ready: str | None = None  # Ready condition status: "True", "False", "Unknown"
    phase: str | None = None
    taints: tuple[str, ...] = ()
    uid: str = ""
    deleting: bool = False
    server_time: dt.datetime | None = None
    labels: tuple[tuple[str, str], ...] = ()


def _ready(conditions: list[Any] | None) -> tuple[str | None, dt.datetime | None]:
    for cond in conditions or ():
        if cond.type == "Ready":
            return cond.status, cond.last_transition_time
    return None, None


def _node_event(kind: str, obj: Any, now: tuple[dt.datetime, float]) -> Event:
    ready, since = _ready(obj.status.conditions if obj.status else None)
    taints = tuple(f"{t.key}:{t.effect}" for t in ((obj.spec.taints if obj.spec else None) or ()))
    return Event(
        "node",
        kind,
        obj.metadata.name,
        obj.metadata.name,
        now[0],
        now[1],
        ready=ready,
        taints=taints,
        uid=obj.metadata.uid or "",
        server_time=since,
        deleting=obj.metadata.deletion_timestamp is not None,
    )


def _pod_event(kind: str, obj: Any, now: tuple[dt.datetime, float]) -> Event:
    status = obj.status
    ready, since = _ready(status.conditions if status else None)
    md = obj.metadata
    return Event(
        "pod",
        kind,
        f"{md.namespace}/{md.name}",
        obj.spec.node_name or "",
        now[0],
        now[1],
        ready=ready,
        phase=status.phase if status else None,
        uid=md.uid or "",
        deleting=md.deletion_timestamp is not None,
        server_time=md.deletion_timestamp or since,
        labels=tuple(sorted((md.labels or {}).items())),
    )


def _lease_event(kind: str, obj: Any, now: tuple[dt.datetime, float]) -> Event:
    return Event(
        "lease",
        kind,
        obj.metadata.name,
        obj.metadata.name,
        now[0],
        now[1],
        uid=obj.metadata.uid or "",
        server_time=obj.spec.renew_time,
    )


class EventLog:
    """An append-only, thread-safe log of events that callers can wait on."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._cond = threading.Condition()

    def append(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def snapshot(self, since_mono: float | None = None) -> list[Event]:
        with self._cond:
            events = list(self._events)
        if since_mono is None:
            return events
        return [e for e in events if e.mono >= since_mono]

    def wait_for(
        self,
        predicate: Callable[[Event], bool],
        timeout: float,
        since_mono: float | None = None,
        what: str = "an event",
    ) -> Event:
        """The first event (at or after ``since_mono``) matching ``predicate``."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        checked = 0
        with self._cond:
            while True:
                for event in self._events[checked:]:
                    if (since_mono is None or event.mono >= since_mono) and predicate(event):
                        return event
                checked = len(self._events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ClusterTimeoutError(f"no {what} within {timeout:.1f}s")
                self._cond.wait(remaining)

    def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str = "a condition",
        alive: Callable[[], None] | None = None,
    ) -> None:
        """Wait until ``condition()`` (over observer state) holds, re-checking on every event.
        ``alive()`` is called about once a second, outside the lock, and may raise to end the
        wait early (a process died)."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if condition():
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ClusterTimeoutError(f"{what} not reached within {timeout:.1f}s")
                self._cond.wait(min(remaining, 1.0))
            if alive is not None:
                alive()


def _stamp() -> tuple[dt.datetime, float]:
    return dt.datetime.now(dt.UTC), time.monotonic()


class _Watcher(threading.Thread):
    """List, then watch from the list's resourceVersion; re-list after errors or 410 Gone."""

    def __init__(
        self,
        name: str,
        list_fn: Callable[..., Any],
        convert: Callable[..., Event],
        on_event: Callable[[Event, Any], None],
        **list_kwargs: Any,
    ) -> None:
        super().__init__(name=f"watch-{name}", daemon=True)
        self.list_fn = list_fn
        self.convert = convert
        self.on_event = on_event
        self.on_listed: Callable[[set[str], tuple[dt.datetime, float]], None] | None = None
        self.list_kwargs = list_kwargs
        self._stop_event = threading.Event()
        self._watch: watch.Watch | None = None
        self.synced = threading.Event()
        self.last_error: Exception | None = None

    def stop(self) -> None:
        self._stop_event.set()
        if self._watch is not None:
            self._watch.stop()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                listed = self.list_fn(**self.list_kwargs)
                now = _stamp()
                seen = set()
                for obj in listed.items:
                    event = self.convert("SYNC", obj, now)
                    seen.add(event.name)
                    self.on_event(event, obj)
                if self.on_listed is not None:
                    self.on_listed(seen, now)  # objects deleted while we were not watching
                self.synced.set()
                rv = listed.metadata.resource_version
                self._watch = watch.Watch()
                for item in self._watch.stream(
                    self.list_fn,
                    resource_version=rv,
                    timeout_seconds=60,
                    allow_watch_bookmarks=False,
                    **self.list_kwargs,
                ):
                    if self._stop_event.is_set():
                        return
                    now = _stamp()
                    obj = item["object"]
                    if item["type"] == "ERROR":
                        break
                    self.on_event(self.convert(item["type"], obj, now), obj)
            except (ApiException, HTTPError, OSError, ValueError) as exc:
                if self._stop_event.is_set():
                    return
                log.debug("watch %s restarting after %s", self.name, exc)
                self._stop_event.wait(0.2)
            except Exception as exc:  # a bug, not the network: say so, and keep watching
                self.last_error = exc
                log.warning("watch %s failed unexpectedly: %r", self.name, exc)
                self._stop_event.wait(1.0)


class ClusterObserver:
    """Watches nodes, node Leases and pods of one cluster into one :class:`EventLog`.

    State and log change together under the log's lock, so a waiter that sees the state also
    sees the event that made it.
    """

    def __init__(self, api: client.ApiClient, namespace: str | None = None) -> None:
        self.core = client.CoreV1Api(api)
        self.coord = client.CoordinationV1Api(api)
        self.events = EventLog()
        self._lock = self.events._cond  # re-entrant: append() takes it again
        self.nodes: dict[str, Event] = {}
        self.pods: dict[str, Event] = {}
        self.leases: dict[str, Event] = {}
        # Bound API methods, not wrappers: the watch finds the type to decode from them.
        pods = (
            _Watcher("pods", self.core.list_pod_for_all_namespaces, _pod_event, self._on_pod)
            if namespace is None
            else _Watcher(
                "pods",
                self.core.list_namespaced_pod,
                _pod_event,
                self._on_pod,
                namespace=namespace,
            )
        )
        nodes = _Watcher("nodes", self.core.list_node, _node_event, self._on_node)
        leases = _Watcher(
            "leases",
            self.coord.list_namespaced_lease,
            _lease_event,
            self._on_lease,
            namespace="kube-node-lease",
        )
        for watcher, state, handler in (
            (nodes, self.nodes, self._on_node),
            (pods, self.pods, self._on_pod),
            (leases, self.leases, self._on_lease),
        ):
            watcher.on_listed = self._forget_missing(state, handler)
        self._watchers = [nodes, leases, pods]

    def _forget_missing(
        self, state: dict[str, Event], handler: Callable[[Event, Any], None]
    ) -> Callable[[set[str], tuple[dt.datetime, float]], None]:
        def forget(seen: set[str], now: tuple[dt.datetime, float]) -> None:
            with self._lock:
                gone = [e for name, e in state.items() if name not in seen]
            for e in gone:
                handler(dataclasses.replace(e, type="DELETED", wall=now[0], mono=now[1]), None)

        return forget

    def _on_node(self, event: Event, _obj: Any) -> None:
        with self._lock:
            prev = self.nodes.get(event.name)
            if event.type == "DELETED":
                self.nodes.pop(event.name, None)
            else:
                self.nodes[event.name] = event
            # Log only what suites care about: Ready or taint changes, additions, deletions.
            if (
                prev is None
                or event.type == "DELETED"
                or (prev.ready, prev.taints) != (event.ready, event.taints)
            ):
                self.events.append(event)

    def _on_lease(self, event: Event, _obj: Any) -> None:
        with self._lock:
            prev = self.leases.get(event.name)
            self.leases[event.name] = event
            # A renewal is a new renewTime; a re-list repeats the old one and is no heartbeat.
            if prev is None or prev.server_time != event.server_time:
                self.events.append(event)

    def _on_pod(self, event: Event, _obj: Any) -> None:
        with self._lock:
            prev = self.pods.get(event.name)
            if event.type == "DELETED":
                self.pods.pop(event.name, None)
            else:
                self.pods[event.name] = event
            if (
                prev is None
                or event.type == "DELETED"
                or (prev.ready, prev.phase, prev.deleting, prev.uid, prev.node)
                != (event.ready, event.phase, event.deleting, event.uid, event.node)
            ):
                self.events.append(event)

    def start(self, timeout: float = 30) -> ClusterObserver:
        for w in self._watchers:
            w.start()
        deadline = time.monotonic() + timeout
        for w in self._watchers:
            if not w.synced.wait(max(0.0, deadline - time.monotonic())):
                self.stop()
                raise ClusterTimeoutError(f"{w.name} did not list within {timeout:.0f}s")
        return self

    def stop(self) -> None:
        for w in self._watchers:
            w.stop()
        for w in self._watchers:
            w.join(timeout=2)

    @contextlib.contextmanager
    def running(self) -> Iterator[ClusterObserver]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # Views over the current state.

    def node_ready(self, node: str) -> str | None:
        with self._lock:
            ev = self.nodes.get(node)
        return ev.ready if ev else None

    def pods_where(self, predicate: Callable[[Event], bool]) -> list[Event]:
        """The current pods (their latest events) that match ``predicate``."""
        with self._lock:
            return [e for e in self.pods.values() if predicate(e)]
