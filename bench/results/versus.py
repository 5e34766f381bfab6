"""Distro against distro: ``edgebench versus RUN... [--baseline DISTRO]``.

Runs of different distributions under the same scenario, case and metric are compared side by
side, one row per non-baseline distro and key:

* each side's n (values; empty values are counted apart and their notes shown), median and a
  95 % bootstrap CI of the median (:func:`bench.results.stats.median_ci`: 2000 resamples,
  fixed seed);
* ``ratio`` = median / baseline median, and the Hodges-Lehmann shift (distro - baseline) with
  its distribution-free 95 % CI;
* ``p_value``: the two-sided rank-sum test, exact (conditional on ties) at small n;
  ``q_value``: Benjamini-Hochberg adjusted across every row of the comparison (all metrics);
* ``verdict``: ``better`` or ``worse`` (per the metric's ``better`` direction) when q < alpha,
  ``no difference shown`` otherwise, ``not comparable`` when the two sides ran under different
  conditions (profile, effective timings or cut mode: the note says which) or one side has no
  values (the note says why, from the rows' own notes). A metric with ``better=none`` gets
  ``different`` instead of better/worse.

Nodes and repeats of a key pool into one sample, as in ``compare``. The baseline is
``--baseline`` or, by default, the distro of the first RUN. Rows are ordered by scenario and
case, with the headline recovery figures first (``stable_recover_s``, ``relapses``,
``pods_stable_s``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from bench.results.conditions import Conditions

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no difference shown"
NOT_COMPARABLE = "not comparable"
DIFFERENT = "different"
VERDICTS: tuple[str, ...] = (BETTER, WORSE, NO_DIFFERENCE, DIFFERENT, NOT_COMPARABLE)
DEFAULT_ALPHA = 0.05
FORMATS = ("table", "csv", "json", "md")
HEADLINE = ("stable_recover_s", "relapses", "pods_stable_s")
KEY = ("scenario", "case", "metric")

COLUMNS: tuple[str, ...] = (
    "scenario",
    "case",
    "metric",
    "unit",
    "better",
    "distro",
    "baseline",
    "n",
    "n_baseline",
    "empty",
    "empty_baseline",
    "median",
    "median_low",
    "median_high",
    "baseline_median",
    "baseline_low",
    "baseline_high",
    "ratio",
    "shift",
    "shift_low",
    "shift_high",
    "p_value",
    "q_value",
    "verdict",
    "note",
)


def metric_order(metric: str) -> tuple[int, int, str]:
    """Headline recovery figures first, then the catalogue's order, then unknown names."""
    from bench.results.metrics import METRICS

    if metric in HEADLINE:
        return (0, HEADLINE.index(metric), metric)
    names = list(METRICS)
    if metric in names:
        return (1, names.index(metric), metric)
    return (2, 0, metric)


@dataclass
class _Side:
    values: np.ndarray
    empty: int
    notes: list[str]
    profiles: set[str]
    runs: set[str]


def _empty_note(distro: str, side: _Side | None) -> str:
    if side is None:
        return f"{distro}: no rows"
    if not side.empty:
        return ""
    total = len(side.values) + side.empty
    why = "; ".join(side.notes) or "no note"
    if len(side.values) == 0:
        return f"{distro}: all {total} empty ({why})"
    return f"{distro}: {side.empty} of {total} empty ({why})"


