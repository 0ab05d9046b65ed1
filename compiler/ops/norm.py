"""Normalisation: `batchnorm` (inference form, running statistics), `lrn` (across channels), `layernorm`
(over the channels at each position), `groupnorm`, and ConvNeXt's learned per-channel `layerscale`."""
from __future__ import annotations

from ..ir import Layer, Param, Shape
from . import labels
from .activation import channel_first
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
    (Arg("eps", "positive", 1e-5, "added to the variance before the square root"),
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
     Arg("alpha", "positive", 1e-4, "scale of the sum (divided by `size`)"),
     Arg("beta", "positive", 0.75, "exponent"), Arg("bias", "positive", 1.0, "added before the exponent")),
    lambda a, s: _lrn_infer(a, s), no_params, no_macs,
    lambda layer, e: [e.node(layer, "LRN", [e.t(layer.inputs[0])],
                             **{k: layer.attrs[k] for k in ("size", "alpha", "beta", "bias")})],
    Drawing("other", lambda a, paper: f"LRN {a['size']}"))


def _affine(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    """A learned scale (ones) and shift (zeros) per channel, as PyTorch's norms initialise them."""
    c = (shape[0],)
    return Param(f"{name}.weight", c, True, "ones"), Param(f"{name}.bias", c, True, "zeros")


def _layernorm_lower(layer: Layer, e: Emitter) -> list:
    """LayerNormalization normalises the last axes, so a [C, H, W] input goes channels-last and back."""
    a, name = layer.attrs, layer.name
    weight, bias = (p.name for p in layer.params)
    norm = {"axis": -1, "epsilon": a["eps"], "stash_type": 1}
    if len(layer.shape) == 1:
        return [e.node(layer, "LayerNormalization", [e.t(layer.inputs[0]), weight, bias], **norm)]
    last, normed = f"{name}/channels_last", f"{name}/normalised"
    return [e.make("Transpose", [e.t(layer.inputs[0])], [last], last, perm=[0, 2, 3, 1]),
            e.make("LayerNormalization", [last, weight, bias], [normed], normed, **norm),
            e.node(layer, "Transpose", [normed], perm=[0, 3, 1, 2])]


def _groupnorm_infer(a: Attrs, shape: Shape) -> Shape:
    c = channel_first(a, shape)[0]
    if c % a["groups"]:
        raise OpError(f"groups={a['groups']} must divide the input's {c} channels", "groups")
    return shape


def _layerscale_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    return (Param(f"{name}.weight", (shape[0], *[1] * (len(shape) - 1)), True, "fill", fill=a["init"]),)


LAYERNORM = OpDef(
    "layernorm", "layer normalisation over the channels at each position (ConvNeXt's `LayerNorm2d`, which "
    "uses eps=1e-6): `(x - mean) / sqrt(var + eps) * weight + bias`, mean and biased variance over C; "
    "`weight [C]` (ones), `bias [C]` (zeros)",
    (Arg("eps", "positive", 1e-5, "added to the variance before the square root"),),
    channel_first, _affine, no_macs, _layernorm_lower, Drawing("norm", labels.fixed("LN"), "LN"))
GROUPNORM = OpDef(
    "groupnorm", "group normalisation (PyTorch `GroupNorm`): mean and biased variance over each group of "
    "C/groups channels and every position, then `weight [C]` (ones) and `bias [C]` (zeros) per channel",
    (Arg("groups", "int", doc="number of groups; must divide the channels"),
     Arg("eps", "positive", 1e-5, "added to the variance before the square root")),
    _groupnorm_infer, _affine, no_macs,
    lambda layer, e: [e.node(layer, "GroupNormalization", [e.t(layer.inputs[0]), *(p.name for p in layer.params)],
                             num_groups=layer.attrs["groups"], epsilon=layer.attrs["eps"], stash_type=1)],
    Drawing("norm", labels.fixed("GN"), "GN"))
LAYERSCALE = OpDef(
    "layerscale", "a learned scale per channel, `x * weight` (ConvNeXt's layer scale): `weight [C, 1, 1]` "
    "(torchvision's `layer_scale`), `[C]` on a flat input, every element initially `init`",
    (Arg("init", "float", 1e-6, "the initial value of the scales"),),
    channel_first, _layerscale_params, no_macs,
    lambda layer, e: [e.node(layer, "Mul", [e.t(layer.inputs[0]), layer.params[0].name])],
    Drawing("scale", labels.fixed("layer scale")), per_channel=True)

DEFINITIONS = (BATCHNORM, LRN, LAYERNORM, GROUPNORM, LAYERSCALE)
