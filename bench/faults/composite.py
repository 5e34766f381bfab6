"""One edge node's link made of several backends: each fault goes to the first backend, in
order of preference, that can do it, and the fault says which one did (``fault.label``).

A local node in its own network namespace has a kernel link (cuts, packet loss, bandwidth,
applied where its packets flow) and a Toxiproxy link (latency and jitter, which the kernel here
cannot do without netem, and Toxiproxy's TCP-level toxics). Cuts of both backends are counted
by the backend that does them, so nesting works as on a single backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.errors import FaultError, NotSupportedError
from bench.faults.base import CutMode, Direction, Fault, FaultKind, Flap, Link, Listener


class CompositeLink(Link):
    """Dispatches each fault kind to the first of ``links`` that supports it."""

    def __init__(self, name: str, links: Sequence[Link]) -> None:
        if not links:
            raise FaultError(f"link {name}: a composite link needs at least one backend")
        super().__init__(name)
        self.links = list(links)
        self.listeners = _SharedListeners(self.links)

    @property
    def backend(self) -> str:  # type: ignore[override]
        return "+".join(link.backend for link in self.links)

    def __repr__(self) -> str:
        return f"<CompositeLink {self.name}: {', '.join(map(repr, self.links))}>"

    def capabilities(self) -> frozenset[FaultKind]:
        return frozenset().union(*(link.capabilities() for link in self.links))

    def for_kind(self, kind: FaultKind | str) -> Link:
        """The backend link that does ``kind`` here (:class:`NotSupportedError` if none)."""
        self.require(kind)
        return next(link for link in self.links if link.supports(kind))

    def backend_for(self, kind: FaultKind | str) -> str:
        return self.for_kind(kind).backend

    def backends(self) -> tuple[str, ...]:
        return tuple(link.backend for link in self.links)

    def part(self, backend: str) -> Link:
        """The backend link named ``backend`` (e.g. ``"toxiproxy"`` for its own toxics)."""
        for link in self.links:
            if link.backend == backend:
                return link
        raise NotSupportedError(f"link {self.name} has no {backend} backend: {self!r}")

    # --- faults go to the backend that can do them ------------------------------------------

    def cut(self, mode: CutMode = "blackhole") -> Fault:
        return self.for_kind(FaultKind.cut(mode)).cut(mode)

    def flap(
        self, up_s: float, down_s: float, cycles: int | None = None, mode: CutMode = "blackhole"
    ) -> Flap:
        return self.for_kind(FaultKind.cut(mode)).flap(up_s, down_s, cycles, mode)

    def latency(self, ms: float, jitter_ms: float = 0, direction: Direction = "both") -> Fault:
        return self.for_kind(FaultKind.LATENCY).latency(ms, jitter_ms, direction)

    def bandwidth(self, kbps: float, direction: Direction = "both") -> Fault:
        return self.for_kind(FaultKind.BANDWIDTH).bandwidth(kbps, direction)

    def loss(self, percent: float, direction: Direction = "both") -> Fault:
        return self.for_kind(FaultKind.LOSS).loss(percent, direction)

    def timeout(self, ms: float, direction: Direction = "both") -> Fault:
        return self.for_kind(FaultKind.TIMEOUT).timeout(ms, direction)

    def toxic(self, toxic_type: str, *args: Any, **kwargs: Any) -> Fault:
        """A Toxiproxy toxic (only where one of the backends is Toxiproxy)."""
        link: Any = self.for_kind(FaultKind.TOXIC)
        fault: Fault = link.toxic(toxic_type, *args, **kwargs)
        return fault

    def restore(self) -> None:
        """Restore every backend; all are tried even when one fails (the first error is
        raised afterwards)."""
        errors: list[Exception] = []
        for link in self.links:
            try:
                link.restore()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def reinstall(self) -> bool:
        """Every backend puts its faults back (each is asked, even after one that had none);
        True when any had some."""
        return any([link.reinstall() for link in self.links])

    def _set_down(self, mode: CutMode, down: bool) -> None:
        raise AssertionError("a composite link's cuts are done by its backends")


class _SharedListeners(list[Listener]):
    """``CompositeLink.listeners``: what is added here is added to every backend link."""

    def __init__(self, links: Sequence[Link]) -> None:
        super().__init__()
        self._links = links

    def append(self, listener: Listener) -> None:
        super().append(listener)
        for link in self._links:
            link.listeners.append(listener)

    def remove(self, listener: Listener) -> None:
        super().remove(listener)
        for link in self._links:
            if listener in link.listeners:
                link.listeners.remove(listener)
