"""Identical parallel towers -> grouped convolutions (ResNeXt's forms (a)/(b) -> (c), Xie et al. 2017, Fig. 3).

N towers that read the same tensor, have the same layers with the same attributes, and are merged by
`concat` or `add` compute what one stacked tower computes: the first conv gets N times the filters, every
later conv N times the groups, per-channel layers (BN, activations, pools, scale) act on the stacked
channels unchanged; a `concat` merge is then simply the stacked output, and an `add` merge folds into the
last conv, which reads the stacked channels and sums them (weights side by side, biases added).

The rewrite changes the graph, not the network: parameters keep their names and shapes in the source form
(what `cnnc weights` writes and `--weights` reads); `Recipe`s say how each stacked tensor is assembled.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from .ir import Graph, Layer
from .ops import MERGES, PASSTHROUGH, PER_CHANNEL


@dataclass(frozen=True)
class Recipe:
    """A stacked tensor made of source tensors: concatenated on `axis`, or summed (`axis` None)."""

    sources: tuple[str, ...]
    axis: int | None

    def assemble(self, values: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(values, axis=self.axis) if self.axis is not None else np.sum(values, axis=0)


def group_towers(graph: Graph) -> tuple[Graph, dict[str, Recipe]]:
    """`graph` with every rewritable set of towers stacked, and the recipes of the stacked tensors."""
    recipes: dict[str, Recipe] = {}
    while True:
        found = _find(graph)
        if found is None:
            return graph, recipes
        graph = _stack(graph, *found, recipes)


def _find(graph: Graph) -> tuple[Layer, list[list[Layer]]] | None:
    layers = [layer for layer in graph.layers if layer.op not in PASSTHROUGH]
    producer = {layer.output: layer for layer in layers}
    uses = graph.uses(layers)
    for merge in layers:
        towers = MERGES[merge.op].towers if merge.op in MERGES else None
        if towers is not None and len(merge.inputs) >= 2:
            found = [_chain(t, producer, uses) for t in merge.inputs]
            chains = [c for c in found if c is not None]
            if len(chains) == len(found) and _rewritable(towers, chains):
                return merge, chains
    return None


def _chain(tensor: str, producer: dict[str, Layer], uses: Counter) -> list[Layer] | None:
    """The single-input layers from the nearest fan-out point up to `tensor`."""
    chain: list[Layer] = []
    while tensor in producer and uses[tensor] == 1:
        layer = producer[tensor]
        if len(layer.inputs) != 1:
            return None
        chain.insert(0, layer)
        tensor = layer.inputs[0]
    return chain or None


def _signature(layer: Layer) -> tuple:
    return layer.op, tuple(sorted((k, repr(v)) for k, v in layer.attrs.items())), layer.shape, \
        tuple(p.shape for p in layer.params)


def _plain_conv(layer: Layer) -> bool:
    return layer.op == "conv" and layer.attrs.get("connections") is None


def _rewritable(towers: str, chains: list[list[Layer]]) -> bool:
    if len({len(c) for c in chains}) != 1:
        return False
    first = chains[0]
    if len({c[0].inputs[0] for c in chains}) != 1:
        return False
    if any(_signature(c[k]) != _signature(first[k]) for c in chains[1:] for k in range(len(first))):
        return False
    if not (_plain_conv(first[0]) and first[0].attrs["groups"] == 1):
        return False
    if any(not (_plain_conv(layer) or layer.op in PER_CHANNEL) for layer in first[1:]):
        return False
    if towers == "sum":
        return len(first) >= 2 and _plain_conv(first[-1]) and first[-1].attrs["groups"] == 1
    return True


def _stack(graph: Graph, merge: Layer, chains: list[list[Layer]], recipes: dict[str, Recipe]) -> Graph:
    n, first = len(chains), chains[0]
    base = f"{merge.name}/towers"
    branch = first[0].name[:first[0].name.find("/", len(merge.name) + 1) + 1] \
        if first[0].name.startswith(merge.name + "/") else ""
    new: list[Layer] = []
    x = first[0].inputs[0]
    for k, layer in enumerate(first):
        tail = layer.name[len(branch):] if branch and layer.name.startswith(branch) else str(k)
        name = f"{base}/{tail}"
        last = k == len(first) - 1
        fold = last and MERGES[merge.op].towers == "sum"  # sum of N convs = one conv over the stacked channels
        column = [c[k] for c in chains]
        attrs, shape = dict(layer.attrs), layer.shape
        if not fold:
            shape = (n * layer.shape[0], *layer.shape[1:])
        if layer.op == "conv" and not fold:
            attrs.update(filters=n * attrs["filters"], groups=(1 if k == 0 else n * attrs["groups"]))
        params = []
        for j, p in enumerate(layer.params):
            sources = tuple(c.params[j].name for c in column)
            suffix = p.name.rsplit(".", 1)[1]
            if fold:
                axis = 1 if p.name.endswith(".weight") else None
                pshape = (p.shape[0], n * p.shape[1], *p.shape[2:]) if axis == 1 else p.shape
            else:
                axis, pshape = 0, (n * p.shape[0], *p.shape[1:])
            stacked = replace(p, name=f"{name}.{suffix}", shape=pshape)
            recipes[stacked.name] = Recipe(sources, axis)
            params.append(stacked)
        output = merge.output if last else name
        new.append(Layer(name, layer.op, attrs, (x,), output, shape if not last else merge.shape,
                         tuple(params), sum(c.macs for c in column), layer.loc,
                         calls=merge.calls))  # the calls up to the merge: the towers' own are now one
        x = output
    gone = {layer.name for chain in chains for layer in chain} | {merge.name}
    dead = {layer.output for chain in chains for layer in chain}
    layers: list[Layer] = []
    for layer in graph.layers:
        if layer.name == merge.name:
            layers.extend(new)
        elif layer.name not in gone and not (layer.op in PASSTHROUGH and layer.inputs[0] in dead):
            layers.append(layer)
    return replace(graph, layers=tuple(layers))
