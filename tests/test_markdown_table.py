"""The one markdown-table builder: layout, cells, and refusing a row that would shift its columns."""

import math

import pytest

from core.utils.markdown import format_cell, markdown_table


def test_table_has_header_alignment_and_rows():
    text = markdown_table(["class", "F@1", "n"], [["chair", 91.234, 3], ["lamp", None, 2]])
    assert text.splitlines() == ["| class | F@1 | n |", "|---|---:|---:|", "| chair | 91.23 | 3 |", "| lamp | — | 2 |"]


def test_cells_escape_pipes_and_show_nan_as_missing():
    assert format_cell("a|b") == "a\\|b"
    assert format_cell(math.nan) == "—"
    assert format_cell(1.0, digits=1) == "1.0"


def test_wrong_row_length_and_bad_alignment_are_refused():
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 columns"):
        markdown_table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="align"):
        markdown_table(["a", "b"], [], align="lc")
