"""Run comparison: per-key verdicts between BASE runs and a NEW run, and ``edgebench compare``.

The rule, shared by the CLI and the pytest plugin (``edgebench_fixtures.compare``):

* Keys are distro, scenario, case and metric, plus provider and profile where they take more
  than one value within BASE or within NEW. Nodes and repeats of one key pool into one sample.
  BASE may be several runs (history); their values pool too. BASE rows from a run that is also
  in NEW are dropped, so a run is never compared with itself.
* For each key: the number of values on each side (empty values are counted apart), both
  medians, delta % = (new - base) / |base| * 100, and, when both sides have at least 3 values,
  a one-sided rank-sum (Mann-Whitney) p-value in the direction the median moved, exact at small
  n (conditional on ties; :mod:`bench.results.stats`), with ``p_min``, the smallest p that
  test can reach for these n.
* A key *regresses* when its median moves the wrong way (per the ``better`` column) by more
  than its gate's threshold and, where a p-value exists, p < alpha; it *improves*
  symmetrically. With fewer than 3 values on a side the threshold alone decides. Keys with
  ``better=none`` are always ``unchanged``. Keys with values only in NEW are ``added``, only in
  BASE ``missing``.
* Zero medians: when the base median is 0, delta % is +inf or -inf for any non-zero change
  (0 when both are 0), so a percentage gate treats any change away from 0 as exceeding it:
  ``evicted_pods`` going from 0 to 1 (better=lower) regresses. An absolute gate
  (``evicted_pods:2``) allows a fixed change instead.

With n values a side the smallest one-sided p is 1 / C(2n, n): 3 against 3 gives 0.05, so at
alpha 0.05 such a key can never regress (its note says so and the CLI warns); 4 against 4
gives 0.014. Pooling a history fixes that: 3 new values against 4 earlier nights of 3 reach
1 / C(15, 3) = 0.002. ``--history DIR --last K`` takes the last K run folders below DIR as
BASE.

Gates are small strategy objects parsed from strings (``p50:10%``, ``*:10%``,
``detect_s:20%``, ``detect_s:p50:20%``, ``evicted_pods:1``); see :func:`parse_gate`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import settings
from bench.errors import UsageError

if TYPE_CHECKING:  # pandas and numpy are imported lazily: ``edgebench --help`` stays fast
    import numpy as np
    import pandas as pd

REGRESSED = "regressed"
IMPROVED = "improved"
UNCHANGED = "unchanged"
ADDED = "added"
MISSING = "missing"
VERDICTS: tuple[str, ...] = (REGRESSED, IMPROVED, UNCHANGED, ADDED, MISSING)

DEFAULT_THRESHOLD_PCT = 10.0
DEFAULT_ALPHA = 0.05
MIN_VALUES_FOR_TEST = 3
STATS = frozenset({"p50", "median"})
FORMATS = ("table", "csv", "json", "md")
ANY_METRIC = "*"

GATE_HELP = (
    "regression gate [METRIC:][p50:]THRESHOLD, THRESHOLD either N%% (relative change of the "
    "median) or N (absolute change, in the metric's unit); METRIC defaults to '*' (every "
    "metric). Repeatable; a metric's own gate wins over '*', later gates win over earlier "
    "ones. Default: '*:10%%'. Examples: p50:10%%, '*:5%%', detect_s:20%%, evicted_pods:0"
)


@dataclass(frozen=True)
class Gate(ABC):
    """How far a key's median may move before it counts as a change."""

    metric: str = ANY_METRIC
    stat: str = "p50"

    @abstractmethod
    def exceeded(self, base: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Element-wise: does ``new`` differ from ``base`` by more than the threshold?"""

    @abstractmethod
    def threshold_text(self) -> str:
        """The threshold as the user wrote it (``10%``, ``2``)."""

    def applies_to(self, metric: str) -> bool:
        return self.metric in (ANY_METRIC, metric)

    def __str__(self) -> str:
        return f"{self.metric}:{self.stat}:{self.threshold_text()}"


@dataclass(frozen=True)
class PercentGate(Gate):
    """The median moved by more than ``threshold_pct`` percent of the base median."""

    threshold_pct: float = DEFAULT_THRESHOLD_PCT

    def exceeded(self, base: np.ndarray, new: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.abs(delta_pct(base, new)) > self.threshold_pct

    def threshold_text(self) -> str:
        return f"{self.threshold_pct:g}%"


@dataclass(frozen=True)
class AbsoluteGate(Gate):
    """The median moved by more than ``threshold`` in the metric's own unit."""

    threshold: float = 0.0

    def exceeded(self, base: np.ndarray, new: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.abs(new - base) > self.threshold

    def threshold_text(self) -> str:
        return f"{self.threshold:g}"


_GATE_RE = re.compile(
    r"^(?:(?P<metric>\*|[A-Za-z_][A-Za-z0-9_.-]*):)?"
    r"(?:(?P<stat>[A-Za-z0-9_]+):)?"
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<percent>%)?$"
)


def parse_gate(text: str, known_metrics: Sequence[str] | None = None) -> Gate:
    """Parse ``[METRIC:][p50:]N%`` or ``[METRIC:][p50:]N`` into a gate; UsageError if bad.

    ``known_metrics`` (default: the catalogue in :mod:`bench.results.metrics`) guards against typos,
    which would otherwise silently leave a metric ungated.
    """
    match = _GATE_RE.match(text.strip())
    if not match:
        raise UsageError(
            f"cannot parse gate {text!r}: expected [METRIC:][p50:]N% or [METRIC:][p50:]N, "
            "e.g. p50:10%, '*:10%', detect_s:20%"
        )
    metric, stat = match["metric"] or ANY_METRIC, match["stat"]
    if stat is None and metric in STATS:  # "p50:10%": the stat, for every metric
        metric, stat = ANY_METRIC, metric
    stat = stat or "p50"
    if stat not in STATS:
        raise UsageError(
            f"gate {text!r}: statistic {stat!r} is not supported; compare gates on the median (p50)"
        )
    if metric != ANY_METRIC:
        if known_metrics is None:
            from bench.results.metrics import METRICS

            known_metrics = list(METRICS)
        if metric not in known_metrics:
            raise UsageError(
                f"gate {text!r}: unknown metric {metric!r} (known: {', '.join(known_metrics)})"
            )
    number = float(match["number"])
    if match["percent"]:
        return PercentGate(metric=metric, stat="p50", threshold_pct=number)
    return AbsoluteGate(metric=metric, stat="p50", threshold=number)


@dataclass(frozen=True)
class Rule:
    """The gates and the significance level a comparison applies."""

    gates: tuple[Gate, ...] = ()
    alpha: float = DEFAULT_ALPHA
    default: Gate = PercentGate()

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise UsageError(f"alpha must be in (0, 1], got {self.alpha:g}")

    @classmethod
    def from_options(
        cls,
        fail_on: Sequence[str] | None = None,
        alpha: float | None = None,
        known_metrics: Sequence[str] | None = None,
    ) -> Rule:
        gates = tuple(parse_gate(text, known_metrics) for text in fail_on or ())
        return cls(gates=gates, alpha=DEFAULT_ALPHA if alpha is None else alpha)

    def gate_for(self, metric: str) -> Gate:
        """The metric's own last gate, else the last '*' gate, else the default."""
        own = [g for g in self.gates if g.metric == metric]
        if own:
            return own[-1]
        wildcard = [g for g in self.gates if g.metric == ANY_METRIC]
        return wildcard[-1] if wildcard else self.default


def delta_pct(base: np.ndarray, new: np.ndarray) -> np.ndarray:
    """(new - base) / |base| * 100; ±inf when base is 0 and new is not, 0 when both are 0."""
    import numpy as np

    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    delta = new - base
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = delta / np.abs(base) * 100.0
    # x / 0 already gives ±inf for x != 0; only 0 / 0 needs a rule: no change.
    return np.where((base == 0) & (delta == 0), 0.0, pct)


def _rank_pvalues(
    gid: np.ndarray, side: np.ndarray, values: np.ndarray, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided rank-sum p-values per group id: (NEW larger, NEW smaller); NaN where not
    eligible.

    Groups small enough for the exact test (:func:`bench.results.stats.rank_test`, exact
    conditional on ties) go through it one by one; larger ones get the normal approximation
    with tie and continuity corrections, computed here for all of them at once.
    """
    import numpy as np
    from scipy.stats import norm

    from bench.results import stats

    groups = len(eligible)
    greater = np.full(groups, np.nan)
    less = np.full(groups, np.nan)
    if not eligible.any():
        return greater, less
    keep = ~np.isnan(values) & eligible[gid]
    g, s, v = gid[keep], side[keep], values[keep]
    n1 = np.bincount(g[s == 0], minlength=groups).astype(float)
    n2 = np.bincount(g[s == 1], minlength=groups).astype(float)
    n = n1 + n2
    large = eligible & (n * np.minimum(n1, n2) * 2 * n > stats.EXACT_WORK)

    if large.any():
        rows = large[g]
        lg, ls, lv = g[rows], s[rows], v[rows]
        # Average ranks within each group from one sort by (group, value); tied runs share.
        order = np.lexsort((lv, lg))
        lg, ls, lv = lg[order], ls[order], lv[order]
        pos = np.arange(len(lg))
        new_group = np.r_[True, lg[1:] != lg[:-1]]
        group_first = np.maximum.accumulate(np.where(new_group, pos, 0))
        new_run = new_group | np.r_[True, lv[1:] != lv[:-1]]
        run_start = pos[new_run]
        run_len = np.diff(np.r_[run_start, len(pos)]).astype(float)
        run_rank = run_start + (run_len + 1) / 2 - group_first[run_start]
        ranks = run_rank[np.cumsum(new_run) - 1]
        r2 = np.bincount(lg[ls == 1], weights=ranks[ls == 1], minlength=groups)
        tie_term = np.bincount(lg[run_start], weights=run_len**3 - run_len, minlength=groups)
        u2 = r2 - n2 * (n2 + 1) / 2  # pairs where NEW is above BASE, ties counting 1/2
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
            up = np.where(sigma > 0, norm.sf((u2 - n1 * n2 / 2 - 0.5) / sigma), 1.0)
            down = np.where(sigma > 0, norm.cdf((u2 - n1 * n2 / 2 + 0.5) / sigma), 1.0)
        greater[large] = np.clip(up, 0, 1)[large]
        less[large] = np.clip(down, 0, 1)[large]

    small = eligible & ~large
    if small.any():
        rows = small[g]
        sg, ss, sv = g[rows], s[rows], v[rows]
        order = np.lexsort((ss, sg))
        sg, ss, sv = sg[order], ss[order], sv[order]
        pair = sg * 2 + ss
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        ends = np.r_[starts[1:], len(pair)]
        bounds = {int(pair[a]): (int(a), int(b)) for a, b in zip(starts, ends, strict=True)}
        for group in np.flatnonzero(small):
            b0, b1 = bounds[int(group) * 2]
            c0, c1 = bounds[int(group) * 2 + 1]
            test = stats.rank_test(sv[b0:b1], sv[c0:c1])
            greater[group], less[group] = test.greater, test.less
    return greater, less


def notices(base: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """Warnings worth printing: sides that differ in provider or profile, self-comparison."""
    out: list[str] = []
    for column in ("provider", "profile"):
        b = set(map(str, base[column].unique())) if len(base) else set()
        n = set(map(str, new[column].unique())) if len(new) else set()
        if len(b) == 1 and len(n) == 1 and b != n:
            out.append(f"comparing {column} {b.pop()!r} (base) with {n.pop()!r} (new)")
    shared = set(map(str, base["run_id"].unique())) & set(map(str, new["run_id"].unique()))
    if shared:
        out.append(f"left out of the base, as they are the new run: {', '.join(sorted(shared))}")
    return out


RESULT_COLUMNS: tuple[str, ...] = (
    "unit",
    "better",
    "n_base",
    "n_new",
    "empty_base",
    "empty_new",
    "base_median",
    "new_median",
    "delta",
    "delta_pct",
    "p_value",
    "p_min",
    "gate",
    "verdict",
    "note",
)


def compare(base: pd.DataFrame, new: pd.DataFrame, rule: Rule | None = None) -> pd.DataFrame:
    """Per-key verdicts of ``new`` against ``base`` (frames from ``load_measurements``).

    Returns one row per key with the key columns followed by :data:`RESULT_COLUMNS`.
    """
    import numpy as np
    import pandas as pd

    from bench.results.analysis import concat_frames, key_columns
    from bench.results.stats import min_p

    rule = rule or Rule()
    new_runs = list(new["run_id"].unique())
    base = base[~base["run_id"].isin(new_runs)]
    key = key_columns(base, new)
    wanted = [*key, "unit", "better", "value"]
    both = concat_frames([base[wanted], new[wanted]])
    if both.empty:
        return pd.DataFrame(columns=[*key, *RESULT_COLUMNS])
    side = np.r_[np.zeros(len(base), dtype=np.int64), np.ones(len(new), dtype=np.int64)]
    values = both["value"].to_numpy(dtype=float)

    grouped = both.groupby(key, observed=True, sort=True)
    gid = grouped.ngroup().to_numpy()
    out = grouped[["unit", "better"]].last().reset_index()  # NEW's unit and better win
    for column in out.columns:
        out[column] = out[column].astype(str).astype(object)

    samples = pd.DataFrame({"gid": gid, "side": side, "value": values})
    per_side = samples.groupby(["gid", "side"])["value"]
    stats = pd.DataFrame(
        {"n": per_side.count(), "size": per_side.size(), "median": per_side.median()}
    ).unstack("side")
    groups = len(out)

    def side_stat(name: str, which: int, fill: float) -> np.ndarray:
        if (name, which) not in stats.columns:
            return np.full(groups, fill)
        return stats[(name, which)].reindex(range(groups)).fillna(fill).to_numpy(dtype=float)

    n_base, n_new = side_stat("n", 0, 0).astype(int), side_stat("n", 1, 0).astype(int)
    size_base, size_new = side_stat("size", 0, 0).astype(int), side_stat("size", 1, 0).astype(int)
    base_med, new_med = side_stat("median", 0, np.nan), side_stat("median", 1, np.nan)

    eligible = (n_base >= MIN_VALUES_FOR_TEST) & (n_new >= MIN_VALUES_FOR_TEST)
    p_up, p_down = _rank_pvalues(gid, side, values, eligible)

    metrics = out["metric"].to_numpy()
    exceeded = np.zeros(groups, dtype=bool)
    gate_text = np.empty(groups, dtype=object)
    for name in pd.unique(metrics):
        rows = metrics == name
        gate = rule.gate_for(str(name))
        exceeded[rows] = gate.exceeded(base_med[rows], new_med[rows])
        gate_text[rows] = gate.threshold_text()

    better = out["better"].to_numpy()
    direction = np.where(better == "lower", 1, np.where(better == "higher", -1, 0))
    delta = new_med - base_med
    worse = direction * delta
    # One-sided: the p of the direction the median moved (towards worse, or towards better).
    p_worse = np.where(direction >= 0, p_up, p_down)
    p_better = np.where(direction >= 0, p_down, p_up)
    p_value = np.where(worse < 0, p_better, p_worse)
    p_min = np.array(
        [
            min_p(int(a), int(b)) if ok else np.nan
            for a, b, ok in zip(n_base, n_new, eligible, strict=True)
        ],
        dtype=float,
    )
    significant = np.isnan(p_value) | (p_value < rule.alpha)
    has_base, has_new = n_base > 0, n_new > 0
    verdict = np.full(groups, UNCHANGED, dtype=object)
    verdict[exceeded & significant & (worse > 0)] = REGRESSED
    verdict[exceeded & significant & (worse < 0)] = IMPROVED
    verdict[~has_base & has_new] = ADDED
    verdict[has_base & ~has_new] = MISSING

    out["n_base"], out["n_new"] = n_base, n_new
    out["empty_base"], out["empty_new"] = size_base - n_base, size_new - n_new
    out["base_median"], out["new_median"] = base_med, new_med
    out["delta"] = delta
    out["delta_pct"] = delta_pct(base_med, new_med)
    out["p_value"] = p_value
    out["p_min"] = p_min
    out["gate"] = gate_text
    out["verdict"] = verdict
    out["note"] = _notes(out, exceeded, significant, rule.alpha)
    out = out.sort_values(key, kind="stable", ignore_index=True)
    return out[[*key, *RESULT_COLUMNS]]


def _notes(out: pd.DataFrame, exceeded: np.ndarray, significant: np.ndarray, alpha: float) -> list:
    notes = []
    rows = zip(
        out["better"],
        out["n_base"],
        out["n_new"],
        out["empty_base"],
        out["empty_new"],
        out["base_median"],
        out["delta"],
        out["p_value"],
        out["p_min"],
        exceeded,
        significant,
        strict=True,
    )
    for better, nb, nn, eb, en, bmed, delta, p, pmin, over, sig in rows:
        parts = []
        if nb == 0 and nn == 0:
            parts.append("no values on either side")
        elif nb and nn:
            if better == "none":
                parts.append("better=none: never regressed or improved")
            if bmed == 0 and delta != 0:
                parts.append("base median is 0")
            if over and not sig:
                parts.append(f"change not significant (one-sided p >= {alpha:g})")
            if pmin >= alpha:
                parts.append(
                    f"{nb} vs {nn} values: smallest reachable p {pmin:.2g} >= alpha, "
                    "cannot flag anything (more repeats or a longer history)"
                )
            if math.isnan(p) and (nb < MIN_VALUES_FOR_TEST or nn < MIN_VALUES_FOR_TEST):
                parts.append(f"n < {MIN_VALUES_FOR_TEST}: threshold alone")
        if eb:
            parts.append(f"base: {eb} empty")
        if en:
            parts.append(f"new: {en} empty")
        notes.append("; ".join(parts))
    return notes


def counts(result: pd.DataFrame) -> dict[str, int]:
    """How many keys got each verdict, in :data:`VERDICTS` order."""
    seen = result["verdict"].value_counts()
    return {v: int(seen.get(v, 0)) for v in VERDICTS}


def exit_status(result: pd.DataFrame) -> int:
    """1 when any key regressed, else 0."""
    return int(bool((result["verdict"] == REGRESSED).any()))


def summary_line(result: pd.DataFrame) -> str:
    return ", ".join(f"{n} {v}" for v, n in counts(result).items())


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def _percent(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "+inf%" if value > 0 else "-inf%"
    return f"{value:+.1f}%"


def _pvalue(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"


DISPLAY_COLUMNS = (
    "n_base",
    "n_new",
    "base",
    "new",
    "delta",
    "p",
    "p_min",
    "gate",
    "verdict",
    "note",
)


def _row_cells(row: dict[Any, Any], key: Sequence[str]) -> list[str]:
    return [
        *(str(row[c]) for c in key),
        str(row["n_base"]),
        str(row["n_new"]),
        _number(row["base_median"]),
        _number(row["new_median"]),
        _percent(row["delta_pct"]),
        _pvalue(row["p_value"]),
        _pvalue(row["p_min"]),
        str(row["gate"]),
        str(row["verdict"]),
        str(row["note"]),
    ]


def format_table(result: pd.DataFrame) -> str:
    """A plain-text table of the verdicts with a one-line summary below it."""
    key = [c for c in result.columns if c not in RESULT_COLUMNS]
    headers = [*key, *DISPLAY_COLUMNS]
    rows = [_row_cells(row, key) for row in result.to_dict("records")]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    numeric = {"n_base", "n_new", "base", "new", "delta", "p", "p_min", "gate"}

    def line(cells: Sequence[str]) -> str:
        text = "  ".join(
            c.rjust(w) if h in numeric else c.ljust(w)
            for c, w, h in zip(cells, widths, headers, strict=True)
        )
        return text.rstrip()

    body = [line(headers), *(line(r) for r in rows)]
    return "\n".join([*body, summary_line(result)])


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    return value


def to_records(result: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN and infinities become None."""
    return [{str(k): _json_value(v) for k, v in row.items()} for row in result.to_dict("records")]


def render(result: pd.DataFrame, fmt: str = "table") -> str:
    """The comparison as ``table``, ``csv``, ``json`` or ``md`` (Markdown) text."""
    if fmt == "table":
        return format_table(result)
    if fmt == "csv":
        return result.to_csv(index=False, lineterminator="\n").rstrip("\n")
    if fmt == "json":
        return json.dumps(to_records(result), indent=1)
    if fmt == "md":
        from bench.results.tables import markdown

        key = [c for c in result.columns if c not in RESULT_COLUMNS]
        headers = [*key, *DISPLAY_COLUMNS]
        rows = [_row_cells(row, key) for row in result.to_dict("records")]
        return markdown(headers, rows) + "\n\n" + summary_line(result)
    raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def add_gate_options(addoption: Callable[..., Any], prefix: str = "") -> None:
    """Add ``--{prefix}fail-on`` and ``--{prefix}alpha``; shared by the CLI and pytest.

    ``addoption`` is ``argparse.ArgumentParser.add_argument`` or pytest's ``addoption``.
    """
    addoption(
        f"--{prefix}fail-on",
        action="append",
        default=None,
        metavar="GATE",
        help=GATE_HELP,
    )
    addoption(
        f"--{prefix}alpha",
        type=float,
        default=None,
        metavar="ALPHA",
        help="significance level of the one-sided rank-sum test, used where both sides have "
        f"at least {MIN_VALUES_FOR_TEST} values (default {DEFAULT_ALPHA:g})",
    )


def compare_paths(
    base: Sequence[str], new: Sequence[str], rule: Rule
) -> tuple[pd.DataFrame, list[str]]:
    """Load BASE and NEW sources and compare them; returns the result and notices."""
    from bench.results.analysis import BASE_KEY, OPTIONAL_KEY, load_measurements

    columns = ["run_id", *BASE_KEY, *OPTIONAL_KEY, "unit", "better", "value"]
    base_frame = load_measurements(base, columns)
    new_frame = load_measurements(new, columns)
    return compare(base_frame, new_frame, rule), notices(base_frame, new_frame)


def power_warning(result: pd.DataFrame, alpha: float) -> str | None:
    """A warning when some tested keys cannot reach ``alpha`` at their n, else None."""
    import numpy as np

    blind = result[np.asarray(result["p_min"] >= alpha)]
    if blind.empty:
        return None
    worst = blind.sort_values("p_min", ascending=False).iloc[0]
    return (
        f"{len(blind)} key(s) cannot be flagged at alpha {alpha:g}: too few values (e.g. "
        f"{worst['n_base']} vs {worst['n_new']}: smallest reachable p {worst['p_min']:.2g}). "
        "Use --repeat >= 4, or pool earlier runs (--history DIR --last K)"
    )


def run(args: argparse.Namespace) -> int:
    """The ``compare`` command: print verdicts, return 1 on regression, 0 otherwise."""
    rule = Rule.from_options(args.fail_on, args.alpha)
    base = settings.run_paths(args.base, args.results_dir)
    new = settings.run_paths([args.new], args.results_dir)
    if args.history is not None:
        from bench.results.history import history_runs

        base += [str(p) for p in history_runs(args.history, args.last, exclude=new)]
    elif args.last is not None:
        raise UsageError("--last needs --history DIR")
    if not base:
        raise UsageError("nothing to compare with: give BASE run(s) or --history DIR")
    result, warnings = compare_paths(base, new, rule)
    for text in warnings:
        print(f"edgebench compare: note: {text}", file=sys.stderr)
    warning = power_warning(result, rule.alpha)
    if warning:
        print(f"edgebench compare: warning: {warning}", file=sys.stderr)
    print(render(result, args.format))
    return exit_status(result)


REPEAT_HELP = (
    "How many values a key needs: with n values a side the smallest one-sided p is "
    "1/C(2n, n): 2 vs 2: 0.17, 3 vs 3: 0.05, 4 vs 4: 0.014, 5 vs 5: 0.004. At alpha 0.05 a "
    "two-run compare can flag a key only from 4 values a side (--repeat 4, or --repeat 2 "
    "with 2 edge nodes for per-node metrics); pooling a history of K earlier runs of n "
    "values lowers it to 1/C((K+1)n, n): 3 new values against 4 nights of 3 reach 0.002."
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "compare",
        help="compare a new run against one or more base runs",
        description=(
            "Compare NEW against BASE and give each distro/scenario/case/metric a verdict: "
            "regressed, improved, unchanged, added or missing. Each argument is a run folder, "
            "a measurements.csv, or a folder of run folders; with several BASE arguments "
            "(history) their values pool. The last argument is NEW. Exit status: 1 when "
            "anything regressed, 0 otherwise, 2 on bad input."
        ),
        epilog=(
            "A key regresses when its median moves the wrong way (per the 'better' column) "
            "by more than the gate and, where both sides have >= 3 values, the one-sided "
            "rank-sum p-value (exact at small n) is below ALPHA. A base median of 0 makes any "
            f"change an infinite relative one. {REPEAT_HELP} Examples: "
            "edgebench compare results/A results/B; edgebench compare results/A results/B "
            "results/C --fail-on detect_s:20%; edgebench compare --history results/history "
            "--last 5 results/tonight; edgebench compare old.csv new.csv --format json"
        ),
    )
    parser.add_argument("base", nargs="*", metavar="BASE", help="base run(s): the history")
    parser.add_argument("new", metavar="NEW", help="the run to judge")
    parser.add_argument(
        "--history",
        metavar="DIR",
        help="pool the run folders below DIR into BASE (NEW itself is left out)",
    )
    parser.add_argument(
        "--last",
        type=int,
        metavar="K",
        help="with --history: only the last K run folders (by name, i.e. run id)",
    )
    add_gate_options(parser.add_argument)
    settings.add_arguments(parser.add_argument, ["results_dir"])
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    parser.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``edgebench compare`` on its own, for tests and ``python -m bench.results.compare``."""
    from bench import cli

    return cli.main(["compare", *(argv or [])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
