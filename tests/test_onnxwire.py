"""compiler/onnxwire.py: the bytes cnnc writes for a model are the ones protobuf writes for the model
`onnx.helper` builds, without importing onnx to write them."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import cnnc
from cnnc.architectures import names
from cnnc.compiler import onnxwire
from cnnc.compiler.lower import lower

ATTRIBUTES = [("i", 3), ("i", -1), ("i", 1 << 40), ("i", True), ("i", np.int64(-7)), ("f", 1e-5), ("f", -0.5),
              ("f", np.float32(0.1)), ("s", "tanh"), ("s", b"raw"), ("ints", [1, -2, 3]), ("ints", (0,)),
              ("floats", [0.5, -1.25]), ("floats", [1, 2.5]), ("strings", ["a", "bc"])]


@pytest.mark.parametrize("name,value", ATTRIBUTES, ids=[f"{n}-{v!r}" for n, v in ATTRIBUTES])
def test_an_attribute_is_written_as_helper_makes_it(name: str, value: object):
    assert onnxwire.attribute(name, value) == helper.make_attribute(name, value).SerializeToString()


@pytest.mark.parametrize("value", [[], [1, "a"], object(), None])
def test_an_attribute_of_no_kind_is_refused(value: object):
    with pytest.raises(TypeError):
        onnxwire.attribute("x", value)


def test_a_node_is_written_as_helper_makes_it():
    ours = onnxwire.Node("Conv", ["x", "w"], ["y"], "conv1", strides=[2, 2], group=1, auto_pad=None, alpha=0.5)
    theirs = helper.make_node("Conv", ["x", "w"], ["y"], name="conv1", strides=[2, 2], group=1, auto_pad=None,
                              alpha=0.5)
    assert ours.encode() == theirs.SerializeToString()
    ours.doc_string, theirs.doc_string = "", ""  # set, even empty: as lower sets every layer's node
    assert ours.encode() == theirs.SerializeToString()
    assert onnxwire.Node("Relu", ["a"], ["b"]).encode() == helper.make_node("Relu", ["a"], ["b"]).SerializeToString()


def test_a_tensor_and_a_value_info_are_written_as_onnx_writes_them():
    raw = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = TensorProto(name="w", dims=[2, 3], data_type=TensorProto.FLOAT, raw_data=raw.tobytes())
    assert onnxwire.tensor("w", (2, 3), onnxwire.FLOAT, raw.tobytes()) == t.SerializeToString()
    empty = TensorProto(name="e", dims=[0], data_type=TensorProto.INT64, raw_data=b"")
    assert onnxwire.tensor("e", (0,), onnxwire.INT64, b"") == empty.SerializeToString()
    info = helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 3, 224, 224])
    assert onnxwire.Info("x", onnxwire.FLOAT16, ("batch", 3, 224, 224)).encode() == info.SerializeToString()


def helper_model(m: onnxwire.Model) -> onnx.ModelProto:
    """The model `m` describes, built with onnx.helper as cnnc built its models before onnxwire."""
    nodes = []
    for n in m.nodes:
        node = helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **n.attrs)
        if n.doc_string is not None:
            node.doc_string = n.doc_string
        nodes.append(node)

    def info(i: onnxwire.Info) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(i.name, i.elem_type, list(i.shape))

    graph = helper.make_graph(nodes, m.name, [info(i) for i in m.inputs], [info(o) for o in m.outputs],
                              initializer=[TensorProto.FromString(t) for t in m.initializers],
                              value_info=[info(v) for v in m.value_info])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", m.opset)], ir_version=m.ir_version,
                              producer_name=m.producer_name, producer_version=m.producer_version,
                              model_version=m.model_version, doc_string=m.doc_string)
    for key, value in m.metadata:
        model.metadata_props.add(key=key, value=value)
    return model


@pytest.mark.parametrize("name", names())
def test_every_shipped_network_is_written_as_protobuf_writes_it(name: str):
    """The bytes are those of the model onnx.helper builds from the same records, parsing them and writing
    them again gives them back (protobuf writes fields in number order, so any other order, a field
    missing its presence or an extra one would differ), and the parsed model
    is what lower meant: the nodes, outputs and metadata it was given, every input defined before use
    (the parameters' initialisers, which the skeleton leaves to the writer, counted as defined)."""
    lowered = lower(cnnc.build(name), "0.1.0", {"cnnc.network": name}, "float16" if len(name) % 2 else "float32")
    data = lowered.model.encode()
    assert helper_model(lowered.model).SerializeToString() == data
    model = onnx.ModelProto.FromString(data)
    assert model.SerializeToString() == data
    defined = {"input", *(p.name for p in lowered.params), *(t.name for t in model.graph.initializer)}
    for node in model.graph.node:
        assert set(node.input) - {""} <= defined, node.name
        defined.update(node.output)
    assert [n.name for n in model.graph.node] == [n.name for n in lowered.model.nodes]
    assert [o.name for o in model.graph.output] == list(lowered.model.output_names)
    assert model.metadata_props[0].value == name and model.opset_import[0].version == lowered.model.opset


def test_compiling_does_not_import_onnx(tmp_path):
    code = ("import sys, cnnc.api; cnnc.api.compile_to('lenet5', sys.argv[1]); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('onnx', 'google')], 'onnx imported'")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "lenet5.onnx")], check=True)
    onnx.checker.check_model(onnx.load(tmp_path / "lenet5.onnx"))
