"""What each layer says, and how wide text is.

Consumes `VLayer`s and the op registry's drawing traits (`OpDef.draw`: kind, label, mark,
compiler/ops/base.py), so a new op is drawn from its definition alone; produces each layer's text, the
kind that picks its colour, its mark when attached to the layer before it, and text widths in DejaVu
Sans measured without reading a font file.
"""
from __future__ import annotations

from typing import Literal, cast

from ..compiler.ir import Shape
from ..compiler.ops import OPS
from ..compiler.ops.base import FUNCTION_KINDS
from .views import VLayer

LayerKind = Literal["conv", "pool", "dense", "other"]
FuncKind = Literal["norm", "activation", "softmax", "scale"]


def is_function(op: str) -> bool:
    """Drawn as a small function (batch norm, an activation, softmax, a scaling), not as a box."""
    return OPS[op].draw.kind in FUNCTION_KINDS


def attaches(op: str) -> bool:
    """Shown as a mark on the layer before it (`BN`, `ReLU`) rather than as a shape of its own."""
    return OPS[op].draw.mark is not None


def is_wire(op: str) -> bool:
    """Drawn as a bare line (`identity`, the shortcut beside a residual block's branches)."""
    return OPS[op].draw.wire


def layer_kind(op: str) -> LayerKind:
    kind = OPS[op].draw.kind
    return "other" if kind in FUNCTION_KINDS else cast(LayerKind, kind)


def layer_legend(op: str) -> tuple[str, str]:
    """The legend entry of a layer drawn as a box: ("layer", its kind), or ("layer", "kind:name") where the
    registry names it apart (drawn in its kind's colour, listed under its own name)."""
    name = OPS[op].draw.legend
    return ("layer", layer_kind(op) + (f":{name}" if name else ""))


def func_kind(op: str) -> FuncKind:
    return cast(FuncKind, OPS[op].draw.kind)


def layer_label(layer: VLayer) -> str:
    """`7x7 conv, 64, /2`, the papers' style (kernel, op, filters, stride), in the overview and inside a
    block alike: the registry's labels with `paper` set."""
    return OPS[layer.op].draw.label(layer.attrs, True)


def func_label(layer: VLayer) -> str:
    return OPS[layer.op].draw.label(layer.attrs, False)


def mark_label(op: str) -> str:
    return OPS[op].draw.mark or op


def mark_shown(op: str) -> bool:
    """A mark the overview shows although activations go without saying there (LeNet's `squash`)."""
    return OPS[op].draw.shown


def shape_text(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


# ---- text metrics --------------------------------------------------------------------------------
FONT = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
# Advance widths of DejaVu Sans in em (the widest of the fonts named above, so text measured here fits).
_WIDTHS = {**dict.fromkeys("il|'!", 0.28), **dict.fromkeys(".,:;", 0.32), **dict.fromkeys("fjt", 0.37),
           **dict.fromkeys("()[]", 0.40), **dict.fromkeys("kvxy", 0.60), **dict.fromkeys("mw", 0.98),
           **dict.fromkeys("×=+", 0.84), "r": 0.42, " ": 0.32, "/": 0.34, "-": 0.36, "_": 0.50, "s": 0.53,
           "c": 0.55, "z": 0.53, "–": 0.50, "…": 1.0, "·": 0.32}


def text_width(text: str, size: float, bold: bool = False) -> float:
    """The width of `text` in DejaVu Sans at `size` px, near enough to size boxes (no font files read)."""
    em = 0.0
    for ch in text:
        em += _WIDTHS.get(ch, 0.74 if ch.isupper() else 0.64)
    return em * size * (1.12 if bold else 1.0)


WRAP = 170.0  # the widest line of text in a module box


def wrap(text: str, size: float, width: float = WRAP, balanced: bool = True) -> list[str]:
    """`reduction_a(k=192, l=224, m=256, n=384)` broken after commas into lines at most `width` wide:
    two lines of about equal width when two are enough and `balanced`, else each line filled in turn."""
    parts = text.split(", ")
    if text_width(text, size) <= width or len(parts) < 2:
        return [text]
    if not balanced or text_width(text, size) > 2 * width + text_width(" ", size):
        return _greedy(parts, size, width)  # two lines cannot hold it: the halves below would cost O(len²)
    halves = [(", ".join(parts[:i]) + ",", ", ".join(parts[i:])) for i in range(1, len(parts))]
    a, b = min(halves, key=lambda h: max(text_width(h[0], size), text_width(h[1], size)))
    if max(text_width(a, size), text_width(b, size)) <= width:
        return [a, b]
    return _greedy(parts, size, width)


def _greedy(parts: list[str], size: float, width: float) -> list[str]:
    """As many parts on each line as fit in `width`."""
    lines = [""]
    for part in parts:
        joined = f"{lines[-1]}, {part}" if lines[-1] else part
        if lines[-1] and text_width(joined + ",", size) > width:
            lines[-1] += ","
            lines.append(part)
        else:
            lines[-1] = joined
    return lines
