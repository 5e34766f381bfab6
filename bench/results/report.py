"""``edgebench report``: summary tables, Markdown and a self-contained HTML page, PNG plots.

The tables come from the pure functions in :mod:`bench.results.analysis`; this module renders
them and draws plots with matplotlib's object API (no pyplot state, the Agg canvas). Output
goes into the first run folder, or ``--out DIR``:

* ``report.md``: run list, a summary table per scenario, a side-by-side table per scenario
  (distros as columns) and links to the plots;
* ``report.html``: the same, one file, with the plots embedded as base64 PNGs;
* ``plots/dist_<scenario>_<metric>.png``: the distribution of a metric per case and distro;
* ``plots/timeline_<scenario>.png``: each node's Ready state around the fault window, drawn
  from the run's ``events.csv`` where it has one (runs without it get no timeline).
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas and matplotlib are imported lazily: ``edgebench --help`` stays fast
    import pandas as pd
    from matplotlib.figure import Figure

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"
MAX_POINTS_PER_BOX = 200
MAX_TIMELINE_ROWS = 48
READY_COLORS = {"True": "#2e7d32", "False": "#c62828", "Unknown": "#9e9e9e"}
SUMMARY_COLUMNS = ("n", "empty", "median", "p95", "min", "max", "iqr")
# One colour per distro in every plot (Okabe-Ito: readable by colour-blind readers).
KNOWN_DISTRO_COLORS = {
    "k3s": "#0072B2",
    "kubeedge": "#D55E00",
    "kwok": "#009E73",
    "vanilla": "#CC79A7",
    "starlingx": "#E69F00",
}
SPARE_COLORS = ("#56B4E9", "#F0E442", "#000000", "#999999")


def distro_colors(distros: Sequence[str]) -> dict[str, str]:
    """A fixed colour per distro: the known ones always get theirs, others the spares."""
    out = {d: KNOWN_DISTRO_COLORS[d] for d in distros if d in KNOWN_DISTRO_COLORS}
    spare = iter(SPARE_COLORS * (1 + len(distros) // len(SPARE_COLORS)))
    for d in sorted(distros):
        if d not in out:
            out[d] = next(spare)
    return out


@dataclass(frozen=True)
class ReportTables:
    """What a report shows, as DataFrames: computed without I/O from the measurements."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    side_by_side: pd.DataFrame
    rows: int


@dataclass
class Plot:
    """A rendered plot: its title, file name under ``plots/`` and PNG bytes."""

    title: str
    name: str
    png: bytes = field(repr=False)


