"""Pooling: `maxpool`, `avgpool`, `globalavgpool`, `globalmaxpool` and PyTorch's `adaptiveavgpool`."""
from __future__ import annotations

from ..ir import Layer, Shape
from . import labels
from .base import (PADDING_DOC, Arg, Attrs, Drawing, Emitter, Lowering, OpDef, OpError, no_macs, no_params, spatial,
                   windowed)

WINDOW_ARGS = (Arg("kernel", "kernel", doc="window size, e.g. 3x3"),
               Arg("stride", "size", None, "step; defaults to the kernel size"),
               Arg("padding", "padding", "valid", PADDING_DOC),
               Arg("ceil_mode", "bool", False, "round the output size up (Caffe, PyTorch ceil_mode)"))


def window_prepare(a: Attrs, shape: Shape) -> Attrs:
    a = {**a, "stride": a["stride"] or a["kernel"]}
    _, pads = windowed(a, shape, a["kernel"])
    return {**a, "pads": pads}


def window_infer(a: Attrs, shape: Shape) -> Shape:
    out, pads = windowed(a, shape, a["kernel"])
    kh, kw = a["kernel"]
    if max(pads[0], pads[2]) >= kh or max(pads[1], pads[3]) >= kw:  # ONNX Runtime refuses such a model
        raise OpError(f"a pool's padding must be smaller than its window: padding (top, left, bottom, right) "
                      f"{list(pads)} with kernel {kh}x{kw}", "padding")
    return out


def _pool(op_type: str) -> Lowering:
    def lower(layer: Layer, e: Emitter) -> list:
        a = layer.attrs
        extra = {"count_include_pad": int(a["count_include_pad"])} if "count_include_pad" in a else {}
        return [e.node(layer, op_type, [e.t(layer.inputs[0])], kernel_shape=list(a["kernel"]),
                       strides=list(a["stride"]), pads=list(a["pads"]), ceil_mode=int(a["ceil_mode"]), **extra)]
    return lower


def _global(op_type: str) -> Lowering:
    def lower(layer: Layer, e: Emitter) -> list:
        if layer.attrs["keepdims"]:
            return [e.node(layer, op_type, [e.t(layer.inputs[0])])]
        pooled = f"{layer.name}/pooled"
        return [e.make(op_type, [e.t(layer.inputs[0])], [pooled], f"{layer.name}/pool"),
                e.node(layer, "Flatten", [pooled], axis=1)]
    return lower


def _global_infer(a: Attrs, shape: Shape) -> Shape:
    c = spatial(shape)[0]
    return (c, 1, 1) if a["keepdims"] else (c,)


# ---- adaptive average pooling ---------------------------------------------------------------------
def _adaptive_prepare(a: Attrs, shape: Shape) -> Attrs:
    return {**a, "input_size": spatial(shape)[1:]}


def averaging(n_in: int, n_out: int) -> list[list[float]]:
    """PyTorch's adaptive windows of one axis as an [out, in] matrix: output cell i is the mean of input
    cells floor(i * in / out) to ceil((i + 1) * in / out) - 1 (windows overlap or repeat when they must)."""
    rows = []
    for i in range(n_out):
        start, stop = i * n_in // n_out, -(-(i + 1) * n_in // n_out)
        rows.append([1 / (stop - start) if start <= j < stop else 0.0 for j in range(n_in)])
    return rows


