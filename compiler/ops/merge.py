"""Merges of parallel branches: `concat` (on the channel axis) and `add` (element-wise sum).

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


CONCAT = MergeDef("concat", "the branches side by side on the channel axis; other sizes must agree",
                  _concat_infer, lambda layer, e: [e.node(layer, "Concat", [e.t(i) for i in layer.inputs], axis=1)],
                  towers="stack", module="inception", legend="concatenate", symbol=None)
ADD = MergeDef("add", "the element-wise sum of branches of one shape", _add_infer, _add_lower,
               towers="sum", module="residual", legend="add", symbol="+")

DEFINITIONS = (CONCAT, ADD)
