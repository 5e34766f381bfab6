"""Loading result CSVs strictly and summarising them (bench.results.analysis)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from frames import one_row

from bench.errors import InputError
from bench.results.analysis import (
    key_columns,
    load_measurements,
    read_events,
    resolve_sources,
    side_by_side,
    side_by_side_cells,
    summarize,
)
from bench.results.records import COLUMNS

DATA = Path(__file__).parent / "data"


def test_loads_a_run_folder_and_a_csv_path_alike() -> None:
    by_folder = load_measurements([DATA / "verdicts_base"])
    by_file = load_measurements([DATA / "verdicts_base" / "measurements.csv"])
    assert list(by_folder.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(by_folder, by_file)


def test_several_inputs_concatenate() -> None:
    base = load_measurements([DATA / "verdicts_base"])
    new = load_measurements([DATA / "verdicts_new"])
    both = load_measurements([DATA / "verdicts_base", DATA / "verdicts_new"])
    assert len(both) == len(base) + len(new)
    assert set(both["run_id"]) == {"20250101T000000Z-aaaaaa", "20250102T000000Z-bbbbbb"}
    assert isinstance(both["metric"].dtype, pd.CategoricalDtype)


def test_a_folder_of_run_folders_is_a_history_in_name_order() -> None:
    files = resolve_sources([DATA / "history"])
    assert [f.parent.name for f in files] == ["run1", "run2", "run3"]
    assert len(load_measurements([DATA / "history"])) == 9


def test_empty_values_are_kept_as_nan_with_their_note() -> None:
    frame = load_measurements([DATA / "verdicts_base"])
    empty = frame[frame["value"].isna()]
    assert len(empty) == 3
    assert set(empty["note"]) == {"node never left Ready within 120 s"}


def test_text_columns_stay_text() -> None:
    frame = load_measurements([DATA / "verdicts_base"])
    assert set(frame["schema_version"]) == {"2"}
    assert set(frame["better"]) == {"lower", "higher", "none"}
    assert "0" in set(frame["repeat"])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "bad_missing_columns.csv",
            r"bad_missing_columns.csv: line 1: missing columns: started_at",
        ),
        ("bad_not_csv.csv", r"bad_not_csv.csv: line 1: not a CSV file"),
        ("bad_schema_version.csv", r"bad_schema_version.csv: line 4: unknown schema_version '7'"),
        ("bad_value.csv", r"bad_value.csv: line 3: value 'fast' is not a number"),
        ("bad_ragged.csv", r"bad_ragged.csv: not a valid CSV file: Expected 16 fields in line 3"),
        ("bad_better.csv", r"bad_better.csv: line 3: better is 'smaller'"),
        ("no_such_run", r"no_such_run: no such file or folder"),
    ],
)
def test_bad_input_names_the_file_line_and_problem(name: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as info:
        load_measurements([DATA / name])
    assert info.value.exit_status == 2


def test_binary_and_empty_files_are_bad_input(tmp_path: Path) -> None:
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError, match=r"binary.csv: not a CSV file \(binary content\)"):
        load_measurements([binary])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty.csv: empty file"):
        load_measurements([empty])
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"caf\xe9,th\xe9\n")
    with pytest.raises(InputError, match=r"latin.csv: not a CSV file \(not UTF-8 text\)"):
        load_measurements([latin])


def test_a_folder_without_results_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no measurements.csv in this folder"):
        load_measurements([tmp_path])


def test_header_only_file_loads_empty(tmp_path: Path) -> None:
    (tmp_path / "measurements.csv").write_text(",".join(COLUMNS) + "\n")
    frame = load_measurements([tmp_path])
    assert frame.empty
    assert summarize(frame).empty
    assert side_by_side(summarize(frame)).empty


def test_bad_input_in_the_second_of_several_files_names_that_file() -> None:
    with pytest.raises(InputError, match=r"bad_value.csv: line 3"):
        load_measurements([DATA / "verdicts_base", DATA / "bad_value.csv"])


def test_summary_statistics_per_key() -> None:
    summary = summarize(load_measurements([DATA / "verdicts_base"]))
    row = one_row(summary, case="outage_60s", metric="detect_s")
    assert row["n"] == 5 and row["empty"] == 0
    assert row["median"] == pytest.approx(10.0)
    assert row["min"] == pytest.approx(9.8) and row["max"] == pytest.approx(10.4)
    assert row["p95"] == pytest.approx(10.34)
    assert row["iqr"] == pytest.approx(10.1 - 9.9)
    assert row["unit"] == "s" and row["better"] == "lower"


def test_summary_of_nan_rows() -> None:
    summary = summarize(load_measurements([DATA / "verdicts_base"]))
    partly = one_row(summary, case="outage_300s", metric="detect_s")
    assert partly["n"] == 4 and partly["empty"] == 1
    assert partly["median"] == pytest.approx(10.05)
    only_empty = one_row(summary, case="outage_300s", metric="stable_recover_s")
    assert only_empty["n"] == 0 and only_empty["empty"] == 2
    assert math.isnan(only_empty["median"]) and math.isnan(only_empty["iqr"])


def test_side_by_side_puts_distros_in_columns() -> None:
    summary = summarize(load_measurements([DATA / "two_distros"]))
    table = side_by_side(summary)
    assert {"kubeedge", "kwok"} <= set(table.columns)
    row = one_row(table, scenario="offline_autonomy", metric="stable_recover_s")
    assert row["kwok"] == pytest.approx(2.2) and row["kubeedge"] == pytest.approx(16.0)
    cells = side_by_side_cells(summary).set_index(["scenario", "metric"])
    assert cells.loc[("offline_autonomy", "detect_s"), "kubeedge"] == "45.05 (n=2)"


def test_provider_and_profile_join_the_key_only_where_they_vary(tmp_path: Path) -> None:
    frame = load_measurements([DATA / "verdicts_base"])
    assert key_columns(frame) == ["distro", "scenario", "case", "metric"]
    other = tmp_path / "other"
    other.mkdir()
    text = (DATA / "verdicts_base" / "measurements.csv").read_text()
    (other / "measurements.csv").write_text(text.replace(",fast,", ",default,"))
    mixed = load_measurements([DATA / "verdicts_base", other])
    assert key_columns(mixed) == ["distro", "profile", "scenario", "case", "metric"]
    summary = summarize(mixed)
    assert set(summary["profile"]) == {"fast", "default"}


def test_events_are_read_when_present_and_absent_silently(tmp_path: Path) -> None:
    assert read_events(tmp_path) is None
    events = read_events(DATA / "timeline_run")
    assert events is not None
    assert set(events["kind"]) == {"ready", "fault_start", "fault_end"}
    assert events["mono_time"].notna().all()


def test_events_with_an_unknown_kind_are_bad_input(tmp_path: Path) -> None:
    shutil.copy(DATA / "timeline_run" / "events.csv", tmp_path / "events.csv")
    with (tmp_path / "events.csv").open("a") as fh:
        fh.write("r,s,c,0,edge-0,reboot,2025-01-03T00:00:00+00:00,1.0,\n")
    with pytest.raises(InputError, match=r"events.csv: line \d+: unknown event kind 'reboot'"):
        read_events(tmp_path)


def test_events_fall_back_to_the_wall_clock(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(
        "run_id,scenario,case,repeat,node,kind,wall_time,mono_time,value\n"
        "r,s,c,0,n,ready,2025-01-03T00:00:00+00:00,,True\n"
        "r,s,c,0,n,ready,2025-01-03T00:00:30.5+00:00,,False\n"
    )
    events = read_events(tmp_path)
    assert events is not None
    times = events["mono_time"].tolist()
    assert times[1] - times[0] == pytest.approx(30.5)


# --- schema versions -----------------------------------------------------------------------


def test_v1_metrics_are_read_under_their_v2_names() -> None:
    frame = load_measurements([DATA / "schema_v1"])
    assert set(frame["metric"]) == {
        "detect_s",
        "first_ready_s",
        "pods_ready_s@v1",  # v1 measured the last Ready transition: not today's first Ready
        "converge_s@v1",
    }
    assert set(frame["schema_version"]) == {"1"}
    # A renamed metric keeps the unit and direction its file gave it.
    converge = frame[frame["metric"] == "converge_s@v1"]
    assert set(converge["unit"]) == {"s"} and set(converge["better"]) == {"lower"}


def test_v1_and_v2_files_load_together() -> None:
    frame = load_measurements([DATA / "schema_v1", DATA / "schema_v2"])
    assert set(frame["schema_version"]) == {"1", "2"}
    first = frame[frame["metric"] == "first_ready_s"]
    assert sorted(first["run_id"].unique()) == [
        "20250201T000000Z-0000v1",
        "20250202T000000Z-0000v2",
    ]
    assert "recover_s" not in set(frame["metric"])
    assert (frame["metric"] == "converge_s").sum() == 3  # v2's only


def test_a_file_mixing_v1_and_v2_rows_renames_only_the_v1_rows(tmp_path: Path) -> None:
    v1 = (DATA / "schema_v1" / "measurements.csv").read_text().splitlines()
    v2 = (DATA / "schema_v2" / "measurements.csv").read_text().splitlines()
    mixed = tmp_path / "measurements.csv"
    mixed.write_text("\n".join([*v1, *v2[1:]]) + "\n")
    frame = load_measurements([mixed])
    assert (frame["metric"] == "converge_s@v1").sum() == 3
    assert (frame["metric"] == "converge_s").sum() == 3
    assert (frame["metric"] == "first_ready_s").sum() == 6
