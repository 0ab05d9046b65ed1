"""The resolved tree -> the view tree both pictures lay out.

Consumes the resolved tree of `compiler.build_tree` (block calls kept as `RCall`, compiler/resolve.py)
and the whole graph built from it (train-only heads included); produces the view tree: each node with
its path, the name written for it, and, from the graph, its evaluated attributes and output shape. Also
the questions both pictures ask of a view: is it a module (drawn as one box), of which kind.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence, Union

from ..compiler.ir import Graph, Shape
from ..compiler.ops import Attrs
from ..compiler.resolve import RAux, RCall, RMerge, RNode, ROp, RSeq
from ..dsl import expr


@dataclass(frozen=True)
class VLayer:
    path: str
    op: str
    attrs: Attrs
    shape: Shape
    name: str | None  # the name written in the document, if any
    weights: tuple[Shape, ...] = ()  # its tensors' shapes: what tells two calls on different inputs apart


@dataclass(frozen=True)
class VSeq:
    path: str
    name: str | None
    items: tuple[View, ...]


@dataclass(frozen=True)
class VBranch:
    name: str
    node: View
    copies: int  # `tower x 32` in a branch list: one tower built, 32 meant
    label: str  # the name, or `branch1 … branch32` for copies


@dataclass(frozen=True)
class VMerge:
    path: str
    name: str | None
    op: str
    branches: tuple[VBranch, ...]
    shape: Shape


@dataclass(frozen=True)
class VBlock:
    path: str
    name: str | None
    block: str
    call: str  # the call with its arguments evaluated: `inception_b(160)`
    body: View
    shape: Shape
    params: tuple[tuple[str, str], ...] = ()  # each parameter and the value it is bound to, as text


@dataclass(frozen=True)
class VAux:
    path: str
    body: View


View = Union[VLayer, VSeq, VMerge, VBlock, VAux, None]  # None: an `expect:` (nothing to draw)
Target = Union[VBlock, VMerge, VSeq, VLayer]  # what a picture can be drawn of


def views(tree: RSeq, graph: Graph) -> VSeq:
    """The view tree of `tree`, each layer's attributes and shape taken from `graph` (built from it)."""
    return _Viewer(graph).seq(tree)


class _Viewer:
    def __init__(self, graph: Graph):
        self.name = graph.name
        self.layers = {layer.name: layer for layer in graph.layers}
        self.shapes: dict[str, Shape] = {}  # a name and every prefix of it -> the shape of its last layer
        for layer in graph.layers:
            parts = layer.name.split("/")
            for i in range(1, len(parts) + 1):
                self.shapes["/".join(parts[:i])] = layer.shape

    def view(self, node: RNode) -> View:
        if isinstance(node, ROp):
            return self.layer(node)
        if isinstance(node, RSeq):
            return self.seq(node)
        if isinstance(node, RMerge):
            return self.merge(node)
        if isinstance(node, RCall):
            return self.call(node)
        if isinstance(node, RAux):
            return VAux(node.path, self.view(node.node))
        return None  # an `expect:`

    def seq(self, node: RSeq) -> VSeq:
        return VSeq(node.path, node.name, tuple(self.view(item) for item in node.items))

    def layer(self, node: ROp) -> VLayer:
        layer = self.layers.get(node.path)
        if layer is None:  # the tree and the graph built from it disagree on a name: a bug, never a guess
            raise RuntimeError(f"cnnc draw: no layer `{node.path}` in the graph of `{self.name}`")
        return VLayer(node.path, layer.op, layer.attrs, layer.shape, node.name, tuple(p.shape for p in layer.params))

    def merge(self, node: RMerge) -> VMerge:
        """One branch drawn per written branch: `tower x 32` resolved to 32 branches is drawn once."""
        branches: list[VBranch] = []
        first = 0
        for label, copies in node.groups:
            shown = label if copies == 1 else f"{label} … branch{first + copies}"
            branches.append(VBranch(label, self.view(node.branches[first]), copies, shown))
            first += copies
        return VMerge(node.path, node.name, node.op, tuple(branches), self.shapes[node.path])

    def call(self, node: RCall) -> VBlock:
        params = tuple((name, value_text(value)) for name, value in node.params)
        return VBlock(node.path, node.name, node.block, call_text(node.block, node.args, node.kwargs),
                      self.view(node.body), self.shapes.get(node.path, ()), params)


