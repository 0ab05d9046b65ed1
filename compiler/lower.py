"""`ir.Graph` + parameter values -> ONNX `ModelProto` (NCHW, one lowering function per op).

The model has one input `input` [batch, C, H, W] with a symbolic batch axis and one output `output`;
every intermediate tensor's shape is recorded as value_info; initialisers are raw little-endian bytes.
Node names and tensor names are the layers' hierarchical names; each node's doc_string holds the
`file:line:col` it came from.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper

from .ir import Graph, Layer, Param

OPSET = 21
IR_VERSION = 10  # onnxruntime >= 1.20 loads IR 10 / opset 21; onnx's own default (IR 14) is too new
BATCH = "batch"


class _Ctx:
    """What a lowering function may use: tensor renaming and constant creation."""

    def __init__(self, rename: dict[str, str]):
        self.rename = rename
        self.constants: list[TensorProto] = []

    def t(self, name: str) -> str:
        return self.rename.get(name, name)

    def constant(self, name: str, value: np.ndarray) -> str:
        self.constants.append(_tensor(name, value))
        return name


Lowering = Callable[[Layer, _Ctx], list[onnx.NodeProto]]


def _node(layer: Layer, ctx: _Ctx, op_type: str, inputs: list[str], **attrs) -> onnx.NodeProto:
    node = helper.make_node(op_type, inputs, [ctx.t(layer.output)], name=layer.name, **attrs)
    if layer.loc is not None:
        node.doc_string = str(layer.loc)
    return node


def _conv(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    a = layer.attrs
    inputs = [ctx.t(layer.inputs[0])] + [p.name for p in layer.params]
    return [_node(layer, ctx, "Conv", inputs, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                  pads=list(a["pads"]), dilations=list(a["dilation"]), group=a["groups"])]


def _batchnorm(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    names = {p.name.rsplit(".", 1)[1]: p.name for p in layer.params}
    channels = layer.shape[0]
    scale = names.get("weight") or ctx.constant(f"{layer.name}.unit_scale", np.ones(channels, np.float32))
    inputs = [ctx.t(layer.inputs[0]), scale, names["bias"], names["running_mean"], names["running_var"]]
    return [_node(layer, ctx, "BatchNormalization", inputs, epsilon=layer.attrs["eps"])]


def _pool(op_type: str) -> Lowering:
    def lower(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
        a = layer.attrs
        extra = {"count_include_pad": int(a["count_include_pad"])} if "count_include_pad" in a else {}
        return [_node(layer, ctx, op_type, [ctx.t(layer.inputs[0])], kernel_shape=list(a["kernel"]),
                      strides=list(a["stride"]), pads=list(a["pads"]), ceil_mode=int(a["ceil_mode"]), **extra)]
    return lower


def _unary(op_type: str, **attrs) -> Lowering:
    return lambda layer, ctx: [_node(layer, ctx, op_type, [ctx.t(layer.inputs[0])], **attrs)]


def _globalavgpool(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    if layer.attrs["keepdims"]:
        return [_node(layer, ctx, "GlobalAveragePool", [ctx.t(layer.inputs[0])])]
    pooled = f"{layer.name}/pooled"
    gap = helper.make_node("GlobalAveragePool", [ctx.t(layer.inputs[0])], [pooled], name=f"{layer.name}/pool")
    return [gap, _node(layer, ctx, "Flatten", [pooled], axis=1)]


def _dense(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    return [_node(layer, ctx, "Gemm", [ctx.t(layer.inputs[0])] + [p.name for p in layer.params], transB=1)]


def _add(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    inputs = [ctx.t(i) for i in layer.inputs]
    return [_node(layer, ctx, "Add" if len(inputs) == 2 else "Sum", inputs)]


LOWERINGS: dict[str, Lowering] = {
    "conv": _conv,
    "batchnorm": _batchnorm,
    "relu": _unary("Relu"),
    "sigmoid": _unary("Sigmoid"),
    "tanh": _unary("Tanh"),
    "softmax": _unary("Softmax", axis=1),
    "maxpool": _pool("MaxPool"),
    "avgpool": _pool("AveragePool"),
    "globalavgpool": _globalavgpool,
    "flatten": _unary("Flatten", axis=1),
    "dense": _dense,
    "concat": lambda layer, ctx: [_node(layer, ctx, "Concat", [ctx.t(i) for i in layer.inputs], axis=1)],
    "add": _add,
    "dropout": lambda layer, ctx: [],
    "identity": lambda layer, ctx: [],
}


def _tensor(name: str, value: np.ndarray) -> TensorProto:
    value = np.ascontiguousarray(value, dtype=np.float32)
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=value.shape)
    t.raw_data = value.tobytes()
    return t


def _info(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *shape])


def lower(graph: Graph, weights: Iterable[tuple[Param, np.ndarray]], producer_version: str = "",
          metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """Build the ONNX model of `graph` with the given parameter values."""
    rename = {graph.output: "output"} if graph.output != "input" else {}
    ctx = _Ctx(rename)
    nodes: list[onnx.NodeProto] = []
    for layer in graph.layers:
        nodes.extend(LOWERINGS[layer.op](layer, ctx))
    if graph.output == "input":
        nodes.append(helper.make_node("Identity", ["input"], ["output"], name="output"))
    initializers = [_tensor(p.name, v) for p, v in weights] + ctx.constants
    value_info = [_info(layer.output, layer.shape) for layer in graph.layers
                  if layer.output not in ("input", graph.output)]
    onnx_graph = helper.make_graph(
        nodes, graph.name, [_info("input", graph.input_shape)], [_info("output", graph.output_shape)],
        initializer=initializers, value_info=_unique(value_info))
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="cnnc", producer_version=producer_version)
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model


def _unique(infos: list[onnx.ValueInfoProto]) -> list[onnx.ValueInfoProto]:
    seen: set[str] = set()
    return [i for i in infos if not (i.name in seen or seen.add(i.name))]
