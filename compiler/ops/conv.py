"""Convolutions: `conv` (grouped, dilated, or with a connection table) and `sepconv` (depthwise-separable)."""
from __future__ import annotations

from itertools import accumulate

from ..ir import Layer, Param, Shape
from . import labels
from .base import PADDING_DOC, Arg, Attrs, Drawing, Emitter, OpDef, OpError, he, spatial, windowed

_WINDOW = (Arg("stride", "size", (1, 1), "step of the window, e.g. 2 or 1x2"),
           Arg("padding", "padding", "valid", PADDING_DOC),
           Arg("dilation", "size", (1, 1), "spacing between kernel taps"))


def _label(op: str):
    def label(a: Attrs, paper: bool) -> str:
        extra = f", {a['groups']} groups" if a.get("groups", 1) > 1 else ""
        extra += ", connection table" if a.get("connections") else ""
        if paper:
            stride = f", {labels.stride(a)}" if labels.stride(a) else ""
            return f"{labels.size(a['kernel'])} {op}, {a['filters']}{stride}{extra}"
        return f"{op} {labels.size(a['kernel'])}{labels.stride(a)}, {a['filters']}{extra}"
    return label


# ---- conv ---------------------------------------------------------------------------------------
def _conv_prepare(a: Attrs, shape: Shape) -> Attrs:
    c = spatial(shape)[0]
    table = a.get("connections")
    if table is not None:
        _check_table(table, a, c)
    elif c % a["groups"] or a["filters"] % a["groups"]:
        raise OpError(f"groups={a['groups']} must divide both the input channels ({c}) and "
                      f"filters ({a['filters']})", "groups")
    _, pads = windowed(a, shape, a["kernel"], a["dilation"])
    return {**a, "pads": pads}


def _conv_infer(a: Attrs, shape: Shape) -> Shape:
    (_, oh, ow), _ = windowed(a, shape, a["kernel"], a["dilation"])
    return (a["filters"], oh, ow)


def _check_table(table: tuple[tuple[int, ...], ...], a: Attrs, channels: int) -> None:
    if len(table) != a["filters"]:
        raise OpError(f"the connection table has {len(table)} rows, but there are {a['filters']} "
                      f"filters; give one row per output map", "connections")
    if a["groups"] != 1:
        raise OpError("a connection table replaces `groups`; leave `groups` at 1", "groups")
    for j, row in enumerate(table):
        if max(row) >= channels:
            raise OpError(f"connection table row {j} reads input map {max(row)}, but the input has "
                          f"{channels} maps (0 to {channels - 1})", "connections")
        if len(set(row)) != len(row):
            raise OpError(f"connection table row {j} names an input map twice: {list(row)}", "connections")


def _conv_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    kh, kw = a["kernel"]
    table = a.get("connections")
    if table is not None:  # one kh x kw kernel per connection, in table order
        links = sum(len(row) for row in table)
        weight = he(f"{name}.weight", (links, 1, kh, kw), len(table[0]) * kh * kw)
    else:
        cin = shape[0] // a["groups"]
        weight = he(f"{name}.weight", (a["filters"], cin, kh, kw), cin * kh * kw)
    return (weight, Param(f"{name}.bias", (a["filters"],), True, "zeros")) if a["bias"] else (weight,)


