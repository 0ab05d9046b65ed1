"""LeCun et al. 1998's own layers: trainable `subsample` and Euclidean `rbf` output units."""
from __future__ import annotations

from ..ir import Layer, Param, Shape
from . import labels
from .base import Arg, Attrs, Drawing, Emitter, OpDef, flat, no_macs, spatial
from .pool import WINDOW_ARGS, window_infer, window_prepare


def _per_map(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    c = (spatial(shape)[0],)
    return Param(f"{name}.weight", c, True, "ones"), Param(f"{name}.bias", c, True, "zeros")


def _subsample_lower(layer: Layer, e: Emitter) -> list:
    """Sum of each window times a per-map coefficient, plus a per-map bias: a depthwise conv whose
    kernel is the coefficient repeated over the window."""
    a, name = layer.attrs, layer.name
    coefficient, bias = (p.name for p in layer.params)
    channels = layer.shape[0]
    kh, kw = a["kernel"]
    shape = e.constant(f"{name}/kernel_shape", [channels, 1, kh, kw], "int64")
    axes = e.constant(f"{name}/axes", [1, 2, 3], "int64")
    return [e.make("Unsqueeze", [coefficient, axes], [f"{name}/coefficient"], f"{name}/unsqueeze"),
            e.make("Expand", [f"{name}/coefficient", shape], [f"{name}/kernel"], f"{name}/expand"),
            e.node(layer, "Conv", [e.t(layer.inputs[0]), f"{name}/kernel", bias], kernel_shape=[kh, kw],
                   strides=list(a["stride"]), pads=list(a["pads"]), group=channels)]


def _rbf_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    return (Param(f"{name}.prototypes", (a["units"], flat(shape)), False, "sign", constant=True),)


def _rbf_lower(layer: Layer, e: Emitter) -> list:
    """y_i = sum_j (x_j - w_ij)^2, by broadcasting [batch, 1, n] against [units, n]."""
    name = layer.name
    axes = e.constant(f"{name}/axes", [1], "int64")
    reduce = e.constant(f"{name}/reduce", [2], "int64")
    return [e.make("Unsqueeze", [e.t(layer.inputs[0]), axes], [f"{name}/x"], f"{name}/unsqueeze"),
            e.make("Sub", [f"{name}/x", layer.params[0].name], [f"{name}/diff"], f"{name}/diff"),
            e.make("Mul", [f"{name}/diff", f"{name}/diff"], [f"{name}/square"], f"{name}/square"),
            e.node(layer, "ReduceSum", [f"{name}/square", reduce], keepdims=0)]


SUBSAMPLE = OpDef(
    "subsample", "LeCun's trainable subsampling: each window's sum times a learned coefficient per map "
    "(`weight [C]`), plus a learned `bias [C]`",
    WINDOW_ARGS[:3], window_infer, _per_map, no_macs, _subsample_lower,
    Drawing("pool", labels.windowed("subsampling", "trainable"), legend="trainable subsampling"), window_prepare)
RBF = OpDef(
    "rbf", "Euclidean radial basis units `y_i = sum_j (x_j - w_ij)^2`; the prototypes `prototypes [units, "
    "inputs]` are fixed constants (+-1 drawn from the seed), not parameters; a smaller output is a better match",
    (Arg("units", "int", doc="number of outputs"),),
    lambda a, s: (flat(s) and a["units"],), _rbf_params, no_macs, _rbf_lower,
    Drawing("dense", labels.units("RBF"), legend="RBF units (distance to prototypes)"))

DEFINITIONS = (SUBSAMPLE, RBF)
