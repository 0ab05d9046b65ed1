"""The constructs modern CNNs need: expression functions, comparisons and indexing, conditional layers,
`x 0`, blocks that read their input's shape, the element-wise product merge, and families of networks
with variants and overrides."""
from __future__ import annotations

import math

import numpy as np
import pytest

import cnnc
from cnnc.dsl import expr
from cnnc.dsl.document import load_text
from cnnc.errors import CnncError, Location

from conftest import net, run_onnx

LOC = Location("t.yaml", 1, 1)


def value(text: str, **env):
    return expr.evaluate(expr.parse(text, "expr", LOC), env, LOC)


def torchvision_make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision.models._utils._make_divisible, transcribed as the oracle."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@pytest.mark.parametrize("width", [0.25, 0.35, 0.5, 0.75, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 3.1])
@pytest.mark.parametrize("channels", [16, 24, 32, 40, 80, 96, 112, 192, 320, 1280])
def test_make_divisible_is_torchvision_s(width, channels):
    assert value(f"make_divisible({channels} * {width}, 8)") == torchvision_make_divisible(channels * width, 8)
    assert value(f"make_divisible({channels} * {width}, 8, 16)") == torchvision_make_divisible(channels * width, 8, 16)


def test_make_divisible_never_rounds_down_by_more_than_ten_percent():
    assert value("make_divisible(10, 8)") == 16  # 8 would be 20 % below
    assert value("make_divisible(3, 8)") == 8  # never below the divisor


@pytest.mark.parametrize(("text", "expected"), [
    ("min(3, 4.5, 2)", 2), ("max(3, 4.5)", 4.5), ("round(2.5)", 2), ("round(3.5)", 4), ("round(-2.5)", -2),
    ("floor(7 / 2)", 3), ("ceil(3 * 1.1)", 4), ("ceil(-0.5)", 0), ("floor(-0.5)", -1),
    ("1 < 2 and 2 <= 2", True), ("3 > 4 or not 1 == 2", True), ("not true", False), ("same == same", True),
    ("3 == 3.0", True), ("3 != 3", False), ("3x3 == [3, 3]", True), ("1 + 2 * 3 == 7 and 4 // 3 == 1", True),
    ("1280 if 2 > 1 else 1024", 1280), ("1 if false else 2 if true else 3", 2), ("(1 if true else 2) + 1", 2),
    ("3x3 // 2 == [1, 1]", True), ("[1, 2] * 2 + 1 == [3, 5]", True), ("[4, 6] - [1, 2] == 3x4", True),
    ("[10, 20, 30][1]", 20), ("[10, 20, 30][-1]", 30), ("[[1, 2], [3, 4]][1][0]", 3), ("3x5[1]", 5),
    ("2 ** 10", 1024), ("2 ** -1", 0.5), ("-2 ** 2", -4), ("2 ** 3 ** 2", 512), ("4 ** 0.5", 2.0),
    ("2 * 3 ** 2", 18), ("[1, 2, 3] ** 2 == [1, 4, 9]", True), ("2 ** [0, 1, 2] == [1, 2, 4]", True),
    ("log(1)", 0.0), ("round(log(100) / log(10))", 2), ("range(4) == [0, 1, 2, 3]", True), ("range(0)", ()),
    ("len([5, 6, 7])", 3), ("len(range(0))", 0), ("runs([48, 104, 104, 208]) == [48, 104, 208]", True),
    ("run_lengths([48, 104, 104, 208]) == [1, 2, 1]", True), ("run_lengths([1, 2, 1]) == [1, 1, 1]", True),
    ("min([3, 1, 2])", 1), ("max([3, 1.5])", 3), ("min(8, [4, 16]) == [4, 8]", True),
    ("floor([1.5, 2.5] * 2) == [3, 5]", True), ("round([0.5, 1.5]) == [0, 2]", True),
    ("make_divisible([20, 100], 8) == [24, 104]", True),
])
def test_expression_functions_comparisons_logic_and_indexing(text, expected):
    got = value(text)
    assert got == expected and type(got) is type(expected)


