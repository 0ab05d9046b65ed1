"""The op table: for each op, its signature, output shape, parameters and MACs.

An op's arguments arrive as evaluated values (dsl/expr.py `Value`); `bind` checks and normalises them
against the signature (`3` -> `(3, 3)` for a kernel). Shapes exclude the batch axis. Lowering to ONNX
lives in compiler/lower.py, keyed by the same names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..dsl.errors import did_you_mean
from ..dsl.expr import Value, describe
from .ir import Param, Shape

Attrs = dict[str, Any]


class OpError(Exception):
    """A bad argument or shape; `arg` names the argument to point at, when there is one."""

    def __init__(self, message: str, arg: str | None = None):
        super().__init__(message)
        self.arg = arg


# ---- argument types -----------------------------------------------------------------------------
def _int(v: Value, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"an integer, got {describe(v)}")
    if v < lo:
        raise ValueError(f"an integer >= {lo}, got {v}")
    return v


def _float(v: Value) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"a number, got {describe(v)}")
    return float(v)


def _bool(v: Value) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"`true` or `false`, got {describe(v)}")
    return v


def _pair(v: Value) -> tuple[int, int]:
    """A size such as a kernel or stride: `3`, `3x3`, `1x7` or `[1, 7]` (rows x cols)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return (_int(v), _int(v))
    if isinstance(v, tuple) and len(v) == 2:
        return (_int(v[0]), _int(v[1]))
    raise ValueError(f"a size such as `3`, `3x3` or `1x7`, got {describe(v)}")


def _padding(v: Value) -> str | tuple[int, int, int, int]:
    """`same`, `valid`, `p`, `[ph, pw]` or `[top, left, bottom, right]` (ONNX order)."""
    if v in ("same", "valid"):
        return v  # type: ignore[return-value]
    if isinstance(v, int) and not isinstance(v, bool):
        p = _int(v, 0)
        return (p, p, p, p)
    if isinstance(v, tuple) and len(v) in (2, 4):
        p = tuple(_int(x, 0) for x in v)
        return (p[0], p[1], p[0], p[1]) if len(p) == 2 else p  # type: ignore[return-value]
    raise ValueError(f"`same`, `valid`, an integer, `[ph, pw]` or `[top, left, bottom, right]`, "
                     f"got {describe(v)}")


def _table(v: Value) -> tuple[tuple[int, ...], ...]:
    """A connection table: for each output map, the list of input maps it reads."""
    if isinstance(v, tuple) and v and all(isinstance(row, tuple) and row for row in v):
        return tuple(tuple(_int(i, 0) for i in row) for row in v)
    raise ValueError(f"a table such as `[[0, 1, 2], [1, 2, 3]]` (one non-empty list of input maps per "
                     f"output map), got {describe(v)}")


KINDS: Mapping[str, Callable[[Value], Any]] = {
    "int": _int, "float": _float, "bool": _bool, "size": _pair, "kernel": _pair, "padding": _padding,
    "rate": lambda v: _check(0 <= _float(v) < 1, _float(v), "a rate in [0, 1)"),
    "table": _table,
}


def _check(ok: bool, value: Any, what: str) -> Any:
    if not ok:
        raise ValueError(f"{what}, got {value}")
    return value


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str
    default: Any = ...  # ... = required
    doc: str = ""


# ---- shape helpers ------------------------------------------------------------------------------
def _spatial(shape: Shape, op: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise OpError("needs a [channels, height, width] input")
    return shape  # type: ignore[return-value]


def window(size: int, k: int, s: int, d: int, padding, axis: int, ceil_mode: bool = False) \
        -> tuple[int, int, int]:
    """Output size and (pad_before, pad_after) of one spatial axis.

    `same` follows TensorFlow: out = ceil(size / s), the padding split with the extra cell after.
    Ceil mode follows Caffe/PyTorch: the last window must start inside the input or its left padding.
    """
    eff = (k - 1) * d + 1
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + eff - size, 0)
        return out, total // 2, total - total // 2
    before, after = (0, 0) if padding == "valid" else (padding[axis], padding[axis + 2])
    span = size + before + after - eff
    if span < 0:
        raise OpError(f"the kernel's {'height' if axis == 0 else 'width'} ({eff}) is larger than the "
                      f"padded input's ({size + before + after})", "kernel")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + before:
        out -= 1
    return out, before, after


def _windowed(a: Attrs, shape: Shape, op: str, kernel: tuple[int, int], d=(1, 1)) -> tuple[Shape, tuple]:
    c, h, w = _spatial(shape, op)
    s = a["stride"]
    ceil = a.get("ceil_mode", False)
    oh, t, b = window(h, kernel[0], s[0], d[0], a["padding"], 0, ceil)
    ow, l, r = window(w, kernel[1], s[1], d[1], a["padding"], 1, ceil)
    return (c, oh, ow), (t, l, b, r)


