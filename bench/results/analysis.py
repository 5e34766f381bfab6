"""Loading result CSVs and summarising them: pure functions over pandas DataFrames.

``load_measurements`` is the only function here that touches the file system; everything else
takes a DataFrame and returns one, so it can be tested on small golden CSVs and reused by
``bench.results.compare``, ``bench.results.report`` and the pytest plugin alike.

A *source* is a run folder (holding ``measurements.csv``), a ``measurements.csv`` path, or a
folder of run folders (every ``*/measurements.csv`` one level below it, in name order, which
is run-id order). Several sources concatenate into one frame.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import InputError
from bench.results.metrics import V1_METRICS, V1_RESET_SCENARIOS
from bench.results.records import (
    COLUMNS,
    EVENT_COLUMNS,
    EVENTS,
    MEASUREMENTS,
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
)

EVENT_KINDS = frozenset({"ready", "fault_start", "fault_end"})

# The key a summary row stands for. provider and profile join it only where they vary.
BASE_KEY: tuple[str, ...] = ("distro", "scenario", "case", "metric")
OPTIONAL_KEY: tuple[str, ...] = ("provider", "profile")
BETTER_VALUES = frozenset({"lower", "higher", "none"})

# Columns held as categories: few distinct values, many rows.
_CATEGORY_COLUMNS = tuple(
    c for c in COLUMNS if c not in ("schema_version", "repeat", "value", "note")
)
# Spellings of "no value" in the value column. Nothing else becomes NaN: a distro or case
# named "NA" stays a string.
_NA_SPELLINGS = ["", "nan", "NaN", "NAN", "NA", "N/A", "n/a", "null", "None"]
_SNIFF_BYTES = 4096


def resolve_sources(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The ``measurements.csv`` files that ``paths`` name, in order; InputError if none."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            direct = path / MEASUREMENTS
            if direct.is_file():
                files.append(direct)
                continue
            below = sorted(p for p in path.glob(f"*/{MEASUREMENTS}") if p.is_file())
            if not below:
                raise InputError(
                    f"{path}: no {MEASUREMENTS} in this folder, nor in any run folder below it"
                )
            files.extend(below)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise InputError(f"{path}: not a regular file or folder")
        else:
            raise InputError(f"{path}: no such file or folder")
    if not files:
        raise InputError("no results given")
    return files


def run_dir_of(path: str | os.PathLike[str]) -> Path:
    """The run folder a source stands for: the folder itself, or a CSV file's parent."""
    p = Path(path)
    return p if p.is_dir() else p.parent


def _check_text_header(path: Path, expected: Sequence[str]) -> list[str]:
    """Read the header line; InputError unless it is a text CSV header with ``expected``."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head.strip():
        raise InputError(f"{path}: empty file, expected a CSV header line")
    if b"\x00" in head:
        raise InputError(f"{path}: not a CSV file (binary content)")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        # A multi-byte character cut at the sniff boundary is fine; anything earlier is not.
        try:
            text = head[:-4].decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a CSV file (not UTF-8 text)") from None
    first = text.splitlines()[0] if text.splitlines() else ""
    header = [c.strip() for c in next(csv.reader([first]), [])]
    missing = [c for c in expected if c not in header]
    if len(header) < 2 or len(missing) == len(expected):
        raise InputError(
            f"{path}: line 1: not a CSV file of edgebench results (header {first[:60]!r}); "
            f"expected the columns {', '.join(expected)}"
        )
    if missing:
        raise InputError(f"{path}: line 1: missing columns: {', '.join(missing)}")
    return header


def _first_bad_line(mask: np.ndarray) -> int:
    """The 1-based file line of the first True row (line 1 is the header)."""
    return int(np.flatnonzero(mask)[0]) + 2


def read_measurements(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read one ``measurements.csv`` strictly; InputError naming the file and line if bad.

    ``columns`` limits the columns returned (schema_version and better are always checked and
    kept); by default every column of :data:`bench.results.records.COLUMNS`.
    """
    header = _check_text_header(path, COLUMNS)
    wanted = list(COLUMNS) if columns is None else [c for c in COLUMNS if c in columns]
    wanted += [c for c in ("schema_version", "better") if c not in wanted]
    dtypes: dict[str, str] = {c: "category" for c in header if c != "value"}
    dtypes["value"] = "float64"
    na_values = {"value": _NA_SPELLINGS}
    try:
        # Every column is parsed (usecols would let a row with extra fields slip through);
        # ``columns`` only trims the frame before it is checked and concatenated.
        frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=na_values)
    except UnicodeDecodeError:  # a ValueError too: it must be caught first
        raise InputError(f"{path}: not a CSV file (not UTF-8 text)") from None
    except ValueError as exc:
        if isinstance(exc, pd.errors.ParserError):
            raise InputError(f"{path}: not a valid CSV file: {_parser_message(exc)}") from None
        # A value that is not a number: find its line the slow way, once.
        raise InputError(_bad_value_message(path)) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame[[c for c in COLUMNS if c in wanted]]
    _categories_as_text(frame)
    _check_schema(path, frame)
    _check_better(path, frame)
    return frame


