"""Normalisation: `batchnorm` (inference form, running statistics) and `lrn` (across channels)."""
from __future__ import annotations

from ..ir import Layer, Param, Shape
from . import labels
from .base import Arg, Attrs, Drawing, Emitter, OpDef, OpError, no_macs, no_params, spatial


def _bn_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    c = (shape[0],)
    gamma = (Param(f"{name}.weight", c, True, "ones"),) if a["scale"] else ()
    return (*gamma, Param(f"{name}.bias", c, True, "zeros"),
            Param(f"{name}.running_mean", c, False, "zeros"), Param(f"{name}.running_var", c, False, "ones"))


def _bn_lower(layer: Layer, e: Emitter) -> list:
    names = {p.name.rsplit(".", 1)[1]: p.name for p in layer.params}
    channels = layer.shape[0]
    scale = names.get("weight") or e.constant(f"{layer.name}.unit_scale", [1.0] * channels, "float")
    inputs = [e.t(layer.inputs[0]), scale, names["bias"], names["running_mean"], names["running_var"]]
    return [e.node(layer, "BatchNormalization", inputs, epsilon=layer.attrs["eps"])]


BATCHNORM = OpDef(
    "batchnorm", "batch normalisation, inference form (running statistics); `scale=false` has no gamma "
    "(a constant 1, not a parameter)",
    (Arg("eps", "float", 1e-5, "added to the variance before the square root"),
     Arg("scale", "bool", True, "learn a gamma per channel (Keras `scale=False` has none)")),
    lambda a, s: s if len(s) in (1, 3) else spatial(s), _bn_params, no_macs, _bn_lower,
    Drawing("norm", labels.fixed("BN"), "BN"), per_channel=True)

def _lrn_infer(a: Attrs, shape: Shape) -> Shape:
    if a["size"] % 2 == 0:  # ONNX Runtime refuses to load an even LRN, and Caffe to define one
        raise OpError(f"`lrn` size must be odd (a window centred on each map), got {a['size']}", "size")
    return spatial(shape)


LRN = OpDef(
    "lrn", "local response normalisation across channels, ONNX/Caffe convention: "
    "`x / (bias + alpha / size * sum of x^2 over size maps) ^ beta`; the AlexNet paper's k=2, alpha=1e-4 "
    "undivided is `lrn(5, 0.0005, 0.75, 2)`",
    (Arg("size", "int", 5, "number of neighbouring maps summed over (odd)"),
     Arg("alpha", "float", 1e-4, "scale of the sum (divided by `size`)"),
     Arg("beta", "float", 0.75, "exponent"), Arg("bias", "float", 1.0, "added before the exponent")),
    lambda a, s: _lrn_infer(a, s), no_params, no_macs,
    lambda layer, e: [e.node(layer, "LRN", [e.t(layer.inputs[0])],
                             **{k: layer.attrs[k] for k in ("size", "alpha", "beta", "bias")})],
    Drawing("other", lambda a, paper: f"LRN {a['size']}"))

DEFINITIONS = (BATCHNORM, LRN)
