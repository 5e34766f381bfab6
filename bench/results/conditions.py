"""The conditions a run was measured under, read from its ``run.json``.

Two distros are only compared (``edgebench versus``) when they ran under the same conditions:
the same timing profile, the same effective timings and the same cut mode. A run folder
without ``run.json`` (a bare CSV) has unknown timings and cut mode, which never block a
comparison on their own: only a recorded difference does.

``cut_mode`` is read from ``run.json`` (top level ``cut_mode``, or ``faults.cut_mode``) where
the harness recorded it; ``timings_source`` likewise (e.g. "fast profile flags" or "distro
defaults"), else the timings are described as "effective, from run.json".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import InputError
from bench.results.records import RUN_JSON

UNKNOWN = "unrecorded"


@dataclass(frozen=True)
class Conditions:
    """One run's conditions (from ``run.json``; empty where the run has none)."""

    run_id: str
    distro: str = ""
    provider: str = ""
    distro_version: str = ""
    profile: str = ""
    cut_mode: str = UNKNOWN
    timings: Mapping[str, float] = field(default_factory=dict)
    timings_source: str = ""
    tools: Mapping[str, str] = field(default_factory=dict)
    machine: str = ""
    harness: str = ""
    started_at: str = ""

    def timings_text(self) -> str:
        if not self.timings:
            return UNKNOWN
        return ", ".join(f"{k.removesuffix('_s')}={v:g}s" for k, v in sorted(self.timings.items()))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def from_run_json(data: Mapping[str, Any], run_id: str = "") -> Conditions:
    """Conditions from the parsed ``run.json`` of a run."""

    def section(name: str) -> Mapping[str, Any]:
        value = data.get(name)
        return value if isinstance(value, Mapping) else {}

    faults, host, harness = section("faults"), section("host"), section("harness")
    timings, tools = section("timings"), section("tools")
    cut = data.get("cut_mode") or faults.get("cut_mode") or UNKNOWN
    machine = ", ".join(
        str(part)
        for part in (
            host.get("hostname"),
            host.get("platform"),
            f"{host['cpus']} CPUs" if host.get("cpus") else None,
        )
        if part
    )
    return Conditions(
        run_id=_text(data.get("run_id")) or run_id,
        distro=_text(data.get("distro")),
        provider=_text(data.get("provider")),
        distro_version=_text(data.get("distro_version")),
        profile=_text(data.get("profile")),
        cut_mode=str(cut),
        timings={str(k): float(v) for k, v in timings.items() if isinstance(v, int | float)},
        timings_source=_text(data.get("timings_source")) or "effective, from run.json",
        tools={str(k): str(v) for k, v in tools.items()},
        machine=machine,
        harness=" ".join(_text(harness.get(k)) for k in ("version", "git") if harness.get(k)),
        started_at=_text(data.get("started_at")),
    )


def read_conditions(run_dir: str | os.PathLike[str]) -> Conditions | None:
    """The conditions of a run folder, or None when it has no ``run.json``."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable run.json: {exc}") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: not a run.json (expected a JSON object)")
    return from_run_json(data, Path(run_dir).name)


def load_conditions(csv_paths: Iterable[Path]) -> dict[str, Conditions]:
    """Conditions per run id for the run folders of ``csv_paths`` (those with a run.json)."""
    out: dict[str, Conditions] = {}
    for csv_path in csv_paths:
        found = read_conditions(Path(csv_path).parent)
        if found is not None:
            out[found.run_id] = found
    return out


#: timings that describe the agent under test, not the conditions of the run: two distros
#: differ in them by nature, so they never make a comparison "not comparable"
AGENT_TIMINGS = frozenset({"agent_silent_link_s"})


def differences(base: Sequence[Conditions], other: Sequence[Conditions]) -> list[str]:
    """What differs between two groups of runs, as short phrases; [] when comparable.

    Only recorded values count: a side without run.json, or without a cut mode, blocks
    nothing by itself.
    """
    out: list[str] = []

    def recorded(values: Iterable[str]) -> set[str]:
        return {v for v in values if v and v != UNKNOWN}

    cuts_a = recorded(c.cut_mode for c in base)
    cuts_b = recorded(c.cut_mode for c in other)
    if cuts_a and cuts_b and cuts_a != cuts_b:
        out.append(f"cut mode {'/'.join(sorted(cuts_a))} vs {'/'.join(sorted(cuts_b))}")
    timings_a = [c.timings for c in base if c.timings]
    timings_b = [c.timings for c in other if c.timings]
    if timings_a and timings_b:
        names = sorted({k for t in [*timings_a, *timings_b] for k in t} - AGENT_TIMINGS)
        for name in names:
            a = {f"{t[name]:g}" for t in timings_a if name in t}
            b = {f"{t[name]:g}" for t in timings_b if name in t}
            if a and b and a != b:
                out.append(f"timing {name} {'/'.join(sorted(a))} vs {'/'.join(sorted(b))}")
    return out
