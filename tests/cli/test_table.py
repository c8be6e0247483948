"""print_table, which lays out 10,000-row listings a column at a time."""

from __future__ import annotations

import io

import numpy as np

from modelmanager.cli.output import print_table


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    out = io.StringIO()
    print_table(headers, rows, out)
    return out.getvalue().split("\n")


def test_numbers_right_text_left_and_trailing_spaces_cut() -> None:
    lines = _table(["NAME", "N", "NOTE"], [["a", 5, "x"], ["bbb", 12, ""], ["cc", 1.5, "yy"]])
    assert lines == ["NAME    N  NOTE", "a       5  x", "bbb    12", "cc    1.5  yy", ""]


def test_a_column_mixing_numbers_and_text_is_left_aligned() -> None:
    lines = _table(["A", "B"], [[1, "x"], ["", "y"], [100, "z"]])
    assert lines[:4] == ["A    B", "1    x", "     y", "100  z"]


def test_only_hidden_characters_are_escaped_and_lines_stay_aligned() -> None:
    lines = _table(["NAME", "MSG"], [["evil\u202eexe", "a\nb"], ["plain", "ok"]])
    assert lines[1] == "evil\\u202eexe  a\\nb"
    assert lines[2] == "plain          ok"
    assert all(line.isprintable() for line in lines)


def test_no_rows_prints_the_headers() -> None:
    assert _table(["MODEL", "SIZE"], []) == ["MODEL  SIZE", ""]


def test_number_subclasses_are_right_aligned_as_numbers() -> None:
    """numpy's float64 is a float: a column of them lines up on the right, as before."""
    lines = _table(["S", "B"], [[np.float64(1.5), True], [np.float64(10.25), False]])
    assert lines[:3] == ["    S      B", "  1.5   True", "10.25  False"]
