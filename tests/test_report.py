"""Reports: tables, Markdown, self-contained HTML, PNG plots and node timelines."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.results.analysis import load_measurements, read_events
from bench.results.report import (
    distribution_plots,
    render_markdown,
    report_tables,
    timeline_rows,
    write_report,
)

DATA = Path(__file__).parent / "data"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(argv: Sequence[str]) -> int:
    """``edgebench report ...`` through the real command line."""
    from bench.cli import main

    return main(list(argv))


def test_tables_are_pure_and_keyed_per_distro_scenario_case_metric() -> None:
    tables = report_tables(load_measurements([DATA / "two_distros"]))
    assert tables.rows == 18
    assert len(tables.summary) == 6
    assert {"n", "median", "p95", "min", "max", "iqr"} <= set(tables.summary.columns)
    assert {"kubeedge", "kwok"} <= set(tables.side_by_side.columns)
    assert list(tables.runs["rows"]) == [9, 9]


def test_markdown_has_a_section_per_scenario_and_links_plots() -> None:
    frame = load_measurements([DATA / "two_distros"])
    plots = distribution_plots(frame)
    text = render_markdown(report_tables(frame), plots)
    assert "## offline_autonomy" in text and "## degraded_link" in text
    assert "| kwok | outage_60s | stable_recover_s | s | lower | 3 | 0 | 2.2 |" in text
    assert "45.05 (n=2)" in text
    assert "![offline_autonomy: detect_s](plots/dist_offline_autonomy_detect_s.png)" in text


def test_write_report_into_the_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(DATA / "timeline_run", run)
    assert run_cli(["report", str(run)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) <= 3 and str(run / "report.md") in out[0]
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5  # 3 distributions, 2 timelines
    assert "<h2>offline_autonomy</h2>" in html
    pngs = sorted(p.name for p in (run / "plots").iterdir())
    assert (
        "timeline_offline_autonomy.png" in pngs and "dist_degraded_link_notready_flaps.png" in pngs
    )
    assert all((run / "plots" / p).read_bytes().startswith(PNG_MAGIC) for p in pngs)


def test_no_events_file_means_no_timeline(tmp_path: Path) -> None:
    written = write_report([DATA / "two_distros"], tmp_path)
    names = {p.name for p in written.plots}
    assert names and not any(n.startswith("timeline_") for n in names)


def test_several_runs_and_nan_rows_and_out_dir(tmp_path: Path) -> None:
    runs = [str(DATA / "verdicts_base"), str(DATA / "verdicts_new")]
    assert run_cli(["report", *runs, "--out", str(tmp_path), "--no-plots"]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "2 run(s)" in text
    assert "| k3s | outage_300s | stable_recover_s | s | lower | 1 | 3 | 21 |" in text
    assert not (DATA / "verdicts_base" / "report.md").exists()


def test_a_metric_with_only_empty_values_still_plots(tmp_path: Path) -> None:
    frame = load_measurements([DATA / "verdicts_base"])
    plots = {p.name: p for p in distribution_plots(frame)}
    assert plots["dist_offline_autonomy_stable_recover_s.png"].png.startswith(PNG_MAGIC)


def test_timeline_rows_are_relative_to_the_fault_start() -> None:
    events = read_events(DATA / "timeline_run")
    assert events is not None
    rows = timeline_rows(events)
    assert set(rows) == {"offline_autonomy", "degraded_link"}
    first = rows["offline_autonomy"][0]
    assert first.label == "outage_60s r0 edge-0"
    assert first.faults == [(0.0, 60.0, "cut edge-0,edge-1")]
    assert [s for _, _, s in first.spans] == ["True", "Unknown", "True", "True"]
    assert first.spans[1][0] == pytest.approx(40.2)
    assert first.spans[1][1] == pytest.approx(62.1)


@pytest.mark.parametrize(
    "argv",
    [
        ["report", str(DATA / "bad_missing_columns.csv")],
        ["report", str(DATA / "no_such_run")],
    ],
)
def test_cli_exit_2_on_bad_input(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(argv) == 2
    assert capsys.readouterr().err.startswith("edgebench: error: ")
