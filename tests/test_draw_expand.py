"""`cnnc draw --expand NAME`: every name the overview shows opens, the heading says which call is drawn,
LeNet-5's C3 opens on its connection table, and expanded views caption, wrap and connect what they draw."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import cache

import pytest

import cnnc
from cnnc.architectures import names
from cnnc.draw import render

SVG = "{http://www.w3.org/2000/svg}"


@cache
def drawn(name: str, expand: str | None = None) -> str:
    return render(name, expand=expand)


def labels(svg: str) -> list[str]:
    """The visible text, in drawing order (the picture must be well-formed XML)."""
    return [el.text or "" for el in ET.fromstring(svg).iter() if el.tag == f"{SVG}text"]


def overview_names(items) -> list[str]:
    """The names the overview shows, read off its chain: modules (their names, paths and blocks), named
    sequences (their titles and paths), named layers, train-only heads."""
    from cnnc.draw.chain import DAux, DGroup, DLayer, DModule
    from cnnc.draw.views import VBlock
    out: list[str] = []
    for item in items:
        if isinstance(item, DModule):
            out += [item.name] if item.name else []
            for v in item.views:
                out += [v.path, *([v.name] if v.name else []), *([v.block] if isinstance(v, VBlock) else [])]
        elif isinstance(item, DGroup):
            out += [item.title, item.path, *overview_names(item.items)]
        elif isinstance(item, DLayer) and item.view.name:
            out.append(item.view.name)
        elif isinstance(item, DAux):
            out += [item.view.path, *overview_names(item.items)]
    return list(dict.fromkeys(out))


@cache
def built(name: str):
    from cnnc.compiler import build_tree
    from cnnc.draw.views import views
    net = cnnc.load(name)
    tree, full = build_tree(net)
    return net, full, views(tree, full)


def sample(shown: list[str]) -> list[str]:
    """A few of the names, one of each form: a top-level name, a path, the last one."""
    paths = [n for n in shown if "/" in n]
    return list(dict.fromkeys([shown[0], *paths[:1], shown[len(shown) // 2], shown[-1]]))


@pytest.mark.parametrize("name", names())
def test_every_name_the_overview_shows_opens_with_expand(name):
    from cnnc.draw.chain import chain
    from cnnc.draw.expanded import expanded
    from cnnc.draw.targets import names as openable
    net, full, tree = built(name)
    shown = overview_names(item for item, _ in chain(tree))
    known = openable(tree)
    missing = [n for n in shown if n not in known]
    assert not missing, f"{name}: the overview shows {missing}, which --expand refuses"
    for target in sample(shown):  # drawing each one: well-formed, its heading names what was asked
        heading = " ".join(labels(expanded(net, full, tree, target))[:4])
        assert target.rsplit("/", 1)[-1] in heading, f"{name} --expand {target}: the heading is {heading!r}"


@pytest.mark.parametrize("net,target,drawn_as", [
    ("xception", "entry_flow", "the sequence entry_flow"), ("xception", "middle_flow", "the sequence middle_flow"),
    ("xception", "block14", "the sequence exit_flow/block14"), ("xception", "stem", None),
    ("inception_v3", "mixed5/branch7x7", "the sequence mixed5/branch7x7"),
    ("lenet5_1998", "c3", "the sequence c3"), ("lenet5_1998", "c3/conv", "the layer c3/conv (conv)"),
])
def test_expand_opens_named_sequences_paths_and_layers_or_says_what_opens(net, target, drawn_as):
    if drawn_as is None:
        with pytest.raises(cnnc.CnncError, match=r"no block, call, sequence or layer `stem`") as e:
            render(net, expand=target)
        assert "entry_flow" in e.value.help  # a few names that open are listed
        return
    assert any(t.startswith(drawn_as) for t in labels(drawn(net, target)))


@pytest.mark.parametrize("net,typo,meant", [("xception", "blok14", "block14"), ("xception", "exit_flwo", "exit_flow"),
                                             ("inception_resnet_v2", "blck8_10", "block8_10"),
                                             ("lenet5_1998", "C3", "c3")])
def test_a_wrong_expand_name_suggests_a_name_that_opens(net, typo, meant):
    with pytest.raises(cnnc.CnncError, match=rf"\(did you mean `{meant}`\?\)"):
        render(net, expand=typo)
    assert labels(drawn(net, meant))  # and the suggestion does open


def test_the_heading_of_a_later_call_says_which_call_it_draws():
    note = labels(drawn("inception_v3", "mixed5"))[1]
    assert note.startswith("inception_b, call 2 of 4 (mixed5): inception_b(160)") and "c7 = 160" in note
    title, note = labels(drawn("inception_resnet_v2", "block35"))[:2]
    assert title == "inception_resnet_v2 · Inception-ResNet-A"  # the block's label:, the call in the note
    assert note.startswith("block35, call 1 of 10 (block35_1): block35(0.17)")
    assert "call 10 of 10 (block8_10)" in labels(drawn("inception_resnet_v2", "block8_10"))[1]
    assert not any("first called" in t for t in labels(drawn("inception_v3", "mixed5")))


def test_lenet5_as_published_draws_its_own_parts_and_c3_opens_on_its_connection_table():
    from cnnc.draw.table import FILLED
    shown = labels(drawn("lenet5_1998"))
    assert shown.count("2x2 subsampling (trainable), /2") == 2 and "RBF, 10" in shown
    assert "5x5 conv, 16, connection table" in shown and shown.count("squash") == 6  # c1 to f6
    c3 = next(layer for layer in cnnc.build("lenet5_1998").layers if layer.name == "c3/conv")
    links = sum(len(row) for row in c3.attrs["connections"])
    svg = drawn("lenet5_1998", "c3")
    cells = [el for el in ET.fromstring(svg).iter(f"{SVG}rect") if el.get("fill") == FILLED]
    assert len(cells) == links == 60
    assert any("60 of 96" in t for t in labels(svg))


def test_expanded_views_caption_the_names_written_inside_a_block():
    shown = labels(drawn("nin_cifar10", "mlpconv"))
    assert "mlp1" in shown and "mlp2" in shown and "1x1 conv, 160" in shown
    note = labels(drawn("nin_cifar10", "mlp1"))[1]  # a name written in each of three calls: the first
    assert note == "the first of 3 parts named mlp1: the sequence mlpconv1/mlp1 (2 layers)"


def test_expanded_notes_wrap_inside_the_picture():
    from cnnc.draw.labels import text_width
    root = ET.fromstring(drawn("nin_cifar10", "mlpconv"))
    width = float(root.get("width"))
    notes = [el for el in root.iter(f"{SVG}text") if el.get("font-size") == "10.5" and el.get("text-anchor") == "start"]
    assert len(notes) >= 2  # the long note is wrapped
    for el in notes:
        assert float(el.get("x")) + text_width(el.text, 10.5) <= width, el.text


@pytest.mark.parametrize("net,target", [("inception_v3", "mixed5"), ("xception", "block2"),
                                        ("inception_v4", "reduction_a")])
def test_the_input_arrow_runs_on_to_the_fork_of_the_branches(net, target):
    root = ET.fromstring(drawn(net, target))
    tag = next(el for el in root.iter(f"{SVG}rect") if el.get("fill") == "#f4f4f4")  # the input tag
    bottom = float(tag.get("y")) + float(tag.get("height"))
    segments = [tuple(map(float, m)) for el in root.iter(f"{SVG}path")
                for m in re.findall(r"^M([\d.]+) ([\d.]+) L([\d.]+) ([\d.]+)$", el.get("d", ""))]
    down = next(s for s in segments if s[0] == s[2] and abs(s[1] - bottom) < 0.2)  # the line from the tag
    forks = [s for s in segments if s[1] == s[3] and s[0] < down[0] < s[2]]  # horizontal lines across it
    assert any(abs(f[1] - down[3]) < 0.2 for f in forks), "the line into the block ends short of its fork"


def test_an_expanded_sequence_writes_the_shape_where_the_spatial_size_changes():
    shown = labels(drawn("inception_resnet_v2", "stem"))
    assert "32×149×149" in shown and "32×147×147" in shown and "64×73×73" in shown and "192×71×71" in shown
    assert "64×147×147" not in shown  # a 3x3 conv with same padding: only the channels change, as its label says
    assert "192×35×35" in shown  # the output tag


def test_a_connection_table_too_large_to_read_as_cells_is_summarised_in_one_line():
    from conftest import doc

    from cnnc.draw.table import FILLED, MAX_CELLS
    rows = [[i % 64, (i + 1) % 64] for i in range(128)]  # 128 outputs x 64 inputs: 8,192 cells
    assert MAX_CELLS < 128 * 64
    net = doc(f"  - wide: conv(128, 1x1, connections={rows})\n", input_shape="[64, 4, 4]")
    svg = render(net, expand="wide")
    shown = labels(svg)
    assert any("256 of 8,192" in t for t in shown) and any("too many cells to draw" in t for t in shown)
    assert not [el for el in ET.fromstring(svg).iter(f"{SVG}rect") if el.get("fill") == FILLED]


def test_towers_and_sequential_copies_carry_different_marks_each_explained_in_the_legend():
    """ResNeXt's 32 towers side by side are `32 ∥` (parallel paths), a repeat drawn inside an expansion is
    the dark `×N` (copies in sequence): the legend names whichever the picture uses, never one for both."""
    towers = labels(drawn("resnext50", "identity_block"))
    assert "32 ∥" in towers and "N parallel paths (towers)" in towers
    assert "×32" not in towers and "N copies in sequence" not in towers
    repeated = labels(drawn("xception", "middle_flow"))
    assert "N copies in sequence" in repeated and "N parallel paths (towers)" not in repeated