def _sides(frame: pd.DataFrame) -> dict[tuple[str, str, str, str], _Side]:
    """Per (scenario, case, metric, distro): the values, empty count, notes, profiles, runs."""
    import numpy as np

    columns = [*KEY, "distro"]
    grouped = frame.groupby(columns, observed=True, sort=False)
    codes = grouped.ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0, True])
    if not len(frame):
        return {}
    values = frame["value"].to_numpy(dtype=float)[order]
    has_note = "note" in frame.columns
    notes_col = frame["note"].astype(str).to_numpy()[order] if has_note else None
    profile = frame["profile"].astype(str).to_numpy()[order]
    run_id = frame["run_id"].astype(str).to_numpy()[order]
    first_rows = frame.iloc[order[bounds[:-1]]][columns].astype(str).to_numpy()
    out: dict[tuple[str, str, str, str], _Side] = {}
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        sample = values[a:b]
        empty_mask = np.isnan(sample)
        notes: list[str] = []
        if notes_col is not None and empty_mask.any():
            seen = dict.fromkeys(str(n) for n in notes_col[a:b][empty_mask] if str(n))
            notes = list(seen)[:3]
        key = tuple(str(x) for x in first_rows[i])
        out[key] = _Side(  # type: ignore[index]
            values=sample[~empty_mask],
            empty=int(empty_mask.sum()),
            notes=notes,
            profiles=set(profile[a:b]),
            runs=set(run_id[a:b]),
        )
    return out


