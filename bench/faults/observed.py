"""The link of a node edgebench may observe but never fault (a lab's ``fault_backend: none``).

It can do no fault: asking it for one raises :class:`~bench.errors.NotSupportedError` with the
reason it was given (the driver declares the same reason, so cases that need a fault are
skipped at collection). Restoring it does nothing, since nothing was ever applied.
"""

from __future__ import annotations

from bench.errors import NotSupportedError
from bench.faults.base import CutMode, FaultKind, Link


class ObservedLink(Link):
    """A link without faults; ``reason`` says why (shown by every refused fault)."""

    backend = "none"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.reason = reason

    def __repr__(self) -> str:
        return f"<ObservedLink {self.name}: {self.reason}>"

    def capabilities(self) -> frozenset[FaultKind]:
        return frozenset()

    def require(self, kind: FaultKind | str) -> None:
        raise NotSupportedError(f"link {self.name} cannot do {FaultKind(kind)}: {self.reason}")

    def restore(self) -> None:
        self._forget_state()

    def _set_down(self, mode: CutMode, down: bool) -> None:
        raise NotSupportedError(f"link {self.name} cannot be cut: {self.reason}")