def _categories_as_text(frame: pd.DataFrame) -> None:
    """Make every category a plain string (pandas infers numbers for a case named "60")."""
    for column in frame.columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            text = [str(c) for c in dtype.categories]
            frame[column] = frame[column].cat.rename_categories(text)


def _parser_message(exc: Exception) -> str:
    text = str(exc).strip()
    return text.replace("Error tokenizing data. C error: ", "").rstrip(".")


def _bad_value_message(path: Path) -> str:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["value"])["value"]
    text = raw.str.strip()
    numbers = pd.to_numeric(text.where(~text.isin(_NA_SPELLINGS), None), errors="coerce")
    bad = (numbers.isna() & ~text.isin(_NA_SPELLINGS)).to_numpy()
    if not bad.any():
        return f"{path}: the value column is not numeric"
    line = _first_bad_line(bad)
    return f"{path}: line {line}: value {raw.iloc[line - 2]!r} is not a number"


def _check_schema(path: Path, frame: pd.DataFrame) -> None:
    """Every row's schema_version must be one this edgebench reads; v1 metrics are renamed.

    Version 1 rows get their metric read through :data:`V1_METRICS`: a metric that kept its
    meaning under a new name is renamed, one whose meaning changed gets an ``@v1`` suffix, so
    it is never compared with today's metric of the same name.
    """
    if len(frame) == 0:
        return
    column = frame["schema_version"]
    readable = {str(v) for v in READABLE_SCHEMAS}
    versions = {str(c).strip() for c in column.cat.categories}
    if not versions <= readable:
        text = column.astype(str).str.strip()
        bad = (~text.isin(list(readable))).to_numpy()
        line = _first_bad_line(bad)
        raise InputError(
            f"{path}: line {line}: unknown schema_version {column.iloc[line - 2]!r} "
            f"(this edgebench reads schema_version {', '.join(sorted(readable))}; "
            f"it writes {SCHEMA_VERSION})"
        )
    if "1" in versions and "metric" in frame.columns:
        _rename_v1_metrics(frame)
    if "1" in versions and {"scenario", "case"} <= set(frame.columns):
        _name_v1_cut_mode(frame)


def _rename_v1_metrics(frame: pd.DataFrame) -> None:
    """Read the metric names of schema_version 1 rows as today's (see :data:`V1_METRICS`)."""
    version = frame["schema_version"].astype(str).str.strip()
    if (version == "1").all():
        metric = frame["metric"]
        renames = {c: V1_METRICS.get(c, c) for c in metric.cat.categories}
        targets = list(renames.values())
        if len(set(targets)) == len(targets):
            frame["metric"] = metric.cat.rename_categories(renames)
            return
    old = frame["metric"].astype(str)
    renamed = old.where(version != "1", old.map(lambda m: V1_METRICS.get(m, m)))
    frame["metric"] = renamed.astype("category")


def _name_v1_cut_mode(frame: pd.DataFrame) -> None:
    """v1 cuts were all in ``reset`` mode: append it to their case names, as today's names
    carry the mode (see :data:`V1_RESET_SCENARIOS`)."""
    v1 = frame["schema_version"].astype(str).str.strip() == "1"
    cut = frame["scenario"].astype(str).isin(list(V1_RESET_SCENARIOS))
    case = frame["case"].astype(str)
    wanted = v1 & cut & ~case.str.contains("/", regex=False)
    if wanted.any():
        frame["case"] = case.where(~wanted, case + "/reset").astype("category")


def _check_better(path: Path, frame: pd.DataFrame) -> None:
    better = frame["better"]
    unknown = set(map(str, better.cat.categories)) - BETTER_VALUES
    if not unknown:
        return
    bad = better.isin(list(unknown)).to_numpy()
    line = _first_bad_line(bad)
    raise InputError(
        f"{path}: line {line}: better is {better.iloc[line - 2]!r}, "
        f"expected one of {', '.join(sorted(BETTER_VALUES))}"
    )