def report_tables(frame: pd.DataFrame) -> ReportTables:
    """The run list, the per-key summary and the side-by-side table of ``frame``."""
    from bench.results.analysis import side_by_side_cells, summarize

    run_columns = ["run_id", "started_at", "distro", "provider", "distro_version", "profile"]
    runs = frame.groupby(run_columns, observed=True, sort=True).size().rename("rows").reset_index()
    summary = summarize(frame)
    return ReportTables(
        runs=runs, summary=summary, side_by_side=side_by_side_cells(summary), rows=len(frame)
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; numbers to 4 significant digits, NaN as '-'."""
    if table.empty:
        return "_(no rows)_"
    headers = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in table.itertuples(index=False):
        cells = [_fmt(v).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def html_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "<p><em>(no rows)</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sections(tables: ReportTables) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """Per scenario: its summary rows and its side-by-side rows."""
    out = []
    summary, sbs = tables.summary, tables.side_by_side
    for scenario in sorted(summary["scenario"].unique()) if len(summary) else []:
        rows = summary[summary["scenario"] == scenario].drop(columns="scenario")
        side = sbs[sbs["scenario"] == scenario].drop(columns="scenario")
        out.append((str(scenario), rows, side))
    return out


def render_markdown(tables: ReportTables, plots: Sequence[Plot]) -> str:
    """The report as Markdown; plots are linked from ``plots/``."""
    parts = [
        "# edgebench report",
        "",
        f"{tables.rows} measurements from {len(tables.runs)} run(s).",
        "",
        markdown_table(tables.runs),
    ]
    for scenario, rows, side in _sections(tables):
        parts += ["", f"## {scenario}", "", "### Summary", "", markdown_table(rows)]
        parts += ["", "### Side by side (median, n)", "", markdown_table(side)]
    if plots:
        parts += ["", "## Plots", ""]
        for plot in plots:
            parts += [f"![{plot.title}]({PLOTS_DIR}/{plot.name})", ""]
    return "\n".join(parts).rstrip() + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""


def render_html(tables: ReportTables, plots: Sequence[Plot]) -> str:
    """The report as one self-contained HTML page, plots embedded as base64 PNGs."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>edgebench report</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>edgebench report</h1>",
        f"<p>{tables.rows} measurements from {len(tables.runs)} run(s).</p>",
        html_table(tables.runs),
    ]
    for scenario, rows, side in _sections(tables):
        parts += [f"<h2>{html.escape(scenario)}</h2>", "<h3>Summary</h3>", html_table(rows)]
        parts += ["<h3>Side by side (median, n)</h3>", html_table(side)]
    if plots:
        parts.append("<h2>Plots</h2>")
        for plot in plots:
            data = base64.b64encode(plot.png).decode("ascii")
            title = html.escape(plot.title)
            parts.append(
                f'<figure><img alt="{title}" src="data:image/png;base64,{data}">'
                f"<figcaption>{title}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _png(figure: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def distribution_plots(frame: pd.DataFrame) -> list[Plot]:
    """A box plot per (scenario, metric): one box per (case, distro), sampled points over it."""
    import numpy as np
    from matplotlib.figure import Figure

    plots: list[Plot] = []
    rng = np.random.default_rng(0)
    keys = ["scenario", "metric", "case", "distro"]
    valued = frame[[*keys, "unit", "better", "value"]]
    by_plot = valued.groupby(["scenario", "metric"], observed=True, sort=True)
    for (scenario, metric), part in by_plot:
        groups = []
        empty = []
        for (case, distro), sample in part.groupby(["case", "distro"], observed=True, sort=True):
            values = sample["value"].to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            label = f"{case}\n{distro}"
            if len(values):
                groups.append((label, values))
            else:
                empty.append(f"{case}/{distro}")
        unit, better = str(part["unit"].iloc[0]), str(part["better"].iloc[0])
        title = f"{scenario}: {metric}"
        width = min(4 + 0.9 * max(len(groups), 1), 24)
        figure = Figure(figsize=(width, 4.2), layout="constrained")
        ax = figure.add_subplot()
        if groups:
            positions = np.arange(1, len(groups) + 1)
            ax.boxplot([v for _, v in groups], positions=positions, widths=0.5, showfliers=False)
            for pos, (_, values) in zip(positions, groups, strict=True):
                shown = values
                if len(shown) > MAX_POINTS_PER_BOX:
                    shown = rng.choice(shown, MAX_POINTS_PER_BOX, replace=False)
                jitter = rng.uniform(-0.12, 0.12, len(shown))
                ax.plot(pos + jitter, shown, "o", ms=3, alpha=0.45, color="#1565c0")
            ax.set_xticks(positions, [label for label, _ in groups], fontsize=8)
        else:
            ax.set_xticks([])
        ax.set_ylabel(f"{metric} ({unit})")
        ax.set_title(f"{title}  ({better} is better)" if better != "none" else title)
        ax.grid(axis="y", alpha=0.3)
        if empty:
            ax.text(
                0.01,
                0.98,
                "no values: " + ", ".join(empty),
                transform=ax.transAxes,
                va="top",
                fontsize=7,
                color="#c62828",
            )
        plots.append(
            Plot(title, f"dist_{_slug(str(scenario))}_{_slug(str(metric))}.png", _png(figure))
        )
    return plots


@dataclass
class TimelineRow:
    """One node in one repeat: Ready intervals relative to its fault start, in seconds."""

    label: str
    spans: list[tuple[float, float, str]]
    faults: list[tuple[float, float, str]]


def timeline_rows(events: pd.DataFrame) -> dict[str, list[TimelineRow]]:
    """Per scenario, one row per (run, case, repeat, node): pure, from an events frame."""
    out: dict[str, list[TimelineRow]] = {}
    several_runs = events["run_id"].nunique() > 1
    ordered = events.sort_values("mono_time", kind="stable")
    episodes = ordered.groupby(["scenario", "run_id", "case", "repeat"], sort=True)
    for (scenario, run_id, case, repeat), episode in episodes:
        times = episode["mono_time"].to_numpy(dtype=float)
        kinds = episode["kind"].to_numpy()
        starts = times[kinds == "fault_start"]
        t0 = float(starts[0]) if len(starts) else float(times.min())
        end = float(times.max()) - t0
        faults: list[tuple[float, float, str]] = []
        open_faults: list[tuple[float, str]] = []
        for kind, t, value in zip(kinds, times, episode["value"], strict=True):
            if kind == "fault_start":
                open_faults.append((t - t0, str(value)))
            elif kind == "fault_end" and open_faults:
                begin, name = open_faults.pop(0)
                faults.append((begin, t - t0, name))
        faults += [(begin, end, name) for begin, name in open_faults]
        ready = episode[episode["kind"] == "ready"]
        for node, node_events in ready.groupby("node", sort=True):
            t = node_events["mono_time"].to_numpy(dtype=float) - t0
            states = [str(v).strip().capitalize() for v in node_events["value"]]
            stops = [*t[1:], max(end, float(t[-1]))]
            spans = [(a, b, s) for a, b, s in zip(t, stops, states, strict=True) if b >= a]
            prefix = f"{str(run_id)[:15]} " if several_runs else ""
            label = f"{prefix}{case} r{repeat} {node}"
            out.setdefault(str(scenario), []).append(TimelineRow(label, spans, faults))
    return out


def timeline_plots(events: pd.DataFrame) -> list[Plot]:
    """A timeline per scenario: each node's Ready state, fault windows shaded."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    plots: list[Plot] = []
    for scenario, rows in sorted(timeline_rows(events).items()):
        dropped = max(0, len(rows) - MAX_TIMELINE_ROWS)
        rows = rows[:MAX_TIMELINE_ROWS]
        figure = Figure(figsize=(10, 1.2 + 0.42 * len(rows)), layout="constrained")
        ax = figure.add_subplot()
        for y, row in enumerate(rows):
            for begin, stop, name in row.faults:
                ax.broken_barh([(begin, stop - begin)], (y - 0.5, 1.0), color="#ffb74d", alpha=0.35)
                if y == 0 or row.faults != rows[y - 1].faults:
                    ax.text(
                        begin, y - 0.47, f" {name}", fontsize=6, va="top", color="#bf360c", zorder=3
                    )
            for begin, stop, state in row.spans:
                color = READY_COLORS.get(state, READY_COLORS["Unknown"])
                ax.broken_barh([(begin, stop - begin)], (y - 0.2, 0.45), color=color)
        ax.set_yticks(range(len(rows)), [r.label for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("seconds from fault start")
        title = f"{scenario}: node Ready state"
        if dropped:
            title += f" (first {MAX_TIMELINE_ROWS} rows, {dropped} more not shown)"
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        handles = [Patch(color=c, label=f"Ready={s}") for s, c in READY_COLORS.items()]
        handles.append(Patch(color="#ffb74d", alpha=0.35, label="fault"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        plots.append(
            Plot(
                f"{scenario}: node Ready timeline", f"timeline_{_slug(scenario)}.png", _png(figure)
            )
        )
    return plots


def load_events(sources: Sequence[str | Path]) -> pd.DataFrame | None:
    """The node events of every run folder behind ``sources``, or None if none has any."""
    import pandas as pd

    from bench.results.analysis import read_events, resolve_sources

    frames = []
    for csv_path in resolve_sources(sources):
        events = read_events(csv_path.parent)
        if events is not None and len(events):
            frames.append(events)
    return pd.concat(frames, ignore_index=True) if frames else None


@dataclass(frozen=True)
class Written:
    """Where a report went."""

    markdown: Path
    html: Path
    plots: tuple[Path, ...]


def write_report(
    sources: Sequence[str | Path], out_dir: Path | None = None, plots: bool = True
) -> Written:
    """Load ``sources``, write report.md, report.html and the PNGs into ``out_dir``."""
    from bench.results.analysis import load_measurements, run_dir_of

    frame = load_measurements(sources)
    events = load_events(sources)
    out = Path(out_dir) if out_dir is not None else run_dir_of(sources[0])
    tables = report_tables(frame)
    drawn: list[Plot] = []
    if plots:
        drawn = distribution_plots(frame)
        if events is not None:
            drawn += timeline_plots(events)
    out.mkdir(parents=True, exist_ok=True)
    plot_paths = []
    if drawn:
        (out / PLOTS_DIR).mkdir(exist_ok=True)
        for plot in drawn:
            path = out / PLOTS_DIR / plot.name
            path.write_bytes(plot.png)
            plot_paths.append(path)
    markdown = out / REPORT_MD
    markdown.write_text(render_markdown(tables, drawn), encoding="utf-8")
    page = out / REPORT_HTML
    page.write_text(render_html(tables, drawn), encoding="utf-8")
    return Written(markdown, page, tuple(plot_paths))


def run(args: argparse.Namespace) -> int:
    """The ``report`` command: write the report and say where it is, in a few lines."""
    written = write_report(args.runs, args.out, plots=not args.no_plots)
    print(f"edgebench report: {written.markdown}")
    print(f"edgebench report: {written.html}")
    if written.plots:
        print(f"edgebench report: {len(written.plots)} plots in {written.plots[0].parent}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="tables, plots, Markdown and HTML for one or more runs",
        description=(
            "Summarise runs per distro/scenario/case/metric (n, median, p95, min, max, IQR), "
            "compare distros side by side, and write report.md, a self-contained report.html "
            "and PNG plots into the first run folder (or --out). Each RUN is a run folder, a "
            "measurements.csv, or a folder of run folders; several RUNs concatenate."
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folder or measurements.csv")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the report here instead")
    parser.add_argument("--no-plots", action="store_true", help="tables only, no PNG plots")
    parser.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``edgebench report`` on its own, for tests and ``python -m bench.results.report``."""
    from bench import cli

    return cli.main(["report", *(argv or [])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
