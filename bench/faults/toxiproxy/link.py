"""A :class:`Link` (one or more Toxiproxy proxies) and the faults applied to it.

Every fault is a context manager: entering applies it to every proxy of the link, leaving
removes it, also when the body raised or was interrupted with Ctrl-C. Faults nest; cuts are
counted, so an inner cut ending does not reconnect a link an outer cut still holds down.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from bench.errors import FaultError
from bench.faults.toxiproxy.api import (
    Api,
    Direction,
    check_direction,
    check_toxic_type,
    non_negative,
    parse_hostport,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Proxy:
    """One Toxiproxy proxy: clients connect to ``listen`` instead of ``upstream``."""

    name: str
    listen: str
    upstream: str


class Fault:
    """One applied fault; records when it was applied and removed (UTC and monotonic)."""

    def __init__(self, link: Link, kind: str, description: str) -> None:
        self.link = link
        self.kind = kind
        self.description = description
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.started_mono: float | None = None
        self.ended_mono: float | None = None
        self.active = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description} on {self.link.name}>"

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

    def _apply(self) -> None:
        raise NotImplementedError

    def _remove(self) -> None:
        raise NotImplementedError


class ToxicFault(Fault):
    """Toxics of one type on every proxy of a link, in one or both directions."""

    def __init__(
        self, link: Link, toxic_type: str, direction: str, toxicity: float, attrs: dict[str, Any]
    ) -> None:
        check_toxic_type(toxic_type)
        self.streams = check_direction(direction)
        if not 0.0 <= toxicity <= 1.0:
            raise FaultError(f"toxicity must be between 0 and 1, got {toxicity!r}")
        attrs = {key: _whole(key, value) for key, value in attrs.items()}
        desc = ", ".join(f"{k}={v}" for k, v in attrs.items())
        super().__init__(link, toxic_type, f"{toxic_type}({desc}, direction={direction})")
        self.toxicity = toxicity
        self.attributes = attrs
        self._added: list[tuple[str, str]] = []  # (proxy name, toxic name)

    def _apply(self) -> None:
        n = next(self.link._counter)
        for proxy in self.link.proxies:
            for stream in self.streams:
                toxic = f"{self.kind}_{stream}_{n}"
                body = {
                    "name": toxic,
                    "type": self.kind,
                    "stream": stream,
                    "toxicity": self.toxicity,
                    "attributes": self.attributes,
                }
                self.link._api.call("POST", f"/proxies/{proxy.name}/toxics", body)
                self._added.append((proxy.name, toxic))

    def _remove(self) -> None:
        while self._added:
            proxy, toxic = self._added[-1]
            status, err = self.link._api.call_status("DELETE", f"/proxies/{proxy}/toxics/{toxic}")
            if status >= 400 and status != 404:  # 404: already gone (restore() ran)
                raise FaultError(f"could not remove toxic {toxic} from proxy {proxy}: {err}")
            self._added.pop()


class Cut(Fault):
    """The link is disabled: open connections are closed, new ones refused."""

    def __init__(self, link: Link) -> None:
        super().__init__(link, "cut", "cut()")

    def _apply(self) -> None:
        self.link._hold_down(+1)

    def _remove(self) -> None:
        self.link._hold_down(-1)


class Flap(Fault):
    """A background thread cuts the link for ``down_s``, restores it for ``up_s``, and so on.

    It starts with a cut. ``cycles=None`` flaps until the context exits; after ``cycles``
    down/up cycles the link stays up. ``transitions`` lists ``(monotonic, utc, "down"|"up")``.
    """

    def __init__(self, link: Link, up_s: float, down_s: float, cycles: int | None) -> None:
        non_negative(up_s=up_s, down_s=down_s)
        if cycles is not None and (not isinstance(cycles, int) or cycles < 1):
            raise FaultError(f"cycles must be a positive integer or None, got {cycles!r}")
        super().__init__(link, "flap", f"flap(up_s={up_s}, down_s={down_s}, cycles={cycles})")
        self.up_s, self.down_s, self.cycles = up_s, down_s, cycles
        self.transitions: list[tuple[float, datetime, str]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._down = False
        self._thread: threading.Thread | None = None

    def _set(self, down: bool) -> None:
        self.link._hold_down(+1 if down else -1)
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


class Link:
    """The proxied path between an edge node and its control plane: one or more proxies.

    Faults apply to every proxy the link has when the fault is entered.
    """

    def __init__(self, api: Api, name: str) -> None:
        self._api = api
        self.name = name
        self.proxies: list[Proxy] = []
        self._lock = threading.RLock()
        self._down = 0  # how many cuts hold the link down
        self._counter = itertools.count(1)
        self._flaps: set[Flap] = set()

    def __repr__(self) -> str:
        pairs = ", ".join(f"{p.listen}->{p.upstream}" for p in self.proxies)
        return f"<Link {self.name}: {pairs}>"

    @property
    def listen(self) -> str:
        """``host:port`` of the first proxy, to give clients instead of the upstream."""
        return self.proxies[0].listen

    @property
    def upstream(self) -> str:
        return self.proxies[0].upstream

    def listen_for(self, upstream: str) -> str:
        """The listen address of the proxy in front of ``upstream``."""
        for p in self.proxies:
            if p.upstream == upstream:
                return p.listen
        raise FaultError(f"link {self.name} has no proxy for {upstream!r}: {self!r}")

    def add(self, upstream: str, listen: str = "127.0.0.1:0", check_upstream: bool = False) -> str:
        """Add a proxy in front of ``upstream``; returns the ``host:port`` it listens on."""
        host, port = parse_hostport(upstream, "upstream")
        parse_hostport(listen, "listen address", allow_port_zero=True)
        _probe_upstream(self.name, upstream, host, port, strict=check_upstream)
        with self._lock:
            if self._down or self._flaps:
                raise FaultError(f"cannot add a proxy to link {self.name} while it is cut")
            pname = self.name if not self.proxies else f"{self.name}.{len(self.proxies)}"
            body = {"name": pname, "upstream": upstream, "listen": listen, "enabled": True}
            status, answer = self._api.call_status("POST", "/proxies", body)
            if status == 409:
                raise FaultError(
                    f"a proxy named {pname!r} already exists: link names must be unique"
                )
            if status >= 400:
                raise FaultError(f"could not create proxy {pname} {listen} -> {upstream}: {answer}")
            self.proxies.append(Proxy(pname, answer["listen"], upstream))
            return str(answer["listen"])

    # --- faults ----------------------------------------------------------------------------

    def cut(self) -> Fault:
        """Disable every proxy: open connections closed, new ones refused (both directions)."""
        return Cut(self)

    def latency(self, ms: float, jitter_ms: float = 0, direction: Direction = "both") -> Fault:
        """Delay data by ``ms`` +/- ``jitter_ms`` in each chosen direction (both: RTT + 2*ms)."""
        non_negative(ms=ms, jitter_ms=jitter_ms)
        return self.toxic("latency", direction, latency=ms, jitter=jitter_ms)

    def bandwidth(self, kbps: float, direction: Direction = "both") -> Fault:
        """Cap throughput at ``kbps`` kilobytes (1000 bytes) per second in each direction."""
        if not isinstance(kbps, int | float) or kbps <= 0:
            raise FaultError(f"kbps must be > 0, got {kbps!r} (for no traffic use timeout(0))")
        return self.toxic("bandwidth", direction, rate=kbps)

    def timeout(self, ms: float, direction: Direction = "both") -> Fault:
        """Black hole: data is dropped; connections close after ``ms`` (0: never)."""
        non_negative(ms=ms)
        return self.toxic("timeout", direction, timeout=ms)

    def slicer(
        self,
        average_size: int,
        size_variation: int = 0,
        delay_us: int = 0,
        direction: Direction = "both",
    ) -> Fault:
        """Cut data into ~``average_size``-byte pieces, ``delay_us`` microseconds apart."""
        non_negative(size_variation=size_variation, delay_us=delay_us)
        if not isinstance(average_size, int) or average_size < 1:
            raise FaultError(f"average_size must be an integer >= 1, got {average_size!r}")
        return self.toxic(
            "slicer", direction, average_size=average_size, size_variation=size_variation,
            delay=delay_us,
        )  # fmt: skip

    def reset_peer(self, timeout_ms: float = 0, direction: Direction = "both") -> Fault:
        """Reset connections (TCP RST) after ``timeout_ms`` (0: at once when data flows)."""
        non_negative(timeout_ms=timeout_ms)
        return self.toxic("reset_peer", direction, timeout=timeout_ms)

    def toxic(
        self,
        toxic_type: str,
        direction: Direction = "both",
        toxicity: float = 1.0,
        **attributes: Any,
    ) -> Fault:
        """Any Toxiproxy toxic by type and attributes, e.g. ``toxic("slow_close", delay=500)``."""
        return ToxicFault(self, toxic_type, direction, toxicity, attributes)

    def flap(self, up_s: float, down_s: float, cycles: int | None = None) -> Flap:
        """Alternate cut (``down_s``) and up (``up_s``) in a background thread."""
        return Flap(self, up_s, down_s, cycles)

    def restore(self) -> None:
        """Stop flaps, remove every toxic and re-enable every proxy of the link."""
        self._forget_state()
        with self._lock:
            for p in self.proxies:
                for toxic in self._api.call("GET", f"/proxies/{p.name}/toxics") or []:
                    self._api.call_status("DELETE", f"/proxies/{p.name}/toxics/{toxic['name']}")
                self._api.call("POST", f"/proxies/{p.name}", {"enabled": True})

    def _forget_state(self) -> None:
        """After a server-wide reset: no flap, no cut held."""
        for flap in list(self._flaps):
            flap._stop.set()
            if flap._thread is not None:
                flap._thread.join(timeout=30.0)
            flap._down = False
        self._flaps.clear()
        with self._lock:
            self._down = 0

    def _hold_down(self, delta: int) -> None:
        with self._lock:
            before = self._down
            self._down = max(0, before + delta)
            if (before == 0) != (self._down == 0):
                enabled = self._down == 0
                for p in self.proxies:
                    self._api.call("POST", f"/proxies/{p.name}", {"enabled": enabled})

    def delete(self) -> None:
        """Delete every proxy of the link from the server."""
        self._forget_state()
        for p in self.proxies:
            self._api.call_status("DELETE", f"/proxies/{p.name}")
        self.proxies.clear()


def _whole(key: str, value: Any) -> Any:
    """Toxiproxy attributes are integers >= 0; other JSON values pass through unchecked."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    non_negative(**{key: value})
    if value != int(value):
        raise FaultError(f"{key} must be a whole number, got {value!r}")
    return int(value)


def _probe_upstream(link: str, upstream: str, host: str, port: int, strict: bool) -> None:
    """Toxiproxy accepts an upstream nobody listens on; say what clients will see."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return
    except OSError as e:
        msg = (
            f"link {link}: upstream {upstream} is not reachable now ({e}); the proxy still "
            f"accepts connections but closes each at once until something listens there"
        )
    if strict:
        raise FaultError(msg)
    log.warning(msg)
