"""Sizes that case names carry, and each metric's values against them: how cost grows as the
work grows.

Records carry no size column: the size is part of the case name, in today's files as in older
ones, and this module is the one place that reads it:

* ``n<N>/<mode>`` (mass_reconnect): N edge nodes cut and restored together
  (``n50/blackhole``); the suite is run once per ``--edge-nodes`` N;
* ``<case>-<K>kBps/<mode>`` (metadata_resync; degraded_link's ``bandwidth-8KBps``): the link
  capped at K kilobytes (1000 bytes) per second. The same name without the ``-<K>kBps`` part
  is the same case run uncapped: it is the ``uncapped`` size of that series, but only where a
  capped case of the series is present (on its own, ``cm-scale-delete-create/reset`` says
  nothing about bandwidth).

Fault severities (``latency-200ms``, ``loss-5pct``) are not sizes: they stay in the strip
plots. :func:`growth` is pure: a measurements frame in, one :class:`Growth` per (scenario,
series, metric) with at least two sizes that have values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: the x position of an uncapped bandwidth: larger than any cap
UNCAPPED = math.inf


@dataclass(frozen=True)
class Quantity:
    """What a size counts: its name, its unit, an axis label and how a metric follows it."""

    name: str
    unit: str
    axis: str
    #: completes "How <metric> ..." in a caption
    follows: str
    #: the label of the size-less case of a series (None: a size-less case is no size)
    unbounded: str | None = None


NODES = Quantity(
    "nodes",
    "nodes",
    "edge nodes reconnecting together",
    "grows with the number of edge nodes cut and restored together",
)
BANDWIDTH = Quantity(
    "bandwidth",
    "kB/s",
    "link bandwidth cap",
    "changes with the link's bandwidth cap (1 kB = 1000 bytes)",
    unbounded="uncapped",
)


@dataclass(frozen=True)
class CaseSize:
    """The size one case name carries, and the series it belongs to."""

    quantity: Quantity
    value: float  # UNCAPPED for the unbounded member of a series
    series: str  # the case name with its size as '*': 'n*/blackhole', 'x-*kBps/reset'

    @property
    def label(self) -> str:
        if math.isinf(self.value) and self.quantity.unbounded:
            return self.quantity.unbounded
        return f"{self.value:g}"


@dataclass(frozen=True)
class _Token:
    pattern: re.Pattern[str]
    quantity: Quantity
    placeholder: str


# The size token of a case name: the first that matches wins. Sizes end a '/'-part of the name.
_TOKENS = (
    _Token(re.compile(r"^n(\d+)(?=/|$)"), NODES, "n*"),
    _Token(re.compile(r"-(\d+(?:\.\d+)?)[kK]Bps(?=/|$)"), BANDWIDTH, "-*kBps"),
)


def case_size(case: str) -> CaseSize | None:
    """The size ``case`` names, or None when its name carries none: ``n50/blackhole`` is 50
    nodes of the series ``n*/blackhole``; ``long-evictable/blackhole`` has no size."""
    for token in _TOKENS:
        match = token.pattern.search(case)
        if match:
            series = case[: match.start()] + token.placeholder + case[match.end() :]
            return CaseSize(token.quantity, float(match.group(1)), series)
    return None


def _without_size(case: str) -> str | None:
    """The name of the unbounded case of ``case``'s series ('x-64kBps/reset' -> 'x/reset')."""
    for token in _TOKENS:
        match = token.pattern.search(case)
        if match:
            if token.quantity.unbounded is None:
                return None
            return case[: match.start()] + case[match.end() :]
    return None


def sized_cases(cases: Iterable[str]) -> dict[str, CaseSize]:
    """The size of every case of one scenario that has one.

    A case without a size token is the unbounded member (``uncapped``) of a series when a
    bounded case of that series is among ``cases``; otherwise it has no size.
    """
    names = list(dict.fromkeys(cases))
    out: dict[str, CaseSize] = {}
    for case in names:
        size = case_size(case)
        if size is None:
            continue
        out[case] = size
        bare = _without_size(case)
        if bare is not None and bare in names and case_size(bare) is None:
            out[bare] = CaseSize(size.quantity, UNCAPPED, size.series)
    return out


