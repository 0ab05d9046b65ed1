"""Every op and merge of the registry against numpy: one table of tiny networks, one row per op or merge
(some ops have several), each with an oracle written here from the op's definition — loops and einsum
over the weights the test passes in, with its own padding and output-size arithmetic — and never
cnnc's lowering or an evaluator of cnnc's own model.

Each row is also compiled the other ways a model can be made, each checked against the same oracle:
streamed to a file (the same bytes as `compile`), in float16, with batch norms folded (ops that fold
get a batchnorm after them, and it must go), and, for per-channel ops and convs, as N identical towers
under each merge that stacks towers (grouped, with fewer convs, and equal to the ungrouped model).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnxruntime as ort
import pytest

import cnnc
from cnnc import api
from cnnc.compiler import to_onnx
from cnnc.compiler.ops import MERGES, OPS
from cnnc.compiler.weights import initial_weights
from cnnc.dsl.document import load_text

Params = Callable[[str], np.ndarray]  # a parameter of the case by its name, e.g. p("layer.weight")
Oracle = Callable[[np.ndarray, Params], np.ndarray]
Pads = tuple[int, int, int, int]  # top, left, bottom, right (ONNX order)


# ---- numpy references, float64, NCHW -------------------------------------------------------------
def tf_same(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's `same` padding of one axis: (before, after), the odd cell after."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def same_pads(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int] = (1, 1)) -> Pads:
    (t, b), (l, r) = tf_same(h, kernel[0], stride[0], dilation[0]), tf_same(w, kernel[1], stride[1], dilation[1])
    return t, l, b, r


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=(1, 1), pads: Pads = (0, 0, 0, 0),
         dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """Cross-correlation with zero padding; output channel o of group o // (F / groups) reads that
    group's slice of the input channels. One einsum per kernel tap."""
    t, l, bo, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    f, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    oh = (xp.shape[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[3] - (kw - 1) * dw - 1) // sw + 1
    fg = f // groups
    y = np.zeros((x.shape[0], f, oh, ow))
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, g * fg:(g + 1) * fg] += np.einsum("fc,nchw->nfhw", w[g * fg:(g + 1) * fg, :, i, j], patch)
    return y if b is None else y + b[None, :, None, None]


def pool(x: np.ndarray, kind: str, kernel, stride, pads: Pads = (0, 0, 0, 0), ceil_mode: bool = False,
         count_include_pad: bool = False) -> np.ndarray:
    """Max, average or sum over windows, by a loop over output cells (PyTorch's definitions).

    Output size: floor (or with ceil mode ceil) of (size + pads - k) / s, plus 1; in ceil mode a last
    window that starts beyond the input and its leading padding is dropped. An average that counts
    padding divides by the window's cells inside the padded input, not by those beyond it."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (t, l, b, r) = kernel, stride, pads

    def size(n_in: int, k: int, s: int, before: int, after: int) -> int:
        out = (n_in + before + after - k + (s - 1 if ceil_mode else 0)) // s + 1
        return out - 1 if ceil_mode and (out - 1) * s >= n_in + before else out

    oh, ow = size(h, kh, sh, t, b), size(w, kw, sw, l, r)
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        r0 = i * sh - t
        r1 = min(r0 + kh, h + b)
        for j in range(ow):
            c0 = j * sw - l
            c1 = min(c0 + kw, w + r)
            window = x[:, :, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
            if kind == "max":
                y[:, :, i, j] = window.max(axis=(2, 3))
            elif kind == "sum":
                y[:, :, i, j] = window.sum(axis=(2, 3))
            else:
                cells = (r1 - r0) * (c1 - c0) if count_include_pad else window.shape[2] * window.shape[3]
                y[:, :, i, j] = window.sum(axis=(2, 3)) / cells
    return y


def per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape(1, -1, *[1] * (ndim - 2))


def batchnorm(x: np.ndarray, p: Params, name: str, eps: float, scale: bool = True) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) * gamma + beta per channel; without `scale` there is no gamma."""
    def c(kind: str) -> np.ndarray:
        return per_channel(p(f"{name}.{kind}"), x.ndim)
    y = (x - c("running_mean")) / np.sqrt(c("running_var") + eps)
    return (y * c("weight") if scale else y) + c("bias")


