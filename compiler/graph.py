"""Resolved tree -> `ir.Graph`: every tensor's shape inferred, parameters and MACs counted.

Shape errors name the layer, its input shape and, for merges, every branch's shape and origin.
"""
from __future__ import annotations

from ..errors import Location
from .errors import ResolveError, ShapeError
from .ir import Graph, Layer, Shape
from .ops import MERGES, OPS, OpError
from .limits import current as current_limits, raise_help
from .ops.base import Attrs
from .tree import CompileWarning, RAux, RCall, RExpect, RMerge, RNode, ROp, RSeq



def infer(name: str, input_shape: Shape, tree: RSeq, warnings: tuple[CompileWarning, ...] = (),
          description: str = "") -> Graph:
    """Walk the resolved tree from the input, producing the flat, ordered layer list.

    The graph has every train-only head (`aux:`), each an extra output and its layers marked with the
    head's name; `Graph.inference()` is the view without them.
    """
    inferer = _Inferer()
    out, shape = inferer.node(tree, "input", tuple(input_shape))
    return Graph(name, tuple(input_shape), tuple(inferer.layers), out, shape, tuple(inferer.aux),
                 tuple(inferer.heads), (*warnings, *inferer.warnings),
                 (*(None for _ in warnings), *inferer.warning_heads), description)


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class _Inferer:
    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.names: dict[str, object] = {"input": None}  # name -> the node that took it
        self.aux: list[tuple[str, str, Shape]] = []
        self.heads: list[str] = []
        self.in_head: str | None = None  # the train-only head being inferred
        self.warnings: list[CompileWarning] = []
        self.warning_heads: list[str | None] = []
        self.limits = current_limits()
        self.params = 0
        self.calls: tuple[tuple[str, str, Location], ...] = ()  # the block calls being inferred, outermost first

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
        if isinstance(node, RCall):
            outer = self.calls
            self.calls = (*outer, (node.path, node.text, node.loc))
            out = self.node(node.body, x, shape)
            self.calls = outer
            return out
        return self.expect(node, x, shape)

    def head(self, node: RAux, x: str, shape: Shape) -> tuple[str, Shape]:
        if node.path == "output":
            raise ShapeError("a train-only head cannot be named `output`, the main output's name", node.loc,
                             node.trace)
        self._claim(node.path, node)
        self.heads.append(node.path)
        outer, self.in_head = self.in_head, node.path
        out, out_shape = self.node(node.node, x, shape)
        self.in_head = outer
        self.aux.append((node.path, out, out_shape))
        return x, shape

    def op(self, node: ROp, x: str, shape: Shape) -> tuple[str, Shape]:
        spec = OPS[node.op]
        attrs, out = op_output(node, shape)
        try:
            params = spec.params(attrs, shape, node.path)
        except OpError as e:
            raise _op_error(node, shape, e) from None
        self._check_size(node, out, params)
        self._check_coverage(node, attrs, shape)
        output = x if spec.passthrough else self._claim(node.path, node)
        self.layers.append(Layer(node.path, node.op, attrs, (x,), output, out, params,
                                 spec.macs(attrs, shape, out), node.loc, self.in_head, self.calls))
        return output, out

    def _check_size(self, node: ROp, out: Shape, params) -> None:
        size = 1
        for d in out:
            size *= d
        if size * 4 > self.limits.activation_mb << 20:
            raise ShapeError(f"{_label(node)} outputs {_fmt(out)}, {size * 4 / 2**20:,.0f} MiB per "
                             f"image, over the limit of {self.limits.activation_mb:,} MiB (limit `activation_mb`)",
                             node.loc, node.trace, raise_help("activation_mb", self.limits.activation_mb), "E0801")
        self.params += sum(p.size for p in params)
        if self.params > self.limits.params:
            raise ShapeError(f"the network has more than {self.limits.params:,} parameters by {_label(node)} "
                             f"({sum(p.size for p in params):,} of them; limit `params`)",
                             node.loc, node.trace, raise_help("params", self.limits.params), "E0801")

    def _check_coverage(self, node: ROp, attrs: dict, shape: Shape) -> None:
        """A window wider than one cell whose stride is larger still never reads the cells in between."""
        kernel, stride = attrs.get("kernel"), attrs.get("stride")
        if kernel and stride and any(1 < k < s for k, s in zip(kernel, stride)):
            self.warnings.append(CompileWarning(
                f"{_label(node)} has kernel {kernel[0]}x{kernel[1]} and stride {stride[0]}x{stride[1]}: "
                f"some input cells are never read", node.loc, "W0002"))
            self.warning_heads.append(self.in_head)

    def merge(self, node: RMerge, x: str, shape: Shape) -> tuple[str, Shape]:
        outs = [self.node(branch, x, shape) for branch in node.branches]
        out = merge_output(node, outs)
        output = self._claim(node.path, node)
        self.layers.append(Layer(node.path, node.op, {}, tuple(n for n, _ in outs), output, out, (), 0,
                                 node.loc, self.in_head, self.calls))
        return output, out

    def expect(self, node: RExpect, x: str, shape: Shape) -> tuple[str, Shape]:
        check_expect(node, shape)
        return x, shape

    def _claim(self, name: str, node) -> str:
        if name in self.names:
            raise ResolveError(_clash(name, node, self.names[name]), node.loc, node.trace, code="E0403")
        self.names[name] = node
        return name


