"""A single-file ONNX model -> the same model with its weights left in the file: each large embedded
initializer becomes an external-data reference to its own bytes inside that file (location: the file's
name, offset, length), so ONNX Runtime reads each weight once, straight into its tensor.

Why: given an .onnx path, ONNX Runtime parses the whole protobuf first, which holds a copy of every
weight (as the `raw_data` strings) while the session makes its own tensors from them — two copies at
once, plus the copies graph optimisation makes. Weights written as external data skip the first
(benchmarks/RESULTS.md, "Session memory" measures it: resnet50_torchvision's peak during session
creation 231 MB instead of 308 MB). This module gets the same for a single-file model without
rewriting it: it reads only the protobuf's field headers (the file is memory-mapped; the weights' pages
are never touched) and writes a small model — the graph, with each initializer's `raw_data` field
replaced by its `external_data` — of a few hundred kB, taking about 10 ms for ResNet-50.

Only the top-level graph's initializers with `raw_data` of at least `MIN_BYTES` move; everything else
(nodes, small tensors, tensors already external, subgraphs' tensors) is copied byte for byte.
"""
from __future__ import annotations

import mmap
import os

from ..wire import LEN, VARINT, Malformed, fields, length_delimited, tag, varint

MIN_BYTES = 4096
"""smaller initializers stay embedded: a read each costs more than it saves"""

_MODEL_GRAPH, _GRAPH_INITIALIZER = 7, 5
_TENSOR_RAW_DATA, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 9, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


NotAModel = Malformed  # the file is not a well-formed protobuf (ONNX Runtime, given its path, says what)


def in_place(path: str | os.PathLike) -> bytes:
    """The model at `path`, serialized, with its large top-level initializers referring to their bytes
    in `path` as external data; load it with the session option
    `session.model_external_initializers_file_folder_path` set to `path`'s folder."""
    name = os.path.basename(os.fspath(path))
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise NotAModel("empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            out = bytearray()
            for number, wire, start, end, value_start in fields(data, 0, len(data)):
                if number == _MODEL_GRAPH and wire == LEN:
                    out += length_delimited(number, _graph(data, value_start, end, name))
                else:
                    out += data[start:end]
            return bytes(out)


def _graph(data: mmap.mmap, begin: int, end: int, name: str) -> bytes:
    out = bytearray()
    for number, wire, start, stop, value_start in fields(data, begin, end):
        if number == _GRAPH_INITIALIZER and wire == LEN:
            out += length_delimited(number, _tensor(data, value_start, stop, name))
        else:
            out += data[start:stop]
    return bytes(out)


def _tensor(data: mmap.mmap, begin: int, end: int, name: str) -> bytes:
    parts = list(fields(data, begin, end))
    raw = [f for f in parts if f[0] == _TENSOR_RAW_DATA and f[1] == LEN]
    if (len(raw) != 1 or raw[0][3] - raw[0][4] < MIN_BYTES
            or any(f[0] in (_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION) for f in parts)):
        return bytes(data[begin:end])  # small, already external, or oddly written: left as it is
    out = bytearray()
    for number, _wire, start, stop, _value in parts:
        if number != _TENSOR_RAW_DATA:
            out += data[start:stop]
    offset, length = raw[0][4], raw[0][3] - raw[0][4]
    for key, value in (("location", name), ("offset", str(offset)), ("length", str(length))):
        out += length_delimited(_TENSOR_EXTERNAL_DATA,
                                 length_delimited(1, key.encode()) + length_delimited(2, value.encode()))
    out += tag(_TENSOR_DATA_LOCATION, VARINT) + varint(_EXTERNAL)
    return bytes(out)
