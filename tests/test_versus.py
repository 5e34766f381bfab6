"""``edgebench versus``: distro-against-distro verdicts, and the statistics behind them."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from frames import one_row

from bench.errors import UsageError
from bench.results import stats
from bench.results.analysis import load_measurements
from bench.results.versus import render, versus, versus_paths

DATA = Path(__file__).parent / "data"
RUNS = [str(DATA / "versus" / d) for d in ("k3s", "kubeedge", "kwok")]


def run_cli(argv: Sequence[str]) -> int:
    from bench.cli import main

    return main(list(argv))


@pytest.fixture(scope="module")
def golden() -> pd.DataFrame:
    return versus_paths(RUNS, baseline="k3s")


def verdicts(result: pd.DataFrame) -> dict[tuple[str, str], str]:
    rows = zip(result["metric"], result["distro"], result["verdict"], strict=True)
    return {(str(m), str(d)): str(v) for m, d, v in rows}


# --- verdicts on golden runs ---------------------------------------------------------------


def test_every_verdict_on_the_golden_runs(golden: pd.DataFrame) -> None:
    assert verdicts(golden) == {
        ("stable_recover_s", "kubeedge"): "better",  # 12 s against 20 s, 9 vs 9 disjoint
        ("stable_recover_s", "kwok"): "better",
        ("relapses", "kubeedge"): "no difference shown",
        ("relapses", "kwok"): "no difference shown",
        ("pods_stable_s", "kubeedge"): "worse",  # 35 s against 25 s
        ("pods_stable_s", "kwok"): "no difference shown",  # overlapping samples
        ("detect_s", "kubeedge"): "worse",  # +0.5 s, p = 0.004
        ("detect_s", "kwok"): "no difference shown",  # p = 0.03 but q = 0.07 after BH
        ("evicted_pods", "kubeedge"): "no difference shown",
        ("evicted_pods", "kwok"): "no difference shown",
        ("edge_pods_running", "kubeedge"): "no difference shown",
        ("edge_pods_running", "kwok"): "not comparable",  # KWOK: every value empty
    }


def test_headline_recovery_figures_come_first_with_relapses_beside_them(
    golden: pd.DataFrame,
) -> None:
    metrics = list(dict.fromkeys(golden["metric"]))
    assert metrics[:3] == ["stable_recover_s", "relapses", "pods_stable_s"]


def test_golden_numbers(golden: pd.DataFrame) -> None:
    row = one_row(golden, metric="stable_recover_s", distro="kubeedge")
    assert (row["n"], row["n_baseline"], row["baseline"]) == (9, 9, "k3s")
    assert row["median"] == pytest.approx(12.0) and row["baseline_median"] == pytest.approx(20.0)
    assert row["ratio"] == pytest.approx(0.6)
    assert row["shift"] == pytest.approx(-8.0)
    assert row["shift_low"] <= -8.0 <= row["shift_high"] < 0
    assert row["median_low"] <= 12.0 <= row["median_high"]
    # 9 vs 9 fully separated: the exact two-sided p is 2 / C(18, 9).
    assert row["p_value"] == pytest.approx(2 / math.comb(18, 9))


def test_empty_values_carry_their_note_and_are_never_dropped(golden: pd.DataFrame) -> None:
    row = one_row(golden, metric="edge_pods_running", distro="kwok")
    assert row["n"] == 0 and row["empty"] == 9
    assert math.isnan(row["p_value"]) and math.isnan(row["q_value"])
    assert row["note"] == "kwok: all 9 empty (KWOK nodes have no runtime)"


def test_not_comparable_says_which_condition_differs() -> None:
    result = versus_paths([str(DATA / "versus_conditions")], baseline="k3s")
    assert set(result["verdict"]) == {"not comparable"}
    notes = dict(zip(result["distro"], result["note"], strict=True))
    assert notes["kubeedge"] == "profile fast vs default"
    assert (
        notes["kwok"] == "cut mode blackhole vs reset; timing node_monitor_grace_period_s 8 vs 40"
    )


def test_a_distro_without_rows_for_a_key_is_a_row_not_a_gap() -> None:
    frame = load_measurements(RUNS)
    frame = frame[~((frame["distro"] == "kwok") & (frame["metric"] == "detect_s"))]
    result = versus(frame, "k3s")
    row = one_row(result, metric="detect_s", distro="kwok")
    assert row["verdict"] == "not comparable" and row["note"] == "kwok: no rows"


def test_bh_adjustment_across_all_rows(golden: pd.DataFrame) -> None:
    tested = golden.dropna(subset=["p_value"])
    assert len(tested) == 11
    expected = stats.bh_adjust(tested["p_value"].to_numpy())
    assert np.allclose(tested["q_value"].to_numpy(), expected)
    kwok = one_row(golden, metric="detect_s", distro="kwok")
    assert kwok["p_value"] < 0.05 <= kwok["q_value"]
    assert "after Benjamini-Hochberg over 11 tests" in kwok["note"]


def test_small_n_says_no_difference_can_be_shown() -> None:
    frame = load_measurements([DATA / "two_distros"])
    result = versus(frame, "kwok")
    row = one_row(result, metric="stable_recover_s", distro="kubeedge")
    assert row["verdict"] == "no difference shown"  # 7x slower, but 3 vs 3: p >= 0.1
    assert "smallest reachable p is 0.1 >= alpha 0.05" in row["note"]


def test_baseline_defaults_to_the_first_runs_distro() -> None:
    result = versus_paths([RUNS[1], RUNS[0]])
    assert set(result["baseline"]) == {"kubeedge"}
    assert set(result["distro"]) == {"k3s"}


@pytest.mark.parametrize(
    ("runs", "baseline", "message"),
    [
        (RUNS, "starlingx", "no rows of that distro"),
        (RUNS[:1], None, "only one distro"),
    ],
)
def test_bad_baselines_are_usage_errors(
    runs: list[str], baseline: str | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        versus_paths(runs, baseline)


# --- output and the command line ------------------------------------------------------------


def test_json_rows_have_the_documented_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(["versus", *RUNS, "--baseline", "k3s", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 12  # 6 metrics x 2 non-baseline distros
    keys = {"scenario", "case", "metric", "distro", "baseline", "n", "median"}
    keys |= {"baseline_median", "ratio", "p_value", "q_value", "verdict"}
    assert all(keys <= set(r) for r in rows)
    empty = next(r for r in rows if r["distro"] == "kwok" and r["metric"] == "edge_pods_running")
    assert empty["median"] is None and empty["p_value"] is None


def test_table_md_and_csv(golden: pd.DataFrame) -> None:
    table = render(golden, "table")
    assert table.splitlines()[0].startswith("scenario")
    assert table.splitlines()[-1] == (
        "2 better, 2 worse, 7 no difference shown, 0 different, 1 not comparable"
    )
    md = render(golden, "md")
    assert (
        "| offline_autonomy | outage_60s | stable_recover_s (s) | kubeedge vs k3s | better | 9/9 |"
        in md
    )
    csv_text = render(golden, "csv")
    assert csv_text.splitlines()[0].startswith("scenario,case,metric,unit,better,distro")


@pytest.mark.parametrize(
    "argv",
    [
        ["versus", str(DATA / "bad_value.csv"), RUNS[0]],
        ["versus", str(DATA / "no_such_run"), RUNS[0]],
        ["versus", *RUNS, "--baseline", "starlingx"],
    ],
)
def test_cli_exit_2_on_bad_input(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgebench: error: ")
    if "bad_value" in argv[1]:
        assert "bad_value.csv: line 3" in err


# --- the statistics -------------------------------------------------------------------------


def _brute_force_p(x: np.ndarray, y: np.ndarray) -> float:
    """The exact one-sided ('y greater') permutation p of the mid-rank sum, by enumeration."""
    from scipy.stats import rankdata

    pooled = np.r_[x, y]
    ranks = rankdata(pooled)
    observed = ranks[len(x) :].sum()
    sums = [ranks[list(c)].sum() for c in combinations(range(len(pooled)), len(y))]
    return float(np.mean(np.array(sums) >= observed - 1e-9))


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([10.0, 10.3, 9.9], [12.4, 12.9, 12.6]),
        ([0, 0, 1, 0, 0], [1, 1, 0, 2]),  # ties: counts
        ([5.0, 6, 7, 8, 9, 10], [7.5, 8.5, 11]),
        ([1, 1, 1, 2], [1, 2, 2, 2]),
    ],
)
def test_rank_test_is_exact_with_and_without_ties(x: list[float], y: list[float]) -> None:
    a, b = np.array(x, dtype=float), np.array(y, dtype=float)
    got = stats.rank_test(a, b)
    assert got.exact
    assert got.greater == pytest.approx(_brute_force_p(a, b))
    assert got.less == pytest.approx(_brute_force_p(-a, -b))
    assert got.two_sided == pytest.approx(min(1.0, 2 * min(got.greater, got.less)))


def test_rank_test_matches_scipy_without_ties() -> None:
    from scipy.stats import mannwhitneyu

    x = np.array([3.1, 4.7, 2.2, 5.9, 4.1, 3.3, 6.0])
    y = np.array([5.2, 6.4, 7.7, 4.9, 8.1, 6.6])
    got = stats.rank_test(x, y)
    ref = mannwhitneyu(y, x, alternative="two-sided", method="exact").pvalue
    assert got.two_sided == pytest.approx(ref)


def test_min_p() -> None:
    assert stats.min_p(3, 3) == pytest.approx(0.05)
    assert stats.min_p(3, 3, two_sided=True) == pytest.approx(0.1)
    assert stats.min_p(12, 3) == pytest.approx(1 / 455)
    assert stats.min_p(0, 3) == 1.0


def test_hodges_lehmann_and_its_ci() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    y = x + 10
    shift = stats.hodges_lehmann(x, y)
    assert shift.estimate == pytest.approx(10.0)
    assert shift.low < 10 < shift.high and not shift.full_range
    tiny = stats.hodges_lehmann(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert tiny.full_range and (tiny.low, tiny.high) == (1.0, 3.0)


def test_median_ci_is_seeded_and_covers_the_median() -> None:
    values = np.array([9.6, 10.1, 10.3, 9.8, 10.0, 10.5, 9.9, 10.2, 9.7])
    first, again = stats.median_ci(values), stats.median_ci(values)
    assert first == again
    assert first[0] <= 10.0 <= first[1]
    assert stats.median_ci(np.array([4.0])) == (4.0, 4.0)
    assert all(math.isnan(v) for v in stats.median_ci(np.array([math.nan])))


def test_median_ci_large_n_uses_the_exact_bootstrap_limit() -> None:
    values = np.linspace(0, 100, 4001)
    low, high = stats.median_ci(values)
    assert low < 50 < high
    assert high - low == pytest.approx(2 * 1.96 * 0.5 / math.sqrt(4001) * 100 * 1.0, rel=0.1)


def test_bh_adjust() -> None:
    p = np.array([0.01, 0.04, math.nan, 0.03, 0.5])
    q = stats.bh_adjust(p)
    assert q[0] == pytest.approx(0.04)
    assert q[1] == pytest.approx(0.04 * 4 / 3) and q[3] == pytest.approx(0.04 * 4 / 3)
    assert math.isnan(q[2]) and q[4] == pytest.approx(0.5)


def test_min_p_does_not_overflow_at_large_n() -> None:
    assert stats.min_p(40_000, 2_000) == 0.0
    assert stats.min_p(30, 30) == pytest.approx(1 / math.comb(60, 30))


def test_a_metric_without_a_better_direction_is_different_not_better() -> None:
    frame = load_measurements(RUNS)
    frame["better"] = frame["better"].astype(str)
    frame.loc[frame["metric"] == "stable_recover_s", "better"] = "none"
    result = versus(frame, "k3s")
    row = one_row(result, metric="stable_recover_s", distro="kubeedge")
    assert row["verdict"] == "different"
