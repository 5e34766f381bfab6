"""Small helpers shared by the analysis and comparison tests."""

from __future__ import annotations

from typing import Any

import pandas as pd


def one_row(frame: pd.DataFrame, **key: str) -> dict[str, Any]:
    """The single row of ``frame`` matching ``key``, as a dict."""
    rows = frame
    for column, value in key.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, key
    return {str(k): v for k, v in rows.iloc[0].to_dict().items()}
