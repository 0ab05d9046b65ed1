"""Element-wise functions: `relu`, `sigmoid`, `tanh`, `softmax`, `squash`, `scale`, and the modern
activations, each PyTorch's definition: `relu6`, `clip`, `hardswish`, `hardsigmoid`, `silu`, `gelu`,
`leakyrelu`, `elu`, `prelu` (a learned slope per channel)."""
from __future__ import annotations

from typing import Any

from ..ir import Layer, Param, Shape
from . import labels
from .base import (Arg, Attrs, Drawing, Emitter, Lowering, OpDef, OpError, no_macs, no_params, same,
                   spatial)


def unary(op_type: str, **attrs: Any) -> Lowering:
    """The lowering of an op that is one ONNX node on its one input."""
    return lambda layer, e: [e.node(layer, op_type, [e.t(layer.inputs[0])], **attrs)]


def _activation(name: str, doc: str, op_type: str, mark: str) -> OpDef:
    return OpDef(name, doc, (), same, no_params, no_macs, unary(op_type),
                 Drawing("activation", labels.fixed(mark), mark), per_channel=True)


def channel_first(a: Attrs, shape: Shape) -> Shape:
    """The shape rule of an element-wise op with a tensor per channel: a flat [C] or a [C, H, W] input."""
    return shape if len(shape) in (1, 3) else spatial(shape)


def _squash_lower(layer: Layer, e: Emitter) -> list:
    a, name = layer.attrs, layer.name
    slope = e.constant(f"{name}.slope", a["slope"], "float")
    amplitude = e.constant(f"{name}.amplitude", a["amplitude"], "float")
    return [e.make("Mul", [e.t(layer.inputs[0]), slope], [f"{name}/scaled"], f"{name}/scaled"),
            e.make("Tanh", [f"{name}/scaled"], [f"{name}/tanh"], f"{name}/tanh"),
            e.node(layer, "Mul", [f"{name}/tanh", amplitude])]


def _scale_lower(layer: Layer, e: Emitter) -> list:
    factor = e.constant(f"{layer.name}.factor", layer.attrs["factor"], "float")
    return [e.node(layer, "Mul", [e.t(layer.inputs[0]), factor])]


def _between(layer: Layer, e: Emitter, low: float, high: float) -> list:
    """ONNX Clip between constant bounds."""
    lo = e.constant(f"{layer.name}.min", low, "float")
    hi = e.constant(f"{layer.name}.max", high, "float")
    return [e.node(layer, "Clip", [e.t(layer.inputs[0]), lo, hi])]


def _clip_infer(a: Attrs, shape: Shape) -> Shape:
    if a["low"] > a["high"]:
        raise OpError(f"`clip` needs low <= high, got low={a['low']:g} above high={a['high']:g}", "low")
    return shape


def _silu_lower(layer: Layer, e: Emitter) -> list:
    x, gate = e.t(layer.inputs[0]), f"{layer.name}/sigmoid"
    return [e.make("Sigmoid", [x], [gate], gate), e.node(layer, "Mul", [x, gate])]


def _prelu_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    return (Param(f"{name}.weight", (shape[0],), True, "fill", fill=0.25),)


def _prelu_lower(layer: Layer, e: Emitter) -> list:
    """ONNX PRelu broadcasts the slope from the right: [C] becomes [C, 1, 1] for a [C, H, W] input."""
    x, slope = e.t(layer.inputs[0]), layer.params[0].name
    if len(layer.shape) == 1:
        return [e.node(layer, "PRelu", [x, slope])]
    axes = e.constant(f"{layer.name}/axes", list(range(1, len(layer.shape))), "int64")
    column = f"{layer.name}/slope"
    return [e.make("Unsqueeze", [slope, axes], [column], column), e.node(layer, "PRelu", [x, column])]


def _mark(mark: str) -> Drawing:
    return Drawing("activation", labels.fixed(mark), mark)


RELU = _activation("relu", "`max(x, 0)`", "Relu", "ReLU")
SIGMOID = _activation("sigmoid", "`1 / (1 + exp(-x))`", "Sigmoid", "sigmoid")
TANH = _activation("tanh", "`tanh(x)`", "Tanh", "tanh")
SOFTMAX = OpDef("softmax", "softmax over the channel axis", (), same, no_params, no_macs,
                unary("Softmax", axis=1), Drawing("softmax", labels.fixed("softmax")))
SQUASH = OpDef(
    "squash", "LeCun's squashing function, `amplitude * tanh(slope * x)` (1998: 1.7159 tanh(2x/3))",
    (Arg("amplitude", "float", 1.7159, "the output's bound"), Arg("slope", "float", 2 / 3, "the input's scale")),
    same, no_params, no_macs, _squash_lower,
    Drawing("activation", lambda a, paper: f"squash {a['amplitude']:.5g}·tanh({a['slope']:.4g}x)", "squash",
            shown=True),
    per_channel=True)
