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
from typing import TYPE_CHECKING, Any

from . import __version__
from .architectures import names as shipped_names, path as shipped_path
from .compiler import build as _build, to_onnx
from .compiler.ir import Graph
from .dsl.document import Document, load as _load_file
from .dsl.errors import CnncError, SourceError, did_you_mean

if TYPE_CHECKING:
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


def build(net: str | os.PathLike | Document) -> Graph:
    """The network's graph: every layer with its output shape, parameters and MACs."""
    return _build(load(net))


MAX_MODEL_BYTES = (2 << 30) - (64 << 20)  # protobuf's 2 GiB limit, less room for the graph itself


def compile(net: str | os.PathLike | Document, seed: int = 0) -> onnx.ModelProto:  # noqa: A001
    """The network as an ONNX model with seeded initial weights."""
    doc = load(net)
    graph = _build(doc)
    weight_bytes = 4 * sum(p.size for p in graph.params)
    if weight_bytes > MAX_MODEL_BYTES:
        largest = max(graph.layers, key=lambda layer: layer.param_count)
        raise CnncError(f"`{doc.name}` has {weight_bytes // 4:,} parameters ({weight_bytes / 2**30:.2f} GiB "
                        f"as float32; the largest layer, `{largest.name}`, has {largest.param_count:,}); a "
                        f"single ONNX file holds at most 2 GiB, and cnnc does not yet write ONNX external "
                        f"data", largest.loc)
    source_hash = hashlib.sha256(doc.source.text.encode()).hexdigest()
    return to_onnx(graph, seed, producer_version=__version__,
                   metadata={"cnnc.version": __version__, "cnnc.network": doc.name,
                             "cnnc.source_sha256": source_hash, "cnnc.seed": str(seed)})


def summary(net: str | os.PathLike | Document | Graph) -> dict[str, Any]:
    """Counts and per-layer shapes, as `cnnc summary --json` prints them."""
    graph = net if isinstance(net, Graph) else build(net)
    return {
        "name": graph.name,
        "input_shape": list(graph.input_shape),
        "output_shape": list(graph.output_shape),
        "params": graph.counts(),
        "macs": graph.macs,
        "layers": [{"name": layer.name, "op": layer.op, "output_shape": list(layer.shape),
                    "params": layer.param_count, "macs": layer.macs} for layer in graph.layers],
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
