"""The language: naming, repeats, branches, defaults, block parameters, arithmetic, flow-style lists."""
from __future__ import annotations

import pytest

from cnnc.dsl.document import CallNode, MergeNode, SeqNode
from cnnc.errors import CnncError

from conftest import doc, net

BLOCKS = """blocks:
  cbr(filters, kernel, stride=1): [conv(filters, kernel, stride=stride, padding=same), batchnorm, relu]
  tower(d): [cbr(d, 1x1), cbr(d, 3x3)]
"""


def names(graph) -> list[str]:
    return [layer.name for layer in graph.layers]


def test_repeated_names_in_a_sequence_are_numbered_and_single_ones_are_not():
    g = net("  - cbr(4, 3x3) x 2\n  - maxpool(2x2)\n  - cbr(8, 1x1)\n", extra=BLOCKS)
    assert names(g) == ["cbr_1/conv", "cbr_1/batchnorm", "cbr_1/relu", "cbr_2/conv", "cbr_2/batchnorm",
                        "cbr_2/relu", "maxpool", "cbr_3/conv", "cbr_3/batchnorm", "cbr_3/relu"]


def test_named_items_and_named_branches_make_hierarchical_parameter_names():
    g = net("  - mixed0:\n      concat:\n        branch3x3: [cbr(2, 1x1), cbr(4, 3x3)]\n"
            "        pool: maxpool(3x3, stride=1, padding=same)\n",
            extra=BLOCKS)
    params = [p.name for p in g.params]
    assert "mixed0/branch3x3/cbr_2/conv.weight" in params
    assert "mixed0/branch3x3/cbr_1/batchnorm.running_mean" in params
    assert names(g)[-2:] == ["mixed0/pool", "mixed0"]
    assert g.output_shape == (7, 8, 8)


def test_repeat_in_a_branch_list_makes_parallel_branches():
    g = net("  - add: [tower(4) x 3]\n", extra=BLOCKS)
    assert {n.split("/")[1] for n in names(g) if n.startswith("add/")} == {"branch1", "branch2", "branch3"}
    add = g.layers[-1]
    assert add.op == "add" and len(add.inputs) == 3 and add.shape == (4, 8, 8)


def test_repeat_count_is_an_expression_of_block_parameters():
    g = net("  - stage(3)\n", extra="blocks:\n  stage(n): [relu, conv(4, 1x1) x n - 1]\n")
    assert [l.op for l in g.layers] == ["relu", "conv", "conv"]


def test_flow_list_of_calls_with_commas_is_split_as_a_reader_sees_it():
    d = doc("  - concat: [cbr(48, 1x1), [cbr(64, 5x5, stride=1), relu]]\n", extra=BLOCKS)
    merge = d.layers.items[0]
    assert isinstance(merge, MergeNode) and len(merge.branches) == 2
    first = merge.branches[0].node
    assert isinstance(first, CallNode) and first.text == "cbr(48, 1x1)"
    assert isinstance(merge.branches[1].node, SeqNode)


def test_file_defaults_apply_and_call_arguments_override_them():
    extra = "defaults:\n  conv: {bias: false, padding: same}\n"
    g = net("  - conv(4, 3x3)\n  - conv(4, 3x3, bias=true, padding=valid)\n", extra=extra)
    first, second = g.layers
    assert [p.name for p in first.params] == ["conv_1.weight"] and first.shape == (4, 8, 8)
    assert [p.name for p in second.params] == ["conv_2.weight", "conv_2.bias"] and second.shape == (4, 6, 6)


def test_a_positional_argument_beats_a_file_default():
    g = net("  - maxpool(2x2, 1)\n", extra="defaults:\n  maxpool: {stride: 2}\n")
    assert g.output_shape == (3, 7, 7)


def test_block_keyword_arguments_defaults_and_integer_arithmetic():
    extra = "blocks:\n  b(f, k=3x3, mult=2): [conv(mult*f // 3 + 1, k, padding=same)]\n"
    g = net("  - b(6)\n  - b(f=9, mult=1, k=1x1)\n", extra=extra)
    assert [l.shape for l in g.layers] == [(5, 8, 8), (4, 8, 8)]
    assert g.layers[1].attrs["kernel"] == (1, 1)


def test_typed_block_parameters_are_checked_and_normalised():
    extra = "blocks:\n  b(int f, kernel k): [conv(f, k)]\n"
    assert net("  - b(2, 3)\n", extra=extra).layers[0].attrs["kernel"] == (3, 3)
    with pytest.raises(CnncError, match="parameter `f` must be an integer"):
        net("  - b(3x3, 3)\n", extra=extra)


def test_kernel_literals_are_rows_by_cols():
    g = net("  - conv(2, 1x7, padding=same)\n  - conv(2, 7x1)\n", "[3, 17, 17]")
    assert g.layers[0].params[0].shape == (2, 3, 1, 7)
    assert g.layers[1].shape == (2, 11, 17)


def test_expect_documents_the_shape_and_is_checked():
    assert net("  - conv(4, 3x3)\n  - expect: [4, 6, 6]\n").output_shape == (4, 6, 6)
    with pytest.raises(CnncError, match=r"expected shape \[4, 5, 5\]"):
        net("  - conv(4, 3x3)\n  - expect: [4, 5, 5]\n")


def test_identity_and_empty_branches_pass_the_input_through():
    g = net("  - add: {a: identity, b: [], c: relu}\n")
    assert g.layers[-1].inputs == ("input", "input", "add/c")


def test_a_block_body_that_is_a_merge_takes_the_call_name():
    g = net("  - m(2)\n", extra="blocks:\n  m(c): {concat: [conv(c, 1x1), conv(c, 3x3, padding=1)]}\n")
    assert names(g) == ["m/branch1", "m/branch2", "m"] and g.output_shape == (4, 8, 8)
