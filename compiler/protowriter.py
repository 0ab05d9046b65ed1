"""An ONNX model without its weights (serialised) + the weights one tensor at a time -> an ONNX file, streamed.

protobuf writes a message as its fields in field-number order, each a tag, a length where it has one,
and the value; a repeated field is one entry per element. So a ModelProto can be written in pieces:
the model's fields before `graph` (7), the graph's tag and length, the graph's fields before
`initializer` (5), one entry per initialiser, the graph's later fields, the model's later fields. Every
length is known before any weight exists, since a tensor's entry size follows from its name, dims and
type. The file is then the bytes `ModelProto.SerializeToString()` gives for the whole model
(tests/test_lowering.py checks it), while no weight is ever held twice nor the whole model at once.

With a `data` file, tensors of at least `EXTERNAL_MIN_BYTES` go there instead, as ONNX external data
(`location`, `offset`, `length`; offsets aligned to `ALIGN` so a runtime may map them), and the model
keeps only their names and shapes: how models above protobuf's 2 GiB are written.
"""
from __future__ import annotations

import math
from typing import BinaryIO, Callable, Iterable, NamedTuple, Sequence

import numpy as np

from ..wire import fields, length_delimited, tag, varint
from . import onnxwire

EXTERNAL_MIN_BYTES = 1024  # smaller tensors stay in the model, as onnx's own external-data writer does
ALIGN = 4096
MAX_PROTO_BYTES = (1 << 31) - 1  # the most protobuf reads as one message
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9
_DATA_TYPES: dict[np.dtype, int] = {
    np.dtype(np.float32): onnxwire.FLOAT, np.dtype(np.float16): onnxwire.FLOAT16,
    np.dtype(np.int64): onnxwire.INT64, np.dtype(np.int32): onnxwire.INT32,
    np.dtype(np.float64): onnxwire.DOUBLE, np.dtype(np.uint8): onnxwire.UINT8,
    np.dtype(np.int8): onnxwire.INT8, np.dtype(np.bool_): onnxwire.BOOL}