def regnet_stages(depth: int, w_0: float, w_a: float, w_m: float, group_width: int) -> tuple[list, list]:
    """torchvision's `BlockParams.from_init_params` and `_adjust_widths_groups_compatibilty` (bottleneck
    multiplier 1), transcribed as the oracle: each stage's (width, depth)."""
    steps = [round(math.log((w_0 + w_a * j) / w_0) / math.log(w_m)) for j in range(depth)]
    blocks = [round(w_0 * w_m**s / 8) * 8 for s in steps]
    widths = sorted(set(blocks))
    return [torchvision_make_divisible(w, min(group_width, w)) for w in widths], [blocks.count(w) for w in widths]


@pytest.mark.parametrize("variant", ["regnet_y_400mf", "regnet_x_8gf", "regnet_y_128gf"])
def test_regnet_s_stages_come_from_the_generator_in_its_file(variant):
    doc = cnnc.load(variant)
    p = doc.parameters
    widths, depths = regnet_stages(p["depth"], p["w_0"], p["w_a"], p["w_m"], p["group_width"])
    assert doc.constants["widths"].value == tuple(widths) and doc.constants["depths"].value == tuple(depths)
    last = {}  # stage -> its last layer's output width
    for layer in cnnc.build(variant).layers:
        if layer.name.startswith("stage_"):
            last[layer.name.split("/")[0]] = layer.shape[0]
    assert list(last.values()) == widths


def test_ceil_of_a_depth_multiple_is_efficientnet_s_rounding():
    for layers, depth in [(1, 1.1), (2, 1.2), (3, 1.4), (4, 1.8), (3, 2.2), (4, 2.6), (4, 3.1)]:
        assert value("ceil(n * d)", n=layers, d=depth) == int(math.ceil(layers * depth))


def test_and_or_stop_at_the_first_operand_that_decides():
    assert value("false and xs[5] == 1", xs=(1,)) is False  # the right side would be out of range
    assert value("true or 1 / 0 == 1") is True


@pytest.mark.parametrize(("text", "says"), [
    ("true and 3", "`and` needs `true` or `false`, got `3` (int)"),
    ("1 < same", "`<` needs numbers"),
    ("mx(1, 2)", "unknown function `mx` (did you mean `max`?)"),
    ("round(1, 2)", "`round` takes 1 argument, got 2"),
    ("make_divisible(10, 2.5)", "divisor and minimum must be positive integers"),
    ("[1, 2][2]", "index 2 is out of range for a list of 2 items"),
    ("1 if 2 else 3", "`if` needs `true` or `false`, got `2` (int)"),
    ("[1, 2] + [1, 2, 3]", "`+` needs lists of one length"),
    ("3[0]", "only a list can be indexed"),
    ("[1, 2][0.0]", "a list index must be an integer"),
    ("1e308 * 10", "too large"),
    ("10 ** 10 ** 10", "`10 ** 10000000000` is too large"), ("1e300 ** 2", "too large"),
    ("0 ** -1", "division by zero"), ("(-8) ** 0.5", "no real power"), ("log(0)", "`log` needs a positive number"),
    ("range(2.0)", "`range` needs an integer from 0 to 4096"), ("range(100000)", "from 0 to 4096"),
    ("len(3)", "`len` needs a list, got `3` (int)"), ("runs(3x3, 1)", "`runs` takes 1 argument, got 2"),
    ("min([])", "`min` of an empty list"), ("min([1, 2], [1, 2, 3])", "`min` needs lists of one length"),
    ("lenght([1])", "did you mean `len`?"),
])
def test_expression_mistakes_are_explained(text, says):
    with pytest.raises(CnncError, match=None) as info:
        value(text)
    assert says in info.value.message


def test_a_float_reaches_an_integer_argument_only_through_a_rounding_function():
    with pytest.raises(CnncError) as info:
        net("  - conv(16 * 1.5, 3x3)\n")
    assert "got `24.0` (float)" in str(info.value) and "round(), floor(), ceil() or make_divisible()" in str(info.value)
    assert net("  - conv(round(16 * 1.5), 3x3)\n").output_shape == (24, 6, 6)


