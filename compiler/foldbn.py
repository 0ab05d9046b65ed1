"""Inference-mode batch normalisation folded into the convolution before it (`--fold-bn`).

A BN reading a conv's output computes, per output channel, (conv(x) + b - mean) * s + beta with
s = gamma / sqrt(var + eps): the conv with weight W * s and bias (b - mean) * s + beta. Where nothing
but the BN reads the conv's output (nor is it a model output), the pair becomes that one conv: fewer
nodes, a smaller file, the same outputs up to rounding. A separable conv folds the same way into its
pointwise half (Xception's sepconv + BN); convs with a connection table are left alone.

Like the tower rewrite (compiler/towers.py) this changes the graph, not the network: the folded conv's
tensors (`CONV.folded_weight` or `CONV.folded_pointwise_weight`, and `CONV.folded_bias`) are computed
from the source parameters by `Fold` recipes when the model is written, so weights files keep the source
names. The conv keeps its name and takes the BN's output tensor, so everything downstream reads what it
read before.

`fold_scales` does the same for a constant `scale(s)` after a conv (Inception-ResNet's residual scale):
conv(x; W, b) * s is conv(x; W * s, b * s), exactly up to rounding, and without the `Mul` ONNX Runtime
fuses the conv with the residual `Add` and the ReLU after it (benchmarks/RESULTS.md measures it). Its
tensors are `CONV.scaled_weight` (or `CONV.scaled_folded_weight`, after a BN fold) and `CONV.scaled_bias`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Literal

import numpy as np

from .ir import Graph, Layer, Param
from .ops import OPS, PASSTHROUGH

Role = Literal["weight", "bias", "gamma", "beta", "mean", "var"]


@dataclass(frozen=True)
class Fold:
    """A folded conv's weight or bias, made from the source tensors `sources` (each playing its role)."""

    sources: tuple[str, ...]
    roles: tuple[Role, ...]
    part: Literal["weight", "bias"]
    eps: float

    def assemble(self, values: list[np.ndarray]) -> np.ndarray:
        v = dict(zip(self.roles, values))
        scale = v.get("gamma", 1.0) / np.sqrt(v["var"].astype(np.float64) + self.eps)
        if self.part == "weight":
            weight = v["weight"]
            return (weight * scale.reshape(-1, *[1] * (weight.ndim - 1))).astype(np.float32)
        return ((v.get("bias", 0.0) - v["mean"]) * scale + v["beta"]).astype(np.float32)


def fold_batchnorm(graph: Graph) -> tuple[Graph, dict[str, Fold]]:
    """`graph` with every foldable conv + BN pair made one conv, and the recipes of the folded tensors."""
    return _folded(graph, "batchnorm", _fold)


def _folded(graph: Graph, op: str, rewrite: Callable[[Layer, Layer, int, dict], Layer]) -> tuple[Graph, dict]:
    """`graph` with each `op` layer that `_foldable` finds dropped and its conv rewritten by `rewrite(conv,
    the op layer, the parameter index, recipes)`, which records the recipes of the tensors it changes."""
    pairs = _foldable(graph, op)
    if not pairs:
        return graph, {}
    dropped = {layer.name for layer, _ in pairs.values()}
    recipes: dict = {}
    layers = tuple(rewrite(layer, *pairs[layer.name], recipes) if layer.name in pairs else layer
                   for layer in graph.layers if layer.name not in dropped)
    return replace(graph, layers=layers), recipes


def _foldable(graph: Graph, op: str) -> dict[str, tuple[Layer, int]]:
    """conv name -> the `op` layer (a batchnorm, a scale) that reads its output, the only reader of it,
    and the index of the conv's parameter it folds into."""
    producer = {layer.output: layer for layer in graph.layers if layer.op not in PASSTHROUGH}
    uses = graph.uses()
    pairs: dict[str, tuple[Layer, int]] = {}
    for layer in graph.layers:
        conv = producer.get(layer.inputs[0]) if layer.op == op else None
        at = _folds_into(conv) if conv is not None else None
        if conv is not None and at is not None and uses[conv.output] == 1:
            pairs[conv.name] = layer, at
    return pairs


def _folds_into(layer: Layer) -> int | None:
    """The index of the parameter of `layer` a following BN folds into, or None (its op's `bn_fold`)."""
    op = OPS.get(layer.op)
    return op.bn_fold(layer.attrs) if op is not None and op.bn_fold is not None else None


def _fold(conv: Layer, bn: Layer, at: int, recipes: dict[str, Fold]) -> Layer:
    """`conv` with `bn` folded into its parameter `at` (the weight whose output channels `bn` scales)."""
    kind = {p.name.rsplit(".", 1)[1]: p.name for p in bn.params}
    stats: list[tuple[Role, str]] = [("gamma", kind["weight"])] if "weight" in kind else []
    stats.append(("var", kind["running_var"]))
    kept, source_weight, source_bias = conv.params[:at], conv.params[at], conv.params[at + 1:]
    eps = bn.attrs["eps"]
    weight = replace(source_weight, name=f"{conv.name}.folded_{source_weight.name.rsplit('.', 1)[1]}")
    bias = Param(f"{conv.name}.folded_bias", (conv.shape[0],), True, "zeros")
    _recipe(recipes, weight.name, "weight", [("weight", source_weight.name), *stats], eps)
    _recipe(recipes, bias.name, "bias", [*(("bias", p.name) for p in source_bias), *stats,
                                         ("beta", kind["bias"]), ("mean", kind["running_mean"])], eps)
    return replace(conv, attrs={**conv.attrs, "bias": True}, output=bn.output, shape=bn.shape,
                   params=(*kept, weight, bias))


@dataclass(frozen=True)
class Scaled:
    """A conv's weight or bias times a constant: the scale folded into it."""

    sources: tuple[str]
    factor: float

    def assemble(self, values: list[np.ndarray]) -> np.ndarray:
        return (values[0].astype(np.float64) * self.factor).astype(np.float32)


def fold_scales(graph: Graph) -> tuple[Graph, dict[str, Scaled]]:
    """`graph` with every constant scale read from a foldable conv's output (and nothing else reading that
    output) folded into the conv, and the recipes of the scaled tensors."""
    return _folded(graph, "scale", _scaled)


def _scaled(conv: Layer, scale: Layer, at: int, recipes: dict[str, Scaled]) -> Layer:
    """`conv` times `scale`'s factor: its weight at `at` and the bias after it (if any) scaled."""
    factor = float(scale.attrs["factor"])
    params = list(conv.params)
    for i in range(at, len(params)):
        source = params[i]
        params[i] = replace(source, name=f"{conv.name}.scaled_{source.name.rsplit('.', 1)[1]}")
        recipes[params[i].name] = Scaled((source.name,), factor)
    return replace(conv, output=scale.output, shape=scale.shape, params=tuple(params))


def _recipe(recipes: dict[str, Fold], name: str, part: Literal["weight", "bias"],
            sources: list[tuple[Role, str]], eps: float) -> None:
    recipes[name] = Fold(tuple(s for _, s in sources), tuple(r for r, _ in sources), part, eps)