def lrn(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """ONNX/Caffe: the sum of squares over maps c - floor((size-1)/2) .. c + ceil((size-1)/2)."""
    c, lo = x.shape[1], (size - 1) // 2
    hi = size - 1 - lo
    sums = np.stack([(x[:, max(0, k - lo):min(c, k + hi + 1)] ** 2).sum(axis=1) for k in range(c)], axis=1)
    return x / (bias + alpha / size * sums) ** beta


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def adaptive_avgpool(x: np.ndarray, out: tuple[int, int]) -> np.ndarray:
    """PyTorch's AdaptiveAvgPool2d by a loop: output cell (i, j) is the mean of rows floor(i * H / oh) to
    ceil((i + 1) * H / oh) - 1 and likewise of the columns."""
    (n, c, h, w), (oh, ow) = x.shape, out
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
        for j in range(ow):
            c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def normalise(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """(x - mean) / sqrt(biased variance + eps) over `axes`."""
    return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def layernorm(x: np.ndarray, p: Params, eps: float) -> np.ndarray:
    """Over the channels at each position, then weight and bias per channel."""
    return normalise(x, (1,), eps) * per_channel(p("layer.weight"), x.ndim) + per_channel(p("layer.bias"), x.ndim)


def groupnorm(x: np.ndarray, p: Params, groups: int, eps: float) -> np.ndarray:
    """Channel k belongs to group k // (C / groups); each group is normalised over its channels and positions."""
    y = np.empty_like(x)
    size = x.shape[1] // groups
    for g in range(groups):
        part = x[:, g * size:(g + 1) * size]
        y[:, g * size:(g + 1) * size] = normalise(part, tuple(range(1, x.ndim)), eps)
    return y * per_channel(p("layer.weight"), x.ndim) + per_channel(p("layer.bias"), x.ndim)


def shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """Channel i * C/groups + j of the input (group i, place j) becomes channel j * groups + i."""
    y = np.empty_like(x)
    size = x.shape[1] // groups
    for i in range(groups):
        for j in range(size):
            y[:, j * groups + i] = x[:, i * size + j]
    return y


def gelu(x: np.ndarray, approximate: bool = False) -> np.ndarray:
    if approximate:
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def table_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, table, **window) -> np.ndarray:
    """Map j = the sum over the input maps of its row of one kernel each (packed in table order) + bias j."""
    maps, link = [], 0
    for j, row in enumerate(table):
        maps.append(sum(conv(x[:, [i]], w[[link + k]], **window)[:, 0] for k, i in enumerate(row)) + b[j])
        link += len(row)
    return np.stack(maps, axis=1)


# ---- the table ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One tiny network for `op`. A single-op row is `call`, written as the layer named `layer` (its
    parameters are `layer.weight`, ...); a merge row writes its `layers` whole. The oracle maps the
    float64 input batch and the parameters to the output."""

    op: str
    id: str
    input: tuple[int, ...]
    oracle: Oracle
    call: str | None = None
    layers: str | None = None
    constants: str = ""
    spread: float = 2.0  # the inputs' standard deviation: wide enough that bounds and slopes act

    @property
    def body(self) -> str:
        return f"  - layer: {self.call}\n" if self.call is not None else self.layers  # type: ignore[return-value]


TABLE = [[0, 2], [1], [3, 0, 1], [1, 2]]  # rows of different lengths, out of order

CASES = [
    Case("conv", "conv_stride2x1_same_dilated_grouped", (4, 6, 7),
         lambda x, p: conv(x, p("layer.weight"), p("layer.bias"), (2, 1), same_pads(6, 7, (3, 3), (2, 1), (1, 2)),
                           (1, 2), groups=2),
         "conv(6, 3x3, stride=2x1, padding=same, dilation=1x2, groups=2)"),
    Case("conv", "conv_explicit_asymmetric_pads_no_bias", (3, 5, 6),
         lambda x, p: conv(x, p("layer.weight"), None, (1, 2), (1, 0, 2, 1)),
         "conv(4, 2x3, stride=1x2, padding=[1, 0, 2, 1], bias=false)"),
    Case("conv", "conv_connection_table", (4, 6, 6),
         lambda x, p: table_conv(x, p("layer.weight"), p("layer.bias"), TABLE, stride=(2, 2), pads=(1, 1, 1, 1)),
         "conv(4, 3x3, stride=2, padding=1, connections=table)", constants=f"constants:\n  table: {TABLE}\n"),
    Case("sepconv", "sepconv_multiplier2_stride2_same_bias", (3, 6, 5),
         lambda x, p: conv(conv(x, p("layer.depthwise_weight"), None, (2, 2), same_pads(6, 5, (3, 3), (2, 2)),
                                groups=3), p("layer.pointwise_weight"), p("layer.bias")),
         "sepconv(5, 3x3, stride=2, padding=same, depth_multiplier=2, bias=true)"),
    Case("maxpool", "maxpool_padded_ceil_mode", (3, 6, 6),
         lambda x, p: pool(x, "max", (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True),
         "maxpool(3x3, stride=2, padding=1, ceil_mode=true)"),
    Case("maxpool", "maxpool_same_2x3_stride2x1", (3, 6, 5),
         lambda x, p: pool(x, "max", (2, 3), (2, 1), same_pads(6, 5, (2, 3), (2, 1))),
         "maxpool(2x3, stride=2x1, padding=same)"),
    Case("avgpool", "avgpool_excluding_pad_ceil_mode", (3, 6, 6),
         lambda x, p: pool(x, "avg", (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True),
         "avgpool(3x3, stride=2, padding=1, ceil_mode=true)"),
    Case("avgpool", "avgpool_including_pad", (3, 7, 7),
         lambda x, p: pool(x, "avg", (3, 3), (2, 2), (1, 1, 1, 1), count_include_pad=True),
         "avgpool(3x3, stride=2, padding=1, count_include_pad=true)"),
    Case("avgpool", "avgpool_including_pad_ceil_mode", (3, 6, 6),
         lambda x, p: pool(x, "avg", (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True, count_include_pad=True),
         "avgpool(3x3, stride=2, padding=1, ceil_mode=true, count_include_pad=true)"),
    Case("globalavgpool", "globalavgpool_flat", (4, 3, 5), lambda x, p: x.mean(axis=(2, 3)), "globalavgpool"),
    Case("globalavgpool", "globalavgpool_keepdims", (4, 3, 5), lambda x, p: x.mean(axis=(2, 3), keepdims=True),
         "globalavgpool(keepdims=true)"),
    Case("relu", "relu", (4, 5, 5), lambda x, p: np.maximum(x, 0), "relu"),
    Case("sigmoid", "sigmoid", (4, 5, 5), lambda x, p: 1 / (1 + np.exp(-x)), "sigmoid"),
    Case("tanh", "tanh", (4, 5, 5), lambda x, p: np.tanh(x), "tanh"),
    Case("softmax", "softmax_over_channels", (4, 3, 3), lambda x, p: softmax(x), "softmax"),
    Case("squash", "squash_amplitude_slope", (4, 5, 5), lambda x, p: 2.5 * np.tanh(0.3 * x),
         "squash(amplitude=2.5, slope=0.3)"),
    Case("scale", "scale_negative", (4, 5, 5), lambda x, p: -0.7 * x, "scale(-0.7)"),
    Case("relu6", "relu6", (4, 5, 5), lambda x, p: np.minimum(np.maximum(x, 0), 6), "relu6", spread=6),
    Case("clip", "clip_asymmetric", (4, 5, 5), lambda x, p: np.minimum(np.maximum(x, -1.5), 2.5),
         "clip(-1.5, high=2.5)", spread=6),
    Case("hardswish", "hardswish", (4, 5, 5), lambda x, p: x * np.minimum(np.maximum(x + 3, 0), 6) / 6, "hardswish",
         spread=6),
    Case("hardsigmoid", "hardsigmoid_pytorch_default", (4, 5, 5),
         lambda x, p: np.minimum(np.maximum(x + 3, 0), 6) / 6, "hardsigmoid", spread=6),
    Case("hardsigmoid", "hardsigmoid_alpha_beta", (4, 5, 5), lambda x, p: np.clip(0.3 * x - 0.4, 0, 1),
         "hardsigmoid(alpha=0.3, beta=-0.4)", spread=6),
    Case("silu", "silu", (4, 5, 5), lambda x, p: x / (1 + np.exp(-x)), "silu", spread=6),
    Case("gelu", "gelu_exact", (4, 5, 5), lambda x, p: gelu(x), "gelu", spread=4),
    Case("gelu", "gelu_tanh_approximation", (4, 5, 5), lambda x, p: gelu(x, approximate=True),
         "gelu(approximate=true)", spread=4),
    Case("leakyrelu", "leakyrelu_slope", (4, 5, 5), lambda x, p: np.where(x > 0, x, 0.2 * x), "leakyrelu(0.2)",
         spread=6),
    Case("elu", "elu_alpha", (4, 5, 5), lambda x, p: np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), "elu(alpha=0.7)",
         spread=6),
    Case("prelu", "prelu_per_channel", (4, 5, 5),
         lambda x, p: np.where(x > 0, x, per_channel(p("layer.weight"), 4) * x), "prelu", spread=6),
    Case("prelu", "prelu_flat", (6,), lambda x, p: np.where(x > 0, x, p("layer.weight")[None] * x), "prelu",
         spread=6),
    Case("batchnorm", "batchnorm_scaled", (4, 5, 5), lambda x, p: batchnorm(x, p, "layer", 0.01),
         "batchnorm(eps=0.01)"),
    Case("batchnorm", "batchnorm_without_scale", (4, 5, 5), lambda x, p: batchnorm(x, p, "layer", 1e-3, scale=False),
         "batchnorm(eps=0.001, scale=false)"),
    Case("batchnorm", "batchnorm_flat", (6,), lambda x, p: batchnorm(x, p, "layer", 1e-5), "batchnorm"),
    Case("lrn", "lrn_size3", (6, 4, 4), lambda x, p: lrn(x, 3, 0.5, 0.75, 2.0),
         "lrn(size=3, alpha=0.5, beta=0.75, bias=2)"),
    Case("lrn", "lrn_size5_alpha_divided", (6, 4, 4), lambda x, p: lrn(x, 5, 0.3, 0.6, 1.5),
         "lrn(5, 0.3, 0.6, 1.5)"),
    Case("layernorm", "layernorm_over_channels", (5, 3, 4), lambda x, p: layernorm(x, p, 1e-3), "layernorm(eps=0.001)",
         spread=6),
    Case("layernorm", "layernorm_flat", (6,), lambda x, p: layernorm(x, p, 1e-5), "layernorm"),
    Case("groupnorm", "groupnorm_3_groups", (6, 4, 5), lambda x, p: groupnorm(x, p, 3, 1e-3),
         "groupnorm(3, eps=0.001)"),
    Case("groupnorm", "groupnorm_flat", (6,), lambda x, p: groupnorm(x, p, 2, 1e-5), "groupnorm(2)"),
    Case("layerscale", "layerscale", (4, 5, 5), lambda x, p: x * p("layer.weight")[None], "layerscale(init=0.5)"),
    Case("layerscale", "layerscale_flat", (6,), lambda x, p: x * p("layer.weight")[None], "layerscale"),
    Case("shuffle", "shuffle_3_groups", (6, 3, 4), lambda x, p: shuffle(x, 3), "shuffle(3)"),
    Case("channels", "channels_inner_slice", (6, 3, 3), lambda x, p: x[:, 1:4], "channels(1, 4)"),
    Case("channels", "channels_to_the_end_flat", (6,), lambda x, p: x[:, 2:], "channels(2)"),
    Case("adaptiveavgpool", "adaptiveavgpool_uneven_windows", (3, 7, 5), lambda x, p: adaptive_avgpool(x, (3, 2)),
         "adaptiveavgpool(3x2)"),
    Case("adaptiveavgpool", "adaptiveavgpool_even_windows", (3, 6, 8), lambda x, p: adaptive_avgpool(x, (3, 2)),
         "adaptiveavgpool([3, 2])"),
    Case("adaptiveavgpool", "adaptiveavgpool_unchanged", (3, 4, 4), lambda x, p: x, "adaptiveavgpool(4)"),
    Case("adaptiveavgpool", "adaptiveavgpool_one_axis_even", (3, 6, 5), lambda x, p: adaptive_avgpool(x, (3, 3)),
         "adaptiveavgpool(3)"),
    Case("adaptiveavgpool", "adaptiveavgpool_larger_than_input", (3, 3, 4), lambda x, p: adaptive_avgpool(x, (5, 7)),
         "adaptiveavgpool(5x7)"),
    Case("adaptiveavgpool", "adaptiveavgpool_rows_only", (3, 5, 4), lambda x, p: adaptive_avgpool(x, (3, 4)),
         "adaptiveavgpool(3x4)"),
    Case("globalmaxpool", "globalmaxpool_flat", (4, 3, 5), lambda x, p: x.max(axis=(2, 3)), "globalmaxpool"),
    Case("globalmaxpool", "globalmaxpool_keepdims", (4, 3, 5), lambda x, p: x.max(axis=(2, 3), keepdims=True),
         "globalmaxpool(keepdims=true)"),
    Case("droppath", "droppath", (4, 3, 3), lambda x, p: x, "droppath(0.1)"),
    Case("dense", "dense", (7,), lambda x, p: x @ p("layer.weight").T + p("layer.bias"), "dense(5)"),
    Case("dense", "dense_no_bias", (7,), lambda x, p: x @ p("layer.weight").T, "dense(3, bias=false)"),
    Case("flatten", "flatten_channel_major", (3, 2, 4), lambda x, p: x.reshape(x.shape[0], -1), "flatten"),
    Case("dropout", "dropout", (4, 3, 3), lambda x, p: x, "dropout(0.3)"),
    Case("identity", "identity", (4, 3, 3), lambda x, p: x, "identity"),
    Case("subsample", "subsample_2x3_stride1x2_padded", (3, 5, 6),
         lambda x, p: pool(x, "sum", (2, 3), (1, 2), (1, 1, 1, 1)) * per_channel(p("layer.weight"), 4)
         + per_channel(p("layer.bias"), 4),
         "subsample(2x3, stride=1x2, padding=1)"),
    Case("rbf", "rbf", (6,), lambda x, p: ((x[:, None, :] - p("layer.prototypes")[None]) ** 2).sum(axis=2), "rbf(4)"),
    Case("add", "add_two_branches", (4, 5, 5),
         lambda x, p: conv(x, p("add/branch1.weight"), p("add/branch1.bias")) + x,
         layers="  - add: [conv(4, 1x1), identity]\n"),
    Case("add", "add_three_branches", (4, 5, 5),
         lambda x, p: conv(x, p("add/branch1.weight"), p("add/branch1.bias")) + x - 0.5 * np.maximum(x, 0),
         layers="  - add: [conv(4, 1x1), identity, [relu, scale(-0.5)]]\n"),
    Case("mul", "mul_gate_broadcast_over_positions", (4, 5, 5),
         lambda x, p: x / (1 + np.exp(-conv(x.mean(axis=(2, 3), keepdims=True), p("mul/branch2/conv.weight"),
                                             p("mul/branch2/conv.bias")))),
         layers="  - mul: [identity, [globalavgpool(keepdims=true), conv(4, 1x1), sigmoid]]\n"),
    Case("mul", "mul_three_branches", (4, 5, 5), lambda x, p: x * np.tanh(x) * np.maximum(x, 0),
         layers="  - mul: [identity, tanh, relu]\n"),
    Case("concat", "concat_three_branches", (4, 5, 5),
         lambda x, p: np.concatenate([conv(x, p("concat/conv.weight"), p("concat/conv.bias")),
                                      pool(x, "max", (3, 3), (1, 1), (1, 1, 1, 1)), x], axis=1),
         layers="  - concat: {conv: conv(3, 1x1), pool: maxpool(3x3, stride=1, padding=1), same: identity}\n"),
]

# Cases that show a bug, by id: each must fail until the bug is fixed (then remove it here).
XFAIL: dict[str, str] = {}


def rows(cases: list[Case], runs: bool = True) -> list:
    """The cases as test parameters; `runs`: the test runs the model, so a known failure is expected."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c.id])]
                         if runs and c.id in XFAIL else []) for c in cases]