# ---- conditionals, x 0, shape-aware blocks ----------------------------------------------------------------
INVERTED = """blocks:
  body(out, stride): [conv(out, 3x3, stride=stride, padding=1), relu]
  inverted(out, stride=1):
    if: stride == 1 and in_channels == out
    then:
      add: {shortcut: identity, residual: body(out, stride)}
    else: body(out, stride)
"""


def test_a_condition_chooses_the_layer_and_the_chosen_one_is_named_as_written_there():
    g = net("  - inverted(3)\n  - inverted(8, stride=2)\n  - inverted(8)\n", extra=INVERTED)
    assert [layer.name for layer in g.layers if layer.op in ("add", "conv")] == [
        "inverted_1/residual/conv", "inverted_1", "inverted_2/conv", "inverted_3/residual/conv", "inverted_3"]
    assert g.output_shape == (8, 4, 4)


def test_a_condition_without_else_leaves_nothing_where_it_is_false():
    g = net("  - if: in_channels > 3\n    then: conv(4, 1x1)\n  - relu\n")
    assert [layer.op for layer in g.layers] == ["relu"]
    g = net("  - if: true\n    then: conv(4, 1x1)\n")
    assert [layer.op for layer in g.layers] == ["conv"]


def test_a_block_called_only_where_a_condition_is_false_is_used():
    import warnings
    extra = "parameters: {se: false}\nblocks:\n  gate(): [sigmoid]\n  orphan(): [relu]\n  lonely(): orphan\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net("  - if: se\n    then: gate\n  - relu\n", extra=extra)
    unused = sorted(str(w.message).split("`")[1] for w in caught if "never used" in str(w.message))
    assert unused == ["lonely", "orphan"]  # `orphan` is called only by the unused `lonely`


def test_a_condition_that_is_not_a_boolean_is_located():
    with pytest.raises(CnncError) as info:
        net("  - if: in_channels + 1\n    then: relu\n")
    assert "a condition must be `true` or `false`, got `4` (int)" in str(info.value)
    assert str(info.value).startswith("t.yaml:4:")


def test_x_0_is_an_empty_sequence():
    g = net("  - conv(4, 1x1)\n  - stage(1)\n", extra="blocks:\n  stage(n): [relu, conv(4, 3x3, padding=1) x n - 1]\n")
    assert [layer.op for layer in g.layers] == ["conv", "relu"]


def test_a_repeated_call_s_arguments_see_which_copy_they_are():
    extra = "blocks:\n  scaled(rate): [conv(4, 1x1), droppath(rate)]\n"
    g = net("  - scaled(0.1 * repeat_index) x 3\n  - add: [conv(2 + repeat_index, 1x1) x 1]\n", extra=extra)
    assert [layer.attrs["rate"] for layer in g.layers if layer.op == "droppath"] == [0.0, 0.1, 0.2]
    g = net("  - concat: [conv(1 + repeat_index, 1x1) x 3]\n  - expect: [6, 8, 8]\n")
    assert [layer.shape[0] for layer in g.layers if layer.op == "conv"] == [1, 2, 3]
    with pytest.raises(CnncError, match="`repeat_index` is provided by cnnc"):
        net("  - b(1)\n", extra="blocks:\n  b(repeat_index): relu\n")


def test_expected_sizes_may_be_expressions():
    g = net("  - conv(widths[1], 1x1)\n  - expect:\n    - widths[1]\n    - in_height\n    - 2 * 4\n",
            extra="constants: {widths: [4, 5]}\n")
    assert g.output_shape == (5, 8, 8)
    with pytest.raises(CnncError, match=r"expected shape \[4, 8, 8\] here, but it is \[5, 8, 8\]"):
        net("  - conv(5, 1x1)\n  - expect:\n    - widths[0]\n    - 8\n    - 8\n", extra="constants: {widths: [4, 5]}\n")


def test_blocks_read_their_input_s_shape():
    extra = """blocks:
  se(ratio=4):
    mul:
      features: identity
      gate: [globalavgpool(keepdims=true), conv(in_channels // ratio, 1x1), relu, conv(in_channels, 1x1), sigmoid]
  widen(): conv(2 * in_channels, 1x1)
  shape_of(): conv(in_channels * in_height * in_width, 1x1)
"""
    g = net("  - conv(16, 3x3, padding=1)\n  - se\n  - widen\n  - se(8)\n  - shape_of\n", extra=extra)
    convs = [layer for layer in g.layers if layer.op == "conv"]
    assert [c.shape[0] for c in convs] == [16, 4, 16, 32, 4, 32, 32 * 8 * 8]
    assert g.output_shape == (2048, 8, 8)


