"""What every op definition is made of: argument kinds, the `OpDef` and `MergeDef` records, shape helpers.

An op's arguments arrive as evaluated values (dsl/expr.py `Value`); `OpDef.bind` checks and normalises
them against the signature (`3` -> `(3, 3)` for a kernel). Shapes exclude the batch axis. Nothing here
imports ONNX: a lowering builds its nodes through the `Emitter` that compiler/lower.py hands it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol

from ...dsl.expr import ROUNDING_HINT, Value, describe
from ...errors import did_you_mean
from ...record import Record, record
from ..ir import Layer, Param, Shape

if TYPE_CHECKING:
    from ..onnxwire import Node

Attrs = dict[str, Any]


class OpError(Exception):
    """A bad argument or shape; `arg` names the argument to point at, when there is one, and `help` the
    fix, when there is one."""

    def __init__(self, message: str, arg: str | None = None, help: str = ""):
        super().__init__(message)
        self.arg, self.help = arg, help


# ---- argument types -----------------------------------------------------------------------------
def _int(v: Value, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"an integer, got {describe(v)}{ROUNDING_HINT if isinstance(v, float) else ''}")
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
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        p = _int(v, 0)
        return (p, p, p, p)
    if isinstance(v, tuple) and len(v) in (2, 4):
        pads = tuple(_int(x, 0) for x in v)
        return pads if len(pads) == 4 else (pads[0], pads[1], pads[0], pads[1])
    raise ValueError(f"`same`, `valid`, an integer, `[ph, pw]` or `[top, left, bottom, right]`, "
                     f"got {describe(v)}")


def _table(v: Value) -> tuple[tuple[int, ...], ...]:
    """A connection table: for each output map, the list of input maps it reads."""
    if isinstance(v, tuple) and v and all(isinstance(row, tuple) and row for row in v):
        return tuple(tuple(_int(i, 0) for i in row) for row in v)
    raise ValueError(f"a table such as `[[0, 1, 2], [1, 2, 3]]` (one non-empty list of input maps per "
                     f"output map), got {describe(v)}")


KINDS: Mapping[str, Callable[[Value], Any]] = {
    "int": _int, "index": lambda v: _int(v, 0), "float": _float, "bool": _bool, "size": _pair, "kernel": _pair,
    "padding": _padding,
    "rate": lambda v: _check(0 <= _float(v) < 1, _float(v), "a rate in [0, 1)"),
    "positive": lambda v: _check(_float(v) > 0, _float(v), "a number > 0"),
    "table": _table,
}


PADDING_DOC = "`same` (TensorFlow), `valid`, p, [ph, pw] or [top, left, bottom, right]"


def _check(ok: bool, value: Any, what: str) -> Any:
    if not ok:
        raise ValueError(f"{what}, got {value}")
    return value


@record
class Arg(Record):
    """One argument of an op: its name, kind (a key of `KINDS`), default (`...`: required) and doc line."""

    name: str
    kind: str
    default: Any = ...
    doc: str = ""


# ---- shape helpers ------------------------------------------------------------------------------
def spatial(shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise OpError("needs a [channels, height, width] input")
    return shape


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
                      f"padded input's ({size + before + after})", "kernel",
                      f"`padding=same` keeps the size; otherwise use a smaller kernel, or downsample less "
                      f"before this layer (its input is {size} {'high' if axis == 0 else 'wide'})")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + before:
        out -= 1
    return out, before, after


def windowed(a: Attrs, shape: Shape, kernel: tuple[int, int], d: tuple[int, int] = (1, 1)) \
        -> tuple[Shape, tuple[int, int, int, int]]:
    """The output shape of a sliding window over `shape`, and its pads (top, left, bottom, right)."""
    c, h, w = spatial(shape)
    s = a["stride"]
    ceil = a.get("ceil_mode", False)
    oh, t, b = window(h, kernel[0], s[0], d[0], a["padding"], 0, ceil)
    ow, l, r = window(w, kernel[1], s[1], d[1], a["padding"], 1, ceil)
    return (c, oh, ow), (t, l, b, r)




def flat(shape: Shape) -> int:
    if len(shape) != 1:
        raise OpError("needs a flat [features] input; add `flatten` or `globalavgpool` before it")
    return shape[0]


def same(a: Attrs, shape: Shape) -> Shape:
    """The shape rule of element-wise ops: the output has the input's shape."""
    return shape


def he(name: str, shape: Shape, fan_in: int) -> Param:
    return Param(name, shape, True, "he_normal", fan_in)