def document(case: Case, body: str | None = None, blocks: str = ""):
    shape = ", ".join(map(str, case.input))
    return load_text(f"network: t\ninput: [{shape}]\n{case.constants}{blocks}layers:\n{body or case.body}", "t.yaml")


def wide_weights(graph, seed: str) -> dict[str, np.ndarray]:
    """Values for every tensor, drawn widely so that no layer is close to a no-op: BN statistics, gamma
    of both signs and beta far from 0 and 1, biases not zero, coefficients not one."""
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    out = {}
    for layer in graph.layers:
        for p in layer.params:
            kind = p.name.rsplit(".", 1)[1]
            if layer.op == "batchnorm":
                v = {"weight": lambda s: rng.uniform(0.5, 2, s) * rng.choice([-1, 1], s),
                     "bias": lambda s: rng.normal(0, 1, s), "running_mean": lambda s: rng.normal(0, 1, s),
                     "running_var": lambda s: rng.uniform(0.2, 3, s)}[kind](p.shape)
            elif p.init == "sign":
                v = rng.choice([-1.0, 1.0], p.shape)
            elif p.init == "he_normal":
                v = rng.normal(0, np.sqrt(2 / p.fan_in), p.shape)
            else:
                v = rng.normal(0, 1, p.shape)
            out[p.name] = v.astype(np.float32)
    return out