def _conv_macs(a: Attrs, i: Shape, o: Shape) -> int:
    kh, kw = a["kernel"]
    table = a.get("connections")
    links = sum(len(row) for row in table) if table is not None else o[0] * (i[0] // a["groups"])
    return o[1] * o[2] * links * kh * kw


def _conv_lower(layer: Layer, e: Emitter) -> list:
    a = layer.attrs
    if a.get("connections") is not None:
        return _connected_conv(layer, e)
    inputs = [e.t(layer.inputs[0])] + [p.name for p in layer.params]
    return [e.node(layer, "Conv", inputs, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                   pads=list(a["pads"]), dilations=list(a["dilation"]), group=a["groups"])]


def _connected_conv(layer: Layer, e: Emitter) -> list:
    """A conv with a connection table, as one grouped conv per row length: rows of k inputs gather
    their input maps side by side and take their kernels from the packed weight; a final gather puts
    the output maps back in table order when grouping reordered them."""
    a, name = layer.attrs, layer.name
    table = a["connections"]
    weight, bias = layer.params[0].name, (layer.params[1].name if len(layer.params) > 1 else None)
    kh, kw = a["kernel"]
    starts = list(accumulate([0, *(len(row) for row in table)]))
    nodes, parts, order = [], [], []
    for k in sorted({len(row) for row in table}):
        rows = [j for j, row in enumerate(table) if len(row) == k]
        tag = f"{name}/fan_in{k}"
        maps = e.constant(f"{tag}/maps", [i for j in rows for i in table[j]], "int64")
        links = e.constant(f"{tag}/links", [i for j in rows for i in range(starts[j], starts[j + 1])],
                            "int64")
        shape = e.constant(f"{tag}/shape", [len(rows), k, kh, kw], "int64")
        inputs = [f"{tag}/input", f"{tag}/weight"]
        nodes += [e.make("Gather", [e.t(layer.inputs[0]), maps], [inputs[0]], f"{tag}/gather", axis=1),
                  e.make("Gather", [weight, links], [f"{tag}/kernels"], f"{tag}/kernels", axis=0),
                  e.make("Reshape", [f"{tag}/kernels", shape], [inputs[1]], f"{tag}/reshape")]
        if bias is not None:
            index = e.constant(f"{tag}/rows", rows, "int64")
            nodes.append(e.make("Gather", [bias, index], [f"{tag}/bias"], f"{tag}/bias", axis=0))
            inputs.append(f"{tag}/bias")
        nodes.append(e.make("Conv", inputs, [f"{tag}/output"], tag, kernel_shape=[kh, kw],
                            strides=list(a["stride"]), pads=list(a["pads"]), dilations=list(a["dilation"]),
                            group=len(rows)))
        parts.append(f"{tag}/output")
        order += rows
    if order == sorted(order):
        nodes.append(e.node(layer, "Concat", parts, axis=1) if len(parts) > 1 else e.node(layer, "Identity", parts))
        return nodes
    inverse = e.constant(f"{name}/order", sorted(range(len(order)), key=order.__getitem__), "int64")
    nodes.append(e.make("Concat", parts, [f"{name}/grouped"], f"{name}/concat", axis=1))
    return nodes + [e.node(layer, "Gather", [f"{name}/grouped", inverse], axis=1)]


CONV = OpDef(
    "conv", "2-D convolution; weight `[filters, C/groups, kh, kw]` (PyTorch layout); `groups=2` is AlexNet's "
    "two-GPU split; with `connections`, one kernel per table entry (see Connection tables)",
    (Arg("filters", "int", doc="number of output channels"), Arg("kernel", "kernel", doc="e.g. 3x3"),
     *_WINDOW, Arg("groups", "int", 1, "channel groups; input channels and filters must divide by it"),
     Arg("bias", "bool", True, "add a learned bias per output channel"),
     Arg("connections", "table", None, "for each output map, the input maps it reads")),
    _conv_infer, _conv_params, _conv_macs, _conv_lower, Drawing("conv", _label("conv")), _conv_prepare,
    bn_fold=lambda a: 0 if a.get("connections") is None else None)


# ---- sepconv ------------------------------------------------------------------------------------
def _sepconv_prepare(a: Attrs, shape: Shape) -> Attrs:
    spatial(shape)
    _, pads = windowed(a, shape, a["kernel"], a["dilation"])
    return {**a, "pads": pads}


def _sepconv_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    c, m = shape[0], a["depth_multiplier"]
    kh, kw = a["kernel"]
    out = (he(f"{name}.depthwise_weight", (c * m, 1, kh, kw), kh * kw),
           he(f"{name}.pointwise_weight", (a["filters"], c * m, 1, 1), c * m))
    return (*out, Param(f"{name}.bias", (a["filters"],), True, "zeros")) if a["bias"] else out


def _sepconv_macs(a: Attrs, i: Shape, o: Shape) -> int:
    kh, kw = a["kernel"]
    mid = i[0] * a["depth_multiplier"]
    return o[1] * o[2] * mid * (kh * kw + o[0])


def _sepconv_lower(layer: Layer, e: Emitter) -> list:
    a = layer.attrs
    depthwise, pointwise, *bias = [p.name for p in layer.params]
    channels = layer.params[0].shape[0] // a["depth_multiplier"]
    mid = f"{layer.name}/depthwise"
    return [e.make("Conv", [e.t(layer.inputs[0]), depthwise], [mid], mid, kernel_shape=list(a["kernel"]),
                   strides=list(a["stride"]), pads=list(a["pads"]), dilations=list(a["dilation"]),
                   group=channels),
            e.node(layer, "Conv", [mid, pointwise, *bias], kernel_shape=[1, 1])]


SEPCONV = OpDef(
    "sepconv", "depthwise-separable convolution (Keras `SeparableConv2D`): a `kernel` per input channel "
    "(`depthwise_weight [C*m, 1, kh, kw]`), then a 1x1 conv (`pointwise_weight [filters, C*m, 1, 1]`), "
    "nothing in between",
    (Arg("filters", "int", doc="number of output channels"), Arg("kernel", "kernel", doc="e.g. 3x3"),
     *_WINDOW, Arg("depth_multiplier", "int", 1, "depthwise outputs per input channel"),
     Arg("bias", "bool", False, "add a learned bias per output channel")),
    _conv_infer, _sepconv_params, _sepconv_macs, _sepconv_lower, Drawing("conv", _label("sepconv")),
    _sepconv_prepare, bn_fold=lambda a: 1)

DEFINITIONS = (CONV, SEPCONV)
