"""`ir.Graph` -> ONNX `ModelProto` without its parameter values (NCHW, one lowering function per op).

The model has one input `input` [batch, C, H, W] with a symbolic batch axis and one output `output`;
every intermediate tensor's shape is recorded as value_info; initialisers are raw little-endian bytes.
Node names and tensor names are the layers' hierarchical names; each node's doc_string holds the
`file:line:col` it came from.

`lower` returns the model with every node, shape and constant but none of the parameters' values: a
`Lowered`, which either becomes a whole `ModelProto` in memory (`complete`) or is streamed to a file
tensor by tensor (compiler/protowriter.py). With `dtype="float16"` parameters, constants and every
intermediate tensor are float16; `input` and `output` stay float32, with a Cast after the input and
before each output, so callers feed and read float32 whichever the model computes in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper

from .ir import Graph, Layer, Param
from .protowriter import TensorSpec, data_type

OPSET = 21
IR_VERSION = 10  # onnxruntime >= 1.20 loads IR 10 / opset 21; onnx's own default (IR 14) is too new
BATCH = "batch"
DType = Literal["float32", "float16"]


class _Ctx:
    """What a lowering function may use: tensor renaming and constant creation."""

    def __init__(self, rename: dict[str, str], dtype: np.dtype):
        self.rename = rename
        self.dtype = dtype
        self.constants: list[TensorProto] = []

    def t(self, name: str) -> str:
        return self.rename.get(name, name)

    def constant(self, name: str, value: np.ndarray) -> str:
        """An initialiser holding `value`; float values take the model's float type."""
        self.constants.append(_tensor(name, value.astype(self.dtype) if value.dtype.kind == "f" else value))
        return name


Lowering = Callable[[Layer, _Ctx], list[onnx.NodeProto]]


def _node(layer: Layer, ctx: _Ctx, op_type: str, inputs: list[str], **attrs) -> onnx.NodeProto:
    node = helper.make_node(op_type, inputs, [ctx.t(layer.output)], name=layer.name, **attrs)
    if layer.loc is not None:
        node.doc_string = str(layer.loc)
    return node


