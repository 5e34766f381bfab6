"""``edgebench history RESULTS_DIR``: the trend of every key across nightly runs.

For each key (distro, scenario, case, metric) and each run folder below RESULTS_DIR (in name
order, which is run-id order): n, median and a 95 % bootstrap CI of the median
(:func:`bench.results.stats.median_ci`). The latest run also gets the gate's verdict: the
verdict ``edgebench compare`` gives it against the earlier runs pooled (the last ``--last``
of them), so a reader sees the drift, not only the last step. ``--plot DIR`` draws one PNG per
scenario and metric: the median per run with its CI, one colour per distro.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import InputError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from bench.results.compare import Rule

FORMATS = ("table", "csv", "json", "md")
DEFAULT_LAST = 5
COLUMNS: tuple[str, ...] = (
    "distro",
    "scenario",
    "case",
    "metric",
    "unit",
    "run_id",
    "n",
    "empty",
    "median",
    "ci_low",
    "ci_high",
    "verdict",
    "note",
)


def history_runs(
    results_dir: str | os.PathLike[str],
    last: int | None = None,
    exclude: Sequence[str | os.PathLike[str]] = (),
) -> list[Path]:
    """The run folders below ``results_dir`` (``DIR/<run>/`` or the nightly history's
    ``DIR/<distro>/<run>/``) in run-id order, without ``exclude``; the last ``last`` of them.
    InputError if there are none."""
    from bench.results.records import MEASUREMENTS

    root = Path(results_dir)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (expected a folder of run folders)")
    if last is not None and last < 1:
        raise UsageError(f"--last must be at least 1, got {last}")
    skip = {Path(p).resolve() for p in exclude}
    skip |= {Path(p).resolve().parent for p in exclude if Path(p).is_file()}
    found = sorted(root.glob(f"*/{MEASUREMENTS}")) or sorted(root.glob(f"*/*/{MEASUREMENTS}"))
    runs = [p.parent for p in found if p.is_file() and p.parent.resolve() not in skip]
    runs.sort(key=lambda p: p.name)  # run-id order, also across <distro>/<run_id> folders
    if not runs:
        raise InputError(f"{root}: no run folders (*/{MEASUREMENTS}) below it")
    return runs[-last:] if last else runs


def history(
    frame: pd.DataFrame, rule: Rule | None = None, last: int = DEFAULT_LAST
) -> pd.DataFrame:
    """One row per key and run (run-id order), the latest run's row with the gate's verdict.

    Pure: ``frame`` holds every run (from ``load_measurements``); the verdict compares the
    latest run against the ``last`` runs before it, pooled, with ``rule``.
    """
    import numpy as np
    import pandas as pd

    from bench.results.compare import Rule, compare
    from bench.results.stats import median_ci

    rule = rule or Rule()
    key = ["distro", "scenario", "case", "metric"]
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    runs = sorted(str(r) for r in frame["run_id"].unique())
    rows = []
    for (distro, scenario, case, metric, run_id), part in frame.groupby(
        [*key, "run_id"], observed=True, sort=True
    ):
        values = part["value"].to_numpy(dtype=float)
        shown = values[~np.isnan(values)]
        low, high = median_ci(shown)
        rows.append(
            {
                "distro": str(distro),
                "scenario": str(scenario),
                "case": str(case),
                "metric": str(metric),
                "unit": str(part["unit"].iloc[0]),
                "run_id": str(run_id),
                "n": len(shown),
                "empty": len(values) - len(shown),
                "median": float(np.median(shown)) if len(shown) else math.nan,
                "ci_low": low,
                "ci_high": high,
                "verdict": "",
                "note": "",
            }
        )
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    bases: list[str] = []
    for distro in sorted(set(out["distro"])):
        # Each distro's latest run against that distro's runs before it.
        own = sorted(str(r) for r in frame.loc[frame["distro"] == distro, "run_id"].unique())
        earlier = own[:-1][-last:]
        if not earlier:
            continue
        bases += earlier
        new = frame[frame["run_id"] == own[-1]]
        base = frame[frame["run_id"].isin(earlier)]
        gate = compare(base, new, rule)
        gate_key = [c for c in key if c in gate.columns]
        verdicts = {
            tuple(str(r[c]) for c in gate_key): (str(r["verdict"]), str(r["note"]))
            for r in gate.to_dict("records")
        }
        latest_rows = np.flatnonzero(
            ((out["run_id"] == own[-1]) & (out["distro"] == distro)).to_numpy()
        )
        for i in latest_rows:
            found = verdicts.get(tuple(str(out.at[i, c]) for c in gate_key))
            if found:
                out.at[i, "verdict"], out.at[i, "note"] = found
    if bases:
        out.attrs["base_runs"] = bases
    out["order"] = out["run_id"].map({r: i for i, r in enumerate(runs)})
    out = out.sort_values([*key, "order"], kind="stable", ignore_index=True)
    return out.drop(columns="order")


def _cells(row: dict[Any, Any]) -> list[str]:
    from bench.results.tables import interval, number

    return [
        str(row["distro"]),
        str(row["scenario"]),
        str(row["case"]),
        f"{row['metric']} ({row['unit']})",
        str(row["run_id"]),
        f"{row['n']}" + (f" (+{row['empty']} empty)" if row["empty"] else ""),
        number(row["median"]),
        interval(row["ci_low"], row["ci_high"]),
        str(row["verdict"]),
        str(row["note"]),
    ]


HEADERS = ("distro", "scenario", "case", "metric", "run", "n", "median", "95% CI", "gate", "note")


def render(table: pd.DataFrame, fmt: str = "table") -> str:
    from bench.results.tables import aligned, markdown

    cells = [_cells(r) for r in table.to_dict("records")]
    base = table.attrs.get("base_runs")
    footer = (
        f"gate: each distro's latest run against its runs before it, pooled ({len(base)} run(s))"
        if base
        else "gate: no earlier run to compare the latest with"
    )
    if fmt == "table":
        return aligned(HEADERS, cells, {"n", "median", "95% CI"}) + "\n" + footer
    if fmt == "md":
        return markdown(HEADERS, cells) + "\n\n" + footer
    if fmt == "csv":
        return table.to_csv(index=False, lineterminator="\n").rstrip("\n")
    if fmt == "json":

        def clean(v: Any) -> Any:
            v = v.item() if hasattr(v, "item") else v
            return None if isinstance(v, float) and not math.isfinite(v) else v

        rows = [{str(k): clean(v) for k, v in r.items()} for r in table.to_dict("records")]
        return json.dumps(rows, indent=1)
    raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def trend_plots(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per (scenario, metric): median per run with its CI, a line per distro/case."""
    from matplotlib.figure import Figure

    from bench.results.report import distro_colors

    out_dir.mkdir(parents=True, exist_ok=True)
    colors = distro_colors(sorted(set(table["distro"])))
    runs = list(dict.fromkeys(sorted(table["run_id"])))
    written = []
    for (scenario, metric), part in table.groupby(["scenario", "metric"], sort=True):
        figure = Figure(figsize=(8, 3.6), layout="constrained")
        ax = figure.add_subplot()
        styles = ["-", "--", ":", "-."]
        for i, ((distro, case), line) in enumerate(part.groupby(["distro", "case"], sort=True)):
            x = [runs.index(r) for r in line["run_id"]]
            med = line["median"].to_numpy(dtype=float)
            low = med - line["ci_low"].to_numpy(dtype=float)
            high = line["ci_high"].to_numpy(dtype=float) - med
            ax.errorbar(
                x,
                med,
                yerr=[low, high],
                color=colors[str(distro)],
                linestyle=styles[i % len(styles)],
                marker="o",
                capsize=3,
                label=f"{distro} {case}",
            )
        unit = str(part["unit"].iloc[0])
        ax.set_xticks(range(len(runs)), [r[:15] for r in runs], rotation=30, fontsize=7)
        ax.set_ylabel(f"{metric} ({unit})")
        if unit in ("s", "count", "ratio"):
            ax.set_ylim(bottom=0)
        ax.set_title(f"{scenario}: {metric}, median and 95% CI per run")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
        path = out_dir / f"history_{scenario}_{metric}.png"
        figure.savefig(path, format="png", dpi=100)
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    from bench.results.analysis import load_measurements
    from bench.results.compare import Rule

    rule = Rule.from_options(args.fail_on, args.alpha)
    runs = history_runs(args.results_dir)
    columns = ["run_id", "distro", "provider", "profile", "scenario", "case", "metric"]
    frame = load_measurements(runs, [*columns, "unit", "better", "value"])
    if args.metric:
        unknown = sorted(set(args.metric) - set(map(str, frame["metric"].unique())))
        if unknown:
            raise UsageError(
                f"--metric {', '.join(unknown)}: not in these runs "
                f"(metrics: {', '.join(sorted(map(str, frame['metric'].unique())))})"
            )
        frame = frame[frame["metric"].isin(args.metric)]
    table = history(frame, rule, args.last)
    print(render(table, args.format))
    if args.plot is not None:
        written = trend_plots(table, args.plot)
        print(f"edgebench history: {len(written)} plots in {args.plot}", file=sys.stderr)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from bench.results.compare import add_gate_options

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "history",
        help="trend of every key across the run folders of a results directory",
        description=(
            "For each distro/scenario/case/metric and each run folder below RESULTS_DIR (in "
            "run-id order): n, median and its 95% bootstrap CI; the latest run also gets the "
            "regression gate's verdict against the --last runs before it, pooled (the same "
            "rule as 'edgebench compare'). Exit status 0, or 2 on bad input."
        ),
    )
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="a folder of run folders")
    parser.add_argument(
        "--metric", action="append", metavar="METRIC", help="only this metric (repeatable)"
    )
    parser.add_argument(
        "--last",
        type=int,
        default=DEFAULT_LAST,
        metavar="K",
        help=f"the gate pools the K runs before the latest (default {DEFAULT_LAST})",
    )
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write trend PNGs into DIR")
    add_gate_options(parser.add_argument)
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    parser.set_defaults(func=run)
    return parser
