"""``edgebench report``: the verdict first, then tables, plots and conditions.

The tables come from the pure functions in :mod:`bench.results.analysis` and
:mod:`bench.results.versus`; the plots from :mod:`bench.results.plots`. Output goes into the
first run folder, or ``--out DIR``:

* ``report.html``: one self-contained page rendered from the Jinja2 template
  ``templates/report.html.j2``, plots embedded as base64 PNGs. It opens with the verdict table
  of ``edgebench versus`` (who is better at what, by how much, how sure) and its findings in
  plain sentences, then per scenario: where its cases carry a size (``n50/...``, ``-64kBps``),
  each metric against that size per distro (:func:`bench.results.plots.size_plots`), the
  strip plots (every value; a box only from 10 values),
  one colour per distro throughout, a caption saying what each metric means, the summary table
  with the notes of empty values beside it, the side-by-side medians and the node Ready
  timelines; last, the conditions of every run (from run.json).
* ``report.md``: the same in Markdown (for CI step summaries), plots linked from ``plots/``.
* ``plots/*.png``: the plots.
"""

from __future__ import annotations

import argparse
import base64
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import settings
from bench.results.plots import Plot

if TYPE_CHECKING:  # pandas and matplotlib are imported lazily: ``edgebench --help`` stays fast
    import pandas as pd

    from bench.results.conditions import Conditions

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"
TEMPLATE = "report.html.j2"
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
    verdicts: pd.DataFrame | None = None
    baseline: str = ""
    verdict_note: str = ""
    empty_notes: pd.DataFrame | None = None
    conditions: tuple[Conditions, ...] = field(default=())


def report_tables(
    frame: pd.DataFrame,
    conditions: dict[str, Conditions] | None = None,
    baseline: str | None = None,
) -> ReportTables:
    """The verdicts (two or more distros), run list, summary, side by side and empty notes."""
    from bench.results.analysis import key_columns, side_by_side_cells, summarize
    from bench.results.versus import metric_order, versus

    conditions = conditions or {}
    run_columns = ["run_id", "started_at", "distro", "provider", "distro_version", "profile"]
    runs = frame.groupby(run_columns, observed=True, sort=True).size().rename("rows").reset_index()
    key = key_columns(frame)
    if (
        "provider" in key
        and (frame.groupby("distro", observed=True)["provider"].nunique() <= 1).all()
    ):
        key.remove("provider")  # a distro's provider is in the run list, not a column of its own
    summary = summarize(frame, key)
    if len(summary):
        order = summary["metric"].map(metric_order)
        summary = summary.assign(_o=order).sort_values(
            ["scenario", "_o", "case", "distro"], kind="stable", ignore_index=True
        )
        summary = summary.drop(columns="_o")
    distros = list(dict.fromkeys(str(d) for d in frame["distro"]))
    verdicts, note = None, ""
    if len(distros) >= 2:
        base = baseline or distros[0]
        verdicts = versus(frame, base, conditions)
        baseline = base
    else:
        note = (
            f"only one distro ({distros[0] if distros else 'none'}) in these runs: no "
            "distro-versus-distro verdicts (use 'edgebench compare' for one distro over time)"
        )
    empty = pd_empty_notes(frame)
    known = [conditions[str(r)] for r in runs["run_id"] if str(r) in conditions]
    return ReportTables(
        runs=runs,
        summary=summary,
        side_by_side=side_by_side_cells(summary),
        rows=len(frame),
        verdicts=verdicts,
        baseline=baseline or "",
        verdict_note=note,
        empty_notes=empty,
        conditions=tuple(known),
    )


