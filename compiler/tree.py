"""The resolved tree: what compiler/resolve.py makes of a document, and what shape inference
(compiler/graph.py), pictures and tables read. Frozen nodes; block calls stay as `RCall` around what
they expand to.
"""
from __future__ import annotations

from dataclasses import field, replace
from typing import Union, overload

from ..dsl import expr
from ..errors import Location
from ..record import Record, record
from .ops import Attrs


@record
class ROp(Record):
    path: str
    op: str
    attrs: Attrs
    loc: Location
    trace: tuple[str, ...]
    arg_locs: dict[str, Location] = field(default_factory=dict, compare=False)  # where each arg was written
    name: str | None = field(default=None, compare=False)  # the name written for it (`pool1: maxpool(3)`)


@record
class RSeq(Record):
    """A sequence; `path` is where its items are named, `name` the name written for it (`stem: [...]`)."""

    items: tuple[RNode, ...]
    path: str = field(default="", compare=False)
    name: str | None = field(default=None, compare=False)


@record
class RMerge(Record):
    """A merge of `branches`; `groups` has, per branch written, its name and how many branches it
    became (`tower x 32` in a branch list: 32, named `branch1` ... `branch32`)."""

    path: str
    op: str
    branches: tuple[RNode, ...]
    loc: Location
    trace: tuple[str, ...]
    groups: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    name: str | None = field(default=None, compare=False)


@record
class RCall(Record):
    """A block call: `block` called at `loc` with `args` and `kwargs` (evaluated), its parameters bound
    to `params`; `body` is what it expands to, named under `path`."""

    path: str
    block: str
    args: tuple[expr.Value, ...]
    kwargs: tuple[tuple[str, expr.Value], ...]
    params: tuple[tuple[str, expr.Value], ...]
    body: RNode
    loc: Location
    name: str | None = None  # the name written for the call (`mixed0: inception_a(32)`)
    text: str = field(default="", compare=False)  # the call as written (`inception_a(32)`)


@record
class RExpect(Record):
    shape: tuple[int, ...]
    loc: Location
    trace: tuple[str, ...]


@record
class RAux(Record):
    """A train-only head tapping the tensor at this point; `path` names its output."""

    path: str
    node: RNode
    loc: Location
    trace: tuple[str, ...]


RNode = Union[ROp, RSeq, RMerge, RExpect, RAux, RCall]


class CompileWarning(UserWarning):
    """Something legal but probably unintended, such as a block that is never used; `build` issues
    these through Python's `warnings`, and the CLI prints them as `file:line:col: warning: ...`."""

    def __init__(self, message: str, loc: Location, code: str = "W0000"):
        super().__init__(message)
        self.message, self.loc, self.code = message, loc, code

    def __str__(self) -> str:
        return f"{self.loc}: warning[{self.code}]: {self.message}"


@overload
def without_calls(node: RSeq) -> RSeq: ...
@overload
def without_calls(node: RNode) -> RNode: ...
def without_calls(node: RNode) -> RNode:
    """The tree as if block calls dissolved into what they expand to (the shape `cnnc expand` writes)."""
    if isinstance(node, RCall):
        return without_calls(node.body)
    if isinstance(node, RSeq):
        return replace(node, items=tuple(without_calls(i) for i in node.items))
    if isinstance(node, RMerge):
        return replace(node, branches=tuple(without_calls(b) for b in node.branches))
    if isinstance(node, RAux):
        return replace(node, node=without_calls(node.node))
    return node


def output_name(node: RNode, x: str, passthrough: frozenset[str]) -> str:
    """The name of the tensor that `node`, fed the tensor `x`, outputs (shape inference names tensors
    after the layers that make them; pass-through ops and heads give their input back)."""
    if isinstance(node, RSeq):
        for item in node.items:
            x = output_name(item, x, passthrough)
        return x
    if isinstance(node, RCall):
        return output_name(node.body, x, passthrough)
    if isinstance(node, ROp):
        return x if node.op in passthrough else node.path
    if isinstance(node, RMerge):
        return node.path
    return x
