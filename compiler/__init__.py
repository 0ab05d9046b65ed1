"""The compiler stage: a validated `Document` -> `ir.Graph` (shapes, parameters, MACs) -> ONNX.

`build` needs no ONNX at all (what `cnnc check` and `cnnc summary` run); `to_onnx` imports it lazily.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Iterable, Iterator

from ..dsl.document import Document
from .graph import infer
from .ir import Graph, Param
from .resolve import RSeq, resolve

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from .lower import DType, Lowered
    from .values import Recipe


def build(doc: Document, aux: bool = False) -> Graph:
    """Expand, evaluate and shape-check a document: its graph with its train-only heads when `aux`,
    else `Graph.inference()` of it. Its warnings are issued through Python's `warnings`."""
    return view(build_full(doc), aux)


def view(full: Graph, aux: bool) -> Graph:
    """`full` with its train-only heads (`aux`) or without, issuing that view's warnings."""
    graph = full if aux else full.inference()
    for warning in graph.warnings:
        warnings.warn(warning, stacklevel=3)
    return graph


def build_full(doc: Document) -> Graph:
    """The document's whole graph, train-only heads included, issuing no warnings: for commands that
    use both views of one build (`view` issues them)."""
    return build_tree(doc)[1]


def build_tree(doc: Document) -> tuple[RSeq, Graph]:
    """The resolved tree (block calls kept, compiler/resolve.py) and the whole graph built from it."""
    tree, found = resolve(doc)
    return tree, infer(doc.name, doc.input, tree, found, doc.description or "")


def to_onnx(graph: Graph, seed: int = 0, weights: Iterable[tuple[Param, np.ndarray]] | None = None,
            producer_version: str = "", metadata: dict[str, str] | None = None,
            group_towers: bool = True, dtype: DType = "float32", fold_bn: bool = False) -> onnx.ModelProto:
    """Lower `graph` to ONNX with seeded initial weights (or the `weights` given, by source parameter).

    With `group_towers`, identical parallel towers become grouped convolutions (compiler/towers.py);
    with `fold_bn`, batch normalisations and constant scales fold into the convs before them
    (compiler/foldbn.py); `dtype` is the type of the weights and of every tensor inside the model
    (compiler/lower.py).
    """
    lowered, values = lower_onnx(graph, seed, weights, producer_version, metadata, group_towers, dtype, fold_bn)
    return lowered.complete(values)


def lower_onnx(graph: Graph, seed: int = 0, weights: Iterable[tuple[Param, np.ndarray]] | None = None,
               producer_version: str = "", metadata: dict[str, str] | None = None, group_towers: bool = True,
               dtype: DType = "float32", fold_bn: bool = False) -> tuple[Lowered, Iterator[Iterator[np.ndarray]]]:
    """As `to_onnx`, but the model less its parameters' values, and those values made lazily, in order,
    each as a stream of chunks: what compiler/protowriter.py writes to a file piece by piece."""
    from .lower import lower
    from .values import Given, Seeded, values

    source = Given(weights) if weights is not None else Seeded(seed)
    sources = graph.params
    recipes: dict[str, Recipe] = {}
    if group_towers:
        from .towers import group_towers as stack
        graph, stacked = stack(graph)
        recipes.update(stacked)
    if fold_bn:  # batch norms, then constant scales (Inception-ResNet's), into the convs before them
        from .foldbn import fold_batchnorm, fold_scales
        graph, folded = fold_batchnorm(graph)
        recipes.update(folded)
        graph, scaled = fold_scales(graph)
        recipes.update(scaled)
    lowered = lower(graph, producer_version, metadata, dtype)
    return lowered, values(lowered.params, sources, source, recipes, dtype)
