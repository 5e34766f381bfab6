"""The backend-neutral link protocol: what a scenario may do to one edge node's path to its
control plane, and the :class:`Fault` every backend's faults derive from.

A :class:`Link` is implemented by a backend (Toxiproxy, the kernel, ...). Each backend states
up front which fault kinds it can do (:meth:`Link.capabilities`); asking a link for a fault its
backend cannot do raises :class:`~bench.errors.NotSupportedError` naming the backend and the
fault, before anything is applied.

Every fault is a context manager: entering applies it, leaving removes it, also when the body
raised or was interrupted with Ctrl-C. Faults nest. Cuts are counted, so an inner cut ending
does not reconnect a link an outer cut (or a flap) still holds down.
"""

from __future__ import annotations

import abc
import enum
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import ClassVar, Literal, Self, TypeAlias, cast

from bench.errors import FaultError, NotSupportedError

log = logging.getLogger(__name__)

CutMode = Literal["blackhole", "reset"]
#: ``blackhole``: packets silently dropped, established connections hang (a pulled cable);
#: ``reset``: open connections closed, new ones refused.
CUT_MODES: tuple[CutMode, ...] = ("blackhole", "reset")
Direction = Literal["both", "upstream", "downstream"]
DIRECTIONS: tuple[Direction, ...] = ("both", "upstream", "downstream")
Listener: TypeAlias = "Callable[[Fault], None]"


class FaultKind(enum.StrEnum):
    """One kind of fault a link backend may be able to do."""

    CUT_BLACKHOLE = "cut:blackhole"
    CUT_RESET = "cut:reset"
    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    LOSS = "loss"
    TIMEOUT = "timeout"
    SLICER = "slicer"
    RESET_PEER = "reset_peer"
    TOXIC = "toxic"

    @classmethod
    def cut(cls, mode: str) -> FaultKind:
        """The kind of a cut in ``mode``; :class:`FaultError` for an unknown mode."""
        if mode not in CUT_MODES:
            raise FaultError(f"unknown cut mode {mode!r}; valid modes: {', '.join(CUT_MODES)}")
        return cls(f"cut:{mode}")


def check_cut_mode(mode: str) -> CutMode:
    FaultKind.cut(mode)
    return cast(CutMode, mode)


def non_negative(**values: float) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise FaultError(f"{key} must be a number >= 0, got {value!r}")


class Fault(abc.ABC):
    """One fault on one link; records when it was applied and removed (UTC and monotonic).

    ``kind`` is what was done (``cut``, ``latency``, ...), ``mode`` the cut mode (None for
    other faults) and ``backend`` which backend did it: all three go into events.csv and the
    notes of the rows measured under the fault.
    """

    def __init__(self, link: Link, kind: str, description: str, mode: str | None = None) -> None:
        self.link = link
        self.kind = kind
        self.mode = mode
        self.backend = link.backend
        self.description = description
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.started_mono: float | None = None
        self.ended_mono: float | None = None
        self.active = False
        #: called with the fault once it is applied and once it is removed (journaling)
        self.listeners: list[Listener] = list(link.listeners)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description} on {self.link.name} ({self.backend})>"

    @property
    def label(self) -> str:
        """What events.csv and row notes say: ``cut/blackhole via toxiproxy``."""
        what = f"{self.kind}/{self.mode}" if self.mode else self.kind
        return f"{what} via {self.backend}"

    @property
    def duration_s(self) -> float | None:
        """Seconds the fault was in force, once it has been removed."""
        if self.started_mono is None or self.ended_mono is None:
            return None
        return self.ended_mono - self.started_mono

    def apply(self) -> Self:
        if self.active:
            raise FaultError(f"{self!r} is already applied")
        try:
            self._apply()
        except BaseException:
            self._undo_quietly()
            raise
        self.active = True
        self.started_at, self.started_mono = datetime.now(UTC), time.monotonic()
        log.info("fault on: %r", self)
        self._notify()
        return self

    def remove(self) -> None:
        if not self.active:
            return
        self.active = False
        try:
            self._remove()
        finally:
            self.ended_at, self.ended_mono = datetime.now(UTC), time.monotonic()
            log.info("fault off: %r after %.3fs", self, self.duration_s)
            self._notify()

    def _notify(self) -> None:
        for listener in self.listeners:
            try:
                listener(self)
            except Exception as exc:  # a journal must never break a fault or its undo
                log.warning("fault listener failed for %r: %s", self, exc)

    def __enter__(self) -> Self:
        return self.apply()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.remove()
        except Exception as e:
            if exc is None:
                raise
            # Never hide the body's own error (or Ctrl-C) behind a failed undo.
            log.warning("could not remove %r while handling %r: %s", self, exc, e)
            exc.add_note(f"edgebench: removing {self!r} also failed: {e}")

    def _undo_quietly(self) -> None:
        try:
            self._remove()
        except Exception as e:
            log.warning("could not undo a partly applied %r: %s", self, e)

    @abc.abstractmethod
    def _apply(self) -> None: ...

    @abc.abstractmethod
    def _remove(self) -> None: ...


