"""The compiler stage: a validated `Document` -> `ir.Graph` (shapes, parameters, MACs) -> ONNX.

`build` needs no ONNX at all (what `cnnc check` and `cnnc summary` run); `to_onnx` imports it lazily.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Iterable, Iterator

from ..dsl.document import Document
from .graph import infer
from .ir import Graph, Param
from .resolve import resolve

if TYPE_CHECKING:
    import numpy as np
    import onnx


def build(doc: Document, aux: bool = False) -> Graph:
    """Expand, evaluate and shape-check a document (with its train-only heads when `aux`)."""
    tree, found = resolve(doc)
    graph = infer(doc.name, doc.input, tree, aux, found)
    for warning in graph.warnings:
        warnings.warn(warning, stacklevel=2)
    return graph


def to_onnx(graph: Graph, seed: int = 0, weights: Iterable[tuple[Param, np.ndarray]] | None = None,
            producer_version: str = "", metadata: dict[str, str] | None = None,
            group_towers: bool = True) -> onnx.ModelProto:
    """Lower `graph` to ONNX with seeded initial weights (or the `weights` given, by source parameter).

    With `group_towers`, identical parallel towers become grouped convolutions (compiler/towers.py).
    """
    from .lower import lower
    from .weights import initial_weights

    values = weights if weights is not None else initial_weights(graph, seed)
    if group_towers:
        from .towers import group_towers as stack
        graph, recipes = stack(graph)
        if recipes:
            values = _assembled(graph, values, recipes)
    return lower(graph, values, producer_version, metadata)


def _assembled(graph: Graph, values: Iterable[tuple[Param, np.ndarray]], recipes: dict) -> Iterator:
    """The values of `graph`'s parameters, stacked ones assembled from their source tensors."""
    needed = {name for recipe in recipes.values() for name in recipe.sources}
    held: dict[str, np.ndarray] = {}
    for param, value in values:
        if param.name in needed:
            held[param.name] = value
        else:
            yield param, value
    for param in graph.params:
        if param.name in recipes:
            recipe = recipes[param.name]
            yield param, recipe.assemble([held[name] for name in recipe.sources])
