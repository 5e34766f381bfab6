"""Result recording: ``measurements.csv`` (long format, one row per value) and ``run.json``.

Rows are appended one at a time and flushed to disk, so a run that is killed half-way still
leaves a CSV that pandas can read. Nothing that looks like a credential is ever written.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import __version__
from bench.results.metrics import metric

#: 2: recovery is measured to the stable point (see ``bench.results.metrics.V1_METRICS``);
#: the columns are those of version 1. Readers accept :data:`READABLE_SCHEMAS`.
SCHEMA_VERSION = 2
READABLE_SCHEMAS: tuple[int, ...] = (1, 2)
COLUMNS: tuple[str, ...] = (
    "schema_version",
    "run_id",
    "started_at",
    "distro",
    "provider",
    "distro_version",
    "profile",
    "scenario",
    "case",
    "repeat",
    "node",
    "metric",
    "value",
    "unit",
    "better",
    "note",
)
MEASUREMENTS = "measurements.csv"
RUN_JSON = "run.json"

# Things that must never reach a result file: bearer tokens, JWTs, PEM blocks, kubeconfig keys.
_SECRET_PATTERNS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"-----BEGIN [A-Z ]*-----[\s\S]*?(?:-----END [A-Z ]*-----|$)"),  # PEM
    re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/=]+"),  # base64 of a PEM block (kubeconfig data)
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"""(?i)(["']?(?:[\w-]*token|password|passwd|secret|client-key-data|"""
        r"""client-certificate-data|certificate-authority-data)["']?\s*[=:]\s*["']?)"""
        r"""[^\s"',}]+"""
    ),
]
# Lab access (SSH, StarlingX dcmanager): a password in a URL or given to sshpass, a secret
# option in a quoted command line, a keystone (Fernet) token.
_SECRET_PATTERNS += [
    re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(?=@)"),  # scheme://user:PASSWORD@
    re.compile(r"(sshpass\s+-p\s*)\S+"),
    re.compile(r"(?i)(--?[\w-]*(?:password|passwd|token|secret)(?:\s+|=))[^\s-]\S*"),
    re.compile(r"gAAAAA[A-Za-z0-9_-]{20,}=*"),  # keystone Fernet tokens
]
_SECRET_OPTIONS = re.compile(r"(?i)^--?[\w-]*(token|password|kubeconfig|key|secret)\b")
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """Replace anything that looks like a credential in ``text`` with ``<redacted>``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Redact the values of options such as ``--token X`` or ``--kubeconfig=path``."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if _SECRET_OPTIONS.match(arg):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + REDACTED)
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(redact(arg))
    return out


def utc_now() -> str:
    """The current UTC time as ISO 8601 with microseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def new_run_id() -> str:
    """A sortable run id: UTC time plus a short random suffix."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{os.urandom(3).hex()}"


def git_commit(path: Path) -> str | None:
    """The commit of the harness checkout, with ``+dirty`` when it has local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


@dataclass(frozen=True)
class RunContext:
    """What every row of one run shares."""

    run_id: str
    started_at: str
    distro: str
    provider: str
    profile: str
    distro_version: str = ""


