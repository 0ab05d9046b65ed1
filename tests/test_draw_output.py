"""`cnnc draw` output: a picture stays proportional to its network whatever its arguments hold, obeys the
compile limits, and is written as SVG, PNG or PDF."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest

import cnnc
from cnnc.draw import render
from cnnc.dsl.document import load_text
from cnnc.errors import CnncError


def shuffled(units: int, width: int, fan: int) -> str:
    """A ShuffleNet-style imitation: residual units, each called with its own connection table written
    inline (`width` rows of `fan` input maps), as the files that once took minutes to draw."""
    lines = ["network: shuffled", f"input: [{width}, 8, 8]", "blocks:",
             f"  unit(t): {{add: [[conv({width}, 1x1, connections=t), batchnorm, relu], []]}}", "layers:"]
    for n in range(units):
        rows = [sorted((r + j + n) % width for j in range(fan)) for r in range(width)]
        table = "[" + ", ".join("[" + ", ".join(map(str, r)) + "]" for r in rows) + "]"
        lines.append(f"  - u{n}: \"unit({table})\"")
    return "\n".join([*lines, "  - globalavgpool", ""])


def _texts(svg: str) -> list[str]:
    return [el.text or "" for el in ET.fromstring(svg).iter() if el.tag.endswith(("text", "title"))]


@pytest.mark.parametrize("expand", [None, "u1"])
def test_a_picture_does_not_grow_with_the_tables_its_calls_carry(expand):
    small = load_text(shuffled(3, 96, 2), "small.yaml")
    large = load_text(shuffled(3, 96, 40), "large.yaml")  # 20 times the entries: 11,520 integers
    start = time.perf_counter()
    svg = render(large, expand=expand)
    took = time.perf_counter() - start
    assert len(svg) < 1.2 * len(render(small, expand=expand))
    assert max(len(t) for t in _texts(svg)) < 300
    assert "table 96×40 (3,840 entries)" in " ".join(_texts(svg))
    assert took < 10  # the text wrapping once took seconds per table here, and minutes at the size


def _picked(widths: str) -> str:
    """The text of the overview of a network whose one module is called with the list `widths`."""
    text = "\n".join(["network: widths", "input: [3, 8, 8]", "blocks:", "  pick(ws):", "    add:",
                      "      - conv(ws[0], 1x1)", "      - conv(ws[0], 1x1)", "layers:", f"  - p: 'pick({widths})'",
                      ""])
    return " ".join(_texts(render(load_text(text, "widths.yaml"))))


def test_a_long_flat_list_argument_is_shown_by_its_first_values_and_length():
    joined = _picked("[" + ", ".join(str(4 + i) for i in range(40)) + "]")
    assert "pick([4, 5, 6, … 40 values])" in joined
    assert "43" not in joined  # the last value is not written out


def test_a_short_list_argument_is_written_out():
    assert "pick([4, 8, 16])" in _picked("[4, 8, 16]")


def test_drawing_obeys_the_compile_limits_with_a_located_error():
    with cnnc.limits(layers=50), pytest.raises(CnncError) as caught:
        render("inception_v3")
    assert caught.value.code == "E0801"
    assert caught.value.loc is not None and caught.value.loc.file.endswith("inception_v3.yaml")