def pd_empty_notes(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, distro, case, metric) with empty values: how many, and the notes why."""
    import pandas as pd

    columns = ["scenario", "distro", "case", "metric", "empty", "note"]
    if "note" not in frame.columns:
        return pd.DataFrame(columns=columns)
    empty = frame[frame["value"].isna()]
    if empty.empty:
        return pd.DataFrame(columns=columns)
    grouped = empty.groupby(["scenario", "distro", "case", "metric"], observed=True, sort=True)
    notes = grouped["note"].agg(lambda s: "; ".join(dict.fromkeys(str(n) for n in s if str(n))))
    out = pd.DataFrame({"empty": grouped.size(), "note": notes}).reset_index()
    for column in ("scenario", "distro", "case", "metric"):
        out[column] = out[column].astype(str)
    return out[columns]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def cells(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and string cells of a DataFrame (numbers to 4 significant digits)."""
    headers = [str(c) for c in table.columns]
    return headers, [[_fmt(v) for v in row] for row in table.itertuples(index=False)]


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; numbers to 4 significant digits, NaN as '-'."""
    from bench.results.tables import markdown

    return markdown(*cells(table))


def findings(verdicts: pd.DataFrame | None) -> list[str]:
    """The better/worse rows as plain sentences, headline metrics first."""
    from bench.results.tables import number, pvalue

    if verdicts is None:
        return []
    out = []
    for row in verdicts.to_dict("records"):
        if row["verdict"] not in ("better", "worse"):
            continue
        ratio = row["ratio"]
        how = f", {ratio:.2f}x" if isinstance(ratio, float) and math.isfinite(ratio) else ""
        out.append(
            f"{row['distro']} is {row['verdict'].upper()} than {row['baseline']} on "
            f"{row['metric']} in {row['scenario']}/{row['case']}: median "
            f"{number(row['median'])} vs {number(row['baseline_median'])} {row['unit']}"
            f"{how} (shift {number(row['shift'], 3)} {row['unit']}, q = {pvalue(row['q_value'])})"
        )
    return out


@dataclass
class Section:
    """One scenario of the report."""

    name: str
    summary: tuple[list[str], list[list[str]]]
    side_by_side: tuple[list[str], list[list[str]]]
    empty: tuple[list[str], list[list[str]]]
    plots: list[Plot]


def _sections(tables: ReportTables, plots: Sequence[Plot]) -> list[Section]:
    out = []
    summary, sbs = tables.summary, tables.side_by_side
    empty = tables.empty_notes
    for scenario in list(dict.fromkeys(summary["scenario"])) if len(summary) else []:
        rows = summary[summary["scenario"] == scenario].drop(columns="scenario")
        side = sbs[sbs["scenario"] == scenario].drop(columns="scenario")
        notes = (
            empty[empty["scenario"] == scenario].drop(columns="scenario")
            if empty is not None and len(empty)
            else None
        )
        out.append(
            Section(
                name=str(scenario),
                summary=cells(rows),
                side_by_side=cells(side),
                empty=cells(notes) if notes is not None and len(notes) else ([], []),
                plots=[p for p in plots if p.scenario == scenario],
            )
        )
    return out


CONDITION_HEADERS = [
    "run",
    "distro",
    "provider",
    "version",
    "profile",
    "cut mode",
    "timings",
    "timings source",
    "tools",
    "machine",
    "harness",
]


def conditions_rows(tables: ReportTables) -> list[list[str]]:
    known = {c.run_id: c for c in tables.conditions}
    rows = []
    for run in tables.runs.to_dict("records"):
        c = known.get(str(run["run_id"]))
        if c is None:
            rows.append(
                [
                    str(run["run_id"]),
                    str(run["distro"]),
                    str(run["provider"]),
                    _fmt(run["distro_version"]),
                    str(run["profile"]),
                    *["(no run.json)"] * 6,
                ]
            )
            continue
        tools = ", ".join(f"{k} {v}" for k, v in sorted(c.tools.items())) or "-"
        rows.append(
            [
                c.run_id,
                c.distro,
                c.provider,
                c.distro_version or "-",
                c.profile,
                c.cut_mode,
                c.timings_text(),
                c.timings_source,
                tools,
                c.machine or "-",
                c.harness or "-",
            ]
        )
    return rows


def _verdict_cells(tables: ReportTables) -> tuple[list[str], list[list[str]]]:
    from bench.results.versus import HEADERS, display_rows

    if tables.verdicts is None:
        return [], []
    return list(HEADERS), display_rows(tables.verdicts)


def render_markdown(tables: ReportTables, plots: Sequence[Plot]) -> str:
    """The report as Markdown (verdicts first); plots are linked from ``plots/``."""
    from bench.results.tables import markdown
    from bench.results.versus import summary_line

    parts = ["# edgebench report", ""]
    parts += [f"{tables.rows} measurements from {len(tables.runs)} run(s).", ""]
    parts += ["## Verdict", ""]
    if tables.verdicts is not None:
        parts += [
            f"Every distro against **{tables.baseline}** (ratio = distro / baseline median; "
            "shift = Hodges-Lehmann, distro - baseline; p exact, q Benjamini-Hochberg "
            "across all rows; 95 % CIs).",
            "",
        ]
        parts += [f"- {line}" for line in findings(tables.verdicts)] or ["- no difference shown"]
        parts += ["", markdown(*_verdict_cells(tables)), "", summary_line(tables.verdicts)]
    else:
        parts.append(f"_{tables.verdict_note}_")
    for section in _sections(tables, plots):
        parts += ["", f"## {section.name}", ""]
        for plot in section.plots:
            parts += [f"![{plot.title}]({PLOTS_DIR}/{plot.name})", "", f"_{plot.caption}_", ""]
        parts += ["### Summary", "", markdown(*section.summary)]
        if section.empty[1]:
            parts += ["", "Empty values and why:", "", markdown(*section.empty)]
        parts += ["", "### Side by side (median, n)", "", markdown(*section.side_by_side)]
    parts += ["", "## Conditions", "", markdown(CONDITION_HEADERS, conditions_rows(tables))]
    return "\n".join(parts).rstrip() + "\n"


def _number_text(cell: str) -> bool:
    """Does a table cell read as a number ('-' and 'x (n=3)' cells count as numbers)?"""
    head = cell.split(" ")[0]
    if head == "-":
        return True
    try:
        float(head)
    except ValueError:
        return False
    return True


def render_html(tables: ReportTables, plots: Sequence[Plot]) -> str:
    """The report as one self-contained HTML page from the Jinja2 template."""
    import jinja2

    from bench.results.versus import summary_line

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.results", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    env.tests["number_text"] = _number_text
    headers, rows = _verdict_cells(tables)
    verdict_column = headers.index("verdict") if headers else -1
    return env.get_template(TEMPLATE).render(
        rows=tables.rows,
        runs=len(tables.runs),
        baseline=tables.baseline,
        verdict_headers=headers,
        verdict_rows=rows,
        verdict_column=verdict_column,
        verdict_note=tables.verdict_note,
        verdict_summary=summary_line(tables.verdicts) if tables.verdicts is not None else "",
        findings=findings(tables.verdicts),
        sections=_sections(tables, plots),
        conditions_headers=CONDITION_HEADERS,
        conditions_rows=conditions_rows(tables),
        colors=distro_colors(sorted(set(map(str, tables.runs["distro"])))),
    )


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


def draw_plots(
    frame: pd.DataFrame,
    events: pd.DataFrame | None,
    conditions: dict[str, Conditions] | None = None,
) -> list[Plot]:
    """Per scenario: the metrics against the cases' sizes (where cases carry sizes), strip
    plots for every metric and a Ready timeline."""
    from bench.results.plots import size_plots, strip_plots, timeline_plots

    colors = distro_colors(sorted(set(map(str, frame["distro"]))))
    drawn = size_plots(frame, colors) + strip_plots(frame, colors)
    if events is not None:
        runs = frame.groupby("run_id", observed=True)["distro"].first()
        distro_of = {str(k): str(v) for k, v in runs.items()}
        cut_of = {k: c.cut_mode for k, c in (conditions or {}).items()}
        drawn += timeline_plots(events, distro_of, cut_of)
    return drawn


def write_report(
    sources: Sequence[str | Path],
    out_dir: Path | None = None,
    plots: bool = True,
    baseline: str | None = None,
) -> Written:
    """Load ``sources``, write report.md, report.html and the PNGs into ``out_dir``."""
    from bench.results.analysis import load_measurements, resolve_sources, run_dir_of
    from bench.results.conditions import load_conditions

    frame = load_measurements(sources)
    events = load_events(sources)
    conditions = load_conditions(resolve_sources(sources))
    out = Path(out_dir) if out_dir is not None else run_dir_of(sources[0])
    tables = report_tables(frame, conditions, baseline)
    drawn = draw_plots(frame, events, conditions) if plots else []
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
    runs = settings.run_paths(args.runs, args.results_dir)
    written = write_report(runs, args.out, plots=not args.no_plots, baseline=args.baseline)
    print(f"edgebench report: {written.markdown}")
    print(f"edgebench report: {written.html}")
    if written.plots:
        print(f"edgebench report: {len(written.plots)} plots in {written.plots[0].parent}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="verdicts, tables, plots, Markdown and HTML for one or more runs",
        description=(
            "Write report.md, a self-contained report.html and PNG plots into the first run "
            "folder (or --out). With runs of several distros the report opens with the "
            "verdict table of 'edgebench versus'; then per scenario each metric against the "
            "size its cases carry (n<N> nodes, <K>kBps; where there are two sizes or more), "
            "strip plots of every value, the summary (n, median, p95, min, max, IQR) with "
            "the notes of empty values, the side-by-side medians and node Ready timelines; "
            "last, the conditions of every run (run.json). Each RUN is a run folder, a "
            "measurements.csv, or a folder of run folders; several RUNs concatenate."
        ),
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folder, run id or measurements.csv"
    )
    settings.add_arguments(parser.add_argument, ["results_dir"])
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the report here instead")
    parser.add_argument("--no-plots", action="store_true", help="tables only, no PNG plots")
    parser.add_argument(
        "--baseline",
        metavar="DISTRO",
        help="the distro the verdict compares others with (default: the first RUN's)",
    )
    parser.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``edgebench report`` on its own, for tests and ``python -m bench.results.report``."""
    from bench import cli

    return cli.main(["report", *(argv or [])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
