"""The Toxiproxy link backend: a :class:`ToxiproxyLink` is one or more proxies of a real
toxiproxy-server, and every fault applies to all of them.

Cuts in both modes:

- ``reset``: every proxy disabled. Toxiproxy closes the open connections and refuses new ones,
  so the agent notices at once and starts its reconnect backoff.
- ``blackhole``: a ``timeout`` toxic with timeout 0 on both streams of every proxy. Data is
  dropped and no connection is closed, so established connections hang silently. It differs
  from a kernel-level drop in three ways: a new connection still completes its TCP handshake
  (with the proxy, which dials the upstream), then hangs; bytes sent into the blackhole are
  discarded by the proxy instead of being retransmitted by TCP after the restore, so a stream
  that carried data during the cut (TLS, HTTP/2, websockets) is usually broken afterwards and
  the agent has to reconnect; and TCP keep-alives are answered by the proxy's own socket, so
  only application-level heartbeats (HTTP/2 pings, websocket pings, Lease renewals) notice.
"""

from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from bench.errors import FaultError
from bench.faults.base import CutMode, Direction, Fault, FaultKind, Link, non_negative
from bench.faults.toxiproxy.api import Api, check_direction, check_toxic_type, parse_hostport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Proxy:
    """One Toxiproxy proxy: clients connect to ``listen`` instead of ``upstream``."""

    name: str
    listen: str
    upstream: str


