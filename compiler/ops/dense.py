"""Dense layers and reshaping: `dense`, `flatten`, and the pass-throughs `dropout` and `identity`."""
from __future__ import annotations

import math

from ..ir import Layer, Param, Shape
from . import labels
from .activation import unary
from .base import Arg, Attrs, Drawing, Emitter, OpDef, flat, he, no_macs, no_params, same


def _dense_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    n = flat(shape)
    weight = he(f"{name}.weight", (a["units"], n), n)
    return (weight, Param(f"{name}.bias", (a["units"],), True, "zeros")) if a["bias"] else (weight,)


def _dense_lower(layer: Layer, e: Emitter) -> list:
    return [e.node(layer, "Gemm", [e.t(layer.inputs[0])] + [p.name for p in layer.params], transB=1)]


def _nothing(layer: Layer, e: Emitter) -> list:
    return []


DENSE = OpDef(
    "dense", "fully connected layer; weight `[units, inputs]` (PyTorch layout)",
    (Arg("units", "int", doc="number of outputs"), Arg("bias", "bool", True, "add a learned bias per output")),
    lambda a, s: (flat(s) and a["units"],), _dense_params, lambda a, i, o: i[0] * o[0], _dense_lower,
    Drawing("dense", labels.units("dense")))
FLATTEN = OpDef("flatten", "`[C, H, W] -> [C*H*W]`, channel-major", (), lambda a, s: (math.prod(s),),
                no_params, no_macs, unary("Flatten", axis=1), Drawing("other", labels.fixed("flatten")))
DROPOUT = OpDef("dropout", "identity at inference; no ONNX node",
                (Arg("rate", "rate", 0.5, "fraction dropped in training"),),
                same, no_params, no_macs, _nothing, Drawing("other", lambda a, paper: f"dropout {a['rate']:g}"),
                passthrough=True)
IDENTITY = OpDef("identity", "passes its input through", (), same, no_params, no_macs, _nothing,
                 Drawing("other", labels.fixed("identity"), wire=True), passthrough=True)

DEFINITIONS = (DENSE, FLATTEN, DROPOUT, IDENTITY)
