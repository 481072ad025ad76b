"""Markdown tables: the one builder the evaluation, the benchmarks and the studies print their results with.

Why one: five hand-made builders had drifted apart (alignment rows, how a missing value or a float is shown).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["markdown_table", "format_cell"]


def format_cell(value: object, digits: int = 2) -> str:
    """One cell: floats to ``digits`` decimals, None / NaN as an em dash, ``|`` escaped so it cannot split a row."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None, digits: int = 2
) -> str:
    """A GitHub markdown table of ``rows`` under ``headers``.

    ``align``: one letter per column, ``l`` (left) or ``r`` (right, for numbers); None: the first column left and
    the rest right. A row of the wrong length raises ValueError (a silently shifted column is worse than none).
    """
    headers = [str(h) for h in headers]
    align = align or ("l" + "r" * (len(headers) - 1))
    if len(align) != len(headers) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r}: give one of 'l' / 'r' for each of the {len(headers)} columns")
    lines = [
        "| " + " | ".join(format_cell(h) for h in headers) + " |",
        "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|",
    ]
    for number, row in enumerate(rows, 1):
        row = list(row)
        if len(row) != len(headers):
            raise ValueError(f"row {number} has {len(row)} cells for {len(headers)} columns: {row[:4]}")
        lines.append("| " + " | ".join(format_cell(v, digits) for v in row) + " |")
    return "\n".join(lines)
