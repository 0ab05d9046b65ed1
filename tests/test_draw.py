"""`cnnc draw`: the overview and `--expand` pictures are well-formed SVG that name what they draw."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest

import cnnc
from cnnc.architectures import names
from cnnc.cli import main
from cnnc.draw import render
from cnnc.dsl.document import CallNode, MergeNode, NamedNode

from conftest import doc

SVG = "{http://www.w3.org/2000/svg}"


@cache
def drawn(name: str, expand: str | None = None) -> str:
    """A shipped network's picture, drawn once per test session (ResNeXt-50 takes half a second)."""
    return render(name, expand=expand)


def texts(svg: str) -> list[str]:
    """Every piece of text in the picture: labels and tooltips."""
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return [el.text or "" for el in root.iter() if el.tag in (f"{SVG}text", f"{SVG}title")]


def labels(svg: str) -> list[str]:
    """The visible text only."""
    return [el.text or "" for el in ET.fromstring(svg).iter() if el.tag == f"{SVG}text"]


def top_level_names(net) -> list[str]:
    """What each top-level item is called: its written name, else its block, op or merge."""
    out = []
    for item in net.layers.items:
        if isinstance(item, NamedNode):
            out.append(item.name)
        elif isinstance(item, CallNode):
            out.append(item.item.call.name)
        elif isinstance(item, MergeNode):
            out.append(item.op)
    return out


# (network, the repeat counts its overview shows: identical calls, or a repeat's copies)
REPEATS = [
    ("inception_v3", [2]),  # mixed5-mixed6; mixed0-2, mixed4-7 and mixed9-10 differ
    ("inception_v4", [4, 7, 3]),
    ("inception_resnet_v2", [10, 20, 9]),
    ("resnet50", [2, 3, 5]),
    ("resnext50", [2, 3, 5]),
    ("xception", [8]),
    ("vgg16", [2, 3]),
]


@pytest.mark.parametrize("name,counts", REPEATS)
def test_overview_names_every_top_level_item_and_shows_each_repeat_count(name, counts):
    svg = drawn(name)
    text = " ".join(texts(svg))
    for item in top_level_names(cnnc.load(name)):
        assert item in text, f"{name}: `{item}` is not in the picture"
    shown = labels(svg)
    for n in counts:
        assert f"×{n}" in shown, f"{name}: no ×{n} badge"


@pytest.mark.parametrize("name", names())
def test_every_shipped_network_draws_with_its_input_and_output_shapes(name):
    graph = cnnc.build(name)
    shown = labels(drawn(name))
    assert "×".join(map(str, graph.input_shape)) in shown
    assert "×".join(map(str, graph.output_shape)) in shown


@pytest.mark.parametrize("name", names())
def test_no_picture_is_wider_than_a_row_and_a_long_named_sequence_is_cut_into_frames(name):
    from cnnc.draw.overview import MAX_ROW
    width = float(ET.fromstring(drawn(name)).get("width"))
    assert width <= MAX_ROW + 200, f"{name} is {width:.0f} wide"  # a row, the margins and the turn


def test_mobilenet_v3_s_bnecks_are_drawn_as_numbered_frames():
    shown = labels(drawn("mobilenet_v3_large"))
    frames = [t for t in shown if t.startswith("bnecks (")]
    n = len(frames)
    assert n >= 2 and frames == [f"bnecks ({i} of {n})" for i in range(1, n + 1)] and "bnecks" not in shown


def test_folded_modules_show_the_range_of_names_and_every_name_in_the_tooltip():
    svg = drawn("inception_v3")
    assert "mixed5 – mixed6" in labels(svg)
    assert any("mixed5, mixed6:" in t for t in texts(svg))


def test_layers_show_kernel_stride_and_filters_and_shapes_sit_between_stages():
    shown = labels(drawn("resnet50"))
    assert "7x7 conv, 64, /2" in shown and "3x3 maxpool, /2" in shown  # one grammar, the papers', in both views
    assert "256×56×56" in shown and "2048×7×7" in shown
    assert "BN" in shown and "softmax" in shown


def test_train_only_heads_are_drawn_as_side_branches():
    shown = labels(drawn("inception_v1"))
    assert "aux1 · train only" in shown and "aux2 · train only" in shown
    assert "6,998,552" in " ".join(shown)  # the counts leave the heads out, as `cnnc summary` does


def test_module_colour_follows_its_kind():
    svg = drawn("inception_v4")
    assert "#ffe27a" in svg  # concat, the reductions too: downsampling is a tag, not a colour
    assert "#b9e3a0" not in svg  # no residual modules in Inception-v4
    assert "#b9e3a0" in drawn("resnet50")


def test_drawing_is_deterministic():
    assert render("inception_resnet_v2") == render("inception_resnet_v2")
    assert render("inception_resnet_v2", expand="block35") == render("inception_resnet_v2", expand="block35")


