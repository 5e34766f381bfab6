"""A small, thread-safe client for the Toxiproxy REST API, and argument validation.

Why not toxiproxy-python's ``APIConsumer``: its host and port are class attributes (one server
per process, shared by every caller, so a test cannot run a second server next to the session
one), its requests have no timeout (a wedged server hangs the whole run), it honours
``HTTP_PROXY`` for a loopback API, it lets 5xx answers through as success and drops the body of
the answers it does raise on. This module talks to the same REST API with one
``requests.Session`` per server instead. Its exception classes are not used either, so callers
only ever see :class:`~bench.errors.FaultError`.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import requests

from bench.errors import FaultError
from bench.faults.base import DIRECTIONS

# The toxic types toxiproxy-server v2.12.0 registers (toxics/*.go, ``Register(...)``).
TOXIC_TYPES: tuple[str, ...] = (
    "bandwidth",
    "latency",
    "limit_data",
    "noop",
    "reset_peer",
    "slicer",
    "slow_close",
    "timeout",
)

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOSTPORT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d{1,5})$"
)


def parse_hostport(value: str, what: str, allow_port_zero: bool = False) -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6]:port"``); :class:`FaultError` naming ``what`` if bad."""
    m = _HOSTPORT.match(value) if isinstance(value, str) else None
    port = int(m["port"]) if m else -1
    if m is None or not (0 if allow_port_zero else 1) <= port <= 65535:
        raise FaultError(
            f"bad {what} {value!r}: expected 'host:port' with a port "
            f"{'0' if allow_port_zero else '1'}-65535, e.g. '127.0.0.1:6443'"
        )
    return (m["v6"] or m["host"]), port


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise FaultError(f"bad link name {name!r}: use 1-64 letters, digits, '_' or '-'")
    return name


def check_direction(direction: str) -> tuple[str, ...]:
    """The Toxiproxy streams for ``direction``: ``both`` is upstream and downstream."""
    if direction not in DIRECTIONS:
        raise FaultError(f"bad direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    return ("upstream", "downstream") if direction == "both" else (direction,)


def check_toxic_type(toxic_type: str) -> str:
    if toxic_type not in TOXIC_TYPES:
        raise FaultError(
            f"unknown toxic type {toxic_type!r}; valid toxic types: {', '.join(TOXIC_TYPES)}"
        )
    return toxic_type


class Api:
    """Calls to one toxiproxy-server; every failure becomes a :class:`FaultError`."""

    def __init__(self, url: str, timeout: float = 10.0, log_hint: str = "") -> None:
        self.url = url
        self.timeout = timeout
        self.log_hint = log_hint
        self._session = requests.Session()
        self._session.trust_env = False  # never send loopback API calls through HTTP_PROXY
        self._lock = threading.Lock()  # a Session is not thread-safe; flaps call from threads

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """``method path`` with a JSON ``body``; the decoded JSON answer, or None if empty."""
        status, answer = self.call_status(method, path, body)
        if status >= 400:
            raise FaultError(f"toxiproxy API {method} {path} -> {status}: {answer}")
        return answer

    def call_status(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Like :meth:`call`, but HTTP errors come back as ``(status, error message)``."""
        try:
            with self._lock:
                resp = self._session.request(
                    method, self.url + path, json=body, timeout=(2.0, self.timeout)
                )
        except requests.RequestException as e:
            raise FaultError(
                f"toxiproxy API {method} {self.url}{path} failed: {e}{self.log_hint}"
            ) from e
        if resp.status_code >= 400:
            try:
                return resp.status_code, resp.json().get("error", resp.text)
            except ValueError:
                return resp.status_code, resp.text.strip()
        return resp.status_code, (resp.json() if resp.content else None)

    def close(self) -> None:
        self._session.close()