def test_the_shape_names_are_the_block_call_s_input_not_the_current_point():
    g = net("  - twice\n", extra="blocks:\n  twice(): [conv(2 * in_channels, 1x1), conv(2 * in_channels, 1x1)]\n")
    assert [layer.shape[0] for layer in g.layers] == [6, 6]


def test_a_parameter_or_constant_cannot_take_a_shape_name():
    with pytest.raises(CnncError, match="`in_channels` is provided by cnnc"):
        net("  - b(1)\n", extra="blocks:\n  b(in_channels): relu\n")
    with pytest.raises(CnncError, match="`in_width` is the shape of a block's input"):
        net("  - relu\n", extra="constants:\n  in_width: 3\n")


def test_squeeze_excitation_gates_each_channel_by_its_own_factor(rng):
    g = net("  - mul: {features: identity, gate: [globalavgpool(keepdims=true), conv(3, 1x1), sigmoid]}\n")
    assert [layer.op for layer in g.layers][-1] == "mul" and g.output_shape == (3, 8, 8)
    weight, bias = rng.standard_normal((3, 3, 1, 1)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    model = cnnc.compiler.to_onnx(g, weights=list(zip(g.params, [weight, bias])))
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    gate = 1 / (1 + np.exp(-(np.einsum("oi,ni->no", weight[:, :, 0, 0], x.mean(axis=(2, 3))) + bias)))
    np.testing.assert_allclose(run_onnx(model, x), x * gate[:, :, None, None], rtol=1e-5, atol=1e-6)


def test_a_product_of_shapes_that_do_not_broadcast_names_both():
    with pytest.raises(CnncError) as info:
        net("  - mul: {features: identity, gate: [globalavgpool(keepdims=true), conv(4, 1x1)]}\n")
    text = str(info.value)
    assert "axis 0 differs" in text and "[3, 8, 8]" in text and "[4, 1, 1]" in text and "`gate/conv`" in text


# ---- families ---------------------------------------------------------------------------------------------
FAMILY = """network: tiny
parameters: {width: 1.0, depth: 1, resolution: 32, widths: [16, 32]}
variants:
  tiny_small: {width: 0.5, resolution: 16}
  tiny_deep: {depth: 3, widths: [8, 8]}
input: [3, resolution, resolution]
constants:
  stem: make_divisible(widths[0] * width, 8)
layers:
  - conv(stem, 3x3, padding=1)
  - conv(make_divisible(widths[1] * width, 8), 3x3, padding=1) x depth
  - globalavgpool
  - dense(10)
"""


def test_a_family_builds_its_parameters_own_values_by_default():
    d = load_text(FAMILY, "tiny.yaml")
    assert (d.name, d.variant, d.variants) == ("tiny", None, ("tiny_small", "tiny_deep"))
    g = cnnc.build(d)
    assert g.input_shape == (3, 32, 32) and [layer.shape[0] for layer in g.layers if layer.op == "conv"] == [16, 32]


def test_a_variant_sets_its_parameters_and_is_named_after_itself(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(FAMILY)
    small = cnnc.build(cnnc.load(path, variant="tiny_small"))
    assert small.name == "tiny_small" and small.input_shape == (3, 16, 16)
    assert [layer.shape[0] for layer in small.layers if layer.op == "conv"] == [8, 16]
    deep = cnnc.load(path, variant="tiny_deep")
    assert [layer.shape[0] for layer in cnnc.build(deep).layers if layer.op == "conv"] == [8, 8, 8, 8]
    assert deep.parameters == {"width": 1.0, "depth": 3, "resolution": 32, "widths": (8, 8)}


def test_parameters_are_overridden_from_the_api_and_the_command_line(tmp_path, cli):
    path = tmp_path / "tiny.yaml"
    path.write_text(FAMILY)
    assert cnnc.build(cnnc.load(path, parameters={"depth": 2})).input_shape == (3, 32, 32)
    with cnnc.parameters(resolution="2 * 12"):
        assert cnnc.build(path).input_shape == (3, 24, 24)
    result = cli.run("check", path, "--variant", "tiny_small", "--set", "depth=0", "--set", "width=2")
    assert result.code == 0, result.err
    assert result.out.startswith("tiny_small: ok — 3 layers, [3, 16, 16] -> [10]")


@pytest.mark.parametrize(("args", "says"), [
    (["--variant", "tiny_smal"], "`tiny_smal` is not a variant of `tiny` (did you mean `tiny_small`?); its variants: "
                                 "tiny_small, tiny_deep"),
    (["--set", "widht=2"], "--set sets `widht`, which is not a parameter (did you mean `width`?)"),
    (["--set", "width"], "--set `width`: write NAME=VALUE"),
    (["--set", "width=2*"], "--set width: cannot read `2*`"),
])
def test_an_unknown_variant_or_parameter_is_a_clear_error(tmp_path, cli, args, says):
    path = tmp_path / "tiny.yaml"
    path.write_text(FAMILY)
    result = cli.run("check", path, *args)
    assert result.code == 2 and says in result.err and "Traceback" not in result.err


def test_a_variant_that_sets_an_undeclared_parameter_is_located():
    text = FAMILY.replace("tiny_deep: {depth: 3,", "tiny_deep: {dpeth: 3,")
    with pytest.raises(CnncError) as info:
        load_text(text, "tiny.yaml", cnnc.dsl.family.Selection("tiny_deep"))
    assert str(info.value).startswith("tiny.yaml:5:15:") and "did you mean `depth`?" in str(info.value)


def test_a_computed_input_size_must_be_a_positive_integer():
    with pytest.raises(CnncError, match="an input size must be a positive integer, got `16.0` "):
        load_text(FAMILY.replace("[3, resolution, resolution]", "[3, resolution / 2, 16]"), "tiny.yaml")


def test_a_family_member_s_model_records_its_name_and_parameters(tmp_path):
    import json
    path = tmp_path / "tiny.yaml"
    path.write_text(FAMILY)
    model = cnnc.compile(cnnc.load(path, variant="tiny_small", parameters={"depth": 2}))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["cnnc.network"] == "tiny_small" and model.graph.name == "tiny_small"
    assert json.loads(meta["cnnc.parameters"]) == {"width": 0.5, "depth": 2, "resolution": 16, "widths": [16, 32]}


PRE = """network: t
parameters: {r: 240}
input: [3, r, r]
preprocessing:
  resize: r + 16
  crop: r
  interpolation: bicubic
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
layers: [relu]
"""


def test_preprocessing_is_evaluated_and_recorded_in_the_model():
    import json
    d = load_text(PRE, "t.yaml")
    assert d.preprocessing == {"resize": 256, "crop": 240, "interpolation": "bicubic",
                               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    meta = {p.key: p.value for p in cnnc.compile(d).metadata_props}
    assert json.loads(meta["cnnc.preprocessing"]) == d.preprocessing
    with cnnc.parameters(r=300):  # the crop follows the resolution
        assert load_text(PRE, "t.yaml").preprocessing["resize"] == 316


@pytest.mark.parametrize(("old", "new", "says"), [
    ("crop: r", "crop: 224", "`preprocessing` crops 224x224 but the input is 240x240"),
    ("std: [0.229, 0.224, 0.225]", "std: [0.229]", "`preprocessing.std` needs one value per input channel (3)"),
    ("resize: r + 16", "resize: r / 3", "`resize` must be a positive integer, got `80.0` (float)"),
    ("interpolation: bicubic", "interpolation: cubic", "unknown name `cubic` (did you mean `bicubic`?)"),
    ("interpolation: bicubic", "interpolation: r", "`interpolation` must be one of bilinear, bicubic, nearest"),
])
def test_preprocessing_mistakes_are_located(old, new, says):
    with pytest.raises(CnncError) as info:
        load_text(PRE.replace(old, new), "t.yaml")
    assert says in str(info.value) and str(info.value).startswith("t.yaml:")