def test_expand_draws_the_branches_side_by_side_as_first_called():
    shown = labels(drawn("inception_v3", "inception_a"))
    for branch in ("branch1x1", "branch5x5", "branch3x3dbl", "branch_pool"):
        assert branch in shown
    assert "5x5 conv, 64" in shown and "3x3 avgpool" in shown and "concat" in shown
    note = next(t for t in shown if t.startswith("inception_a, call 1 of 3"))
    assert "(mixed0): inception_a(32)" in note and "pool_proj = 32" in note


def test_expand_draws_towers_once_marked_with_their_count_and_the_shortcut():
    shown = labels(drawn("resnext50", "identity_block"))
    assert "32 ∥" in shown and "+" in shown and "identity" in shown
    assert "3x3 conv, 4" in shown


def test_expand_accepts_a_module_name_too():
    shown = labels(drawn("xception", "block2"))
    assert "1x1 conv, 128, /2" in shown and "shortcut" in shown


def test_a_small_network_written_inline_draws():
    net = doc("  - stem: [conv(8, 3x3, padding=same), batchnorm, relu]\n"
              "  - res x 2\n"
              "  - head: {aux: [globalavgpool, dense(4)]}\n"
              "  - globalavgpool\n"
              "  - dense(10)\n",
              extra="blocks:\n  res: {add: {shortcut: identity, residual: [conv(8, 3x3, padding=same), relu]}}\n")
    shown = labels(render(net))
    assert "res" in shown and "×2" in shown and "head · train only" in shown
    assert "stem" in shown and "3x3 conv, 8" in shown


def test_expand_of_an_unknown_block_suggests_the_nearest_name():
    with pytest.raises(cnnc.CnncError, match=r"or layer `inceptoin_a` \(did you mean `inception_a`\?\)"):
        render("inception_v3", expand="inceptoin_a")


def test_cli_writes_the_picture_and_refuses_an_unknown_block_with_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["draw", "inception_v4", "-o", "v4.svg"]) == 0
    assert (tmp_path / "v4.svg").read_text(encoding="utf-8") == drawn("inception_v4")
    assert main(["draw", "inception_v4", "--expand", "inception_c"]) == 0  # default name: NET_BLOCK.svg
    assert (tmp_path / "inception_v4_inception_c.svg").read_text(encoding="utf-8") == \
        drawn("inception_v4", "inception_c")
    capsys.readouterr()
    assert main(["draw", "inception_v4", "--expand", "reducton_b", "-o", "x.svg"]) == 2
    err = capsys.readouterr().err
    assert "did you mean `reduction_b`" in err and "Traceback" not in err
    assert not (tmp_path / "x.svg").exists()


@pytest.mark.parametrize("picture,expand", [("inception_v3.svg", None),
                                             ("inception_v3_inception_a.svg", "inception_a")])
def test_the_pictures_in_the_docs_are_what_cnnc_draws_today(picture, expand):
    committed = (Path(__file__).parent.parent / "docs" / picture).read_text(encoding="utf-8")
    command = f"cnnc draw inception_v3 {'--expand ' + expand + ' ' if expand else ''}-o docs/{picture}"
    assert committed == drawn("inception_v3", expand), f"docs/{picture} is out of date; run `{command}`"


# ---- overviews that never mislead (issue 16) -----------------------------------------------------
def _fills(svg: str, title_start: str) -> list[str]:
    """The fill of the first box of each group whose tooltip starts with `title_start`."""
    out = []
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        rect = g.find(f"{SVG}rect")
        if title is not None and (title.text or "").startswith(title_start) and rect is not None:
            out.append(rect.get("fill"))
    return out


def test_calls_with_different_arguments_are_drawn_apart_each_with_its_own():
    shown = labels(drawn("inception_v1"))
    text = " ".join(shown)
    assert "inception_3a" in shown and "inception_3b" in shown and "inception_3a – inception_3b" not in text
    assert "inception(64, 96, 128, 16, 32, 32)" in text and "inception(128, 128, 192, 32, 96, 64)" in text
    assert {"block3", "block4"} <= set(labels(drawn("xception")))
    v3 = labels(drawn("inception_v3"))
    assert {"mixed0", "mixed1", "mixed2", "mixed4", "mixed7"} <= set(v3) and "inception_a(32)" in v3


def test_a_repeat_whose_copies_differ_is_one_box_that_says_what_varies_per_call():
    shown = labels(drawn("densenet121"))
    assert "×6" in shown and "input: 64 … 224 ch" in shown  # dense_layer x 6, each on a wider input
    effnet = labels(drawn("efficientnet_b0"))
    assert any(t.startswith("rate: ") for t in effnet)  # stochastic depth grows call by call


