"""Resolved tree -> `ir.Graph`: every tensor's shape inferred, parameters and MACs counted.

Shape errors name the layer, its input shape and, for merges, every branch's shape and origin.
"""
from __future__ import annotations

from ..dsl.errors import ShapeError
from .ir import PASSTHROUGH, Graph, Layer, Shape
from .ops import OPS, OpError
from .limits import current as current_limits
from .resolve import RAux, RExpect, RMerge, RNode, ROp, RSeq, CompileWarning



def infer(name: str, input_shape: Shape, tree: RSeq, aux: bool = False,
          warnings: tuple[CompileWarning, ...] = ()) -> Graph:
    """Walk the resolved tree from the input, producing the flat, ordered layer list.

    Train-only heads (`aux:`) are left out unless `aux` is true; then each becomes an extra output.
    """
    inferer = _Inferer(aux)
    out, shape = inferer.node(tree, "input", tuple(input_shape))
    return Graph(name, tuple(input_shape), tuple(inferer.layers), out, shape, tuple(inferer.aux),
                 tuple(inferer.heads), (*warnings, *inferer.warnings))


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class _Inferer:
    def __init__(self, aux: bool):
        self.layers: list[Layer] = []
        self.names: set[str] = {"input"}
        self.keep_aux = aux
        self.aux: list[tuple[str, str, Shape]] = []
        self.heads: list[str] = []
        self.warnings: list[CompileWarning] = []
        self.limits = current_limits()
        self.params = 0

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
            raise ShapeError(f"{_label(node)} on input {_fmt(shape)}: {e}",
                             node.arg_locs.get(e.arg, node.loc), node.trace) from None
        if any(d < 1 for d in out):
            raise ShapeError(f"{_label(node)} turns {_fmt(shape)} into {_fmt(out)}: a size "
                             f"reached zero", node.loc, node.trace)
        self._check_size(node, out, params)
        self._check_coverage(node, attrs, shape)
        output = x if node.op in PASSTHROUGH else self._claim(node.path, node)
        self.layers.append(Layer(node.path, node.op, attrs, (x,), output, out, params,
                                 spec.macs(attrs, shape, out), node.loc))
        return output, out

    def _check_size(self, node: ROp, out: Shape, params) -> None:
        size = 1
        for d in out:
            size *= d
        if size * 4 > self.limits.activation_mb << 20:
            raise ShapeError(f"{_label(node)} outputs {_fmt(out)}, {size * 4 / 2**20:,.0f} MiB per "
                             f"image, over the limit of {self.limits.activation_mb:,} MiB (limit `activation_mb`)",
                             node.loc, node.trace)
        self.params += sum(p.size for p in params)
        if self.params > self.limits.params:
            raise ShapeError(f"the network has more than {self.limits.params:,} parameters by {_label(node)} "
                             f"({sum(p.size for p in params):,} of them; limit `params`)",
                             node.loc, node.trace)

    def _check_coverage(self, node: ROp, attrs: dict, shape: Shape) -> None:
        """A window wider than one cell whose stride is larger still never reads the cells in between."""
        kernel, stride = attrs.get("kernel"), attrs.get("stride")
        if kernel and stride and any(1 < k < s for k, s in zip(kernel, stride)):
            self.warnings.append(CompileWarning(
                f"{_label(node)} has kernel {kernel[0]}x{kernel[1]} and stride {stride[0]}x{stride[1]}: "
                f"some input cells are never read", node.loc))

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


def _label(node: ROp) -> str:
    """`mixed0/branch1x1/conv`, with the op added where the name does not already say it."""
    return f"`{node.path}`" if node.path.rsplit("/", 1)[-1].startswith(node.op) else f"`{node.path}` ({node.op})"


def _origin(tensor: str, merge: str) -> str:
    return "input of the merge" if not tensor.startswith(merge + "/") else f"`{tensor[len(merge) + 1:]}`"
