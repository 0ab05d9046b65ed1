"""`ir.Graph` -> an ONNX model without its parameter values (NCHW; each op's lowering is in its
definition, compiler/ops/).

The model has one input `input` [batch, C, H, W] with a symbolic batch axis and one output `output`;
every intermediate tensor's shape is recorded as value_info; initialisers are raw little-endian bytes.
Node names and tensor names are the layers' hierarchical names; each node's doc_string (Netron's
"description") is the chain of block calls it was expanded from, each with where it is written, down to
its own definition: `inception_v3.yaml:71:13 mixed5: inception_b(160) -> :35:19 branch7x7/cbr_1:
cbr(c7, 1x1) -> :14:50 conv` (file names without their folders, so the model is the same wherever it is
built). The model's doc_string is the network's `description:`, its model_version 1.

`lower` returns the model with every node, shape and constant but none of the parameters' values: a
`Lowered`, whose model is compiler/onnxwire.py's records (so lowering and writing a file never import
onnx), and which either becomes a whole `onnx.ModelProto` in memory (`complete`) or is streamed to a file
tensor by tensor (compiler/protowriter.py). With `dtype="float16"` parameters, constants and every
intermediate tensor are float16; `input` and `output` stay float32, with a Cast after the input and
before each output, so callers feed and read float32 whichever the model computes in.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Iterable, Literal

import numpy as np

from ..errors import Location
from ..record import Record, record
from . import onnxwire
from .ir import Graph, Layer, Param
from .onnxwire import Info, Node
from .ops import MERGES, OPS
from .ops.base import Lowering
from .protowriter import TensorSpec, data_type

if TYPE_CHECKING:
    import onnx

OPSET = 21
IR_VERSION = 10  # onnxruntime >= 1.20 loads IR 10 / opset 21; onnx's own default (IR 14) is too new
BATCH = "batch"
DType = Literal["float32", "float16"]


class _Emitter:
    """The `Emitter` lowering functions build nodes with: tensor renaming, constants, nodes."""

    def __init__(self, rename: dict[str, str], dtype: np.dtype):
        self.rename = rename
        self.dtype = dtype
        self.constants: list[bytes] = []  # TensorProto bytes

    def t(self, name: str) -> str:
        return self.rename.get(name, name)

    def constant(self, name: str, value: float | list[int] | list[float], dtype: Literal["float", "int64"]) -> str:
        # floats go through float32 first, as the values were always written
        array = np.array(value, np.int64) if dtype == "int64" else np.array(value, np.float32).astype(self.dtype)
        self.constants.append(_tensor(name, array))
        return name

    def node(self, layer: Layer, op_type: str, inputs: list[str], **attrs: Any) -> Node:
        return Node(op_type, inputs, [self.t(layer.output)], layer.name, **attrs)

    def make(self, op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> Node:
        return Node(op_type, inputs, outputs, name, **attrs)


LOWERINGS: dict[str, Lowering] = {**{name: op.lower for name, op in OPS.items()},
                                  **{name: m.lower for name, m in MERGES.items()}}


def _tensor(name: str, value: np.ndarray) -> bytes:
    value = _little_endian(value)
    return onnxwire.tensor(name, value.shape, data_type(value.dtype), value.tobytes())


def _little_endian(value: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))  # raw_data is little-endian, C order


def _info(name: str, shape: tuple[int, ...], elem_type: int = onnxwire.FLOAT) -> Info:
    return Info(name, elem_type, (BATCH, *shape))


@record
class Lowered(Record):
    """An ONNX model less its parameters' values: `model` holds every node, shape and constant; the
    initialisers of `params`, of type `dtype`, go first in the graph, before the constants."""

    model: onnxwire.Model
    params: tuple[Param, ...]
    dtype: DType

    @property
    def tensors(self) -> list[TensorSpec]:
        return [TensorSpec(p.name, p.shape, np.dtype(self.dtype)) for p in self.params]

    def complete(self, values: Iterable[Iterable[np.ndarray]]) -> onnx.ModelProto:
        """The whole model in memory, with `values`: per parameter, in order, its elements as chunks. The
        skeleton is parsed and each parameter filled in place: never the whole model as bytes, which
        protobuf cannot parse past 2 GiB (regnet_y_128gf's 2.6 GB is a model in memory all the same)."""
        import onnx

        model = onnx.ModelProto.FromString(self.model.encode())
        constants = onnx.GraphProto(initializer=model.graph.initializer)
        del model.graph.initializer[:]
        for param, chunks in zip(self.params, values, strict=True):
            value = _little_endian(np.concatenate([np.ravel(c) for c in chunks]).reshape(param.shape))
            t = model.graph.initializer.add()  # filled in place: appending would copy
            t.dims.extend(value.shape)
            t.data_type = data_type(value.dtype)
            t.name = param.name
            t.raw_data = value.tobytes()
        model.graph.initializer.extend(constants.initializer)
        return model


MODEL_VERSION = 1  # the language has no version field: every model is the first version of its network
CALL_TEXT = 48  # at most this many characters of a call as written (a call may carry a whole table)


def origin(layer: Layer) -> str:
    """Where `layer` comes from: each block call it was expanded from, outermost first, then its own
    definition; each as its place, the part of the layer's name it adds, and the call as written. A
    place names its file only where the file changes; names are relative to the call before."""
    parts: list[str] = []
    file, prefix = "", ""
    for path, text, loc in layer.calls:
        place, file = _place(loc, file)
        parts.append(f"{place} {_relative(path, prefix)}: {_call_text(text)}")
        prefix = path
    if layer.loc is not None:
        parts.append(f"{_place(layer.loc, file)[0]} {_relative(layer.name, prefix)}")
    return " -> ".join(parts)


def _place(loc: Location, file: str) -> tuple[str, str]:
    """`file:line:col`, or `:line:col` within the file of the place before; and this place's file."""
    name = _file_name(loc.file)
    return (f":{loc.line}:{loc.col}" if name == file else f"{name}:{loc.line}:{loc.col}"), name


@lru_cache(maxsize=256)
def _file_name(path: str) -> str:
    return PurePath(path.replace("\\", "/")).name


def _relative(path: str, prefix: str) -> str:
    return path[len(prefix) + 1:] if prefix and path.startswith(prefix + "/") else path


def _call_text(text: str) -> str:
    text = " ".join(text.split())  # a flow call written over several lines
    return text if len(text) <= CALL_TEXT else text[:CALL_TEXT - 3] + "..."


def lower(graph: Graph, producer_version: str = "", metadata: dict[str, str] | None = None,
          dtype: DType = "float32") -> Lowered:
    """The ONNX model of `graph`, less its parameters' values."""
    outputs = [("output", graph.output, graph.output_shape), *graph.aux]
    rename, first, last, inner = _boundaries(graph, outputs, dtype != "float32")
    if graph.output != "output":
        rename.setdefault("output", "output.inner")  # a layer named `output` that is not the last one
    ctx = _Emitter(rename, np.dtype(dtype))
    nodes: list[Node] = first
    for layer in graph.layers:
        made = LOWERINGS[layer.op](layer, ctx)
        doc = origin(layer)
        for node in made:  # every node a layer lowers to, its helpers' too
            node.doc_string = doc
        nodes.extend(made)
    nodes += last
    elem_type = data_type(np.dtype(dtype))
    value_info = [_info(layer.output, layer.shape, elem_type) for layer in graph.layers
                  if layer.output != "input" and layer.output not in rename]
    value_info += [_info(name, shape, elem_type) for name, shape in inner]
    model = onnxwire.Model(
        nodes, graph.name, [_info("input", graph.input_shape)], [_info(name, shape) for name, _t, shape in outputs],
        ctx.constants, _unique(value_info), IR_VERSION, OPSET, "cnnc", producer_version, MODEL_VERSION,
        graph.description, list((metadata or {}).items()))
    return Lowered(model, tuple(graph.params), dtype)


def _boundaries(graph: Graph, outputs: list[tuple[str, str, tuple[int, ...]]], cast: bool) \
        -> tuple[dict[str, str], list[Node], list[Node], list[tuple[str, tuple[int, ...]]]]:
    """How tensors are renamed at the model's edges, the nodes before and after the layers' own, and
    the tensors those nodes add. Each output renames the tensor it shows, or copies an earlier output
    (or the input) that shows the same tensor; with `cast`, float16 tensors are cast from and to the
    float32 `input` and outputs. Added names contain a `.`, which layer names cannot."""
    rename: dict[str, str] = {}
    first: list[Node] = []
    last: list[Node] = []
    inner: list[tuple[str, tuple[int, ...]]] = []
    if cast:
        rename["input"] = "input.float16"
        first.append(Node("Cast", ["input"], ["input.float16"], "input.cast", to=onnxwire.FLOAT16))
        inner.append(("input.float16", graph.input_shape))
    shown: dict[str, str] = {}  # tensor -> the output that shows it
    for name, tensor, shape in outputs:
        if tensor == "input" or tensor in shown:
            last.append(Node("Identity", [shown.get(tensor, tensor)], [name], name))
        elif cast:
            shown[tensor], rename[tensor] = name, f"{name}.float16"
            last.append(Node("Cast", [rename[tensor]], [name], f"{name}.cast", to=onnxwire.FLOAT))
            inner.append((rename[tensor], shape))
        else:
            shown[tensor] = rename[tensor] = name
    return rename, first, last, inner


def _unique(infos: list[Info]) -> list[Info]:
    first: dict[str, Info] = {}
    for info in infos:
        first.setdefault(info.name, info)
    return list(first.values())