def test_named_sequences_show_the_shape_between_their_items():
    shown = labels(drawn("xception"))
    for shape in ("64×147×147", "128×74×74", "256×37×37", "728×19×19"):  # the entry flow: 147, 74, 37, 19
        assert shape in shown
    assert "32×149×149" in labels(drawn("inception_v3"))  # inside the stem


def test_a_block_keeps_its_colour_in_every_stage_and_downsampling_is_a_tag():
    svg = drawn("resnet50")
    fills = [f for stage in (2, 3, 4, 5) for f in _fills(svg, f"conv{stage}/conv_block")]
    assert len(fills) == 4 and len(set(fills)) == 1
    assert labels(svg).count("/2") == 3 + 1  # conv3-5's first blocks, and the legend's swatch
    assert "downsamples (stride 2)" in labels(svg)
    resnext = drawn("resnext50")
    fills = [f for s in (1, 2, 3, 4) for f in _fills(resnext, f"layer{s}/projection_block")]
    assert len(fills) == 4 and len(set(fills)) == 1


def test_the_legend_says_what_xn_means_and_repeated_layers_use_the_same_mark():
    for name in ("resnet50", "vgg16"):
        assert "N copies in sequence" in labels(drawn(name))
    vgg = ET.fromstring(drawn("vgg16"))
    badges = [t for t in vgg.iter(f"{SVG}text") if t.text == "×3"]
    assert badges and all(t.get("fill") == "#ffffff" for t in badges)  # white on the dark badge, as modules


def test_a_block_label_titles_its_box_in_bold_and_the_call_goes_under_it():
    shown = labels(drawn("inception_resnet_v2"))
    assert {"Inception-ResNet-A", "Inception-ResNet-B", "Inception-ResNet-C", "Reduction-A"} <= set(shown)
    assert "block35(0.17)" in shown and "block35(0.17)" not in [t for t in shown if t.startswith("Inception")]
    root = ET.fromstring(drawn("inception_v4"))
    weight = {t.text: t.get("font-weight") for t in root.iter(f"{SVG}text")}
    assert weight["Reduction-A"] == "bold" and weight["reduction_a(k=192,"] is None
    shuffle = labels(drawn("shufflenet_v2_x1_0"))  # the label, not `inverted_residual_1`, titles each unit
    assert "ShuffleNet v2 unit" in shuffle and "inverted_residual_1" not in shuffle
    assert "ConvNeXt block" in labels(drawn("convnext_tiny"))


def test_a_repeat_s_copies_are_titled_with_their_own_names():
    shown = labels(drawn("regnet_y_400mf"))
    assert {"stage_1", "stage_2", "stage_3", "stage_4"} <= set(shown) and "stage" not in shown


def test_a_too_wide_named_sequence_is_cut_only_between_whole_calls():
    from cnnc.compiler import build_tree
    from cnnc.draw.chain import DGroup, chain
    from cnnc.draw.overview import _pieces
    from cnnc.draw.views import views
    tree, full = build_tree(cnnc.load("mobilenet_v3_large"))
    group = next(item for item, _ in chain(views(tree, full)) if isinstance(item, DGroup) and item.title == "bnecks")
    pieces = [piece for piece, _ in _pieces(group)]
    assert len(pieces) >= 2
    first = 0
    for piece in pieces:
        assert first == 0 or first in group.cuts  # each piece starts where a call starts
        first += len(piece.items)
    assert first == len(group.items)


def test_a_labelled_block_draws_its_label_and_keeps_its_name_for_its_layers():
    net = doc("  - res x 2\n  - globalavgpool\n",
              extra="blocks:\n  res:\n    label: Residual unit\n    layers: {add: {shortcut: identity, "
                    "residual: [conv(3, 3x3, padding=same), relu]}}\n")
    assert net.blocks["res"].label == "Residual unit"
    assert "Residual unit" in labels(render(net))
    assert any(layer.name.startswith("res_1/") for layer in cnnc.build(net).layers)


def test_a_labelled_block_without_layers_is_a_located_schema_error():
    with pytest.raises(cnnc.CnncError, match=r"unknown key `add`; expected one of: label, layers"):
        doc("  - res\n", extra="blocks:\n  res: {label: R, add: {a: identity, b: identity}}\n")



def test_lenet5_as_published_names_its_own_parts_in_the_legend():
    """Trainable subsampling is drawn in pooling's colour and RBF in dense's, but the legend names what
    they are; a network with plain pooling keeps the generic entry."""
    lenet = labels(drawn("lenet5_1998"))
    assert "trainable subsampling" in lenet and "RBF units (distance to prototypes)" in lenet
    assert "pooling" not in lenet
    assert "pooling" in labels(drawn("resnet50")) and "trainable subsampling" not in labels(drawn("resnet50"))