class ToxicFault(Fault):
    """Toxics of one type on every proxy of a link, in one or both directions."""

    link: ToxiproxyLink

    def __init__(
        self,
        link: ToxiproxyLink,
        toxic_type: str,
        direction: str,
        toxicity: float,
        attrs: dict[str, Any],
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
                toxic = f"{self.link.TOXIC_PREFIX}{self.kind}_{stream}_{n}"
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


#: name of the toxics that make a blackhole cut (one per stream and proxy)
BLACKHOLE_TOXIC = "edgebench_blackhole"


class ToxiproxyLink(Link):
    """The proxied path between an edge node and its control plane: one or more proxies.

    Faults apply to every proxy the link has when the fault is entered.
    """

    backend = "toxiproxy"
    CAPABILITIES = frozenset(
        {
            FaultKind.CUT_BLACKHOLE,
            FaultKind.CUT_RESET,
            FaultKind.LATENCY,
            FaultKind.BANDWIDTH,
            FaultKind.TIMEOUT,
            FaultKind.SLICER,
            FaultKind.RESET_PEER,
            FaultKind.TOXIC,
        }
    )

    #: prefix of the toxics of :meth:`toxic` (the blackhole's are always ``edgebench_``)
    TOXIC_PREFIX: ClassVar[str] = ""

    def __init__(self, api: Api, name: str) -> None:
        super().__init__(name)
        self._api = api
        self.proxies: list[Proxy] = []
        self._counter = itertools.count(1)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{p.listen}->{p.upstream}" for p in self.proxies)
        return f"<ToxiproxyLink {self.name}: {pairs}>"

    def capabilities(self) -> frozenset[FaultKind]:
        return self.CAPABILITIES

    @classmethod
    def attach(cls, api: Api, name: str) -> ToxiproxyLink:
        """The link ``name`` of a server someone else started (``edgebench fault`` on a
        cluster from ``edgebench up``): its proxies are ``name`` and ``name.1``, ``name.2``..."""
        link = cls(api, name)
        proxies = api.call("GET", "/proxies") or {}
        mine = [
            p for p in proxies.values() if p["name"] == name or p["name"].startswith(f"{name}.")
        ]
        if not mine:
            raise FaultError(f"toxiproxy at {api.url} has no link {name!r}")
        for proxy in sorted(mine, key=lambda p: (len(p["name"]), p["name"])):
            link.proxies.append(Proxy(proxy["name"], proxy["listen"], proxy["upstream"]))
        return link

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

    def restore(self) -> None:
        """Stop flaps, remove every toxic and re-enable every proxy of the link."""
        self._forget_state()
        with self._lock:
            for p in self.proxies:
                for toxic in self._api.call("GET", f"/proxies/{p.name}/toxics") or []:
                    self._api.call_status("DELETE", f"/proxies/{p.name}/toxics/{toxic['name']}")
                self._api.call("POST", f"/proxies/{p.name}", {"enabled": True})

    def cut_calls(self, mode: CutMode) -> list[tuple[str, str, dict[str, Any]]]:
        """The API calls (method, path, body) that put the link down in ``mode``: what a cut
        does, and what ``edgebench lab check`` shows without calling them."""
        if mode == "reset":
            return [("POST", f"/proxies/{p.name}", {"enabled": False}) for p in self.proxies]
        calls: list[tuple[str, str, dict[str, Any]]] = []
        for p in self.proxies:  # blackhole: see the module docstring
            for stream in ("upstream", "downstream"):
                body = {
                    "name": f"{BLACKHOLE_TOXIC}_{stream}",
                    "type": "timeout",
                    "stream": stream,
                    "toxicity": 1.0,
                    "attributes": {"timeout": 0},
                }
                calls.append(("POST", f"/proxies/{p.name}/toxics", body))
        return calls

    def _set_down(self, mode: CutMode, down: bool) -> None:
        if down:
            for method, path, body in self.cut_calls(mode):
                self._api.call(method, path, body)
            return
        if mode == "reset":
            for p in self.proxies:
                self._api.call("POST", f"/proxies/{p.name}", {"enabled": True})
            return
        for p in self.proxies:
            for stream in ("upstream", "downstream"):
                toxic = f"{BLACKHOLE_TOXIC}_{stream}"
                status, err = self._api.call_status("DELETE", f"/proxies/{p.name}/toxics/{toxic}")
                if status >= 400 and status != 404:
                    raise FaultError(f"could not remove {toxic} from proxy {p.name}: {err}")

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


class SharedToxiproxyLink(ToxiproxyLink):
    """Proxies of a toxiproxy-server someone else runs (a lab's ``fault_backend: toxiproxy``):
    edgebench never creates nor deletes them, and :meth:`restore` removes only its own toxics
    (all named ``edgebench_*``) and re-enables the proxies, leaving the owner's toxics alone."""

    TOXIC_PREFIX = "edgebench_"

    @classmethod
    def of(cls, api: Api, name: str, proxies: Sequence[str]) -> SharedToxiproxyLink:
        """The link ``name`` made of the existing proxies ``proxies``; :class:`FaultError`
        naming the missing ones and the proxies the server has."""
        link = cls(api, name)
        found = api.call("GET", "/proxies") or {}
        missing = [p for p in proxies if p not in found]
        if missing:
            have = ", ".join(sorted(found)) or "none"
            raise FaultError(
                f"toxiproxy at {api.url} has no proxy {', '.join(missing)} (its proxies: {have})"
            )
        for p in proxies:
            link.proxies.append(Proxy(p, found[p]["listen"], found[p]["upstream"]))
        return link

    def restore(self) -> None:
        """Stop flaps, remove edgebench's toxics and re-enable every proxy of the link.

        Never raises: each proxy is tried, and a proxy that fails is logged, not a reason to
        leave the next one cut."""
        self._forget_state()
        with self._lock:
            for p in self.proxies:
                try:
                    for toxic in self._api.call("GET", f"/proxies/{p.name}/toxics") or []:
                        if str(toxic["name"]).startswith(self.TOXIC_PREFIX):
                            path = f"/proxies/{p.name}/toxics/{toxic['name']}"
                            self._api.call_status("DELETE", path)
                    self._api.call("POST", f"/proxies/{p.name}", {"enabled": True})
                except Exception as exc:  # teardown never raises
                    log.warning(
                        "restoring toxiproxy proxy %s of link %s: %s", p.name, self.name, exc
                    )

    def delete(self) -> None:
        """Never deletes the owner's proxies: forgets them."""
        self._forget_state()
        self.proxies.clear()
