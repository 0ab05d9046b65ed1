"""The Python API; the CLI is a thin layer over it.

    net = cnnc.load("resnet50")            # a shipped name or a path -> validated Document
    graph = cnnc.build(net)                # shapes, parameters, MACs
    model = cnnc.compile(net, seed=0)      # onnx.ModelProto
    cnnc.save(model, "resnet50.onnx")      # atomic write
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Union

from . import __version__
from .architectures import names as shipped_names, path as shipped_path
from .compiler import build as _build, to_onnx
from .compiler.ir import Graph
from .dsl.document import Document, load as _load_file
from .dsl.errors import CnncError, SourceError, did_you_mean

if TYPE_CHECKING:
    import numpy as np
    import onnx


def locate(net: str | os.PathLike) -> tuple[Path, str]:
    """The file a NET argument means (a path, or a shipped name) and how to show it in messages."""
    text = os.fspath(net)
    candidate = Path(text)
    if candidate.exists() or text.endswith((".yaml", ".yml")) or os.sep in text:
        return candidate, text
    shipped = shipped_path(text)
    if shipped is not None:
        return shipped, f"{text}.yaml"
    raise SourceError(f"`{text}` is neither a file nor a shipped architecture"
                      f"{did_you_mean(text, shipped_names())}; shipped: {', '.join(shipped_names())}")


def load(net: str | os.PathLike | Document) -> Document:
    """A validated network from a path or the name of a shipped architecture."""
    if isinstance(net, Document):
        return net
    file, display = locate(net)
    return _load_file(file, display)


def build(net: str | os.PathLike | Document, aux: bool = False) -> Graph:
    """The network's graph: every layer with its output shape, parameters and MACs. `aux` keeps the
    train-only heads (GoogLeNet's auxiliary classifiers) as extra outputs."""
    return _build(load(net), aux)


MAX_MODEL_BYTES = (2 << 30) - (64 << 20)  # protobuf's 2 GiB limit, less room for the graph itself


Weights = Union[str, os.PathLike, Mapping[str, "np.ndarray"]]


def compile(net: str | os.PathLike | Document, seed: int = 0, aux: bool = False,  # noqa: A001
            weights: Weights | None = None) -> onnx.ModelProto:
    """The network as an ONNX model, with seeded initial weights or with `weights` (a `.safetensors`
    or `.npz` file, or a mapping) loaded by parameter name."""
    doc = load(net)
    graph = _build(doc, aux)
    weight_bytes = 4 * sum(p.size for p in graph.params)
    if weight_bytes > MAX_MODEL_BYTES:
        largest = max(graph.layers, key=lambda layer: layer.param_count)
        raise CnncError(f"`{doc.name}` has {weight_bytes // 4:,} parameters ({weight_bytes / 2**30:.2f} GiB "
                        f"as float32; the largest layer, `{largest.name}`, has {largest.param_count:,}); a "
                        f"single ONNX file holds at most 2 GiB, and cnnc does not yet write ONNX external "
                        f"data", largest.loc)
    source_hash = hashlib.sha256(doc.source.text.encode()).hexdigest()
    metadata = {"cnnc.version": __version__, "cnnc.network": doc.name, "cnnc.source_sha256": source_hash}
    values = None
    if weights is None:
        metadata["cnnc.seed"] = str(seed)
    else:
        from .compiler import checkpoint
        tensors, source = (checkpoint.read(weights), os.fspath(weights)) if isinstance(weights, (str, os.PathLike)) \
            else (weights, "the weights given")
        optional = [] if aux else [p.name for p in _build(doc, True).params]
        values = checkpoint.match(graph.params, tensors, source, optional)
        metadata["cnnc.weights"] = Path(source).name if source != "the weights given" else "given"
    return to_onnx(graph, seed, values, producer_version=__version__, metadata=metadata)


def initial_weights(net: str | os.PathLike | Document, seed: int = 0, aux: bool = True):
    """Every named tensor of the network with its seeded initial value: the template for `--weights`."""
    from .compiler.weights import initial_weights as _initial
    return ((p.name, v) for p, v in _initial(_build(load(net), aux), seed))


def summary(net: str | os.PathLike | Document | Graph) -> dict[str, Any]:
    """Counts and per-layer shapes, as `cnnc summary --json` prints them."""
    graph = net if isinstance(net, Graph) else build(net)
    extra = {}
    if graph.aux_heads and not isinstance(net, Graph):
        full = build(net, aux=True)
        extra = {"aux_heads": list(full.aux_heads), "params_with_aux": full.counts(), "macs_with_aux": full.macs}
    return {
        "name": graph.name,
        "input_shape": list(graph.input_shape),
        "output_shape": list(graph.output_shape),
        "params": graph.counts(),
        "macs": graph.macs,
        "layers": [{"name": layer.name, "op": layer.op, "output_shape": list(layer.shape),
                    "params": layer.param_count, "macs": layer.macs} for layer in graph.layers],
        **extra,
    }


def save(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write `model` atomically: a temporary file beside `path`, then a rename."""
    path = Path(path)
    if path.is_dir():
        raise CnncError(f"`{path}` is a directory; give a file name for the model")
    if not path.parent.exists():
        raise CnncError(f"cannot write `{path}`: the folder `{path.parent}` does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, path)
    except OSError as e:
        raise CnncError(f"cannot write `{path}`: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