LIST_ITEMS = 16  # a list holding more numbers than this is summarised by its size in labels and tooltips


def value_text(value: expr.Value) -> str:
    """A value as a document would write it: `true`, `3x3`, `[1, 2]`, `0.17`; a list of more than
    LIST_ITEMS numbers by its size instead (`table 240×60 (14,400 entries)`, `[16, 24, 32, … 20 values]`),
    so that a label or tooltip stays short whatever an argument holds."""
    if isinstance(value, tuple) and _leaves(value) > LIST_ITEMS:
        return _list_summary(value)
    return _text(value)


def _text(value: expr.Value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        if len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return f"{value[0]}x{value[1]}"
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _leaves(value: expr.Value) -> int:
    """How many numbers (and strings, booleans) a value holds, nested lists counted through."""
    return sum(_leaves(v) for v in value) if isinstance(value, tuple) else 1


def _list_summary(value: tuple) -> str:
    """A long list by its size: a table (a list of lists) by its rows and entries, a flat list by its
    first items and its length."""
    if all(isinstance(row, tuple) for row in value):
        lengths = {len(row) for row in value}
        size = f"{len(value)}×{lengths.pop()}" if len(lengths) == 1 else f"of {len(value)} rows"
        return f"table {size} ({_leaves(value):,} entries)"
    if not any(isinstance(v, tuple) for v in value):
        return "[" + ", ".join(_text(v) for v in value[:3]) + f", … {len(value):,} values]"
    return f"[list of {len(value):,} items ({_leaves(value):,} values)]"


def call_text(name: str, args: Sequence[expr.Value], kwargs: Sequence[tuple[str, expr.Value]]) -> str:
    """`inception_b(160)`, `stage(64, 4, 3, stride=1)`; a call without arguments is its name."""
    parts = [value_text(a) for a in args] + [f"{k}={value_text(v)}" for k, v in kwargs]
    return f"{name}({', '.join(parts)})" if parts else name


# ---- what a view is ----------------------------------------------------------------------------------
def first_merge(view: View) -> VMerge | None:
    """The merge that makes a block a module: its body's first merge, through nested blocks."""
    if isinstance(view, VMerge):
        return view
    if isinstance(view, VBlock):
        return first_merge(view.body)
    if isinstance(view, VSeq):
        for item in view.items:
            found = first_merge(item)
            if found is not None:
                return found
    return None


def is_module(view: View) -> bool:
    """A block drawn as one box: a merge, with at most functions and plain layers around it."""
    if isinstance(view, VMerge):
        return True
    if isinstance(view, VBlock):
        return is_module(view.body)
    if isinstance(view, VSeq):
        merges = [i for i in view.items if is_module(i)]
        return len(merges) == 1 and all(i is None or i in merges or isinstance(i, VLayer) for i in view.items)
    return False


def walk(view: View, copies: int = 1, aux: bool = True) -> Iterator[tuple[Target, int]]:
    """Every view that can be drawn, depth first in the order of the network, with how many times it
    stands for itself (a tower drawn once for 32 copies counts 32); `aux=False` leaves train-only heads out."""
    if isinstance(view, (VBlock, VMerge, VSeq, VLayer)):
        yield view, copies
    if isinstance(view, VSeq):
        for item in view.items:
            yield from walk(item, copies, aux)
    elif isinstance(view, VBlock) or aux and isinstance(view, VAux):
        yield from walk(view.body, copies, aux)
    elif isinstance(view, VMerge):
        for branch in view.branches:
            yield from walk(branch.node, copies * branch.copies, aux)