@dataclass(frozen=True)
class Growth:
    """One metric of one series of cases against their sizes, per distro (pure data).

    ``points``: one row per (distro, size, run, repeat) with that repeat's value, or the
    median over its nodes where a repeat has several (``per_node``). ``medians``: per
    (distro, size) the median of all values (nodes and repeats pooled, as in the summary
    table) and their count. ``empty``: 'case/distro: why' for sizes with rows but no values.
    """

    scenario: str
    series: str
    metric: str
    unit: str
    better: str
    quantity: Quantity
    points: pd.DataFrame  # distro, size, case, run_id, repeat, value
    medians: pd.DataFrame  # distro, size, case, median, n
    per_node: bool
    empty: tuple[str, ...]

    @property
    def sizes(self) -> list[float]:
        return sorted(set(map(float, self.medians["size"])))


def growth(frame: pd.DataFrame) -> list[Growth]:
    """Every (scenario, series, metric) of ``frame`` with values at two sizes or more; the
    scenarios in name order, series in name order, metrics headline first (pure)."""
    from bench.results.versus import metric_order

    out: list[Growth] = []
    if not len(frame):
        return out
    for scenario in sorted(set(map(str, frame["scenario"]))):
        part = frame[frame["scenario"].astype(str) == scenario]
        sizes = sized_cases(map(str, part["case"]))
        if not sizes:
            continue
        series_of: dict[str, list[str]] = {}
        for case, size in sizes.items():
            series_of.setdefault(size.series, []).append(case)
        for series in sorted(series_of):
            cases = series_of[series]
            rows = part[part["case"].astype(str).isin(cases)]
            metrics = sorted(set(map(str, rows["metric"])), key=metric_order)
            for metric in metrics:
                found = _growth(scenario, series, metric, rows, sizes)
                if found is not None:
                    out.append(found)
    return out


def _growth(
    scenario: str, series: str, metric: str, rows: pd.DataFrame, sizes: dict[str, CaseSize]
) -> Growth | None:
    import pandas as pd

    data = rows[rows["metric"].astype(str) == metric]
    data = pd.DataFrame(
        {
            "distro": data["distro"].astype(str),
            "case": data["case"].astype(str),
            "run_id": data["run_id"].astype(str),
            "repeat": data["repeat"].astype(int),
            "value": data["value"].astype(float),
            "note": data["note"].astype(str) if "note" in data.columns else "",
        }
    )
    data["size"] = [sizes[c].value for c in data["case"]]
    valued = data.dropna(subset=["value"])
    if valued["size"].nunique() < 2:
        return None
    keys = ["distro", "size", "case", "run_id", "repeat"]
    per_repeat = valued.groupby(keys, sort=True)["value"]
    points = per_repeat.median().reset_index()
    per_node = bool((per_repeat.size() > 1).any())
    pooled = valued.groupby(["distro", "size", "case"], sort=True)["value"]
    medians = pd.DataFrame({"median": pooled.median(), "n": pooled.size()}).reset_index()
    empty = []
    for (distro, case), group in data.groupby(["distro", "case"], sort=True):
        if group["value"].isna().all():
            notes = sorted({n for n in group["note"] if n}) or ["no note"]
            empty.append(f"{case}/{distro}: {'; '.join(notes)}")
    first = rows[rows["metric"].astype(str) == metric].iloc[0]
    quantity = sizes[str(first["case"])].quantity  # one series, one quantity
    return Growth(
        scenario=scenario,
        series=series,
        metric=metric,
        unit=str(first["unit"]),
        better=str(first["better"]),
        quantity=quantity,
        points=points,
        medians=medians,
        per_node=per_node,
        empty=tuple(empty),
    )
