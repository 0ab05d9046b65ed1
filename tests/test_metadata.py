"""What a model says about itself in Netron: each node's description is the chain of calls it came from,
the model's description is the file's `description:`, its versions are set."""
from __future__ import annotations

import onnx

import cnnc
from cnnc.dsl.document import load_text

BLOCKS = """network: chain
description: a two-level block chain
input: [3, 16, 16]
blocks:
  unit(f): [conv(f, 3x3), relu]
  pair(f): [unit(f), unit(2*f)]
layers:
  - first: pair(4)
  - second: pair(8)
  - pool: globalavgpool
"""


def _where(text: str, snippet: str, nth: int = 0) -> str:
    """`line:col` of the `nth` occurrence of `snippet` in `text`, found in the text itself."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(snippet, at + 1)
    line = text.count("\n", 0, at) + 1
    return f"{line}:{at - (text.rfind(chr(10), 0, at) + 1) + 1}"


def _nodes(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in model.graph.node}


def test_a_node_description_is_the_chain_of_calls_down_to_its_definition():
    model = cnnc.compile(load_text(BLOCKS, "nets/chain.yaml"))
    node = _nodes(model)["second/unit_2/conv"]
    expected = (f"chain.yaml:{_where(BLOCKS, 'pair(8)')} second: pair(8) -> "
                f":{_where(BLOCKS, 'unit(2*f)')} unit_2: unit(2*f) -> :{_where(BLOCKS, 'conv(f, 3x3)')} conv")
    assert node.doc_string == expected


def test_nodes_from_one_definition_line_have_different_descriptions():
    model = cnnc.compile("inception_v3")
    convs = [n.doc_string for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 94
    assert len(set(convs)) == len(convs)
    text = cnnc.load("inception_v3").source.text
    mixed5 = next(n for n in model.graph.node if n.name == "mixed5/branch7x7/cbr_1/conv")
    call = f"inception_v3.yaml:{_where(text, 'inception_b(160)')} mixed5: inception_b(160)"
    assert mixed5.doc_string.startswith(call)


def test_a_layer_outside_any_block_is_described_by_its_own_place():
    model = cnnc.compile(load_text(BLOCKS, "chain.yaml"))
    assert _nodes(model)["pool"].doc_string == f"chain.yaml:{_where(BLOCKS, 'globalavgpool')} pool"


def test_descriptions_name_no_folder_so_the_model_is_the_same_wherever_it_is_built():
    a = cnnc.compile(load_text(BLOCKS, "/home/someone/nets/chain.yaml")).SerializeToString()
    b = cnnc.compile(load_text(BLOCKS, "chain.yaml")).SerializeToString()
    assert a == b
    assert b"/home" not in a


def test_a_long_call_is_cut_in_the_description():
    table = ", ".join(["[0, 1]"] * 200)
    text = BLOCKS.replace("pair(f): [unit(f), unit(2*f)]", "pair(f, t=0): [unit(f), unit(2*f)]").replace(
        "first: pair(4)", f"first: 'pair(4, t=[{table}])'")
    model = cnnc.compile(load_text(text, "chain.yaml"))
    doc = _nodes(model)["first/unit_1/conv"].doc_string
    assert "first: pair(4, t=[[0, 1]" in doc
    assert len(doc) < 200
    assert "..." in doc


def test_the_model_carries_the_description_and_versions():
    model = cnnc.compile("inception_v3")
    assert model.doc_string == cnnc.load("inception_v3").description
    assert model.doc_string  # the shipped file has one
    assert model.model_version == 1
    assert model.producer_name == "cnnc"
    assert model.producer_version == cnnc.__version__


def test_the_written_file_keeps_the_metadata(tmp_path):
    out = tmp_path / "m.onnx"
    cnnc.compile_to(load_text(BLOCKS, "chain.yaml"), out)
    model = onnx.load(str(out))
    assert model.doc_string == "a two-level block chain"
    assert model.model_version == 1
    assert _nodes(model)["first/unit_1/relu"].doc_string.startswith("chain.yaml:")


def test_grouped_towers_are_described_by_the_calls_up_to_their_merge():
    model = cnnc.compile("resnext50")
    grouped = [n for n in model.graph.node if "/towers/" in n.name]
    assert grouped
    for node in grouped:
        assert node.doc_string.startswith("resnext50.yaml:")
        assert "branch1" not in node.doc_string
