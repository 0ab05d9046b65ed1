"""Weights files: named float tensors in `.safetensors` or `.npz`, read and written with numpy alone, and
the other frameworks' files read (`load`): PyTorch's state dicts (compiler/torchfile.py) and Keras's
(compiler/kerasfile.py), their names mapped onto the network's by compiler/mapping.py.

A network's tensors are named by its hierarchy (`mixed5/branch7x7/cbr_2/conv.weight`, see
docs/language.md, Names); `match` checks a file against them and reports every missing, unexpected and
mis-shaped entry at once. safetensors files are memory-mapped, so a 500 MB checkpoint is not read twice.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from .errors import WeightsError
from .ir import Graph, Param

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": None}
_HEADER_LIMIT = 100 << 20


TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
SUFFIXES = (".safetensors", ".npz", *TORCH_SUFFIXES, *KERAS_SUFFIXES)


@dataclass
class Checkpoint:
    """A weights file's tensors, by name, as float32, and what their names and layouts mean: `ordered`
    when the file keeps the model's order (a `.pth`'s state dict; a safetensors file sorts its names),
    `roles` (a tensor name -> its part, weight, bias, running_mean, ..., where the names do not say it:
    Keras), and `convert`: given the network, what turns a tensor in the file's layout into its parameter's
    (value, parameter name -> value, what was done), for the changes that need the network (a dense layer
    after Keras's channels-last flatten); those that do not, Keras's HWIO kernels, are done on reading and
    said in `layouts`."""

    tensors: dict[str, np.ndarray]
    ordered: bool = True
    roles: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, str] = field(default_factory=dict)  # tensor -> the change of layout made on reading
    convert: Callable[[Graph], Callable[[np.ndarray, str], tuple[np.ndarray, str]]] | None = None
    network_order: Callable | None = None  # the network's layers -> in the order the file numbers them


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values, given as their uint16 bits, widened exactly: a bfloat16 is the top half of a float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def load(path: str | os.PathLike) -> Checkpoint:
    """Any weights file cnnc reads: `.safetensors` (cnnc's names, or torchvision's, timm's, Hugging Face's),
    `.npz`, a PyTorch state dict (`.pth`, `.pt`, `.bin`, read without torch and without unpickling anything
    but tensors), or Keras weights (`.weights.h5`, `.keras`, with h5py)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"cannot read `{path}`: no such file")
    if path.suffix == ".npz":
        return Checkpoint(_read_npz(path))
    if path.suffix == ".safetensors":
        return Checkpoint(_read_safetensors(path), ordered=False)
    if path.suffix in TORCH_SUFFIXES:
        from . import torchfile
        return Checkpoint(torchfile.read(path))
    if path.suffix in KERAS_SUFFIXES:
        from . import kerasfile
        return kerasfile.read(path)
    raise WeightsError(f"`{path}`: weights files are {', '.join(f'`{s}`' for s in SUFFIXES)}")


def write(path: str | os.PathLike, tensors: Iterable[tuple[str, np.ndarray]],
          metadata: Mapping[str, str] | None = None) -> None:
    """Write float32 tensors in the file's format (by suffix), atomically and byte-deterministically."""
    path = Path(path)
    if path.suffix not in (".safetensors", ".npz"):
        raise WeightsError(f"`{path}`: write weights to a `.safetensors` or `.npz` file")
    from ..files import atomic_file
    with atomic_file(path, WeightsError, "weights") as f:
        (_write_safetensors if path.suffix == ".safetensors" else _write_npz)(f, tensors, metadata or {})


def match(params: Iterable[Param], tensors: Mapping[str, np.ndarray], source: str,
          optional: Iterable[str] = ()) -> list[tuple[Param, np.ndarray]]:
    """Each parameter with its tensor from the file; all mismatches are reported together.

    `optional` names tensors the file may hold without the network needing them (the parameters of
    train-only heads that this compile leaves out).
    """
    params = list(params)
    known = {p.name for p in params} | set(optional)
    missing = [p.name for p in params if p.name not in tensors]
    unexpected = [n for n in tensors if n not in known]
    misshaped = [f"{p.name}: file {list(tensors[p.name].shape)}, network {list(p.shape)}"
                 for p in params if p.name in tensors and tuple(tensors[p.name].shape) != p.shape]
    problems = [(f"{len(names)} {what}", names) for what, names in
                (("missing (in the network, not in the file)", missing),
                 ("unexpected (in the file, not in the network)", unexpected),
                 ("with the wrong shape", misshaped)) if names]
    if problems:
        lines = [f"`{source}` does not fit the network: " + "; ".join(head for head, _ in problems)]
        for head, names in problems:
            lines.append(f"  {head}:")
            lines += [f"    {n}" for n in names[:50]] + ([f"    ... and {len(names) - 50} more"]
                                                          if len(names) > 50 else [])
        lines.append("  (`cnnc weights NET -o template.safetensors` writes every expected name and shape)")
        raise WeightsError("\n".join(lines), code="E0601")
    bad = [p.name for p in params if not np.isfinite(tensors[p.name]).all()]
    if bad:
        raise WeightsError(f"`{source}`: {len(bad)} tensors hold NaN or infinity: {', '.join(bad[:10])}")
    return [(p, tensors[p.name]) for p in params]


