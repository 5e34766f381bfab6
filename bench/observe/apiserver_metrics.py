"""Counters from the API server's own ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import re

_REQUESTS = re.compile(r"^apiserver_request_total(?:\{[^}]*\})? (\S+)$", re.M)


def request_total(text: str) -> int:
    """The sum of ``apiserver_request_total`` over all its label sets (every request the
    server has answered since it started); ValueError when the text has none."""
    values = _REQUESTS.findall(text)
    if not values:
        raise ValueError("no apiserver_request_total in the API server's /metrics")
    return int(sum(float(v) for v in values))
