"""The ONNX messages cnnc writes, as plain records, and their protobuf bytes, without importing onnx.

Importing onnx (and protobuf and ml_dtypes with it) costs about as much as everything else `cnnc compile`
imports together, to build a model protobuf can serialise for us. The messages a lowered graph needs are
few (a model, its graph, nodes with scalar and list attributes, value infos with a shape, tensors of raw
bytes), so they are written here field by field with cnnc/wire.py, in field-number order, each field
present exactly when `onnx.helper` would have set it: the bytes are the ones
`ModelProto.SerializeToString()` gives for the model `onnx.helper` builds (tests/test_onnxwire.py holds
every shipped network to that, and each attribute kind to `helper.make_attribute`). Field numbers are
onnx/onnx.proto's; every repeated scalar there that cnnc writes is unpacked (proto2).
"""
from __future__ import annotations

import numbers
import struct
from typing import Any, Iterable, NamedTuple, Sequence

from ..wire import FIXED32, VARINT, length_delimited, tag, varint

# TensorProto.DataType
FLOAT, UINT8, INT8, INT32, INT64, BOOL, FLOAT16, DOUBLE = 1, 2, 3, 6, 7, 9, 10, 11
# AttributeProto.AttributeType
_A_FLOAT, _A_INT, _A_STRING, _A_FLOATS, _A_INTS, _A_STRINGS = 1, 2, 3, 6, 7, 8
EXTERNAL = 1  # TensorProto.DataLocation


class Node:
    """A NodeProto: `name` is written when not empty (as onnx.helper), `doc_string` when not None."""

    __slots__ = ("op_type", "inputs", "outputs", "name", "attrs", "doc_string")

    def __init__(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], name: str = "",
                 doc_string: str | None = None, **attrs: Any):
        self.op_type, self.inputs, self.outputs, self.name = op_type, list(inputs), list(outputs), name
        self.attrs, self.doc_string = attrs, doc_string

    def __repr__(self) -> str:
        return f"Node({self.op_type!r}, {self.inputs}, {self.outputs}, {self.name!r})"

    def encode(self) -> bytes:
        parts = [_string(1, i) for i in self.inputs] + [_string(2, o) for o in self.outputs]
        if self.name:
            parts.append(_string(3, self.name))
        parts.append(_string(4, self.op_type))
        parts += [length_delimited(5, attribute(k, v)) for k, v in sorted(self.attrs.items()) if v is not None]
        if self.doc_string is not None:
            parts.append(_string(6, self.doc_string))
        return b"".join(parts)


class Info(NamedTuple):
    """A ValueInfoProto of a tensor: its name, element type and shape (ints, or names of symbolic axes)."""

    name: str
    elem_type: int
    shape: Sequence[int | str]

    def encode(self) -> bytes:
        dims = b"".join(length_delimited(1, length_delimited(2, d.encode()) if isinstance(d, str) else
                                         tag(1, VARINT) + _int(d)) for d in self.shape)
        tensor = tag(1, VARINT) + varint(self.elem_type) + length_delimited(2, dims)
        return _string(1, self.name) + length_delimited(2, length_delimited(1, tensor))


class Model(NamedTuple):
    """A ModelProto with one graph and the default opset, as `onnx.helper.make_model` writes it."""

    nodes: Sequence[Node]
    name: str
    inputs: Sequence[Info]
    outputs: Sequence[Info]
    initializers: Sequence[bytes]  # TensorProto bytes each (`tensor`)
    value_info: Sequence[Info]
    ir_version: int
    opset: int
    producer_name: str
    producer_version: str
    model_version: int
    doc_string: str
    metadata: Sequence[tuple[str, str]]

    def encode(self) -> bytes:
        graph = b"".join([
            *(length_delimited(1, n.encode()) for n in self.nodes), _string(2, self.name),
            *(length_delimited(5, t) for t in self.initializers),
            *(length_delimited(11, i.encode()) for i in self.inputs),
            *(length_delimited(12, o.encode()) for o in self.outputs),
            *(length_delimited(13, v.encode()) for v in self.value_info)])
        return b"".join([
            tag(1, VARINT), varint(self.ir_version), _string(2, self.producer_name),
            _string(3, self.producer_version), tag(5, VARINT), _int(self.model_version),
            _string(6, self.doc_string), length_delimited(7, graph),
            length_delimited(8, _string(1, "") + tag(2, VARINT) + _int(self.opset)),
            *(length_delimited(14, _string(1, k) + _string(2, v)) for k, v in self.metadata)])

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)


def tensor(name: str, dims: Iterable[int], data_type: int, raw: bytes | None = None,
           external: Sequence[tuple[str, str]] = ()) -> bytes:
    """A TensorProto: its raw bytes when given (the field is then present even when empty), or its
    external-data entries (location, offset, length) with the data location EXTERNAL."""
    parts = [tag(1, VARINT) + _int(d) for d in dims] + [tag(2, VARINT) + varint(data_type), _string(8, name)]
    if raw is not None:
        parts.append(length_delimited(9, raw))
    if external:
        parts += [length_delimited(13, _string(1, k) + _string(2, v)) for k, v in external]
        parts.append(tag(14, VARINT) + varint(EXTERNAL))
    return b"".join(parts)


def attribute(name: str, value: Any) -> bytes:
    """An AttributeProto, its type taken from `value` as `onnx.helper.make_attribute` takes it: an
    integer (bool included), a real, a string, or a non-empty list of one of those."""
    head = _string(1, name)
    if isinstance(value, numbers.Integral):
        return head + tag(3, VARINT) + _int(int(value)) + _type(_A_INT)
    if isinstance(value, numbers.Real):
        return head + tag(2, FIXED32) + _float(float(value)) + _type(_A_FLOAT)
    if isinstance(value, (str, bytes)):
        return head + length_delimited(4, _bytes(value)) + _type(_A_STRING)
    values = list(value) if isinstance(value, Iterable) else None
    if not values:
        raise TypeError(f"attribute `{name}`: {value!r} is not an integer, real, string or non-empty list")
    if all(isinstance(v, numbers.Integral) for v in values):
        return head + b"".join(tag(8, VARINT) + _int(int(v)) for v in values) + _type(_A_INTS)
    if all(isinstance(v, numbers.Real) for v in values):
        return head + b"".join(tag(7, FIXED32) + _float(float(v)) for v in values) + _type(_A_FLOATS)
    if all(isinstance(v, (str, bytes)) for v in values):
        return head + b"".join(length_delimited(9, _bytes(v)) for v in values) + _type(_A_STRINGS)
    raise TypeError(f"attribute `{name}`: the list {values!r} mixes kinds")


def _type(kind: int) -> bytes:
    return tag(20, VARINT) + varint(kind)


def _int(n: int) -> bytes:
    """An int64 field's varint: a negative number as its 64-bit two's complement (ten bytes)."""
    if not -(1 << 63) <= n < 1 << 63:
        raise OverflowError(f"{n} does not fit an int64")
    return varint(n & 0xFFFF_FFFF_FFFF_FFFF)


def _float(x: float) -> bytes:
    return struct.pack("<f", x)  # as protobuf's float field: the double rounded to the nearest float32


def _bytes(s: str | bytes) -> bytes:
    return s.encode() if isinstance(s, str) else s


def _string(field: int, s: str) -> bytes:
    return length_delimited(field, s.encode())