# ---- the ops ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """Signature and static semantics of one op."""

    name: str
    args: tuple[Arg, ...]
    infer: Callable[[Attrs, Shape], Shape]
    params: Callable[[Attrs, Shape, str], tuple[Param, ...]] = lambda a, s, n: ()
    macs: Callable[[Attrs, Shape, Shape], int] = lambda a, i, o: 0
    doc: str = ""
    prepare: Callable[[Attrs, Shape], Attrs] = lambda a, s: a  # fills derived attributes

    def bind(self, positional: list[Value], keywords: dict[str, Value]) -> Attrs:
        """Check and normalise arguments; raises OpError naming the argument."""
        if len(positional) > len(self.args):
            raise OpError(f"`{self.name}` takes at most {len(self.args)} positional arguments "
                          f"({', '.join(a.name for a in self.args)}); got {len(positional)}")
        raw = dict(zip((a.name for a in self.args), positional))
        names = [a.name for a in self.args]
        for key, value in keywords.items():
            if key not in names:
                raise OpError(f"`{self.name}` has no argument `{key}`{did_you_mean(key, names)}; its "
                              f"arguments are: {', '.join(names) or 'none'}", key)
            if key in raw:
                raise OpError(f"`{self.name}` got `{key}` twice", key)
            raw[key] = value
        out: Attrs = {}
        for arg in self.args:
            if arg.name not in raw:
                if arg.default is ...:
                    raise OpError(f"`{self.name}` needs `{arg.name}` ({arg.doc or arg.kind})")
                out[arg.name] = arg.default
                continue
            try:
                out[arg.name] = KINDS[arg.kind](raw[arg.name])
            except ValueError as e:
                raise OpError(f"`{self.name}` argument `{arg.name}` must be {e}", arg.name) from None
        return out


def _he(name: str, shape: Shape, fan_in: int) -> Param:
    return Param(name, shape, True, "he_normal", fan_in)


def _conv_prepare(a: Attrs, shape: Shape) -> Attrs:
    c = _spatial(shape, "conv")[0]
    table = a.get("connections")
    if table is not None:
        _check_table(table, a, c)
    elif c % a["groups"] or a["filters"] % a["groups"]:
        raise OpError(f"groups={a['groups']} must divide both the input channels ({c}) and "
                      f"filters ({a['filters']})", "groups")
    out, pads = _windowed(a, shape, "conv", a["kernel"], a["dilation"])
    return {**a, "pads": pads}


def _conv_infer(a: Attrs, shape: Shape) -> Shape:
    (_, oh, ow), _ = _windowed(a, shape, "conv", a["kernel"], a["dilation"])
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
        weight = _he(f"{name}.weight", (links, 1, kh, kw), len(table[0]) * kh * kw)
    else:
        cin = shape[0] // a["groups"]
        weight = _he(f"{name}.weight", (a["filters"], cin, kh, kw), cin * kh * kw)
    return (weight, Param(f"{name}.bias", (a["filters"],), True, "zeros")) if a["bias"] else (weight,)


