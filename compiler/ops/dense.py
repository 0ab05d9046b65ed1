"""Dense layers and reshaping: `dense`, `flatten`, the channel rearrangements `shuffle` and `channels`, and
the pass-throughs `dropout`, `droppath` and `identity`."""
from __future__ import annotations

import math

from ..ir import Layer, Param, Shape
from . import labels
from .activation import unary
from .base import Arg, Attrs, Drawing, Emitter, OpDef, OpError, flat, he, no_macs, no_params, same, spatial


def _dense_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    n = flat(shape)
    weight = he(f"{name}.weight", (a["units"], n), n)
    return (weight, Param(f"{name}.bias", (a["units"],), True, "zeros")) if a["bias"] else (weight,)


def _dense_lower(layer: Layer, e: Emitter) -> list:
    return [e.node(layer, "Gemm", [e.t(layer.inputs[0])] + [p.name for p in layer.params], transB=1)]


def _nothing(layer: Layer, e: Emitter) -> list:
    return []


def _shuffle_infer(a: Attrs, shape: Shape) -> Shape:
    c = spatial(shape)[0]
    if c % a["groups"]:
        raise OpError(f"groups={a['groups']} must divide the input's {c} channels", "groups")
    return shape


def _shuffle_lower(layer: Layer, e: Emitter) -> list:
    """torchvision's `channel_shuffle`: [N, g, C/g, H, W], swap the two channel axes, [N, C, H, W]."""
    name, g = layer.name, layer.attrs["groups"]
    c, h, w = layer.shape
    split = e.constant(f"{name}/split_shape", [0, g, c // g, h, w], "int64")
    merged = e.constant(f"{name}/merged_shape", [0, c, h, w], "int64")
    grouped, swapped = f"{name}/grouped", f"{name}/swapped"
    return [e.make("Reshape", [e.t(layer.inputs[0]), split], [grouped], grouped, allowzero=0),
            e.make("Transpose", [grouped], [swapped], swapped, perm=[0, 2, 1, 3, 4]),
            e.node(layer, "Reshape", [swapped, merged], allowzero=0)]


def _channels_infer(a: Attrs, shape: Shape) -> Shape:
    c, start = shape[0], a["start"]
    stop = c if a["stop"] is None else a["stop"]
    if start >= c:
        raise OpError(f"`channels` start={start} is not a channel of the input's {c} (0 to {c - 1})", "start")
    if stop > c:
        raise OpError(f"`channels` stop={stop} is beyond the input's {c} channels", "stop")
    if stop <= start:
        raise OpError(f"`channels({start}, {stop})` is empty: stop must be above start", "stop")
    return (stop - start, *shape[1:])


def _channels_lower(layer: Layer, e: Emitter) -> list:
    name, start = layer.name, layer.attrs["start"]
    bounds = [e.constant(f"{name}/{key}", [v], "int64")
              for key, v in (("starts", start), ("ends", start + layer.shape[0]), ("axes", 1), ("steps", 1))]
    return [e.node(layer, "Slice", [e.t(layer.inputs[0]), *bounds])]


def _channels_label(a: Attrs, paper: bool) -> str:
    return f"channels {a['start']}:{'' if a['stop'] is None else a['stop']}"


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
DROPPATH = OpDef(
    "droppath", "stochastic depth (torchvision `StochasticDepth`, mode `row`): drops a residual branch for "
    "a whole sample in training; identity at inference, no ONNX node",
    (Arg("rate", "rate", 0.0, "probability that a sample's branch is dropped in training"),),
    same, no_params, no_macs, _nothing, Drawing("other", lambda a, paper: f"drop-path {a['rate']:g}"),
    passthrough=True)
SHUFFLE = OpDef(
    "shuffle", "ShuffleNet's channel shuffle (torchvision `channel_shuffle`): channel `i * C/groups + j` "
    "moves to `j * groups + i`", (Arg("groups", "int", doc="number of groups; must divide the channels"),),
    _shuffle_infer, no_params, no_macs, _shuffle_lower, Drawing("other", lambda a, paper: f"shuffle {a['groups']}"))
CHANNELS = OpDef(
    "channels", "the input's channels `start <= c < stop`: ShuffleNet-v2's split is `concat: {left: "
    "channels(0, c // 2), right: [channels(c // 2), ...]}`",
    (Arg("start", "index", doc="the first channel kept (from 0)"),
     Arg("stop", "int", None, "one past the last channel kept; defaults to C")),
    _channels_infer, no_params, no_macs, _channels_lower, Drawing("other", _channels_label))
IDENTITY = OpDef("identity", "passes its input through", (), same, no_params, no_macs, _nothing,
                 Drawing("other", labels.fixed("identity"), wire=True), passthrough=True)

DEFINITIONS = (DENSE, FLATTEN, SHUFFLE, CHANNELS, DROPOUT, DROPPATH, IDENTITY)