def versus(
    frame: pd.DataFrame,
    baseline: str | None = None,
    conditions: Mapping[str, Conditions] | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Distro-versus-baseline rows for ``frame`` (from ``load_measurements``); pure.

    ``conditions`` maps run ids to their :class:`~bench.results.conditions.Conditions`
    (from run.json); runs without an entry are judged on their profile column alone.
    """
    import numpy as np
    import pandas as pd

    from bench.results import stats
    from bench.results.conditions import differences

    if not 0 < alpha <= 1:
        raise UsageError(f"alpha must be in (0, 1], got {alpha:g}")
    conditions = conditions or {}
    distros = list(dict.fromkeys(str(d) for d in frame["distro"]))
    if baseline is None:
        if not distros:
            return pd.DataFrame(columns=list(COLUMNS))
        baseline = distros[0]
    if baseline not in distros:
        raise UsageError(
            f"--baseline {baseline!r}: no rows of that distro in the runs given "
            f"(distros: {', '.join(distros) or 'none'})"
        )
    others = [d for d in sorted(distros) if d != baseline]
    if not others:
        raise UsageError(
            f"only one distro ({baseline}) in the runs given: versus needs runs of at least two "
            "distros (use 'edgebench compare' for one distro over time)"
        )
    sides = _sides(frame)
    meta = frame.groupby(list(KEY), observed=True, sort=False)[["unit", "better"]].last()
    keys = sorted(
        {(s, c, m) for s, c, m, _ in sides}, key=lambda k: (k[0], k[1], metric_order(k[2]))
    )
    ci_cache: dict[tuple[str, str, str, str], tuple[float, float]] = {}

    def median_ci(key: tuple[str, str, str, str]) -> tuple[float, float]:
        if key not in ci_cache:
            ci_cache[key] = stats.median_ci(sides[key].values)
        return ci_cache[key]

    rows: list[dict[str, Any]] = []
    for scenario, case, metric in keys:
        unit, better = (str(v) for v in meta.loc[(scenario, case, metric)])  # type: ignore[index]
        bkey = (scenario, case, metric, baseline)
        base = sides.get(bkey)
        for distro in others:
            okey = (scenario, case, metric, distro)
            other = sides.get(okey)
            row: dict[str, Any] = dict.fromkeys(COLUMNS, math.nan)
            row.update(
                scenario=scenario,
                case=case,
                metric=metric,
                unit=unit,
                better=better,
                distro=distro,
                baseline=baseline,
                n=len(other.values) if other else 0,
                n_baseline=len(base.values) if base else 0,
                empty=other.empty if other else 0,
                empty_baseline=base.empty if base else 0,
            )
            notes = [t for t in (_empty_note(baseline, base), _empty_note(distro, other)) if t]
            if other is not None and len(other.values):
                row["median"] = float(np.median(other.values))
                row["median_low"], row["median_high"] = median_ci(okey)
            if base is not None and len(base.values):
                row["baseline_median"] = float(np.median(base.values))
                row["baseline_low"], row["baseline_high"] = median_ci(bkey)
            blocked: list[str] = []
            if base is not None and other is not None:
                if base.profiles != other.profiles:
                    blocked.append(
                        f"profile {'/'.join(sorted(base.profiles))} vs "
                        f"{'/'.join(sorted(other.profiles))}"
                    )
                blocked += differences(
                    [conditions[r] for r in sorted(base.runs) if r in conditions],
                    [conditions[r] for r in sorted(other.runs) if r in conditions],
                )
            usable = (
                base is not None and other is not None and len(base.values) and len(other.values)
            )
            if blocked or not usable:
                row["verdict"] = NOT_COMPARABLE
                row["note"] = "; ".join([*blocked, *notes])
                rows.append(row)
                continue
            assert base is not None and other is not None
            bmed = row["baseline_median"]
            row["ratio"] = row["median"] / bmed if bmed else math.nan
            if bmed == 0:
                notes.append("baseline median is 0: no ratio")
            shift = stats.hodges_lehmann(base.values, other.values)
            row["shift"], row["shift_low"], row["shift_high"] = (
                shift.estimate,
                shift.low,
                shift.high,
            )
            if shift.full_range:
                notes.append("shift CI is the full range: too few values for 95 %")
            test = stats.rank_test(base.values, other.values)
            row["p_value"] = test.two_sided
            reachable = stats.min_p(len(base.values), len(other.values), two_sided=True)
            if reachable >= alpha:
                notes.append(
                    f"n={len(other.values)} vs {len(base.values)}: smallest reachable p is "
                    f"{reachable:.2g} >= alpha {alpha:g}, no difference can be shown"
                )
            row["note"] = "; ".join(notes)
            rows.append(row)
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    if out.empty:
        return out
    p = out["p_value"].to_numpy(dtype=float)
    q = stats.bh_adjust(p)
    out["q_value"] = q
    judged = (out["verdict"] != NOT_COMPARABLE).to_numpy() & ~np.isnan(p)
    direction = np.where(out["better"] == "lower", -1.0, np.where(out["better"] == "higher", 1, 0))
    gain = direction * out["shift"].to_numpy(dtype=float)  # > 0: distro better than baseline
    significant = judged & (q < alpha)
    verdict = out["verdict"].to_numpy(dtype=object)
    verdict[judged] = NO_DIFFERENCE
    verdict[significant & (gain > 0)] = BETTER
    verdict[significant & (gain < 0)] = WORSE
    verdict[significant & (direction == 0)] = DIFFERENT
    out["verdict"] = verdict
    lost = judged & (p < alpha) & ~(q < alpha)
    if lost.any():
        tested = int((~np.isnan(p)).sum())
        extra = f"p < {alpha:g} but q >= {alpha:g} after Benjamini-Hochberg over {tested} tests"
        cells = out["note"].astype(object).to_numpy().copy()
        for i in np.flatnonzero(lost):
            cells[i] = f"{cells[i]}; {extra}" if isinstance(cells[i], str) and cells[i] else extra
        out["note"] = cells
    return out


# --- output --------------------------------------------------------------------------------


def _cells(row: Mapping[Any, Any]) -> list[str]:
    from bench.results.tables import interval, number, pvalue

    ratio = row["ratio"]
    ratio_text = "-" if ratio is None or math.isnan(ratio) else f"{ratio:.2f}x"
    shift = number(row["shift"], 3)
    if shift != "-" and not shift.startswith("-"):
        shift = "+" + shift
    return [
        str(row["scenario"]),
        str(row["case"]),
        f"{row['metric']} ({row['unit']})",
        f"{row['distro']} vs {row['baseline']}",
        str(row["verdict"]),
        f"{row['n']}/{row['n_baseline']}",
        f"{number(row['median'])} {interval(row['median_low'], row['median_high'])}".strip(),
        f"{number(row['baseline_median'])} "
        f"{interval(row['baseline_low'], row['baseline_high'])}".strip(),
        ratio_text,
        f"{shift} {interval(row['shift_low'], row['shift_high'])}".strip(),
        pvalue(row["p_value"]),
        pvalue(row["q_value"]),
        str(row["note"]) if isinstance(row["note"], str) else "",
    ]


HEADERS = (
    "scenario",
    "case",
    "metric",
    "distro",
    "verdict",
    "n",
    "median [95% CI]",
    "baseline [95% CI]",
    "ratio",
    "shift [95% CI]",
    "p",
    "q",
    "note",
)


def display_rows(result: pd.DataFrame) -> list[list[str]]:
    """The verdict table's cells, one list of strings per row (for text, Markdown, HTML)."""
    return [_cells(row) for row in result.to_dict("records")]


def summary_line(result: pd.DataFrame) -> str:
    seen = result["verdict"].value_counts()
    return ", ".join(f"{int(seen.get(v, 0))} {v}" for v in VERDICTS)


def _json_value(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render(result: pd.DataFrame, fmt: str = "table") -> str:
    """The comparison as ``table``, ``md``, ``csv`` or ``json`` text."""
    from bench.results.tables import aligned, markdown

    if fmt == "table":
        right = {"n", "median [95% CI]", "baseline [95% CI]", "ratio", "shift [95% CI]", "p", "q"}
        return aligned(HEADERS, display_rows(result), right) + "\n" + summary_line(result)
    if fmt == "md":
        return markdown(HEADERS, display_rows(result)) + "\n\n" + summary_line(result)
    if fmt == "csv":
        return result.to_csv(index=False, lineterminator="\n").rstrip("\n")
    if fmt == "json":
        rows = [{str(k): _json_value(v) for k, v in r.items()} for r in result.to_dict("records")]
        return json.dumps(rows, indent=1)
    raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def versus_paths(
    runs: Sequence[str], baseline: str | None = None, alpha: float = DEFAULT_ALPHA
) -> pd.DataFrame:
    """Load RUN sources (and their run.json) and compare their distros."""
    from bench.results.analysis import load_measurements, resolve_sources
    from bench.results.conditions import load_conditions

    columns = ["run_id", "distro", "profile", *KEY, "unit", "better", "value", "note"]
    frame = load_measurements(runs, columns)
    if baseline is None and len(frame):
        baseline = str(frame["distro"].iloc[0])
    conditions = load_conditions(resolve_sources(runs))
    return versus(frame, baseline, conditions, alpha)


def run(args: argparse.Namespace) -> int:
    result = versus_paths(args.runs, args.baseline, args.alpha)
    print(render(result, args.format))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "versus",
        help="compare distros side by side: medians with CIs, shift, p and q, verdicts",
        description=(
            "Compare the distros found in RUN... against a baseline distro, per scenario, "
            "case and metric: n, median with a 95% bootstrap CI (2000 resamples, fixed "
            "seed), ratio to the baseline, Hodges-Lehmann shift with its 95% CI, the exact "
            "two-sided rank-sum p-value, its Benjamini-Hochberg q across all rows, and a "
            "verdict: better, worse, no difference shown, or not comparable (different "
            "profile, timings or cut mode, or no values: the note says which). Each RUN is "
            "a run folder, a measurements.csv, or a folder of run folders. Exit status 0, or "
            "2 on bad input."
        ),
        epilog=(
            "Significance is judged on q (the false discovery rate across every row) at "
            "ALPHA. With n values a side the smallest two-sided p is 2/C(2n, n): 3 vs 3 can "
            "never reach 0.05 (0.1), 4 vs 4 can (0.029); nodes and repeats pool, so "
            "--repeat 3 with 3 edge nodes gives 9 values a side. Example: edgebench versus "
            "results/kwok-run results/kubeedge-run --baseline kwok --format md"
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders of several distros")
    parser.add_argument(
        "--baseline",
        metavar="DISTRO",
        help="the distro others are compared with (default: the distro of the first RUN)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=DEFAULT_ALPHA,
        help=f"false discovery rate for better/worse verdicts (default {DEFAULT_ALPHA:g})",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    parser.set_defaults(func=run)
    return parser


if __name__ == "__main__":
    from bench import cli

    sys.exit(cli.main(["versus", *sys.argv[1:]]))