def _conv_macs(a: Attrs, i: Shape, o: Shape) -> int:
    kh, kw = a["kernel"]
    table = a.get("connections")
    links = sum(len(row) for row in table) if table is not None else o[0] * (i[0] // a["groups"])
    return o[1] * o[2] * links * kh * kw


def _sepconv_prepare(a: Attrs, shape: Shape) -> Attrs:
    _spatial(shape, "sepconv")
    _, pads = _windowed(a, shape, "sepconv", a["kernel"], a["dilation"])
    return {**a, "pads": pads}


def _sepconv_infer(a: Attrs, shape: Shape) -> Shape:
    (_, oh, ow), _ = _windowed(a, shape, "sepconv", a["kernel"], a["dilation"])
    return (a["filters"], oh, ow)


def _sepconv_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    c, m = shape[0], a["depth_multiplier"]
    kh, kw = a["kernel"]
    out = (_he(f"{name}.depthwise_weight", (c * m, 1, kh, kw), kh * kw),
           _he(f"{name}.pointwise_weight", (a["filters"], c * m, 1, 1), c * m))
    return (*out, Param(f"{name}.bias", (a["filters"],), True, "zeros")) if a["bias"] else out


def _sepconv_macs(a: Attrs, i: Shape, o: Shape) -> int:
    kh, kw = a["kernel"]
    mid = i[0] * a["depth_multiplier"]
    return o[1] * o[2] * mid * (kh * kw + o[0])


def _per_map(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    c = (_spatial(shape, "subsample")[0],)
    return Param(f"{name}.weight", c, True, "ones"), Param(f"{name}.bias", c, True, "zeros")


def _rbf_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    n = _flat(shape, "rbf")
    return (Param(f"{name}.prototypes", (a["units"], n), False, "sign", constant=True),)


def _bn_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    c = (shape[0],)
    gamma = (Param(f"{name}.weight", c, True, "ones"),) if a["scale"] else ()
    return (*gamma, Param(f"{name}.bias", c, True, "zeros"),
            Param(f"{name}.running_mean", c, False, "zeros"), Param(f"{name}.running_var", c, False, "ones"))


def _pool_prepare(a: Attrs, shape: Shape) -> Attrs:
    a = {**a, "stride": a["stride"] or a["kernel"]}
    _, pads = _windowed(a, shape, "pool", a["kernel"])
    return {**a, "pads": pads}


def _pool_infer(a: Attrs, shape: Shape) -> Shape:
    return _windowed(a, shape, "pool", a["kernel"])[0]


def _flat(shape: Shape, op: str) -> int:
    if len(shape) != 1:
        raise OpError("needs a flat [features] input; add `flatten` or `globalavgpool` before it")
    return shape[0]


def _dense_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    n = _flat(shape, "dense")
    weight = _he(f"{name}.weight", (a["units"], n), n)
    return (weight, Param(f"{name}.bias", (a["units"],), True, "zeros")) if a["bias"] else (weight,)


def _same(a: Attrs, shape: Shape) -> Shape:
    return shape


_POOL_ARGS = (Arg("kernel", "kernel", doc="window size, e.g. 3x3"),
              Arg("stride", "size", None, "step; defaults to the kernel size"),
              Arg("padding", "padding", "valid"), Arg("ceil_mode", "bool", False))

OPS: dict[str, Op] = {op.name: op for op in [
    Op("conv", (Arg("filters", "int", doc="number of output channels"), Arg("kernel", "kernel", doc="e.g. 3x3"),
                Arg("stride", "size", (1, 1)), Arg("padding", "padding", "valid"),
                Arg("dilation", "size", (1, 1)), Arg("groups", "int", 1), Arg("bias", "bool", True),
                Arg("connections", "table", None, "for each output map, the input maps it reads")),
       _conv_infer, _conv_params, _conv_macs, "2-D convolution", _conv_prepare),
    Op("sepconv", (Arg("filters", "int", doc="number of output channels"), Arg("kernel", "kernel", doc="e.g. 3x3"),
                   Arg("stride", "size", (1, 1)), Arg("padding", "padding", "valid"),
                   Arg("dilation", "size", (1, 1)), Arg("depth_multiplier", "int", 1),
                   Arg("bias", "bool", False)),
       _sepconv_infer, _sepconv_params, _sepconv_macs,
       "depthwise-separable convolution: a depthwise kernel per channel, then a 1x1 pointwise conv, "
       "with nothing in between", _sepconv_prepare),
    Op("batchnorm", (Arg("eps", "float", 1e-5), Arg("scale", "bool", True)),
       lambda a, s: s if len(s) in (1, 3) else _spatial(s, "batchnorm"), _bn_params,
       doc="batch normalisation with running statistics (inference form)"),
    Op("relu", (), _same, doc="max(x, 0)"),
    Op("sigmoid", (), _same, doc="1 / (1 + exp(-x))"),
    Op("tanh", (), _same, doc="tanh(x)"),
    Op("softmax", (), _same, doc="softmax over the channel axis"),
    Op("squash", (Arg("amplitude", "float", 1.7159), Arg("slope", "float", 2 / 3)), _same,
       doc="scaled tanh, amplitude * tanh(slope * x) (LeCun 1998: 1.7159 tanh(2x/3))"),
    Op("scale", (Arg("factor", "float", doc="the constant to multiply by"),), _same,
       doc="multiplies by a constant (Inception-ResNet's residual scaling)"),
    Op("lrn", (Arg("size", "int", 5), Arg("alpha", "float", 1e-4), Arg("beta", "float", 0.75),
               Arg("bias", "float", 1.0)),
       lambda a, s: _spatial(s, "lrn"),
       doc="local response normalisation across channels, ONNX/Caffe convention: "
           "x / (bias + alpha / size * sum of x^2 over `size` neighbouring maps) ^ beta"),
    Op("subsample", _POOL_ARGS[:3], _pool_infer, _per_map,
       doc="LeCun's trainable subsampling: the sum of each window times one learned coefficient per "
           "map, plus one learned bias per map", prepare=_pool_prepare),
    Op("rbf", (Arg("units", "int", doc="number of outputs"),),
       lambda a, s: (_flat(s, "rbf") and a["units"],), _rbf_params,
       doc="Euclidean radial basis units, y_i = sum_j (x_j - w_ij)^2, with fixed +-1 prototypes"),
    Op("maxpool", _POOL_ARGS, _pool_infer, doc="max pooling", prepare=_pool_prepare),
    Op("avgpool", (*_POOL_ARGS, Arg("count_include_pad", "bool", False)), _pool_infer,
       doc="average pooling; by default padding is not counted in the mean (TensorFlow, ONNX)",
       prepare=_pool_prepare),
    Op("globalavgpool", (Arg("keepdims", "bool", False),),
       lambda a, s: (s[0], 1, 1) if a["keepdims"] else (_spatial(s, "globalavgpool")[0],),
       doc="mean over height and width"),
    Op("flatten", (), lambda a, s: (math.prod(s),), doc="[C, H, W] -> [C*H*W] (channel-major order)"),
    Op("dense", (Arg("units", "int", doc="number of outputs"), Arg("bias", "bool", True)),
       lambda a, s: (_flat(s, "dense") and a["units"],), _dense_params,
       lambda a, i, o: i[0] * o[0], "fully connected layer"),
    Op("dropout", (Arg("rate", "rate", 0.5),), _same, doc="identity at inference"),
    Op("identity", (), _same, doc="passes its input through"),
]}
