"""Plain-text and Markdown rendering of result tables (rows of strings), shared by the
``versus`` and ``history`` commands and the report."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any


def number(value: Any, digits: int = 4) -> str:
    """A number to ``digits`` significant digits; NaN and None as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def pvalue(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def interval(low: Any, high: Any) -> str:
    if number(low) == "-" or number(high) == "-":
        return ""
    return f"[{number(low, 3)}, {number(high, 3)}]"


def aligned(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[str] = ()
) -> str:
    """Columns padded to their widest cell; ``right`` names the right-aligned columns."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        text = "  ".join(
            c.rjust(w) if h in right else c.ljust(w)
            for c, w, h in zip(cells, widths, headers, strict=True)
        )
        return text.rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; '|' in cells is escaped."""
    if not rows:
        return "_(no rows)_"
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(out)