def _adaptive_lower(layer: Layer, e: Emitter) -> list:
    """An Identity where nothing changes, an AveragePool where the windows tile the input evenly, and
    otherwise `A_h @ X @ A_w` with constant averaging matrices (MatMul broadcasts over batch and channels)."""
    name, x = layer.name, e.t(layer.inputs[0])
    (h, w), (oh, ow) = layer.attrs["input_size"], layer.attrs["size"]
    if (h, w) == (oh, ow):
        return [e.node(layer, "Identity", [x])]
    if h % oh == 0 and w % ow == 0:
        kernel = [h // oh, w // ow]
        return [e.node(layer, "AveragePool", [x], kernel_shape=kernel, strides=kernel, pads=[0, 0, 0, 0],
                       ceil_mode=0, count_include_pad=0)]
    nodes: list = []
    steps = [(axis, n_in, n_out) for axis, n_in, n_out in (("rows", h, oh), ("cols", w, ow)) if n_in != n_out]
    for k, (axis, n_in, n_out) in enumerate(steps):
        matrix = averaging(n_in, n_out)  # [out, in]; the columns' side multiplies by its transpose
        if axis == "rows":
            values, dims = [v for row in matrix for v in row], [n_out, n_in]
        else:
            values, dims = [matrix[i][j] for j in range(n_in) for i in range(n_out)], [n_in, n_out]
        flat = e.constant(f"{name}/{axis}_values", values, "float")
        shape = e.constant(f"{name}/{axis}_shape", dims, "int64")
        weights, pooled = f"{name}/{axis}_matrix", f"{name}/{axis}"
        nodes.append(e.make("Reshape", [flat, shape], [weights], weights))
        inputs = [weights, x] if axis == "rows" else [x, weights]
        nodes.append(e.node(layer, "MatMul", inputs) if k == len(steps) - 1
                     else e.make("MatMul", inputs, [pooled], pooled))
        x = pooled
    return nodes


MAXPOOL = OpDef("maxpool", "max pooling; `stride` defaults to the kernel size", WINDOW_ARGS, window_infer,
                no_params, no_macs, _pool("MaxPool"), Drawing("pool", labels.windowed("maxpool")), window_prepare,
                per_channel=True)
AVGPOOL = OpDef(
    "avgpool", "average pooling; padding is excluded from the mean by default (TensorFlow/Keras, ONNX); "
    "PyTorch includes it (`count_include_pad=true`)",
    (*WINDOW_ARGS, Arg("count_include_pad", "bool", False, "count padded cells in the mean (PyTorch's default)")),
    window_infer, no_params, no_macs, _pool("AveragePool"), Drawing("pool", labels.windowed("avgpool")),
    window_prepare, per_channel=True)
GLOBALAVGPOOL = OpDef(
    "globalavgpool", "mean over height and width: `[C, H, W] -> [C]` (or `[C, 1, 1]` with `keepdims`)",
    (Arg("keepdims", "bool", False, "keep [C, 1, 1] instead of flattening to [C]"),),
    _global_infer, no_params, no_macs, _global("GlobalAveragePool"), Drawing("pool", labels.fixed("global avgpool")))
GLOBALMAXPOOL = OpDef(
    "globalmaxpool", "max over height and width: `[C, H, W] -> [C]` (or `[C, 1, 1]` with `keepdims`)",
    (Arg("keepdims", "bool", False, "keep [C, 1, 1] instead of flattening to [C]"),),
    _global_infer, no_params, no_macs, _global("GlobalMaxPool"), Drawing("pool", labels.fixed("global maxpool")))
ADAPTIVEAVGPOOL = OpDef(
    "adaptiveavgpool", "average pooling to a given output size (PyTorch `AdaptiveAvgPool2d`): output cell i "
    "of an axis is the mean of input cells `floor(i * in / out)` to `ceil((i + 1) * in / out) - 1`; the "
    "output may be larger than the input",
    (Arg("size", "size", doc="the output's height x width, e.g. 7 or 7x7"),),
    lambda a, s: (spatial(s)[0], *a["size"]), no_params, no_macs, _adaptive_lower,
    Drawing("pool", lambda a, paper: f"adaptive avgpool {labels.size(a['size'])}"), _adaptive_prepare,
    per_channel=True)

DEFINITIONS = (MAXPOOL, AVGPOOL, GLOBALAVGPOOL, GLOBALMAXPOOL, ADAPTIVEAVGPOOL)