def _clash(name: str, node, first) -> str:
    """Which two layers want `name`, and which of the names cnnc made up (a layer without a written name
    is named after its op, numbered: `conv`, `conv_1`, ...)."""
    if first is None:
        return f"a layer cannot be named `{name}`: that is the network input's name; choose another"

    def who(n, this: str) -> str:
        leaf = name.rsplit("/", 1)[-1]
        how = "written in the file" if getattr(n, "name", None) == leaf else "made up by cnnc from its op"
        return f"{this} ({how}{'' if n.loc is None else f', at {n.loc}'})"
    return (f"two layers are both named `{name}`: {who(node, 'this one')} and {who(first, 'an earlier one')}; "
            f"give the written one another name (`mine: conv(...)`)")


# ---- the shape rules, shared with compiler/resolve.py (which tracks shapes for `in_channels`) -----------
def op_output(node: ROp, shape: Shape) -> tuple[Attrs, Shape]:
    """The op's attributes completed for its input (`prepare`) and its output shape; a located
    ShapeError when the input does not suit it."""
    spec = OPS[node.op]
    try:
        attrs = spec.prepare(node.attrs, shape)
        out = spec.infer(attrs, shape)
    except OpError as e:
        raise _op_error(node, shape, e) from None
    if any(d < 1 for d in out):
        raise ShapeError(f"{_label(node)} turns {_fmt(shape)} into {_fmt(out)}: a size "
                         f"reached zero", node.loc, node.trace)
    return attrs, out


def merge_output(node: RMerge, outs: list[tuple[str, Shape]]) -> Shape:
    """The merge's output shape from its branches' (output tensor, shape); a located ShapeError listing
    every branch when they do not merge."""
    try:
        return MERGES[node.op].infer([s for _, s in outs])
    except OpError as e:
        listing = "; ".join(f"{_origin(name, node.path)} {_fmt(s)}" for name, s in outs)
        raise ShapeError(f"`{node.path}` {e}: {listing}", node.loc, node.trace, _merge_help(node, outs),
                         "E0501") from None


def _merge_help(node: RMerge, outs: list[tuple[str, Shape]]) -> str:
    """For an `add` or `mul` whose branches differ: the projection that makes a branch fit (a residual's
    usual fix: a 1x1 conv on the shortcut, strided when the size halves)."""
    if node.op not in ("add", "mul") or any(len(s) != 3 for _, s in outs):
        return ""
    changed = [(n, s) for n, s in outs if n.startswith(node.path + "/")]  # branches with layers of their own
    target = (changed or outs)[-1][1]
    name, shape = next(((n, s) for n, s in outs if s != target), outs[0])
    if shape[1] % target[1] or shape[2] % target[2] or shape[1] // target[1] != shape[2] // target[2]:
        return ""
    stride = shape[1] // target[1]
    conv = f"conv({target[0]}, 1x1{f', stride={stride}' if stride > 1 else ''})"
    who = _origin(name, node.path) if name.startswith(node.path + "/") else "the merge's input (the shortcut)"
    return (f"a 1x1 projection makes {who} {_fmt(shape)} fit {_fmt(target)}: "
            f"`[{conv}, batchnorm]` as (or after) that branch")


def check_expect(node: RExpect, shape: Shape) -> None:
    if tuple(node.shape) != shape:
        raise ShapeError(f"expected shape {_fmt(node.shape)} here, but it is {_fmt(shape)}", node.loc, node.trace,
                         code="E0502")


def _op_error(node: ROp, shape: Shape, e: OpError) -> ShapeError:
    loc = node.arg_locs.get(e.arg, node.loc) if e.arg is not None else node.loc
    return ShapeError(f"{_label(node)} on input {_fmt(shape)}: {e}", loc, node.trace, e.help, "E0503")


def _label(node: ROp) -> str:
    """`mixed0/branch1x1/conv`, with the op added where the name does not already say it."""
    return f"`{node.path}`" if node.path.rsplit("/", 1)[-1].startswith(node.op) else f"`{node.path}` ({node.op})"


def _origin(tensor: str, merge: str) -> str:
    return "input of the merge" if not tensor.startswith(merge + "/") else f"`{tensor[len(merge) + 1:]}`"