SCALE = OpDef(
    "scale", "multiplies by a constant: Inception-ResNet's `x + 0.17 * residual` is "
    "`add: {shortcut: identity, residual: [..., scale(0.17)]}`",
    (Arg("factor", "float", doc="the constant to multiply by"),),
    same, no_params, no_macs, _scale_lower, Drawing("scale", lambda a, paper: f"scale {a['factor']:g}"),
    per_channel=True)
RELU6 = OpDef("relu6", "`min(max(x, 0), 6)` (PyTorch `ReLU6`; MobileNet-v2)", (), same, no_params, no_macs,
              lambda layer, e: _between(layer, e, 0.0, 6.0), _mark("ReLU6"), per_channel=True)
CLIP = OpDef(
    "clip", "`min(max(x, low), high)` (PyTorch `clamp`, `Hardtanh`); `low` must not exceed `high`",
    (Arg("low", "float", doc="the lower bound"), Arg("high", "float", doc="the upper bound")),
    _clip_infer, no_params, no_macs, lambda layer, e: _between(layer, e, layer.attrs["low"], layer.attrs["high"]),
    Drawing("activation", labels.fixed("clip"), "clip"), per_channel=True)
HARDSWISH = _activation("hardswish", "`x * relu6(x + 3) / 6` (PyTorch `Hardswish`; MobileNet-v3's h-swish)",
                        "HardSwish", "h-swish")
HARDSIGMOID = OpDef(
    "hardsigmoid", "`max(0, min(1, alpha * x + beta))`; the defaults are PyTorch's `Hardsigmoid`, "
    "`relu6(x + 3) / 6` (MobileNet-v3's h-sigmoid); ONNX `HardSigmoid`'s own default alpha is 0.2 (Keras's)",
    (Arg("alpha", "float", 1 / 6, "the slope"), Arg("beta", "float", 0.5, "the value at 0")),
    same, no_params, no_macs,
    lambda layer, e: [e.node(layer, "HardSigmoid", [e.t(layer.inputs[0])], alpha=layer.attrs["alpha"],
                             beta=layer.attrs["beta"])],
    _mark("h-sigmoid"), per_channel=True)
SILU = OpDef("silu", "`x * sigmoid(x)`, also called swish (PyTorch `SiLU`; EfficientNet)", (), same, no_params,
             no_macs, _silu_lower, _mark("SiLU"), per_channel=True)
GELU = OpDef(
    "gelu", "`x * Phi(x)`, Phi the standard normal CDF: `0.5 * x * (1 + erf(x / sqrt(2)))` (PyTorch `GELU`; "
    "ViT, ConvNeXt); `approximate=true` is PyTorch's `approximate='tanh'`",
    (Arg("approximate", "bool", False, "use `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`"),),
    same, no_params, no_macs,
    lambda layer, e: [e.node(layer, "Gelu", [e.t(layer.inputs[0])],
                             approximate="tanh" if layer.attrs["approximate"] else "none")],
    _mark("GELU"), per_channel=True)
LEAKYRELU = OpDef(
    "leakyrelu", "`max(x, 0) + slope * min(x, 0)` (PyTorch `LeakyReLU`)",
    (Arg("slope", "float", 0.01, "the slope below 0 (PyTorch `negative_slope`)"),),
    same, no_params, no_macs, lambda layer, e: [e.node(layer, "LeakyRelu", [e.t(layer.inputs[0])],
                                                       alpha=layer.attrs["slope"])],
    _mark("LReLU"), per_channel=True)
ELU = OpDef(
    "elu", "`x` above 0, `alpha * (exp(x) - 1)` below (PyTorch `ELU`)",
    (Arg("alpha", "float", 1.0, "the value approached as x goes to minus infinity is `-alpha`"),),
    same, no_params, no_macs,
    lambda layer, e: [e.node(layer, "Elu", [e.t(layer.inputs[0])], alpha=layer.attrs["alpha"])],
    _mark("ELU"), per_channel=True)
PRELU = OpDef(
    "prelu", "`max(x, 0) + a * min(x, 0)` with a learned slope `a` per channel, `weight [C]` (PyTorch "
    "`PReLU(num_parameters=C)`), initially 0.25", (), channel_first, _prelu_params, no_macs, _prelu_lower,
    _mark("PReLU"), per_channel=True)

DEFINITIONS = (RELU, SIGMOID, TANH, SOFTMAX, SQUASH, SCALE, RELU6, CLIP, HARDSWISH, HARDSIGMOID, SILU, GELU,
               LEAKYRELU, ELU, PRELU)
