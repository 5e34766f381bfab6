"""``edgebench history``: per-run medians and CIs per key, the gate's verdict for the latest."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.errors import InputError
from bench.results.analysis import load_measurements
from bench.results.history import history, history_runs

DATA = Path(__file__).parent / "data"
NIGHTLY = DATA / "nightly"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(argv: Sequence[str]) -> int:
    from bench.cli import main

    return main(list(argv))


@pytest.fixture
def with_regression(tmp_path: Path) -> Path:
    root = tmp_path / "history"
    shutil.copytree(NIGHTLY, root)
    shutil.copytree(DATA / "nightly_regressed", root / "20250406T020000Z-night6")
    return root


def test_history_runs_are_in_run_id_order_and_the_last_k() -> None:
    runs = history_runs(NIGHTLY)
    assert [p.name[-6:] for p in runs] == [f"night{i}" for i in range(1, 6)]
    assert [p.name[-6:] for p in history_runs(NIGHTLY, 2)] == ["night4", "night5"]
    assert len(history_runs(NIGHTLY, exclude=[runs[-1]])) == 4
    with pytest.raises(InputError, match="no run folders"):
        history_runs(DATA / "versus" / "k3s")


def test_a_row_per_key_and_run_with_the_gate_on_the_latest(with_regression: Path) -> None:
    table = history(load_measurements(history_runs(with_regression)))
    recover = table[table["metric"] == "stable_recover_s"]
    assert list(recover["run_id"].str[-6:]) == [f"night{i}" for i in range(1, 7)]
    assert list(recover["n"]) == [3] * 6
    assert recover["median"].iloc[-1] == pytest.approx(15.0)
    assert (recover["ci_low"] <= recover["median"]).all()
    assert (recover["median"] <= recover["ci_high"]).all()
    assert list(recover["verdict"]) == ["", "", "", "", "", "regressed"]
    detect = table[table["metric"] == "detect_s"]
    assert detect["verdict"].iloc[-1] == "unchanged"
    assert table.attrs["base_runs"][-1].endswith("night5")


def test_cli_table_json_metric_filter_and_plots(
    with_regression: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["history", str(with_regression), "--metric", "stable_recover_s", "--last", "3"]
    assert run_cli([*argv, "--format", "json", "--plot", str(tmp_path / "plots")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in rows} == {"stable_recover_s"}
    assert rows[-1]["verdict"] == "regressed"
    pngs = list((tmp_path / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["history_offline_autonomy_stable_recover_s.png"]
    assert pngs[0].read_bytes().startswith(PNG_MAGIC)
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "gate: each distro's latest run against its runs before it, pooled (3 run(s))" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", str(NIGHTLY), "--metric", "detect_z"], "--metric detect_z: not in these runs"),
        (["history", str(DATA / "nope")], "no such folder"),
    ],
)
def test_cli_exit_2_on_bad_input(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(argv) == 2
    assert message in capsys.readouterr().err


def test_the_nightly_layout_of_several_distros_gates_each_distros_latest(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(NIGHTLY, root / "kwok")
    shutil.copytree(DATA / "nightly_regressed", root / "kwok" / "20250406T020000Z-night6")
    for name in ("k3s", "kubeedge"):
        shutil.copytree(DATA / "versus" / name, root / name / f"20250301T020000Z-{name}")
    runs = history_runs(root)
    assert len(runs) == 8 and runs[-1].name.endswith("night6")
    table = history(load_measurements(runs))
    latest = table[table["verdict"] != ""]
    assert set(latest["distro"]) == {"kwok"}  # k3s and kubeedge have one run each
    assert one_verdict(latest, "stable_recover_s") == "regressed"


def one_verdict(table: object, metric: str) -> str:
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    rows = table[table["metric"] == metric]
    assert len(rows) == 1
    return str(rows["verdict"].iloc[0])