def inputs(case: Case, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((2, *case.input)) * case.spread).astype(np.float32)


def run(model, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def lookup(weights: dict[str, np.ndarray], prefix: str = "") -> Params:
    return lambda name: weights[prefix + name].astype(np.float64)


def count(model, op_type: str) -> int:
    return sum(n.op_type == op_type for n in model.graph.node)


def close(y: np.ndarray, expected: np.ndarray, float16: bool = False) -> None:
    assert y.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    if float16:
        np.testing.assert_allclose(y, expected, rtol=2e-2, atol=1e-2 * scale)
    else:
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5 * scale)


# ---- the table covers the registry -------------------------------------------------------------
def test_every_op_and_merge_has_a_case():
    covered = {c.op for c in CASES}
    assert set(OPS) | set(MERGES) <= covered, f"no case for {sorted(set(OPS) | set(MERGES) - covered)}"
    assert covered <= set(OPS) | set(MERGES), f"cases for unknown ops {sorted(covered - set(OPS) - set(MERGES))}"
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_case_exercises_its_op():
    for c in CASES:
        assert c.op in {layer.op for layer in cnnc.build(document(c)).layers}, c.id


# ---- each case against its oracle ----------------------------------------------------------------
@pytest.mark.parametrize("case", rows(CASES))
def test_op_matches_its_numpy_oracle(case: Case):
    doc = document(case)
    weights = wide_weights(cnnc.build(doc), case.id)
    x, other = inputs(case, 0), inputs(case, 1)
    expected = case.oracle(x.astype(np.float64), lookup(weights))
    close(run(cnnc.compile(doc, weights=weights), x), expected)
    # the oracle is not blind to its input, nor flat, so the comparison means something
    assert np.abs(case.oracle(other.astype(np.float64), lookup(weights)) - expected).max() > 1e-3
    assert expected.std() > 1e-3