def concat_frames(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate result frames, keeping their categorical columns categorical."""
    if len(frames) == 1:
        return frames[0]
    # Union the categories first so the concatenation stays categorical (and small).
    unified = [frame.copy() for frame in frames]
    for column in unified[0].columns:
        if isinstance(unified[0][column].dtype, pd.CategoricalDtype):
            seen = dict.fromkeys(str(c) for f in unified for c in f[column].cat.categories)
            cats = pd.Index(list(seen), dtype=object)
            for frame in unified:
                frame[column] = frame[column].cat.set_categories(cats)
    return pd.concat(unified, ignore_index=True)


def load_measurements(
    paths: Iterable[str | os.PathLike[str]], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Load and concatenate the results that ``paths`` name (see the module docstring).

    ``columns`` limits the columns read, for speed (see :func:`read_measurements`).

    Empty values (a failed measurement with a note) are kept as NaN. Bad input raises
    :class:`bench.errors.InputError` naming the file, the line where known, and the problem.
    """
    frames = [read_measurements(path, columns) for path in resolve_sources(paths)]
    return concat_frames(frames)


def read_events(run_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The node events of a run folder (``events.csv``), or None when the run has none.

    ``mono_time`` is the harness's monotonic clock in seconds; ``wall_time`` is ISO 8601 UTC.
    ``kind`` is ``ready`` (value True, False or Unknown), ``fault_start`` or ``fault_end``.
    """
    path = Path(run_dir) / EVENTS
    if not path.is_file():
        return None
    _check_text_header(path, EVENT_COLUMNS)
    try:
        frame = pd.read_csv(
            path,
            dtype={c: str for c in EVENT_COLUMNS if c != "mono_time"} | {"mono_time": "float64"},
            keep_default_na=False,
            na_values={"mono_time": _NA_SPELLINGS},
        )
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a valid CSV file: {_parser_message(exc)}") from None
    except ValueError:
        raise InputError(f"{path}: the mono_time column is not numeric") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    kinds = frame["kind"].str.strip()
    bad = (~kinds.isin(EVENT_KINDS)).to_numpy()
    if bad.any():
        line = _first_bad_line(bad)
        raise InputError(
            f"{path}: line {line}: unknown event kind {frame['kind'].iloc[line - 2]!r}, "
            f"expected one of {', '.join(sorted(EVENT_KINDS))}"
        )
    frame["kind"] = kinds
    if frame["mono_time"].isna().any():
        # Fall back to the wall clock where the monotonic one is missing.
        wall = pd.to_datetime(frame["wall_time"], utc=True, errors="coerce", format="ISO8601")
        seconds = (wall - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        frame["mono_time"] = frame["mono_time"].fillna(seconds)
    return frame[list(EVENT_COLUMNS)]


def key_columns(*frames: pd.DataFrame) -> list[str]:
    """The key of a summary: distro, scenario, case, metric, plus provider and profile
    where they take more than one value within any one of ``frames``."""
    key = list(BASE_KEY)
    for column in OPTIONAL_KEY:
        if any(frame[column].nunique(dropna=False) > 1 for frame in frames if len(frame)):
            key.insert(key.index("scenario"), column)
    return key


def summarize(frame: pd.DataFrame, key: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per key: n (values), empty (NaN rows), median, p95, min, max, iqr, unit, better.

    Rows whose value is NaN count in ``empty`` and nowhere else; a key with only empty rows has
    n = 0 and NaN statistics.
    """
    key = list(key) if key is not None else key_columns(frame)
    if frame.empty:
        columns = [*key, "unit", "better", "n", "empty", "median", "p95", "min", "max", "iqr"]
        return pd.DataFrame(columns=columns)
    grouped = frame.groupby(key, observed=True, sort=True)
    values = grouped["value"]
    quantiles = values.quantile(np.array([0.25, 0.75, 0.95])).unstack()
    out = pd.DataFrame(
        {
            "unit": grouped["unit"].first(),
            "better": grouped["better"].first(),
            "n": values.count(),
            "empty": values.size() - values.count(),
            "median": values.median(),
            "p95": quantiles[0.95],
            "min": values.min(),
            "max": values.max(),
            "iqr": quantiles[0.75] - quantiles[0.25],
        }
    )
    out = out.reset_index()
    for column in (*key, "unit", "better"):
        out[column] = out[column].astype(str)
    return out


def side_by_side(summary: pd.DataFrame, stat: str = "median") -> pd.DataFrame:
    """Distros as columns: one row per (scenario, metric, case, ...) with ``stat`` per distro.

    Takes the output of :func:`summarize`; keeps unit and better beside the metric.
    """
    if summary.empty:
        return pd.DataFrame()
    order = ["scenario", "metric", "unit", "better", "case", *OPTIONAL_KEY]
    index = [c for c in order if c in summary.columns]
    table = summary.set_index([*index, "distro"])[stat].unstack("distro")
    table.columns.name = None
    return table.reset_index()


def side_by_side_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """Like :func:`side_by_side`, but each distro cell reads ``median (n=N)`` as text."""
    if summary.empty:
        return pd.DataFrame(columns=["scenario", "metric", "unit", "better", "case"])
    medians = side_by_side(summary, "median")
    counts = side_by_side(summary, "n")
    index = [c for c in medians.columns if c in (*BASE_KEY, *OPTIONAL_KEY, "unit", "better")]
    out = medians[index].copy()
    for distro in [c for c in medians.columns if c not in index]:
        cells = []
        for median, n in zip(medians[distro], counts[distro], strict=True):
            if pd.isna(n):
                cells.append("")
            elif pd.isna(median):
                cells.append(f"- (n={int(n)})")
            else:
                cells.append(f"{median:.4g} (n={int(n)})")
        out[distro] = cells
    return out
