"""Element-wise functions: `relu`, `sigmoid`, `tanh`, `softmax`, `squash`, `scale`."""
from __future__ import annotations

from typing import Any

from ..ir import Layer
from . import labels
from .base import Arg, Drawing, Emitter, Lowering, OpDef, no_macs, no_params, same


def unary(op_type: str, **attrs: Any) -> Lowering:
    """The lowering of an op that is one ONNX node on its one input."""
    return lambda layer, e: [e.node(layer, op_type, [e.t(layer.inputs[0])], **attrs)]


def _activation(name: str, doc: str, op_type: str, mark: str) -> OpDef:
    return OpDef(name, doc, (), same, no_params, no_macs, unary(op_type),
                 Drawing("activation", labels.fixed(mark), mark), per_channel=True)


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


RELU = _activation("relu", "`max(x, 0)`", "Relu", "ReLU")
SIGMOID = _activation("sigmoid", "`1 / (1 + exp(-x))`", "Sigmoid", "sigmoid")
TANH = _activation("tanh", "`tanh(x)`", "Tanh", "tanh")
SOFTMAX = OpDef("softmax", "softmax over the channel axis", (), same, no_params, no_macs,
                unary("Softmax", axis=1), Drawing("softmax", labels.fixed("softmax")))
SQUASH = OpDef(
    "squash", "LeCun's squashing function, `amplitude * tanh(slope * x)` (1998: 1.7159 tanh(2x/3))",
    (Arg("amplitude", "float", 1.7159, "the output's bound"), Arg("slope", "float", 2 / 3, "the input's scale")),
    same, no_params, no_macs, _squash_lower, Drawing("activation", labels.fixed("squash"), "squash"),
    per_channel=True)
SCALE = OpDef(
    "scale", "multiplies by a constant: Inception-ResNet's `x + 0.17 * residual` is "
    "`add: {shortcut: identity, residual: [..., scale(0.17)]}`",
    (Arg("factor", "float", doc="the constant to multiply by"),),
    same, no_params, no_macs, _scale_lower, Drawing("scale", lambda a, paper: f"scale {a['factor']:g}"),
    per_channel=True)

DEFINITIONS = (RELU, SIGMOID, TANH, SOFTMAX, SQUASH, SCALE)
