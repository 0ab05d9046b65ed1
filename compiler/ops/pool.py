"""Pooling: `maxpool`, `avgpool`, `globalavgpool`."""
from __future__ import annotations

from ..ir import Layer, Shape
from . import labels
from .base import PADDING_DOC, Arg, Attrs, Drawing, Emitter, Lowering, OpDef, no_macs, no_params, spatial, windowed

WINDOW_ARGS = (Arg("kernel", "kernel", doc="window size, e.g. 3x3"),
               Arg("stride", "size", None, "step; defaults to the kernel size"),
               Arg("padding", "padding", "valid", PADDING_DOC),
               Arg("ceil_mode", "bool", False, "round the output size up (Caffe, PyTorch ceil_mode)"))


def window_prepare(a: Attrs, shape: Shape) -> Attrs:
    a = {**a, "stride": a["stride"] or a["kernel"]}
    _, pads = windowed(a, shape, a["kernel"])
    return {**a, "pads": pads}


def window_infer(a: Attrs, shape: Shape) -> Shape:
    return windowed(a, shape, a["kernel"])[0]


def _pool(op_type: str) -> Lowering:
    def lower(layer: Layer, e: Emitter) -> list:
        a = layer.attrs
        extra = {"count_include_pad": int(a["count_include_pad"])} if "count_include_pad" in a else {}
        return [e.node(layer, op_type, [e.t(layer.inputs[0])], kernel_shape=list(a["kernel"]),
                       strides=list(a["stride"]), pads=list(a["pads"]), ceil_mode=int(a["ceil_mode"]), **extra)]
    return lower


def _gap_lower(layer: Layer, e: Emitter) -> list:
    if layer.attrs["keepdims"]:
        return [e.node(layer, "GlobalAveragePool", [e.t(layer.inputs[0])])]
    pooled = f"{layer.name}/pooled"
    return [e.make("GlobalAveragePool", [e.t(layer.inputs[0])], [pooled], f"{layer.name}/pool"),
            e.node(layer, "Flatten", [pooled], axis=1)]


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
    lambda a, s: (s[0], 1, 1) if a["keepdims"] else (spatial(s)[0],), no_params, no_macs, _gap_lower,
    Drawing("pool", labels.fixed("global avgpool")))

DEFINITIONS = (MAXPOOL, AVGPOOL, GLOBALAVGPOOL)