@pytest.mark.parametrize("case", rows(CASES, runs=False))
def test_streamed_file_has_the_bytes_of_the_model(case: Case, tmp_path):
    doc = document(case)
    weights = wide_weights(cnnc.build(doc), case.id)
    for kwargs in ({"weights": weights}, {"seed": 5}):
        api.compile_to(doc, tmp_path / "m.onnx", **kwargs)
        assert (tmp_path / "m.onnx").read_bytes() == api.compile(doc, **kwargs).SerializeToString(), kwargs


@pytest.mark.parametrize("case", rows(CASES))
def test_float16_model_is_close_to_the_oracle(case: Case):
    doc = document(case)
    weights = wide_weights(cnnc.build(doc), case.id)
    x = inputs(case)
    model = cnnc.compile(doc, weights=weights, dtype="float16")
    y = run(model, x)
    assert y.dtype == np.float32
    close(y, case.oracle(x.astype(np.float64), lookup(weights)), float16=True)


def _folds(case: Case) -> bool:
    op = OPS.get(case.op)
    return op is not None and op.bn_fold is not None


@pytest.mark.parametrize("case", rows(CASES))
def test_fold_bn_gives_the_same_outputs(case: Case):
    """Ops that a batch norm can fold into get one after them; where it folds, its node must go."""
    body, oracle = case.body, case.oracle
    if _folds(case):
        body += "  - bn: batchnorm(eps=0.01)\n"
        oracle = lambda x, p: batchnorm(case.oracle(x, p), p, "bn", 0.01)  # noqa: E731
    doc = document(case, body)
    graph = cnnc.build(doc)
    weights = wide_weights(graph, case.id)
    x = inputs(case)
    plain, folded = (cnnc.compile(doc, weights=weights, fold_bn=f) for f in (False, True))
    expected = oracle(x.astype(np.float64), lookup(weights))
    close(run(plain, x), expected)
    close(run(folded, x), expected)
    layer = next((layer for layer in graph.layers if layer.name == "layer"), None)
    foldable = _folds(case) and OPS[case.op].bn_fold(layer.attrs) is not None  # type: ignore[misc, union-attr]
    assert count(folded, "BatchNormalization") == count(plain, "BatchNormalization") - foldable


