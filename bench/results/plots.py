"""The report's plots, drawn with matplotlib's object API (no pyplot state, the Agg canvas).

* :func:`strip_plots`: per (scenario, metric), every value as a point, grouped by case, one
  colour per distro (the same in every plot, :func:`bench.results.report.distro_colors`); the
  median as a black bar; a box behind the points only from ``BOX_FROM`` values; the y axis from
  zero for durations, counts, ratios, memory and bytes; the unit in the axis label; groups
  without values named in the plot with the reason their rows give.
* :func:`size_plots`: per (scenario, series of sized cases, metric) with values at two sizes
  or more (:mod:`bench.results.sizes`): the metric against the size (nodes, kB/s), one colour
  per distro, a point per run and repeat, each distro's medians joined by a line; both axes
  from zero; an ``uncapped`` size drawn apart at the right, not to scale.
* :func:`timeline_plots`: per scenario, each node's Ready state around the fault window, rows
  labelled with distro, run id, case, repeat and node; the fault windows shaded, one colour per
  fault kind, with the fault (and the run's cut mode where recorded) in the legend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bench.results.sizes import Growth

BOX_FROM = 10
MAX_POINTS = 300
MAX_TIMELINE_ROWS = 48
FROM_ZERO_UNITS = frozenset({"s", "count", "ratio", "ms", "MiB", "bytes"})
READY_COLORS = {"True": "#2e7d32", "False": "#c62828", "Unknown": "#9e9e9e"}
FAULT_COLORS = ("#ffb74d", "#b39ddb", "#80deea", "#f48fb1")


@dataclass
class Plot:
    """A rendered plot: title, caption, file name under ``plots/``, PNG bytes, scenario."""

    title: str
    name: str
    png: bytes = field(repr=False)
    caption: str = ""
    scenario: str = ""
    wide: bool = False


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def png(figure: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def caption_of(metric: str, unit: str, better: str) -> str:
    """What a metric means, from the catalogue; renamed v1 metrics say so."""
    from bench.results.metrics import METRICS

    entry = METRICS.get(metric)
    meaning = entry.description if entry else "not in today's catalogue (a renamed v1 metric)"
    direction = f"{better} is better" if better in ("lower", "higher") else "no better direction"
    return f"{metric} ({unit}): {meaning}; {direction}."


def _strip(
    ax: Axes,
    part: pd.DataFrame,
    colors: Mapping[str, str],
    distros: Sequence[str],
) -> list[str]:
    """Draw one strip plot; return 'case/distro: why' for groups without values."""
    import numpy as np

    rng = np.random.default_rng(0)
    cases = sorted(set(map(str, part["case"])))
    width = 0.8 / max(len(distros), 1)
    empty: list[str] = []
    ticks, labels = [], []
    for ci, case in enumerate(cases):
        ticks.append(ci)
        labels.append(case)
        rows = part[part["case"] == case]
        for di, distro in enumerate(distros):
            sample = rows[rows["distro"] == distro]
            if sample.empty:
                continue
            values = sample["value"].to_numpy(dtype=float)
            shown = values[~np.isnan(values)]
            x0 = ci - 0.4 + width * (di + 0.5)
            if not len(shown):
                notes = sorted({str(n) for n in sample["note"] if str(n)}) or ["no note"]
                empty.append(f"{case}/{distro}: {'; '.join(notes)}")
                ax.text(x0, 0, "no\nvalues", ha="center", va="bottom", fontsize=7, color="#555")
                continue
            if len(shown) >= BOX_FROM:
                ax.boxplot(
                    [shown],
                    positions=[x0],
                    widths=width * 0.8,
                    showfliers=False,
                    medianprops={"color": "black"},
                    boxprops={"color": "#777"},
                    whiskerprops={"color": "#777"},
                    capprops={"color": "#777"},
                )
            points = shown
            if len(points) > MAX_POINTS:
                points = rng.choice(points, MAX_POINTS, replace=False)
            jitter = rng.uniform(-width * 0.3, width * 0.3, len(points))
            ax.plot(x0 + jitter, points, "o", ms=4, alpha=0.7, color=colors[distro])
            median = float(np.median(shown))
            ax.plot([x0 - width * 0.35, x0 + width * 0.35], [median, median], color="black", lw=2)
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_xlim(-0.6, len(cases) - 0.4)
    return empty


def strip_plots(frame: pd.DataFrame, colors: Mapping[str, str]) -> list[Plot]:
    """One strip plot per (scenario, metric) of ``frame``, headline metrics first."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from bench.results.versus import metric_order

    plots: list[Plot] = []
    distros = sorted(set(map(str, frame["distro"])))
    columns = ["scenario", "metric", "case", "distro", "unit", "better", "value", "note"]
    data = frame[[c for c in columns if c in frame.columns]]
    if "note" not in data.columns:
        data = data.assign(note="")
    groups = data.groupby(["scenario", "metric"], observed=True, sort=False)
    pairs: list[tuple[str, str]] = [(str(k[0]), str(k[1])) for k in groups.groups]  # type: ignore[index]
    names = sorted(pairs, key=lambda k: (k[0], metric_order(k[1])))
    for scenario, metric in names:
        part = groups.get_group((scenario, metric))
        unit, better = str(part["unit"].iloc[0]), str(part["better"].iloc[0])
        cases = part["case"].nunique()
        figure = Figure(figsize=(min(3.2 + 1.6 * cases * max(len(distros), 1) / 2, 12), 3.4))
        figure.set_layout_engine("constrained")
        ax = figure.add_subplot()
        present = [d for d in distros if d in set(map(str, part["distro"]))]
        empty = _strip(ax, part, colors, present)
        ax.set_ylabel(f"{metric} ({unit})")
        if unit in FROM_ZERO_UNITS:
            values = part["value"].to_numpy(dtype=float)
            peak = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
            if peak <= 0:
                ax.set_ylim(0, 1)
            else:
                ax.set_ylim(0, peak * 1.08)
        if unit == "count":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        arrow = {"lower": "lower is better", "higher": "higher is better"}.get(better, "")
        ax.set_title(f"{scenario}: {metric}" + (f"  ({arrow})" if arrow else ""), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        handles = [
            Line2D([], [], marker="o", ls="", color=colors[d], label=d, markersize=6)
            for d in present
        ]
        handles.append(Line2D([], [], color="black", lw=2, label="median"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        caption = caption_of(metric, unit, better)
        if empty:
            caption += " No values: " + "; ".join(empty) + "."
        plots.append(
            Plot(
                f"{scenario}: {metric}",
                f"dist_{slug(scenario)}_{slug(metric)}.png",
                png(figure),
                caption,
                scenario,
            )
        )
    return plots


@dataclass
class TimelineRow:
    """One node in one repeat: Ready intervals relative to its fault start, in seconds."""

    label: str
    spans: list[tuple[float, float, str]]
    faults: list[tuple[float, float, str]]


def timeline_rows(
    events: pd.DataFrame, distro_of: Mapping[str, str] | None = None
) -> dict[str, list[TimelineRow]]:
    """Per scenario, one row per (run, case, repeat, node): pure, from an events frame.

    Rows are labelled ``distro run case rN node`` (distro where ``distro_of`` knows the run).
    """
    distro_of = distro_of or {}
    out: dict[str, list[TimelineRow]] = {}
    ordered = events.sort_values("mono_time", kind="stable")
    episodes = ordered.groupby(["scenario", "run_id", "case", "repeat"], sort=True)
    for (scenario, run_id, case, repeat), episode in episodes:
        times = episode["mono_time"].to_numpy(dtype=float)
        kinds = episode["kind"].to_numpy()
        starts = times[kinds == "fault_start"]
        t0 = float(starts[0]) if len(starts) else float(times.min())
        last = float(times.max()) - t0
        end = last + max(2.0, 0.05 * (last - (float(times.min()) - t0)))  # show the last state
        faults: list[tuple[float, float, str]] = []
        open_faults: list[tuple[float, str]] = []
        for kind, t, value in zip(kinds, times, episode["value"], strict=True):
            if kind == "fault_start":
                open_faults.append((t - t0, str(value)))
            elif kind == "fault_end" and open_faults:
                begin, name = open_faults.pop(0)
                faults.append((begin, t - t0, name))
        faults += [(begin, last, name) for begin, name in open_faults]
        ready = episode[episode["kind"] == "ready"]
        distro = distro_of.get(str(run_id), "")
        for node, node_events in ready.groupby("node", sort=True):
            t = node_events["mono_time"].to_numpy(dtype=float) - t0
            states = [str(v).strip().capitalize() for v in node_events["value"]]
            stops = [*t[1:], max(end, float(t[-1]))]
            spans = [(a, b, s) for a, b, s in zip(t, stops, states, strict=True) if b >= a]
            prefix = f"{distro} " if distro else ""
            label = f"{prefix}{str(run_id)[-6:]} {case} r{repeat} {node}"
            out.setdefault(str(scenario), []).append(TimelineRow(label, spans, faults))
    return out


def _fault_kind(name: str) -> str:
    return name.split()[0] if name.split() else "fault"


def timeline_plots(
    events: pd.DataFrame,
    distro_of: Mapping[str, str] | None = None,
    cut_mode_of: Mapping[str, str] | None = None,
) -> list[Plot]:
    """A timeline per scenario: each node's Ready state, fault windows shaded by kind."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    cut_modes = sorted({m for m in (cut_mode_of or {}).values() if m and m != "unrecorded"})
    plots: list[Plot] = []
    for scenario, rows in sorted(timeline_rows(events, distro_of).items()):
        dropped = max(0, len(rows) - MAX_TIMELINE_ROWS)
        rows = rows[:MAX_TIMELINE_ROWS]
        kinds = sorted({_fault_kind(name) for r in rows for _, _, name in r.faults})
        shade = {k: FAULT_COLORS[i % len(FAULT_COLORS)] for i, k in enumerate(kinds)}
        figure = Figure(figsize=(10, 1.4 + 0.36 * len(rows)), layout="constrained")
        ax = figure.add_subplot()
        for y, row in enumerate(rows):
            for begin, stop, name in row.faults:
                ax.broken_barh(
                    [(begin, stop - begin)], (y - 0.5, 1.0), color=shade[_fault_kind(name)]
                )
            for begin, stop, state in row.spans:
                color = READY_COLORS.get(state, READY_COLORS["Unknown"])
                ax.broken_barh([(begin, stop - begin)], (y - 0.18, 0.36), color=color)
        ax.set_yticks(range(len(rows)), [r.label for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("time from fault start (s)")
        title = f"{scenario}: node Ready state around the fault"
        if dropped:
            title += f" (first {MAX_TIMELINE_ROWS} rows, {dropped} more not shown)"
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        handles = [Patch(color=c, label=f"Ready={s}") for s, c in READY_COLORS.items()]
        mode = f" ({'/'.join(cut_modes)})" if cut_modes else ""
        for kind, color in shade.items():
            handles.append(
                Patch(color=color, label=f"fault: {kind}{mode if kind == 'cut' else ''}")
            )
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        caption = (
            "Each row is one node in one repeat (distro, run id suffix, case, repeat, node); "
            "bars show its Ready condition as the control plane's watch saw it, the shaded "
            "band the fault window."
        )
        plots.append(
            Plot(
                f"{scenario}: node Ready timeline",
                f"timeline_{slug(scenario)}.png",
                png(figure),
                caption,
                scenario,
                wide=True,
            )
        )
    return plots


def draw_growth(ax: Axes, found: Growth, colors: Mapping[str, str]) -> None:
    """Draw one :class:`~bench.results.sizes.Growth` on ``ax``: per distro its points (one
    per run and repeat) and its median line; an unbounded size apart at the right."""
    import numpy as np

    rng = np.random.default_rng(0)
    bounded = [s for s in found.sizes if math.isfinite(s)]
    top = max(bounded)
    apart = top * 1.4 if top > 0 else 1.0  # where "uncapped" is drawn, not to scale

    def position(size: float) -> float:
        return size if math.isfinite(size) else apart

    distros = sorted(set(map(str, found.medians["distro"])))
    for distro in distros:
        color = colors[distro]
        points = found.points[found.points["distro"] == distro]
        xs = np.array([position(float(s)) for s in points["size"]])
        jitter = rng.uniform(-0.012, 0.012, len(xs)) * apart
        ax.plot(xs + jitter, points["value"], "o", ms=4, alpha=0.6, color=color)
        line = found.medians[found.medians["distro"] == distro].sort_values("size")
        sizes, medians = line["size"].to_numpy(dtype=float), line["median"].to_numpy(dtype=float)
        finite = np.isfinite(sizes)
        ax.plot(sizes[finite], medians[finite], "-", lw=2, color=color)
        if not finite.all() and finite.any():
            last = np.flatnonzero(finite)[-1]
            ax.plot(
                [sizes[last], apart], [medians[last], medians[~finite][0]], "--", lw=2, color=color
            )
        xs_median = np.where(finite, sizes, apart)
        ax.plot(xs_median, medians, "_", ms=14, mew=2, color=color)  # a bar at every median
    ticks = [position(s) for s in found.sizes]
    labels = [f"{s:g}" if math.isfinite(s) else str(found.quantity.unbounded) for s in found.sizes]
    ax.set_xticks(ticks, labels, fontsize=8)
    if len(bounded) < len(found.sizes):
        ax.axvline((top + apart) / 2, color="#999", ls=":", lw=1)
    ax.set_xlim(0, max(ticks) * 1.08)
    values = [*found.points["value"], *found.medians["median"]]
    peak = max(values) if values else 0.0
    ax.set_ylim(0, peak * 1.08 if peak > 0 else 1)


def growth_caption(found: Growth) -> str:
    """What grows with what, from the metric catalogue, and how the plot shows it."""
    q = found.quantity
    text = (
        f"How {found.metric} {q.follows} ({q.unit}; cases {found.series}), one "
        f"colour per distro. {caption_of(found.metric, found.unit, found.better)} Each point is "
        "one repeat of one run"
        + (" (the median over its nodes)" if found.per_node else "")
        + "; the line joins each distro's medians of all values at each size (as in the "
        "summary table)."
    )
    if any(not math.isfinite(s) for s in found.sizes):
        text += (
            f" '{q.unbounded}' is the case run without a cap (the link's full rate): drawn apart "
            "at the right of the dotted line, not to scale, reached by a dashed segment."
        )
    if found.empty:
        text += " No values: " + "; ".join(found.empty) + "."
    return text


def size_plots(frame: pd.DataFrame, colors: Mapping[str, str]) -> list[Plot]:
    """One plot per (scenario, series of sized cases, metric) with values at two sizes or
    more: the metric against the size, one colour per distro (see :mod:`bench.results.sizes`)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from bench.results.sizes import growth

    plots: list[Plot] = []
    for found in growth(frame):
        figure = Figure(figsize=(5.6, 3.4), layout="constrained")
        ax = figure.add_subplot()
        draw_growth(ax, found, colors)
        q = found.quantity
        ax.set_xlabel(f"{q.axis} ({q.unit})")
        ax.set_ylabel(f"{found.metric} ({found.unit})")
        if found.unit == "count":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        arrow = {"lower": "lower is better", "higher": "higher is better"}.get(found.better, "")
        title = f"{found.scenario} {found.series}: {found.metric} against {q.name}"
        subtitle = found.series + (f", {arrow}" if arrow else "")
        ax.set_title(f"{found.scenario}: {found.metric} against {q.name}\n{subtitle}", fontsize=9)
        ax.grid(alpha=0.3)
        handles = [
            Line2D([], [], marker="o", color=colors[d], lw=2, label=d)
            for d in sorted(set(map(str, found.medians["distro"])))
        ]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        plots.append(
            Plot(
                title,
                f"size_{slug(found.scenario)}_{slug(found.series)}_{slug(found.metric)}.png",
                png(figure),
                growth_caption(found),
                found.scenario,
            )
        )
    return plots
