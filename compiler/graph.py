"""Resolved tree -> `ir.Graph`: every tensor's shape inferred, parameters and MACs counted.

Shape errors name the layer, its input shape and, for merges, every branch's shape and origin.
"""
from __future__ import annotations

from ..dsl.errors import ShapeError
from .ir import Graph, Layer, Shape
from .ops import OPS, OpError
from .resolve import RAux, RExpect, RMerge, RNode, ROp, RSeq

PASSTHROUGH = frozenset({"dropout", "identity"})  # no tensor of their own: output is the input


def infer(name: str, input_shape: Shape, tree: RSeq, aux: bool = False) -> Graph:
    """Walk the resolved tree from the input, producing the flat, ordered layer list.

    Train-only heads (`aux:`) are left out unless `aux` is true; then each becomes an extra output.
    """
    inferer = _Inferer(aux)
    out, shape = inferer.node(tree, "input", tuple(input_shape))
    return Graph(name, tuple(input_shape), tuple(inferer.layers), out, shape, tuple(inferer.aux),
                 tuple(inferer.heads))


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class _Inferer:
    def __init__(self, aux: bool):
        self.layers: list[Layer] = []
        self.names: set[str] = {"input"}
        self.keep_aux = aux
        self.aux: list[tuple[str, str, Shape]] = []
        self.heads: list[str] = []

    def node(self, node: RNode, x: str, shape: Shape) -> tuple[str, Shape]:
        if isinstance(node, RSeq):
            for item in node.items:
                x, shape = self.node(item, x, shape)
            return x, shape
        if isinstance(node, ROp):
            return self.op(node, x, shape)
        if isinstance(node, RMerge):
            return self.merge(node, x, shape)
        if isinstance(node, RAux):
            return self.head(node, x, shape)
        return self.expect(node, x, shape)

    def head(self, node: RAux, x: str, shape: Shape) -> tuple[str, Shape]:
        if node.path == "output":
            raise ShapeError("a train-only head cannot be named `output`, the main output's name", node.loc,
                             node.trace)
        self._claim(node.path, node)
        self.heads.append(node.path)
        if self.keep_aux:
            out, out_shape = self.node(node.node, x, shape)
            self.aux.append((node.path, out, out_shape))
        return x, shape

    def op(self, node: ROp, x: str, shape: Shape) -> tuple[str, Shape]:
        spec = OPS[node.op]
        try:
            attrs = spec.prepare(node.attrs, shape)
            out = spec.infer(attrs, shape)
            params = spec.params(attrs, shape, node.path)
        except OpError as e:
            what = "" if node.path.rsplit("/", 1)[-1].startswith(node.op) else f" ({node.op})"
            raise ShapeError(f"`{node.path}`{what} on input {_fmt(shape)}: {e}",
                             node.arg_locs.get(e.arg, node.loc), node.trace) from None
        if any(d < 1 for d in out):
            raise ShapeError(f"`{node.path}` ({node.op}) turns {_fmt(shape)} into {_fmt(out)}: a size "
                             f"reached zero", node.loc, node.trace)
        output = x if node.op in PASSTHROUGH else self._claim(node.path, node)
        self.layers.append(Layer(node.path, node.op, attrs, (x,), output, out, params,
                                 spec.macs(attrs, shape, out), node.loc))
        return output, out

    def merge(self, node: RMerge, x: str, shape: Shape) -> tuple[str, Shape]:
        outs = [self.node(branch, x, shape) for branch in node.branches]
        shapes = [s for _, s in outs]
        listing = "; ".join(f"{_origin(name, node.path)} {_fmt(s)}" for name, s in outs)
        if node.op == "add":
            if len(set(shapes)) > 1:
                raise ShapeError(f"`{node.path}` adds branches of different shapes: {listing}",
                                 node.loc, node.trace)
            out = shapes[0]
        else:
            if len({len(s) for s in shapes}) > 1 or len({s[1:] for s in shapes}) > 1:
                raise ShapeError(f"`{node.path}` concatenates branches whose sizes differ beyond the "
                                 f"channel axis: {listing}", node.loc, node.trace)
            out = (sum(s[0] for s in shapes), *shapes[0][1:])
        output = self._claim(node.path, node)
        self.layers.append(Layer(node.path, node.op, {}, tuple(n for n, _ in outs), output, out, (), 0,
                                 node.loc))
        return output, out

    def expect(self, node: RExpect, x: str, shape: Shape) -> tuple[str, Shape]:
        if tuple(node.shape) != shape:
            raise ShapeError(f"expected shape {_fmt(node.shape)} here, but it is {_fmt(shape)}",
                             node.loc, node.trace)
        return x, shape

    def _claim(self, name: str, node) -> str:
        if name in self.names:
            raise ShapeError(f"two layers are both named `{name}`; name one of them differently",
                             node.loc, node.trace)
        self.names.add(name)
        return name


def _origin(tensor: str, merge: str) -> str:
    return "input of the merge" if not tensor.startswith(merge + "/") else f"`{tensor[len(merge) + 1:]}`"