# ---- N identical towers: grouped equals ungrouped equals the oracle --------------------------------
TOWER_MERGES = [name for name, m in MERGES.items() if m.towers is not None]


def _stackable(case: Case) -> bool:
    return case.call is not None and len(case.input) == 3 and not case.constants \
        and (case.op == "conv" or OPS[case.op].per_channel)


TOWER_CASES = [pytest.param(c, m, id=f"{c.id}-{m}") for c in CASES if _stackable(c) for m in TOWER_MERGES]
TOWERS = 3


def test_every_per_channel_op_and_conv_has_a_tower_case():
    stacked = {c.op for c in CASES if _stackable(c)}
    assert {name for name, op in OPS.items() if op.per_channel} | {"conv"} <= stacked
    assert TOWER_MERGES  # both merges stack towers today; this fails loudly if none did


@pytest.mark.parametrize("case,merge", TOWER_CASES)
def test_identical_towers_group_and_compute_the_same(case: Case, merge: str):
    c = case.input[0]
    blocks = f"blocks:\n  tower:\n    - pre: conv({c}, 1x1)\n    - layer: {case.call}\n    - post: conv(3, 1x1)\n"
    doc = document(case, f"  - {merge}: [tower x {TOWERS}]\n", blocks)
    graph = cnnc.build(doc)
    weights = wide_weights(graph, f"{case.id}-{merge}")
    values = [(p, weights[p.name]) for p in graph.params]
    grouped, ungrouped = (to_onnx(graph, weights=values, group_towers=g) for g in (True, False))
    assert count(ungrouped, "Conv") == (2 + (case.op == "conv")) * TOWERS
    assert count(grouped, "Conv") == 2 + (case.op == "conv")  # one stacked tower (for `add`, its sum folded in)
    x = inputs(case)
    towers = []
    for i in range(1, TOWERS + 1):
        p = lookup(weights, f"{merge}/branch{i}/")
        h = conv(x.astype(np.float64), p("pre.weight"), p("pre.bias"))
        towers.append(conv(case.oracle(h, p), p("post.weight"), p("post.bias")))
    expected = np.concatenate(towers, axis=1) if MERGES[merge].towers == "stack" else sum(towers)
    y = run(grouped, x)
    close(y, expected)
    np.testing.assert_allclose(y, run(ungrouped, x), rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(y).max())))


