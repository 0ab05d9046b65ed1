"""The compiler stage: a validated `Document` -> `ir.Graph` (shapes, parameters, MACs) -> ONNX.

`build` needs no ONNX at all (what `cnnc check` and `cnnc summary` run); `to_onnx` imports it lazily.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..dsl.document import Document
from .graph import infer
from .ir import Graph, Param
from .resolve import resolve

if TYPE_CHECKING:
    import numpy as np
    import onnx


def build(doc: Document, aux: bool = False) -> Graph:
    """Expand, evaluate and shape-check a document (with its train-only heads when `aux`)."""
    return infer(doc.name, doc.input, resolve(doc), aux)


def to_onnx(graph: Graph, seed: int = 0, weights: Iterable[tuple[Param, np.ndarray]] | None = None,
            producer_version: str = "", metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """Lower `graph` to ONNX with seeded initial weights (or the `weights` given)."""
    from .lower import lower
    from .weights import initial_weights

    values = weights if weights is not None else initial_weights(graph, seed)
    return lower(graph, values, producer_version, metadata)