def no_params(a: Attrs, shape: Shape, name: str) -> tuple[Param, ...]:
    return ()


def no_macs(a: Attrs, i: Shape, o: Shape) -> int:
    return 0


def unchanged(a: Attrs, shape: Shape) -> Attrs:
    return a


# ---- lowering ----------------------------------------------------------------------------------
class Emitter(Protocol):
    """What a lowering function builds its ONNX nodes with (compiler/lower.py implements it)."""

    def t(self, name: str) -> str:
        """The ONNX name of the graph tensor `name` (renamed at the model's edges)."""

    def constant(self, name: str, value: float | list[int] | list[float], dtype: Literal["float", "int64"]) -> str:
        """An initialiser holding `value`, of type int64 or the model's float type; returns its name."""

    def node(self, layer: Layer, op_type: str, inputs: list[str], **attrs: Any) -> Node:
        """The node that produces the layer's output tensor, named after the layer."""

    def make(self, op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> Node:
        """An inner node of a lowering."""


Lowering = Callable[[Layer, Emitter], "list[Node]"]


# ---- definitions ---------------------------------------------------------------------------------
DrawKind = Literal["conv", "pool", "dense", "other", "norm", "activation", "softmax", "scale"]
FUNCTION_KINDS: frozenset[DrawKind] = frozenset({"norm", "activation", "softmax", "scale"})


@record
class Drawing(Record):
    """How `cnnc draw` shows a layer: `kind` picks a box colour (conv, pool, dense, other) or a small
    function mark (norm, activation, softmax, scale); `label(attrs, paper)` is its text, in a compact
    style (`conv 7x7/2, 64`) or, with `paper`, the papers' style (`7x7 conv, 64, /2`), which both of
    `cnnc draw`'s pictures use; `mark`, when set, is the short text shown on the layer before it instead of a
    shape of its own (`BN`, `ReLU`); `wire` draws it as a bare line (the identity shortcut beside a
    residual block's branches); `shown`: a mark the overview shows under its layer where activations
    otherwise go without saying (LeNet's squashing function is no ReLU); `legend`: the legend's name for
    it where the kind's name would misname it (LeNet's trainable subsampling is drawn as a pooling box but
    is no pooling), its colour staying the kind's."""

    kind: DrawKind
    label: Callable[[Attrs, bool], str]
    mark: str | None = None
    wire: bool = False
    shown: bool = False
    legend: str | None = None


@record
class OpDef(Record):
    """One op, whole: signature, static semantics, lowering and the traits passes and pictures read.

    - `infer(attrs, input shape) -> output shape`; `prepare(attrs, input shape) -> attrs` fills
      attributes that depend on the input (pads); both raise `OpError`.
    - `params(attrs, input shape, layer name)`: the named tensors it owns; `macs(attrs, in, out)`.
    - `lower(layer, emitter)`: its ONNX nodes.
    - `passthrough`: no tensor of its own, its output is its input (dropout, identity).
    - `per_channel`: acts on each channel alone, so N identical towers stacked on the channel axis
      compute the same through it (compiler/towers.py).
    - `bn_fold(attrs)`: the index of the parameter a following batch norm folds into (its output
      channels are the BN's), or None where it cannot fold (compiler/foldbn.py).
    """

    name: str
    doc: str
    args: tuple[Arg, ...]
    infer: Callable[[Attrs, Shape], Shape]
    params: Callable[[Attrs, Shape, str], tuple[Param, ...]]
    macs: Callable[[Attrs, Shape, Shape], int]
    lower: Lowering
    draw: Drawing
    prepare: Callable[[Attrs, Shape], Attrs] = unchanged
    passthrough: bool = False
    per_channel: bool = False
    bn_fold: Callable[[Attrs], int | None] | None = None

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


Towers = Literal["stack", "sum"]


@record
class MergeDef(Record):
    """One merge of branches, whole: `infer(shapes) -> shape` (raises OpError with a sentence that the
    caller completes with every branch's shape), its lowering, and its traits:

    - `towers`: how N identical towers merged by it become one stacked tower (compiler/towers.py):
      `stack` (the stacked output is the merge's output) or `sum` (the last conv reads the stacked
      channels and sums them); None where towers cannot be stacked.
    - `module`: how `cnnc draw` colours a block built around it; `legend`: its legend entry; `symbol`:
      the sign its branches join into (`+`), or None to join them under a bar that names the merge.
    """

    name: str
    doc: str
    infer: Callable[[list[Shape]], Shape]
    lower: Lowering
    towers: Towers | None
    module: Literal["inception", "residual", "gate"]
    legend: str
    symbol: str | None