class Cut(Fault):
    """The link is down in ``mode`` (``blackhole`` or ``reset``), both directions."""

    def __init__(self, link: Link, mode: CutMode) -> None:
        super().__init__(link, "cut", f"cut(mode={mode})", mode=mode)
        self._held = False  # this cut counts towards the link's hold (undo only then)

    def _apply(self) -> None:
        self.link._hold_down(cast(CutMode, self.mode), +1)
        self._held = True

    def _remove(self) -> None:
        if self._held:
            self.link._hold_down(cast(CutMode, self.mode), -1)
            self._held = False


class Flap(Fault):
    """A background thread cuts the link for ``down_s``, restores it for ``up_s``, and so on.

    It starts with a cut. ``cycles=None`` flaps until the context exits; after ``cycles``
    down/up cycles the link stays up. ``transitions`` lists ``(monotonic, utc, "down"|"up")``.
    """

    def __init__(
        self, link: Link, up_s: float, down_s: float, cycles: int | None, mode: CutMode
    ) -> None:
        non_negative(up_s=up_s, down_s=down_s)
        if cycles is not None and (not isinstance(cycles, int) or cycles < 1):
            raise FaultError(f"cycles must be a positive integer or None, got {cycles!r}")
        super().__init__(
            link, "flap", f"flap(up_s={up_s}, down_s={down_s}, cycles={cycles}, mode={mode})", mode
        )
        self.up_s, self.down_s, self.cycles = up_s, down_s, cycles
        self.transitions: list[tuple[float, datetime, str]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._down = False
        self._thread: threading.Thread | None = None

    def _set(self, down: bool) -> None:
        self.link._hold_down(cast(CutMode, self.mode), +1 if down else -1)
        self._down = down
        self.transitions.append((time.monotonic(), datetime.now(UTC), "down" if down else "up"))

    def _run(self) -> None:
        try:
            cycle = 1
            while not self._stop.wait(self.down_s):
                self._set(False)
                if self._stop.wait(self.up_s) or (self.cycles is not None and cycle >= self.cycles):
                    return
                self._set(True)
                cycle += 1
        except BaseException as e:  # reported by remove(); a thread cannot raise to the test
            self.error = e
            log.warning("flap on %s failed: %s", self.link.name, e)

    def wait(self, timeout: float) -> None:
        """Block until a flap with ``cycles`` has finished them (the link is then up)."""
        if self.cycles is None:
            raise FaultError("wait() needs a flap with a number of cycles")
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise FaultError(f"flap on link {self.link.name} still running after {timeout}s")

    @property
    def last_up_mono(self) -> float | None:
        """Monotonic time of the last restore: when the link came back for good."""
        ups = [mono for mono, _, state in self.transitions if state == "up"]
        return ups[-1] if ups else None

    def stop(self) -> None:
        """Stop the thread without touching the link (after a backend-wide reset)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        self._down = False

    def _apply(self) -> None:
        self._stop.clear()
        self._set(True)  # the first cut is in force when the with-body starts
        self.link._flaps.add(self)
        self._thread = threading.Thread(
            target=self._run, name=f"flap-{self.link.name}", daemon=True
        )
        self._thread.start()

    def _remove(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
            if self._thread.is_alive() and self.error is None:
                self.error = FaultError("the flap thread did not stop within 30 s")
        self.link._flaps.discard(self)
        if self._down:
            self._set(False)
        if self.error is not None:
            raise FaultError(f"flap on link {self.link.name} failed: {self.error}")


class Link(abc.ABC):
    """One edge node's path to its control plane, as one backend sees it.

    Subclasses implement :meth:`capabilities`, :meth:`_set_down` (cuts and flaps are generic
    on top of it), :meth:`restore`, and the fault methods their backend can do. The base
    methods raise :class:`NotSupportedError`.
    """

    backend: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.RLock()
        self._down = 0  # how many cuts (and flap down phases) hold the link down
        self._down_mode: CutMode | None = None
        self._flaps: set[Flap] = set()
        #: applied to every fault made from this link from now on (see :class:`Fault`)
        self.listeners: list[Listener] = []

    @abc.abstractmethod
    def capabilities(self) -> frozenset[FaultKind]:
        """The fault kinds this link's backend can do."""

    def supports(self, kind: FaultKind | str) -> bool:
        return FaultKind(kind) in self.capabilities()

    def require(self, kind: FaultKind | str) -> None:
        """:class:`NotSupportedError` naming the backend and the fault unless supported."""
        kind = FaultKind(kind)
        if kind not in self.capabilities():
            can = ", ".join(sorted(self.capabilities())) or "nothing"
            raise NotSupportedError(
                f"the {self.backend} link backend cannot do {kind} (link {self.name}; "
                f"it can do: {can})"
            )

    def backend_for(self, kind: FaultKind | str) -> str:
        """Which backend does ``kind`` on this link (composite links override)."""
        self.require(kind)
        return self.backend

    def backends(self) -> tuple[str, ...]:
        """The backends this link is made of (composite links have several)."""
        return (self.backend,)

    def part(self, backend: str) -> Link:
        """The part of this link done by ``backend`` (itself, for a single backend), to ask
        one backend for a fault explicitly; :class:`NotSupportedError` if it has none."""
        if backend != self.backend:
            raise NotSupportedError(f"link {self.name} has no {backend} backend: {self!r}")
        return self

    # --- faults ----------------------------------------------------------------------------

    def cut(self, mode: CutMode = "blackhole") -> Fault:
        """The link down in ``mode`` in both directions (see :data:`CUT_MODES`)."""
        self.require(FaultKind.cut(mode))
        return Cut(self, mode)

    def flap(
        self, up_s: float, down_s: float, cycles: int | None = None, mode: CutMode = "blackhole"
    ) -> Flap:
        """Alternate cut (``down_s``, in ``mode``) and up (``up_s``) in a background thread."""
        self.require(FaultKind.cut(mode))
        return Flap(self, up_s, down_s, cycles, mode)

    def latency(self, ms: float, jitter_ms: float = 0, direction: Direction = "both") -> Fault:
        """Delay data by ``ms`` +/- ``jitter_ms`` in each chosen direction."""
        self.require(FaultKind.LATENCY)
        raise AssertionError("a backend that declares latency must implement it")

    def bandwidth(self, kbps: float, direction: Direction = "both") -> Fault:
        """Cap throughput at ``kbps`` kilobytes (1000 bytes) per second in each direction."""
        self.require(FaultKind.BANDWIDTH)
        raise AssertionError("a backend that declares bandwidth must implement it")

    def loss(self, percent: float, direction: Direction = "both") -> Fault:
        """Drop ``percent`` % of packets at random in each chosen direction."""
        self.require(FaultKind.LOSS)
        raise AssertionError("a backend that declares loss must implement it")

    def timeout(self, ms: float, direction: Direction = "both") -> Fault:
        """Data dropped; connections closed after ``ms`` (0: never)."""
        self.require(FaultKind.TIMEOUT)
        raise AssertionError("a backend that declares timeout must implement it")

    @abc.abstractmethod
    def restore(self) -> None:
        """Stop flaps and remove every fault of this link; never leaves it down."""

    def reinstall(self) -> bool:
        """Put the link's faults back after the node lost them (a reboot); True when there
        were any. Backends whose faults live off the node (a proxy) lose nothing: False."""
        return False

    # --- the cut counter -------------------------------------------------------------------

    @abc.abstractmethod
    def _set_down(self, mode: CutMode, down: bool) -> None:
        """Put the link down in ``mode`` (``down``) or bring it back up."""

    def _hold_down(self, mode: CutMode, delta: int) -> None:
        with self._lock:
            if delta > 0 and self._down and mode != self._down_mode:
                raise FaultError(
                    f"link {self.name} is already cut in mode {self._down_mode}; "
                    f"a cut in mode {mode} cannot nest inside it"
                )
            before = self._down
            self._down = max(0, before + delta)
            if before == 0 and self._down > 0:
                self._down_mode = mode
                self._set_down(mode, True)
            elif before > 0 and self._down == 0:
                self._down_mode = None
                self._set_down(mode, False)

    def _forget_state(self) -> None:
        """After a backend-wide reset: no flap, no cut held."""
        for flap in list(self._flaps):
            flap.stop()
        self._flaps.clear()
        with self._lock:
            self._down = 0
            self._down_mode = None
