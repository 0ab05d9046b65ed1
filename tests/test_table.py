"""cnnc/table.py: the one table style of `summary`, `list`, `bench`: widths, narrowing, units."""
from __future__ import annotations

import re

import pytest

from cnnc.table import Cell, Column, render, si, width_for


@pytest.mark.parametrize("value,text", [(0, "0"), (640, "640"), (416_520, "416.5 K"), (81_101_440, "81.10 M"),
                                        (487_702_528, "487.7 M"), (999_960, "1.000 M"), (5_713_216_096, "5.713 G"),
                                        (374_570_000_000, "374.6 G")])
def test_counts_get_the_unit_that_keeps_four_significant_digits(value, text):
    assert si(value) == text


COLUMNS = [Column("name", shrink=6), Column("kind", drop=1), Column("value", right=True)]
ROWS = [("a_rather_long_name_of_a_layer", "convolution", "1,234,567"), ("b", "relu", "")]


def test_a_table_that_fits_is_as_wide_as_its_cells_with_a_box_drawn_rule():
    lines = render(COLUMNS, ROWS, 200)
    assert lines[0].split() == ["name", "kind", "value"] and set(lines[1]) == {"─"}
    assert lines[2] == "a_rather_long_name_of_a_layer  convolution  1,234,567"
    assert lines[3].rstrip() == lines[3] and lines[3].startswith("b ")


@pytest.mark.parametrize("width", [20, 30, 40, 50])
def test_a_narrow_table_shrinks_then_drops_columns_and_never_splits_a_row(width):
    lines = render(COLUMNS, ROWS, width)
    assert len(lines) == 2 + len(ROWS) and max(len(line) for line in lines) <= width
    assert "1,234,567" in lines[2]  # a column that may neither shrink nor go stays whole
    narrowest = 6 + 2 + len("convolution") + 2 + len("1,234,567")  # name at its floor, then kind must go
    assert ("kind" in lines[0]) == (width >= narrowest)
    assert "…" in lines[2]


def test_a_cell_narrows_its_own_way_and_styles_only_with_colour():
    short = Cell((("long form of the value", "bold"),), lambda width: Cell((("short", "bold"),)))
    assert render([Column("x", shrink=5)], [(short,)], 10)[2] == "short"
    coloured = render([Column("x")], [(short,)], 80, colour=True)[2]
    assert coloured.startswith("\x1b[1m") and re.sub(r"\x1b\[[0-9;]*m", "", coloured) == "long form of the value"


def test_the_width_is_columns_when_set_else_120_off_a_terminal(monkeypatch):
    import io
    monkeypatch.setenv("COLUMNS", "77")
    assert width_for(io.StringIO()) == 77
    monkeypatch.delenv("COLUMNS")
    assert width_for(io.StringIO()) == 120


def test_a_command_table_fits_a_terminal_shortening_names_from_the_left_and_gives_a_pipe_every_cell(monkeypatch):
    import io
    import sys

    from cnnc.cli import common

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True
    row = ("layer1.0.downsample.1.running_mean", "conv2/conv_block/add/shortcut/batchnorm.mean", "256")
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("NO_COLOR", "1")
    for stream in (Terminal(), io.StringIO()):
        monkeypatch.setattr(sys, "stdout", stream)
        common.table(("checkpoint", "cnnc", "shape"), [row], right={2})
        lines = stream.getvalue().splitlines()
        if isinstance(stream, Terminal):
            name, target, shape = lines[2].split()
            assert max(len(line) for line in lines) <= 40 and shape == "256"
            assert name.startswith("…") and row[0].endswith(name[1:]) and row[1].endswith(target[1:])
        else:
            assert lines[2].split() == list(row)