def _conv(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    a = layer.attrs
    if a.get("connections") is not None:
        return _connected_conv(layer, ctx)
    inputs = [ctx.t(layer.inputs[0])] + [p.name for p in layer.params]
    return [_node(layer, ctx, "Conv", inputs, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                  pads=list(a["pads"]), dilations=list(a["dilation"]), group=a["groups"])]


def _connected_conv(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    """A conv with a connection table, as one grouped conv per row length: rows of k inputs gather
    their input maps side by side and take their kernels from the packed weight; a final gather puts
    the output maps back in table order when grouping reordered them."""
    a, name = layer.attrs, layer.name
    table = a["connections"]
    weight, bias = layer.params[0].name, (layer.params[1].name if len(layer.params) > 1 else None)
    kh, kw = a["kernel"]
    starts = np.cumsum([0, *(len(row) for row in table)])
    nodes, parts, order = [], [], []
    for k in sorted({len(row) for row in table}):
        rows = [j for j, row in enumerate(table) if len(row) == k]
        tag = f"{name}/fan_in{k}"
        maps = ctx.constant(f"{tag}/maps", np.array([i for j in rows for i in table[j]], np.int64))
        links = ctx.constant(f"{tag}/links", np.array([i for j in rows for i in range(starts[j], starts[j + 1])], np.int64))
        shape = ctx.constant(f"{tag}/shape", np.array([len(rows), k, kh, kw], np.int64))
        inputs = [f"{tag}/input", f"{tag}/weight"]
        nodes += [helper.make_node("Gather", [ctx.t(layer.inputs[0]), maps], [inputs[0]], name=f"{tag}/gather", axis=1),
                  helper.make_node("Gather", [weight, links], [f"{tag}/kernels"], name=f"{tag}/kernels", axis=0),
                  helper.make_node("Reshape", [f"{tag}/kernels", shape], [inputs[1]], name=f"{tag}/reshape")]
        if bias is not None:
            index = ctx.constant(f"{tag}/rows", np.array(rows, np.int64))
            nodes.append(helper.make_node("Gather", [bias, index], [f"{tag}/bias"], name=f"{tag}/bias", axis=0))
            inputs.append(f"{tag}/bias")
        nodes.append(helper.make_node("Conv", inputs, [f"{tag}/output"], name=tag, kernel_shape=[kh, kw],
                                      strides=list(a["stride"]), pads=list(a["pads"]),
                                      dilations=list(a["dilation"]), group=len(rows)))
        parts.append(f"{tag}/output")
        order += rows
    if order == sorted(order):
        nodes.append(_node(layer, ctx, "Concat", parts, axis=1) if len(parts) > 1 else
                     _node(layer, ctx, "Identity", parts))
        return nodes
    inverse = ctx.constant(f"{name}/order", np.argsort(np.array(order)).astype(np.int64))
    nodes.append(helper.make_node("Concat", parts, [f"{name}/grouped"], name=f"{name}/concat", axis=1))
    return nodes + [_node(layer, ctx, "Gather", [f"{name}/grouped", inverse], axis=1)]


def _sepconv(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    a = layer.attrs
    depthwise, pointwise, *bias = [p.name for p in layer.params]
    channels = layer.params[0].shape[0] // a["depth_multiplier"]
    mid = f"{layer.name}/depthwise"
    return [helper.make_node("Conv", [ctx.t(layer.inputs[0]), depthwise], [mid], name=mid,
                             kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=list(a["pads"]),
                             dilations=list(a["dilation"]), group=channels),
            _node(layer, ctx, "Conv", [mid, pointwise, *bias], kernel_shape=[1, 1])]


def _scale(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    factor = ctx.constant(f"{layer.name}.factor", np.array(layer.attrs["factor"], np.float32))
    return [_node(layer, ctx, "Mul", [ctx.t(layer.inputs[0]), factor])]


def _squash(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    a, name = layer.attrs, layer.name
    slope = ctx.constant(f"{name}.slope", np.array(a["slope"], np.float32))
    amplitude = ctx.constant(f"{name}.amplitude", np.array(a["amplitude"], np.float32))
    return [helper.make_node("Mul", [ctx.t(layer.inputs[0]), slope], [f"{name}/scaled"], name=f"{name}/scaled"),
            helper.make_node("Tanh", [f"{name}/scaled"], [f"{name}/tanh"], name=f"{name}/tanh"),
            _node(layer, ctx, "Mul", [f"{name}/tanh", amplitude])]


def _lrn(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    a = layer.attrs
    return [_node(layer, ctx, "LRN", [ctx.t(layer.inputs[0])], size=a["size"], alpha=a["alpha"], beta=a["beta"],
                  bias=a["bias"])]


def _subsample(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    """Sum of each window times a per-map coefficient, plus a per-map bias: a depthwise conv whose
    kernel is the coefficient repeated over the window."""
    a, name = layer.attrs, layer.name
    coefficient, bias = (p.name for p in layer.params)
    channels = layer.shape[0]
    kh, kw = a["kernel"]
    shape = ctx.constant(f"{name}/kernel_shape", np.array([channels, 1, kh, kw], np.int64))
    axes = ctx.constant(f"{name}/axes", np.array([1, 2, 3], np.int64))
    return [helper.make_node("Unsqueeze", [coefficient, axes], [f"{name}/coefficient"], name=f"{name}/unsqueeze"),
            helper.make_node("Expand", [f"{name}/coefficient", shape], [f"{name}/kernel"], name=f"{name}/expand"),
            _node(layer, ctx, "Conv", [ctx.t(layer.inputs[0]), f"{name}/kernel", bias], kernel_shape=[kh, kw],
                  strides=list(a["stride"]), pads=list(a["pads"]), group=channels)]


def _rbf(layer: Layer, ctx: _Ctx) -> list[onnx.NodeProto]:
    """y_i = sum_j (x_j - w_ij)^2, by broadcasting [batch, 1, n] against [units, n]."""
    name = layer.name
    axes = ctx.constant(f"{name}/axes", np.array([1], np.int64))
    reduce = ctx.constant(f"{name}/reduce", np.array([2], np.int64))
    return [helper.make_node("Unsqueeze", [ctx.t(layer.inputs[0]), axes], [f"{name}/x"], name=f"{name}/unsqueeze"),
            helper.make_node("Sub", [f"{name}/x", layer.params[0].name], [f"{name}/diff"], name=f"{name}/diff"),
            helper.make_node("Mul", [f"{name}/diff", f"{name}/diff"], [f"{name}/square"], name=f"{name}/square"),
            _node(layer, ctx, "ReduceSum", [f"{name}/square", reduce], keepdims=0)]


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
    "sepconv": _sepconv,
    "scale": _scale,
    "squash": _squash,
    "lrn": _lrn,
    "subsample": _subsample,
    "rbf": _rbf,
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
    return _fill(TensorProto(), name, value)


def _fill(t: TensorProto, name: str, value: np.ndarray) -> TensorProto:
    value = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
    t.dims.extend(value.shape)
    t.data_type = data_type(value.dtype)
    t.name = name
    t.raw_data = value.tobytes()
    return t


def _info(name: str, shape: tuple[int, ...], elem_type: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, [BATCH, *shape])


@dataclass(frozen=True)
class Lowered:
    """An ONNX model less its parameters' values: `model` holds every node, shape and constant; the
    initialisers of `params`, of type `dtype`, go first in the graph, before the constants."""

    model: onnx.ModelProto
    params: tuple[Param, ...]
    dtype: DType

    @property
    def tensors(self) -> list[TensorSpec]:
        return [TensorSpec(p.name, p.shape, np.dtype(self.dtype)) for p in self.params]

    def complete(self, values: Iterable[Iterable[np.ndarray]]) -> onnx.ModelProto:
        """The whole model in memory, with `values`: per parameter, in order, its elements as chunks."""
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        constants = onnx.GraphProto(initializer=model.graph.initializer)
        del model.graph.initializer[:]
        for param, chunks in zip(self.params, values, strict=True):
            value = np.concatenate([np.ravel(c) for c in chunks]).reshape(param.shape)
            _fill(model.graph.initializer.add(), param.name, value)  # in place: appending would copy
        model.graph.initializer.extend(constants.initializer)
        return model


def lower(graph: Graph, producer_version: str = "", metadata: dict[str, str] | None = None,
          dtype: DType = "float32") -> Lowered:
    """The ONNX model of `graph`, less its parameters' values."""
    outputs = [("output", graph.output, graph.output_shape), *graph.aux]
    rename, first, last, inner = _boundaries(graph, outputs, dtype != "float32")
    if graph.output != "output":
        rename.setdefault("output", "output.inner")  # a layer named `output` that is not the last one
    ctx = _Ctx(rename, np.dtype(dtype))
    nodes: list[onnx.NodeProto] = first
    for layer in graph.layers:
        nodes.extend(LOWERINGS[layer.op](layer, ctx))
    nodes += last
    elem_type = data_type(np.dtype(dtype))
    value_info = [_info(layer.output, layer.shape, elem_type) for layer in graph.layers
                  if layer.output != "input" and layer.output not in rename]
    value_info += [_info(name, shape, elem_type) for name, shape in inner]
    onnx_graph = helper.make_graph(
        nodes, graph.name, [_info("input", graph.input_shape)],
        [_info(name, shape) for name, _tensor, shape in outputs],
        initializer=ctx.constants, value_info=_unique(value_info))
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="cnnc", producer_version=producer_version)
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    return Lowered(model, tuple(graph.params), dtype)


def _boundaries(graph: Graph, outputs: list[tuple[str, str, tuple[int, ...]]], cast: bool) \
        -> tuple[dict[str, str], list[onnx.NodeProto], list[onnx.NodeProto], list[tuple[str, tuple[int, ...]]]]:
    """How tensors are renamed at the model's edges, the nodes before and after the layers' own, and
    the tensors those nodes add. Each output renames the tensor it shows, or copies an earlier output
    (or the input) that shows the same tensor; with `cast`, float16 tensors are cast from and to the
    float32 `input` and outputs. Added names contain a `.`, which layer names cannot."""
    rename: dict[str, str] = {}
    first: list[onnx.NodeProto] = []
    last: list[onnx.NodeProto] = []
    inner: list[tuple[str, tuple[int, ...]]] = []
    if cast:
        rename["input"] = "input.float16"
        first.append(helper.make_node("Cast", ["input"], ["input.float16"], name="input.cast",
                                      to=TensorProto.FLOAT16))
        inner.append(("input.float16", graph.input_shape))
    shown: dict[str, str] = {}  # tensor -> the output that shows it
    for name, tensor, shape in outputs:
        if tensor == "input" or tensor in shown:
            last.append(helper.make_node("Identity", [shown.get(tensor, tensor)], [name], name=name))
        elif cast:
            shown[tensor], rename[tensor] = name, f"{name}.float16"
            last.append(helper.make_node("Cast", [rename[tensor]], [name], name=f"{name}.cast",
                                         to=TensorProto.FLOAT))
            inner.append((rename[tensor], shape))
        else:
            shown[tensor] = rename[tensor] = name
    return rename, first, last, inner


def _unique(infos: list[onnx.ValueInfoProto]) -> list[onnx.ValueInfoProto]:
    seen: set[str] = set()
    return [i for i in infos if not (i.name in seen or seen.add(i.name))]
