"""`cnnc draw` output: a picture stays proportional to its network whatever its arguments hold, obeys the
compile limits, and is written as SVG, PNG or PDF."""
from __future__ import annotations

import re
import struct
import sys
import xml.etree.ElementTree as ET

import pytest

import cnnc
from cnnc.draw import encode, render
from cnnc.draw.formats import MAX_PIXELS
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
    svg = render(large, expand=expand)  # the text wrapping once grew with the square of each table's text
    assert len(svg) < 1.2 * len(render(small, expand=expand))
    assert max(len(t) for t in _texts(svg)) < 300
    assert "table 96×40 (3,840 entries)" in " ".join(_texts(svg))


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


def test_a_long_repeat_is_one_box_whose_tooltip_stays_short():
    def drawn(n: int) -> str:
        return render(load_text("network: rep\ninput: [4, 8, 8]\nblocks:\n"
                                "  unit: {add: [[conv(4, 3x3, padding=same)], []]}\n"
                                f"layers:\n  - s: [unit x {n}]\n", "rep.yaml"))
    few, many = drawn(40), drawn(800)
    assert len(many) < 1.1 * len(few)
    tooltip = next(t for t in _texts(many) if t.startswith("s/unit_1,"))
    assert "s/unit_800 (800 calls)" in tooltip and "s/unit_400," not in tooltip
    assert len(tooltip) < 600


def test_drawing_obeys_the_compile_limits_with_a_located_error():
    with cnnc.limits(layers=50), pytest.raises(CnncError) as caught:
        render("inception_v3")
    assert caught.value.code == "E0801"
    assert caught.value.loc is not None and caught.value.loc.file.endswith("inception_v3.yaml")


# ---- PNG and PDF -------------------------------------------------------------------------------------
def _size(svg: str) -> tuple[float, float]:
    root = ET.fromstring(svg)
    return float(root.get("width") or 0), float(root.get("height") or 0)


def _png_header(data: bytes) -> tuple[int, int, int]:
    """A PNG's width and height (IHDR) and its pixels per metre (pHYs; 0 where it has none)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    at = data.find(b"pHYs")
    return width, height, struct.unpack(">I", data[at + 4:at + 8])[0] if at > 0 else 0


@pytest.fixture
def cairo():
    return pytest.importorskip("cairosvg")


@pytest.mark.parametrize("dpi", [300, 96, 150])
def test_a_png_is_the_picture_at_the_resolution_asked_for(cli, tmp_path, cairo, dpi):
    out = tmp_path / "lenet.png"
    args = ["draw", "lenet5", "-o", out] + ([] if dpi == 300 else ["--dpi", str(dpi)])
    assert cli.run(*args).code == 0
    width, height = _size(render("lenet5"))
    w, h, per_metre = _png_header(out.read_bytes())
    assert (w, h) == (round(width * dpi / 96), round(height * dpi / 96))  # an SVG pixel is 1/96 inch
    assert per_metre == round(dpi / 0.0254)  # so that a document places it at its printed size


def test_a_pdf_is_one_vector_page_the_picture_s_size_and_the_same_bytes_each_time(cli, tmp_path, cairo):
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    assert cli.run("draw", "inception_v3", "-o", a).code == 0
    assert cli.run("draw", "inception_v3", "--format", "pdf", "-o", b).code == 0
    data = a.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data == b.read_bytes()
    width, height = _size(render("inception_v3"))
    box = [float(v) for v in re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)", data).groups()]  # type: ignore[union-attr]
    assert box == pytest.approx([width * 0.75, height * 0.75], abs=0.01)  # 72 points an inch, 96 pixels


def test_the_format_alone_names_the_default_file(cli, tmp_path, cairo):
    result = cli.run("draw", "lenet5", "--format", "png", cwd=tmp_path)
    assert result.code == 0, result.err
    assert _png_header((tmp_path / "lenet5.png").read_bytes())[0] > 0
    assert "300 dpi" in result.out


def test_without_cairosvg_png_output_says_how_to_install_it_and_writes_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # `import cairosvg` now raises ImportError
    result = cli.run("draw", "lenet5", "-o", tmp_path / "lenet.png")
    assert result.code == 2
    assert "pip install 'cnnc[draw]'" in result.err
    assert "Traceback" not in result.err
    assert list(tmp_path.iterdir()) == []
    assert cli.run("draw", "lenet5", "-o", tmp_path / "lenet.svg").code == 0  # SVG needs nothing more


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "pic.jpg"], "not .jpg"),
    (["-o", "pic.png", "--format", "pdf"], "names a .png file, but the format asked for is pdf"),
    (["-o", "pic.png", "--dpi", "0"], "--dpi 0: expected a whole number from 1"),
])
def test_a_picture_format_that_cannot_be_written_is_refused_before_drawing(cli, tmp_path, cairo, args, message):
    result = cli.run("draw", "lenet5", *args, cwd=tmp_path)
    assert result.code == 2
    assert message in result.err
    assert list(tmp_path.iterdir()) == []


def test_a_png_too_large_to_hold_in_memory_is_refused_with_the_dpi_that_fits(cairo):
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="5000" height="4000"></svg>'
    with pytest.raises(CnncError) as caught:
        encode(svg, "png", 300)
    assert "15,625 x 12,500 pixels" in caught.value.message
    most = int(re.search(r"--dpi (\d+)", caught.value.help)[1])  # type: ignore[index]
    w, h = round(5000 * most / 96), round(4000 * most / 96)
    assert w * h <= MAX_PIXELS < round(5000 * (most + 1) / 96) * round(4000 * (most + 1) / 96)
