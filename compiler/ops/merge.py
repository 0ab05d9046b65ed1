"""Merges of parallel branches: `concat` (on the channel axis), `add` (element-wise sum) and `mul`
(element-wise product, broadcasting size-1 axes: a squeeze-excitation gate).

A merge's shape rule raises `OpError` with the start of a sentence; compiler/graph.py completes it with
the merge's name and every branch's shape and origin.
"""
from __future__ import annotations

from ..ir import Layer, Shape
from .base import Emitter, MergeDef, OpError


def _concat_infer(shapes: list[Shape]) -> Shape:
    if len({len(s) for s in shapes}) > 1 or len({s[1:] for s in shapes}) > 1:
        raise OpError("concatenates branches whose sizes differ beyond the channel axis")
    return (sum(s[0] for s in shapes), *shapes[0][1:])


def _add_infer(shapes: list[Shape]) -> Shape:
    if len(set(shapes)) > 1:
        raise OpError("adds branches of different shapes")
    return shapes[0]


def _add_lower(layer: Layer, e: Emitter) -> list:
    inputs = [e.t(i) for i in layer.inputs]
    return [e.node(layer, "Add" if len(inputs) == 2 else "Sum", inputs)]


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast(shapes: list[Shape]) -> Shape:
    """The shape of the element-wise product of `shapes`: of one rank, each axis the same size in every
    branch or 1 in some (`[C, H, W] x [C, 1, 1]`); raises OpError naming the shapes otherwise."""
    if len({len(s) for s in shapes}) > 1:
        raise OpError(f"multiplies branches of different ranks ({', '.join(_fmt(s) for s in shapes)}); "
                      f"keep the gate's axes (`globalavgpool(keepdims=true)` gives [C, 1, 1])")
    out = []
    for axis, sizes in enumerate(zip(*shapes)):
        wide = {d for d in sizes if d != 1}
        if len(wide) > 1:
            raise OpError(f"multiplies branches whose axis {axis} differs ({', '.join(_fmt(s) for s in shapes)}): "
                          f"each axis must have one size or be 1 to broadcast")
        out.append(wide.pop() if wide else 1)
    return tuple(out)


def _mul_lower(layer: Layer, e: Emitter) -> list:
    inputs = [e.t(i) for i in layer.inputs]
    if len(inputs) == 1:
        return [e.node(layer, "Identity", inputs)]
    nodes, left = [], inputs[0]
    for i, right in enumerate(inputs[1:-1], 1):
        nodes.append(e.make("Mul", [left, right], [f"{layer.name}/product{i}"], f"{layer.name}/product{i}"))
        left = f"{layer.name}/product{i}"
    return [*nodes, e.node(layer, "Mul", [left, inputs[-1]])]


CONCAT = MergeDef("concat", "the branches side by side on the channel axis; other sizes must agree",
                  _concat_infer, lambda layer, e: [e.node(layer, "Concat", [e.t(i) for i in layer.inputs], axis=1)],
                  towers="stack", module="inception", legend="concatenate", symbol=None)
ADD = MergeDef("add", "the element-wise sum of branches of one shape", _add_infer, _add_lower,
               towers="sum", module="residual", legend="add", symbol="+")

MUL = MergeDef("mul", "the element-wise product of branches; an axis of size 1 is broadcast "
               "(squeeze-excitation: `[C, H, W] x [C, 1, 1]`); ranks must agree", broadcast, _mul_lower,
               towers=None, module="gate", legend="multiply", symbol="×")

DEFINITIONS = (CONCAT, ADD, MUL)
