"""StarlingX distributed cloud: how the system controller sees a subcloud during an outage.

The system controller's ``dcmanager subcloud show NAME`` (over SSH, after sourcing its
``openrc``) gives the subcloud's ``availability`` (online/offline) and one ``*_sync_status``
per endpoint type (in-sync, out-of-sync, unknown). Sampled through a cut of the subcloud's
link, the samples give:

- ``subcloud_offline_detect_s``: cut to the first sample with availability ``offline``;
- ``subcloud_online_s``: restore to the first sample ``online`` again;
- ``subcloud_resync_s``: restore to the first sample where every endpoint is ``in-sync``
  (the endpoint statuses of that sample, or of the last one, go in the note).

Polling interval: dcmanager's subcloud audit runs every 30 s, so a status changes at most
once per audit; a 5 s poll (:data:`POLL_S`) measures each transition within 5 s, a sixth of
the audit period, while costing one SSH command and one keystone-authenticated CLI call per
poll on the controller. Each value's resolution is the interval (said in the note).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ClusterError

POLL_S = 5.0
_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*(.*?)\s*\|$")


@dataclass(frozen=True)
class SubcloudStatus:
    """One ``dcmanager subcloud show`` answer."""

    availability: str
    endpoints: dict[str, str] = field(default_factory=dict)  # endpoint type -> sync status

    @property
    def in_sync(self) -> bool:
        return bool(self.endpoints) and all(v == "in-sync" for v in self.endpoints.values())

    def endpoints_note(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.endpoints.items()))


def parse_subcloud_show(text: str) -> SubcloudStatus:
    """The table (default) or ``-f json`` output of ``dcmanager subcloud show``."""
    fields: dict[str, Any] = {}
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            fields = {str(k): v for k, v in json.loads(stripped).items()}
        except json.JSONDecodeError as exc:
            raise ClusterError(f"dcmanager subcloud show: not JSON: {exc}") from None
    else:
        for line in stripped.splitlines():
            match = _ROW.match(line.strip())
            if match and match.group(1) != "Field":
                fields[match.group(1)] = match.group(2)
    if "availability" not in fields:
        raise ClusterError(
            "dcmanager subcloud show gave no availability: " + (stripped[:200] or "(no output)")
        )
    endpoints: dict[str, str] = {}
    for key, value in fields.items():
        if key.endswith("_sync_status"):
            endpoints[key.removesuffix("_sync_status")] = str(value)
    if isinstance(fields.get("endpoint_sync_status"), list):  # older JSON: a list of dicts
        for item in fields["endpoint_sync_status"]:
            endpoints[str(item.get("endpoint_type"))] = str(item.get("sync_status"))
    return SubcloudStatus(str(fields["availability"]), endpoints)


def show_command(openrc: str, subcloud: str) -> tuple[str, str, str]:
    """A :meth:`bench.hosts.Host.run` format string and its arguments."""
    return (". %s >/dev/null && dcmanager subcloud show %s -f json", openrc, subcloud)


@dataclass(frozen=True)
class Sample:
    at: float  # seconds on the harness's monotonic clock
    status: SubcloudStatus


def _first(samples: Sequence[Sample], after: float, test: Any) -> Sample | None:
    return next((s for s in samples if s.at >= after and test(s.status)), None)


def subcloud_metrics(
    samples: Sequence[Sample], cut_at: float, restore_at: float, poll_s: float = POLL_S
) -> dict[str, tuple[float | None, str]]:
    """The three subcloud metrics (value or None, note) from samples around one outage."""
    res = f"polled every {poll_s:g}s"
    out: dict[str, tuple[float | None, str]] = {}
    offline = _first(samples, cut_at, lambda s: s.availability == "offline")
    if offline is not None and offline.at <= restore_at:
        out["subcloud_offline_detect_s"] = (offline.at - cut_at, res)
    else:
        out["subcloud_offline_detect_s"] = (None, f"never offline during the outage; {res}")
    online = _first(samples, restore_at, lambda s: s.availability == "online")
    out["subcloud_online_s"] = (
        (online.at - restore_at, res) if online else (None, f"not online again; {res}")
    )
    synced = _first(samples, restore_at, lambda s: s.availability == "online" and s.in_sync)
    if synced is not None:
        out["subcloud_resync_s"] = (
            synced.at - restore_at,
            f"{synced.status.endpoints_note()}; {res}",
        )
    else:
        last = [s for s in samples if s.at >= restore_at][-1:]
        note = last[0].status.endpoints_note() if last else "no sample after the restore"
        out["subcloud_resync_s"] = (None, f"not in-sync: {note}; {res}")
    return out