def _format_value(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise TypeError("a measurement value must be a number, not a bool")
    number = float(value)
    if math.isnan(number):
        return ""
    if math.isinf(number):
        raise ValueError(f"a measurement value must be finite, got {value!r}")
    return repr(int(value)) if isinstance(value, int) else repr(number)


class CsvAppender:
    """Appends whole CSV rows to one file: one ``write`` per row, then ``fsync``, so a killed
    run leaves only complete rows behind."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.append(dict(zip(self.columns, self.columns, strict=True)))

    def append(self, row: Mapping[str, str]) -> None:
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n").writerow(
            {k: redact(str(v)) for k, v in row.items()}
        )
        data = buf.getvalue().encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)


class Recorder:
    """Appends measurement rows to ``<run_dir>/measurements.csv`` as they are measured."""

    def __init__(self, run_dir: Path, context: RunContext) -> None:
        self.run_dir = Path(run_dir)
        self.context = context
        self._out = CsvAppender(self.run_dir / MEASUREMENTS, COLUMNS)
        self.rows = 0

    @property
    def path(self) -> Path:
        return self._out.path

    def set_distro_version(self, version: str) -> None:
        """Record the measured distribution's version on every later row."""
        self.context = dataclasses.replace(self.context, distro_version=version)

    def record(
        self,
        *,
        scenario: str,
        case: str,
        metric_name: str,
        value: float | int | None,
        repeat: int = 0,
        node: str = "",
        note: str = "",
    ) -> dict[str, str]:
        """Append one measurement; ``value=None`` (or NaN) needs a ``note`` saying why."""
        entry = metric(metric_name)
        text = _format_value(value)
        if not text and not note:
            raise ValueError(f"{metric_name}: an empty value needs a note saying why")
        ctx = self.context
        row = {
            "schema_version": str(SCHEMA_VERSION),
            "run_id": ctx.run_id,
            "started_at": ctx.started_at,
            "distro": ctx.distro,
            "provider": ctx.provider,
            "distro_version": ctx.distro_version,
            "profile": ctx.profile,
            "scenario": scenario,
            "case": case,
            "repeat": str(repeat),
            "node": node,
            "metric": entry.name,
            "value": text,
            "unit": entry.unit,
            "better": entry.better,
            "note": note,
        }
        self._out.append(row)
        self.rows += 1
        return row


EVENTS = "events.csv"
EVENT_COLUMNS = (
    "run_id",
    "scenario",
    "case",
    "repeat",
    "node",
    "kind",
    "wall_time",
    "mono_time",
    "value",
)


class EventJournal:
    """``<run_dir>/events.csv``: node Ready transitions and fault windows, for timelines."""

    def __init__(self, run_dir: Path, run_id: str) -> None:
        self.run_id = run_id
        self._out = CsvAppender(Path(run_dir) / EVENTS, EVENT_COLUMNS)

    def add(
        self,
        *,
        scenario: str,
        case: str,
        repeat: int,
        node: str,
        kind: str,
        wall: dt.datetime,
        mono: float,
        value: str = "",
    ) -> None:
        self._out.append(
            {
                "run_id": self.run_id,
                "scenario": scenario,
                "case": case,
                "repeat": str(repeat),
                "node": node,
                "kind": kind,
                "wall_time": wall.isoformat(timespec="microseconds"),
                "mono_time": f"{mono:.6f}",
                "value": value,
            }
        )


def _sanitize(obj: Any) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        return {str(k): _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_sanitize(v) for v in obj]
    return obj


@dataclass
class RunInfo:
    """``run.json``: what was run, where, with which tools and timings."""

    run_dir: Path
    context: RunContext
    command_line: list[str] = field(default_factory=lambda: list(sys.argv))
    tools: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    ended_at: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / RUN_JSON

    def as_dict(self) -> dict[str, Any]:
        ctx = self.context
        repo = Path(__file__).resolve().parents[2]
        return _sanitize(
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": ctx.run_id,
                "harness": {"name": "edgebench", "version": __version__, "git": git_commit(repo)},
                "host": {
                    "hostname": socket.gethostname(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                },
                "distro": ctx.distro,
                "provider": ctx.provider,
                "distro_version": ctx.distro_version,
                "profile": ctx.profile,
                "timings": dict(self.timings),
                "tools": dict(self.tools),
                "command_line": redact_argv(self.command_line),
                "started_at": ctx.started_at,
                "ended_at": self.ended_at,
                **self.extra,
            }
        )

    def write(self) -> Path:
        """Write ``run.json`` atomically (a temporary file renamed into place)."""
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=False) + "\n")
        os.replace(tmp, self.path)
        return self.path

    def finish(self) -> Path:
        self.ended_at = utc_now()
        return self.write()