class TensorSpec(NamedTuple):
    """An initialiser whose value is streamed: what its entry in the model says."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # exact ints: np.prod took 5 µs a call


class Layout(NamedTuple):
    """Where each streamed tensor goes, and the entries that say so, decided before anything is written."""

    model_head: bytes  # the model's fields before the graph, the graph's tag and length, its early fields
    entries: list[bytes]  # per tensor: its initialiser entry, less the raw bytes when they follow inline
    external: list[int | None]  # per tensor: its offset in the data file, or None when inline
    tail: bytes  # the skeleton's own initialisers, the graph's later fields, the model's later fields
    size: int  # of the model file
    data_size: int  # of the data file


def numpy_dtype(data_type: int) -> np.dtype | None:
    """The numpy type of an ONNX tensor type, where raw bytes of one are an array of the other."""
    return next((dtype for dtype, t in _DATA_TYPES.items() if t == data_type), None)


def data_type(dtype: np.dtype) -> int:
    try:
        return _DATA_TYPES[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"no ONNX tensor type for numpy {np.dtype(dtype)}") from None


def layout(skeleton: bytes, tensors: Sequence[TensorSpec], location: str | None = None) -> Layout:
    """The file's layout: `tensors` become the graph's first initialisers, before those of `skeleton` (a
    serialised ModelProto). With a `location`, tensors of `EXTERNAL_MIN_BYTES` or more go to that data file."""
    before, graph, after = _split(_fields(skeleton), _MODEL_GRAPH)
    if len(graph) != 1:
        raise ValueError("the skeleton has no graph")
    early, own, late = _split(_fields(graph[0][1]), _GRAPH_INITIALIZER)
    entries: list[bytes] = []
    external: list[int | None] = []
    inline = offset = 0
    for spec in tensors:
        if location is not None and spec.nbytes >= EXTERNAL_MIN_BYTES:
            offset = -(-offset // ALIGN) * ALIGN
            entries.append(length_delimited(_GRAPH_INITIALIZER, _external(spec, location, offset)))
            external.append(offset)
            offset += spec.nbytes
        else:
            header = _header(spec) + tag(_TENSOR_RAW_DATA) + varint(spec.nbytes)
            entries.append(tag(_GRAPH_INITIALIZER) + varint(len(header) + spec.nbytes) + header)
            external.append(None)
            inline += spec.nbytes
    early_bytes, tail_of_graph = _join(early), _join(own) + _join(late)
    graph_size = len(early_bytes) + sum(map(len, entries)) + inline + len(tail_of_graph)
    head = _join(before) + tag(_MODEL_GRAPH) + varint(graph_size) + early_bytes
    tail = tail_of_graph + _join(after)
    size = len(head) + sum(map(len, entries)) + inline + len(tail)
    return Layout(head, entries, external, tail, size, offset)


def write(layout: Layout, tensors: Sequence[TensorSpec], values: Iterable[Iterable[np.ndarray]],
          out: BinaryIO, data: BinaryIO | None = None,
          progress: Callable[[int], None] | None = None) -> None:
    """Write the model file (and the data file, when the layout has external tensors) from `values`:
    per tensor, in order, its elements in C order as one array or as consecutive chunks, each written
    and dropped in turn. `progress` is told the bytes of each chunk written."""
    if data is None and any(offset is not None for offset in layout.external):
        raise ValueError("the layout has external tensors, but no data file was given")
    out.write(layout.model_head)
    written = len(layout.model_head)
    position = count = 0
    for spec, entry, offset, chunks in zip(tensors, layout.entries, layout.external, values):
        out.write(entry)
        written += len(entry)
        if offset is None or data is None:  # data is None only without external tensors (checked above)
            target = out
        else:
            target = data
            data.write(bytes(offset - position))
        size = 0
        for chunk in [chunks] if isinstance(chunks, np.ndarray) else chunks:
            raw = _raw(spec, chunk)
            target.write(raw)
            size += raw.nbytes
            if progress is not None:
                progress(raw.nbytes)
            del raw, chunk
        if size != spec.nbytes:
            raise ValueError(f"`{spec.name}`: announced {spec.nbytes:,} bytes, got {size:,}")
        if offset is None:
            written += size
        else:
            position = offset + size
        count += 1
    if count != len(tensors):
        raise ValueError(f"{len(tensors)} tensors announced, {count} values given")
    out.write(layout.tail)
    written += len(layout.tail)
    if (written, position) != (layout.size, layout.data_size):  # the lengths went first: they must hold
        raise ValueError(f"wrote {written:,} + {position:,} bytes, the layout says {layout.size:,} + "
                         f"{layout.data_size:,}")


def _raw(spec: TensorSpec, chunk: np.ndarray) -> memoryview:
    if chunk.dtype != spec.dtype:
        raise ValueError(f"`{spec.name}`: announced {spec.dtype}, got {chunk.dtype}")
    chunk = np.ascontiguousarray(chunk, dtype=spec.dtype.newbyteorder("<"))  # raw_data is little-endian
    return chunk.reshape(-1).view(np.uint8).data


def _header(spec: TensorSpec) -> bytes:
    return onnxwire.tensor(spec.name, spec.shape, data_type(spec.dtype))


def _external(spec: TensorSpec, location: str, offset: int) -> bytes:
    return onnxwire.tensor(spec.name, spec.shape, data_type(spec.dtype),
                           external=(("location", location), ("offset", str(offset)), ("length", str(spec.nbytes))))


def _fields(buf: bytes) -> list[tuple[int, bytes, bytes]]:
    """The top-level fields of a serialised message, each as (field number, tag and length bytes, value)."""
    return [(number, buf[start:value], buf[value:stop]) for number, _, start, stop, value in fields(buf, 0, len(buf))]


def _split(message: list[tuple[int, bytes, bytes]], number: int):
    """The fields before, at and after field `number`, as (tag and length bytes, value), checking they come
    in field-number order."""
    numbers = [n for n, _, _ in message]
    if numbers != sorted(numbers):
        raise ValueError("the serialised skeleton's fields are not in field-number order")
    before = [(t, v) for n, t, v in message if n < number]
    at = [(t, v) for n, t, v in message if n == number]
    after = [(t, v) for n, t, v in message if n > number]
    return before, at, after


def _join(parts: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(t + v for t, v in parts)