def test_an_even_lrn_size_is_refused_at_the_argument():
    """ONNX Runtime will not load an LRN of even size (`size_ % 2 == 1`): refused where it is written."""
    from cnnc.compiler import build
    from cnnc.compiler.errors import ShapeError
    text = "network: t\ninput: [6, 4, 4]\nlayers:\n  - lrn(4, 0.3, 0.6, 1.5)\n"
    with pytest.raises(ShapeError) as info:
        build(load_text(text, "t.yaml"))
    message = str(info.value)
    assert message.startswith("t.yaml:4:9:") and "size must be odd" in message and "got 4" in message


REFUSED = [  # (call, input shape, column of the argument pointed at, what the message says)
    pytest.param("clip(2, -1)", (4, 5, 5), 10, "`clip` needs low <= high, got low=2 above high=-1",
                 id="clip-low-above-high"),
    pytest.param("groupnorm(4)", (6, 3, 3), 15, "groups=4 must divide the input's 6 channels", id="groupnorm-groups"),
    pytest.param("shuffle(4)", (6, 3, 3), 13, "groups=4 must divide the input's 6 channels", id="shuffle-groups"),
    pytest.param("channels(6)", (6, 3, 3), 14, "start=6 is not a channel of the input's 6 (0 to 5)",
                 id="channels-start"),
    pytest.param("channels(1, 7)", (6, 3, 3), 17, "stop=7 is beyond the input's 6 channels", id="channels-stop"),
    pytest.param("channels(3, stop=3)", (6, 3, 3), 17, "`channels(3, 3)` is empty", id="channels-empty"),
    pytest.param("channels(-1)", (6, 3, 3), 14, "must be an integer >= 0, got -1", id="channels-negative"),
    pytest.param("conv(4, 1x1)", (6,), 5, "needs a [channels, height, width] input", id="conv-rank-1"),
    pytest.param("maxpool(3x3, padding=3)", (6, 9, 9), 18, "a pool's padding must be smaller than its window",
                 id="pool-padding-as-large-as-the-window"),
    pytest.param("lrn(alpha=0)", (6, 3, 3), 9, "`lrn` argument `alpha` must be a number > 0", id="lrn-alpha-0"),
]