# ---- safetensors ------------------------------------------------------------------------------------
def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 2 <= n <= min(_HEADER_LIMIT, size - 8):
            raise WeightsError(f"`{path}` is not a safetensors file (bad header length)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightsError(f"`{path}` is not a safetensors file (header: {e})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"`{path}` is not a safetensors file (the header is not an object)")
    data = np.memmap(path, np.uint8, "r", offset=8 + n) if size > 8 + n else np.zeros(0, np.uint8)
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise WeightsError(f"`{path}`: malformed header entry for `{name}`") from None
        if dtype not in _DTYPES and name.endswith("num_batches_tracked"):
            continue  # BN's step counter in a PyTorch state dict: no weight
        if dtype not in _DTYPES:
            raise WeightsError(f"`{path}`: `{name}` is {dtype}; weights must be floating point "
                               f"({', '.join(_DTYPES)})")
        width = 2 if dtype == "BF16" else np.dtype(_DTYPES[dtype]).itemsize
        if not (0 <= begin <= end <= len(data)) or end - begin != width * int(np.prod(shape)):
            raise WeightsError(f"`{path}`: `{name}` points outside the file or has the wrong byte size")
        raw = data[begin:end]
        if dtype == "BF16":
            value = bfloat16_to_float32(raw.view("<u2"))
        else:
            value = raw.view(np.dtype(_DTYPES[dtype]).newbyteorder("<"))
        out[name] = value.reshape(shape).astype(np.float32, copy=False)
    return out


def _write_safetensors(f, tensors: Iterable[tuple[str, np.ndarray]], metadata: Mapping[str, str]) -> None:
    arrays = [(name, np.ascontiguousarray(v, dtype="<f4")) for name, v in tensors]
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, v in arrays:
        header[name] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + v.nbytes]}
        offset += v.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    f.write(struct.pack("<Q", len(text)) + text)
    for _, v in arrays:
        f.write(v.data.cast("B"))


# ---- npz ------------------------------------------------------------------------------------------
def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {name: z[name] for name in z.files}
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read `{path}` as .npz: {e}") from None
    for name, v in out.items():
        if not np.issubdtype(v.dtype, np.floating):
            raise WeightsError(f"`{path}`: `{name}` is {v.dtype}; weights must be floating point")
    return {name: v.astype(np.float32, copy=False) for name, v in out.items()}


def _write_npz(f, tensors: Iterable[tuple[str, np.ndarray]], metadata: Mapping[str, str]) -> None:
    import zipfile

    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        for name, v in tensors:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))  # deterministic
            with z.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(v, dtype="<f4"), allow_pickle=False)


# ---- a checkpoint onto a network --------------------------------------------------------------------
def assign(full: Graph, graph: Graph, weights: str | os.PathLike | Mapping[str, np.ndarray],
           weights_map: str | os.PathLike | Mapping[str, str | None] | None = None) \
        -> tuple[list[tuple[Param, np.ndarray]], list]:
    """Each parameter of `graph` (a view of `full`, perhaps without its train-only heads) with its value
    from `weights`, and the mapping used (`mapping.Entry` rows; empty when the file uses the network's own
    names). A file in another framework's names is mapped from structure (compiler/mapping.py), with the
    renames of `weights_map` (a YAML file or a mapping) first."""
    from . import mapping

    if isinstance(weights, (str, os.PathLike)):
        ckpt, source = load(weights), os.fspath(weights)
    else:
        ckpt, source = Checkpoint(dict(weights)), "the weights given"
    kept = {q.name for q in graph.params}
    heads = [p.name for p in full.params if p.name not in kept]
    own = sum(p.name in ckpt.tensors for p in full.params)
    if weights_map is None and own * 2 >= len(ckpt.tensors):  # mostly the network's own names: exact, by name
        return match(graph.params, ckpt.tensors, source, heads), []
    renames = mapping.read_renames(weights_map) if isinstance(weights_map, (str, os.PathLike)) else weights_map
    optional = {layer.name for layer in full.layers if layer.head is not None} if heads else set()
    layers = list(full.layers) if ckpt.network_order is None else ckpt.network_order(list(full.layers))
    entries = mapping.plan(layers, {k: v.shape for k, v in ckpt.tensors.items()}, source, renames,
                           ckpt.roles, sort=not ckpt.ordered, optional=optional)
    convert = None
    if ckpt.convert is not None:
        to_network = ckpt.convert(full)

        def convert(value: np.ndarray, entry: mapping.Entry) -> tuple[np.ndarray, str]:
            return to_network(value, entry.target)
    values, done = mapping.values(entries, ckpt.tensors, ckpt.layouts, convert)
    return match(graph.params, values, source, heads), done
