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
poll on the controller. Each value's resolution is the interval (said in the note). A sample
is timed when its answer arrives (a status read during the call is never dated early).

:class:`SubcloudPoller` samples in a thread over SSH; the keystone credentials come from the
controller's ``openrc``, or, with ``password_env`` in the lab, from that environment variable
of the harness, fed to the command on its standard input (never on a command line, never in
the lab file, never in a result).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.errors import ClusterError, EdgebenchError, UsageError

if TYPE_CHECKING:
    from bench.distros.remote.lab import SystemController
    from bench.hosts import Host

log = logging.getLogger(__name__)
POLL_S = 5.0
#: dcmanager's subcloud audit period
AUDIT_S = 30.0
#: how long a cut waits for the subcloud to be seen offline: dcmanager needs failed audits
#: before it marks a subcloud offline, so five audit periods
OFFLINE_BOUND_S = 5 * AUDIT_S
#: how long after the restore the subcloud may take to be online and in-sync again
RESYNC_BOUND_S = 10 * AUDIT_S
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


def show_command(openrc: str, subcloud: str, password: bool = False) -> tuple[str, str, str]:
    """A :meth:`bench.hosts.Host.run` format string and its arguments; with ``password``,
    the keystone password is read from standard input after sourcing ``openrc``."""
    read = " && IFS= read -r OS_PASSWORD && export OS_PASSWORD" if password else ""
    return (f". %s >/dev/null{read} && dcmanager subcloud show %s -f json", openrc, subcloud)


def controller_password(controller: SystemController) -> str | None:
    """The keystone password from ``password_env`` (None without it); UsageError naming
    the variable when it is not set."""
    import os

    if not controller.password_env:
        return None
    value = os.environ.get(controller.password_env)
    if not value:
        raise UsageError(
            f"system_controller.password_env: the environment variable "
            f"{controller.password_env} is not set (it holds the keystone password)"
        )
    return value


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
    if offline is None:  # nothing to come back from: the first poll after the restore
        never = (None, f"never seen offline; {res}")  # would only measure the poll delay
        out["subcloud_online_s"] = never
        out["subcloud_resync_s"] = never
        return out
    back_from = max(restore_at, offline.at)  # an audit may see the outage only after it
    online = _first(samples, back_from, lambda s: s.availability == "online")
    out["subcloud_online_s"] = (
        (online.at - restore_at, res) if online else (None, f"not online again; {res}")
    )
    synced = _first(samples, back_from, lambda s: s.availability == "online" and s.in_sync)
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


class SubcloudPoller:
    """Samples ``dcmanager subcloud show`` on the system controller every ``poll_s`` in a
    thread, from :meth:`start` to :meth:`stop`. A failed call is kept in :attr:`errors` (with
    no sample), never raised from the thread."""

    def __init__(
        self,
        host: Host,
        controller: SystemController,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.subcloud = controller.subcloud
        self.poll_s = poll_s
        self._clock = clock
        self._password = controller_password(controller)
        self._command = show_command(controller.openrc, controller.subcloud, bool(self._password))
        self._samples: list[Sample] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> Sample:
        """One call now (the sample, or ClusterError saying what the controller answered)."""
        fmt, *args = self._command
        if self._password is not None:
            result = self.host.run_input(self._password + "\n", fmt, *args)
        else:
            result = self.host.run(fmt, *args)
        at = self._clock()
        if not result.succeeded:  # the CLI's reason is its last line (before: --debug noise)
            lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise ClusterError(
                f"dcmanager subcloud show {self.subcloud} exited with status "
                f"{result.exit_status}: {lines[-1][-200:] if lines else '(no output)'}"
            )
        return Sample(at, parse_subcloud_show(result.stdout))

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            try:
                sample = self.sample()
                with self._lock:
                    self._samples.append(sample)
            except EdgebenchError as exc:
                with self._lock:
                    self.errors.append(str(exc))
                log.warning("polling subcloud %s: %s", self.subcloud, exc)
            self._stop.wait(max(0.0, self.poll_s - (self._clock() - started)))

    def start(self) -> SubcloudPoller:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="subcloud-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (the call in flight ends first). Never raises."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60.0)
        self._thread = None

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def wait_for(
        self, test: Callable[[SubcloudStatus], bool], after: float, timeout: float
    ) -> bool:
        """Whether a sample at or after ``after`` passes ``test`` within ``timeout`` s."""
        deadline = self._clock() + timeout
        while True:
            if _first(self.samples(), after, test) is not None:
                return True
            if self._clock() >= deadline or self._thread is None:
                return False
            self._stop.wait(min(self.poll_s, 1.0))