@pytest.mark.parametrize("call,shape,column,message", REFUSED)
def test_an_impossible_argument_is_refused_where_it_is_written(call: str, shape: tuple, column: int, message: str):
    from cnnc.compiler import build
    from cnnc.errors import CnncError
    text = f"network: t\ninput: {list(shape)}\nlayers:\n  - {call}\n"
    with pytest.raises(CnncError) as info:
        build(load_text(text, "t.yaml"))
    assert str(info.value).startswith(f"t.yaml:4:{column}:") and message in str(info.value), str(info.value)


def test_seeded_initial_values_are_pytorchs_and_every_new_tensor_is_trainable():
    """PReLU slopes 0.25 (`nn.PReLU`), a layer scale its `init`, layer and group norms weight 1 and bias 0,
    whatever the seed; all of them counted as trainable parameters."""
    text = ("network: t\ninput: [6, 4, 4]\nlayers:\n  - prelu\n  - layerscale(init=0.03)\n  - layernorm\n"
            "  - groupnorm(3)\n  - globalavgpool\n  - layerscale\n")
    graph = cnnc.build(load_text(text, "t.yaml"))
    expected = {"prelu.weight": np.full(6, 0.25), "layerscale_1.weight": np.full((6, 1, 1), 0.03),
                "layernorm.weight": np.ones(6), "layernorm.bias": np.zeros(6), "groupnorm.weight": np.ones(6),
                "groupnorm.bias": np.zeros(6), "layerscale_2.weight": np.full(6, 1e-6)}
    for seed in (0, 7):
        values = {p.name: v for p, v in initial_weights(graph, seed)}
        assert set(values) == set(expected)
        for name, value in expected.items():
            assert values[name].dtype == np.float32 and values[name].shape == value.shape, name
            np.testing.assert_array_equal(values[name], value.astype(np.float32), err_msg=name)
    assert all(p.trainable and not p.constant for p in graph.params)
    assert graph.counts() == {"total": 42, "trainable": 42, "non_trainable": 0}


@pytest.mark.parametrize("shape,size,nodes", [
    ((3, 4, 4), "4", ["Identity"]),
    ((3, 8, 6), "4x2", ["AveragePool"]),
    ((3, 7, 5), "3x2", ["Reshape", "MatMul", "Reshape", "MatMul"]),
    ((3, 5, 4), "3x4", ["Reshape", "MatMul"]),
], ids=["unchanged", "even-windows", "uneven-windows", "one-axis-unchanged"])
def test_adaptiveavgpool_is_the_cheapest_exact_form(shape: tuple, size: str, nodes: list):
    """No work where the size is kept, one AveragePool where the windows tile the input, and otherwise a
    MatMul by an averaging matrix for each axis that changes."""
    text = f"network: t\ninput: {list(shape)}\nlayers:\n  - adaptiveavgpool({size})\n"
    assert [n.op_type for n in cnnc.compile(load_text(text, "t.yaml")).graph.node] == nodes
