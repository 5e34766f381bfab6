"""Benchmarks: ``compare``, ``versus`` and ``report`` on 1,000,000 generated rows (slow).

Run with ``python -m pytest tests/test_bench_analysis.py -m slow --benchmark-only``. The rows
are generated here with numpy (never committed): a history of 20 base runs and one new run,
3 distros x 7 scenarios x 4 cases x 6 metrics = 504 keys, about 1 % empty values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.results.compare import Rule, compare_paths
from bench.results.records import COLUMNS
from bench.results.report import write_report
from bench.results.versus import versus_paths

ROWS = 1_000_000
BASE_RUNS = 20
DISTROS = ["k3s", "kubeedge", "kwok"]
SCENARIOS = [
    "offline_autonomy",
    "node_reboot_offline",
    "agent_restart_offline",
    "metadata_resync",
    "degraded_link",
    "link_flapping",
    "control_plane_outage",
]
CASES = ["c60s", "c300s", "c900s", "c3600s"]
METRICS = [
    ("detect_s", "s", "lower"),
    ("stable_recover_s", "s", "lower"),
    ("pods_stable_s", "s", "lower"),
    ("evicted_pods", "count", "lower"),
    ("edge_pods_running", "ratio", "higher"),
    ("recreated_pods", "count", "lower"),
]


def _write_run(path: Path, run_id: str, rows: int, shift: float, rng: np.random.Generator) -> None:
    keys = len(DISTROS) * len(SCENARIOS) * len(CASES) * len(METRICS)
    index = np.arange(rows) % keys
    metric_i = index % len(METRICS)
    case_i = (index // len(METRICS)) % len(CASES)
    scenario_i = (index // (len(METRICS) * len(CASES))) % len(SCENARIOS)
    distro_i = index // (len(METRICS) * len(CASES) * len(SCENARIOS))
    center = 5.0 + 10.0 * metric_i + 3.0 * distro_i
    value = rng.normal(center * shift, center * 0.05)
    value[rng.random(rows) < 0.01] = np.nan
    metric = np.array([m for m, _, _ in METRICS])[metric_i]
    frame = pd.DataFrame(
        {
            "schema_version": 2,
            "run_id": run_id,
            "started_at": "2025-01-01T00:00:00.000000+00:00",
            "distro": np.array(DISTROS)[distro_i],
            "provider": "local",
            "distro_version": "v1.31.4",
            "profile": "fast",
            "scenario": np.array(SCENARIOS)[scenario_i],
            "case": np.array(CASES)[case_i],
            "repeat": np.arange(rows) // keys,
            "node": "edge-0",
            "metric": metric,
            "value": np.round(value, 6),
            "unit": np.array([u for _, u, _ in METRICS])[metric_i],
            "better": np.array([b for _, _, b in METRICS])[metric_i],
            "note": np.where(np.isnan(value), "no transition seen", ""),
        },
        columns=list(COLUMNS),
    )
    path.mkdir(parents=True)
    frame.to_csv(path / "measurements.csv", index=False)


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("million")
    rng = np.random.default_rng(42)
    per_run = ROWS // (BASE_RUNS + 1)
    history = root / "history"
    for i in range(BASE_RUNS):
        _write_run(history / f"run{i:02d}", f"run{i:02d}", per_run, 1.0, rng)
    last = ROWS - per_run * BASE_RUNS
    _write_run(root / "new", "new", last, 1.2, rng)  # 20 % slower: everything moves
    return {"root": root, "history": history, "new": root / "new"}


@pytest.mark.slow
def test_compare_one_million_rows(benchmark: Any, million: dict[str, Any]) -> None:
    result, _ = benchmark.pedantic(
        compare_paths,
        args=([str(million["history"])], [str(million["new"])], Rule()),
        rounds=3,
        iterations=1,
    )
    assert len(result) == 504
    assert int(result["n_base"].sum() + result["n_new"].sum()) > 0.98 * ROWS
    assert set(result["verdict"]) == {"regressed", "improved"}  # higher is better flips


@pytest.mark.slow
def test_versus_one_million_rows(benchmark: Any, million: dict[str, Any]) -> None:
    """20 runs of 3 distros, about 950,000 rows: 336 distro pairs of about 1,900 values."""
    result = benchmark.pedantic(
        versus_paths, args=([str(million["history"])], "k3s"), rounds=3, iterations=1
    )
    assert len(result) == 2 * len(SCENARIOS) * len(CASES) * len(METRICS)
    assert set(result["verdict"]) <= {"better", "worse", "no difference shown"}
    assert set(result["verdict"]) >= {"better", "worse"}  # distros are 3 units apart


@pytest.mark.slow
def test_report_of_three_runs(benchmark: Any, million: dict[str, Any], tmp_path: Path) -> None:
    """3 runs (about 143,000 rows), every plot drawn: 42 strip plots."""
    runs = [str(million["history"] / f"run{i:02d}") for i in range(3)]
    written = benchmark.pedantic(write_report, args=(runs, tmp_path), rounds=1, iterations=1)
    assert len(written.plots) == len(SCENARIOS) * len(METRICS)


@pytest.mark.slow
def test_report_one_million_rows(benchmark: Any, million: dict[str, Any], tmp_path: Path) -> None:
    written = benchmark.pedantic(
        write_report,
        args=([str(million["history"]), str(million["new"])], tmp_path),
        rounds=1,
        iterations=1,
    )
    assert written.html.stat().st_size > 0
    assert len(written.plots) == len(SCENARIOS) * len(METRICS)
