"""A network -> an SVG picture, in the style of the illustrated overviews the zoo comes from.

Consumes the validated `Document` (its blocks, calls, repeats, names) and the shaped `Graph` (every
layer's evaluated attributes and output shape, found under the hierarchical names of compiler/resolve.py);
produces self-contained SVG text (inline styles, no scripts, no fonts to fetch), the same bytes every time.

Two pictures:
- the overview: the top-level `layers:` drawn left to right as a chain (wrapped onto several rows when
  long); modules as coloured boxes by kind, consecutive calls of one block folded into one box marked
  `×N`, plain layers as small upright shapes, batch norm and softmax as small marked functions, named
  sequences (a stem, a VGG stage) as frames, train-only heads as dashed side branches;
- `expand`: one block's inside, drawn top to bottom as papers draw an Inception module: its parallel
  branches side by side, each layer a small box with kernel and filters, the merge at the bottom, an
  identity shortcut as a line around the branches; `tower x 32` drawn once and marked `×32`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Callable, Literal, Union
from xml.sax.saxutils import escape

from .compiler.ir import Graph, Shape
from .compiler.ops import KINDS
from .dsl import expr
from .dsl.document import (AuxNode, BlockDef, CallNode, Document, ExpectNode, Layer, MergeNode, NamedNode,
                           SeqNode)
from .errors import CnncError, did_you_mean
from .files import write_text

ModuleKind = Literal["inception", "residual", "reduction"]
LayerKind = Literal["conv", "pool", "dense", "other"]
FuncKind = Literal["norm", "activation", "softmax", "scale"]


def render(net: str | os.PathLike | Document, expand: str | None = None) -> str:
    """The network's overview as SVG text; with `expand`, the inside of that block (a block name, or the
    name of a module in the network such as `mixed5`), as first called in the network."""
    from . import api
    doc = api.load(net)
    graph = api.build(doc, aux=True)  # the train-only heads' layers too, to draw them
    tree = _Walker(doc, graph).tree()
    if expand is None:
        return _overview(doc, api.build(doc) if graph.aux_heads else graph, tree)
    return _expanded(doc, graph, tree, expand)


def write(svg: str, path: str | os.PathLike) -> None:
    """Write `svg` atomically: a temporary file beside `path`, then a rename."""
    write_text(path, svg, "picture")


# ==== the view tree: the document expanded, each node with its resolved name, attributes and shape ====
@dataclass(frozen=True)
class VLayer:
    path: str
    op: str
    attrs: dict
    shape: Shape
    name: str | None  # the name written in the document, if any


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


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


class _Walker:
    """Walks the document as compiler/resolve.py does (same names, same argument binding), keeping the
    block calls that resolving dissolves, and takes each layer's attributes and shape from the graph."""

    def __init__(self, doc: Document, graph: Graph):
        self.doc = doc
        self.layers = {layer.name: layer for layer in graph.layers}
        self.shapes: dict[str, Shape] = {}  # a name and every prefix of it -> the shape of its last layer
        for layer in graph.layers:
            parts = layer.name.split("/")
            for i in range(1, len(parts) + 1):
                self.shapes["/".join(parts[:i])] = layer.shape
        self.constants = {key: s.value for key, s in doc.constants.items()}

    def tree(self) -> VSeq:
        return self.seq(self.doc.layers, "", dict(self.constants), None)

    def seq(self, node: SeqNode, path: str, env: dict, name: str | None) -> VSeq:
        entries = list(self._entries(node, env))
        counts: dict[str, int] = {}
        for base, _, _ in entries:
            if base is not None:
                counts[base] = counts.get(base, 0) + 1
        seen: dict[str, int] = {}
        items = []
        for base, written, child in entries:
            if base is None:
                items.append(None)
                continue
            seen[base] = seen.get(base, 0) + 1
            unique = f"{base}_{seen[base]}" if counts[base] > 1 else base
            items.append(self.node(child, _join(path, unique), env, written))
        return VSeq(path, name, tuple(items))

    def _entries(self, node: SeqNode, env: dict):
        """(base name, written name, node) for each item; repeats unrolled, nested lists spliced."""
        for item in node.items:
            if isinstance(item, CallNode):
                once = CallNode(expr.Item(item.item.col, item.item.call, None), item.text, item.loc)
                yield from ((item.item.call.name, None, once) for _ in range(self._repeat(item, env)))
            elif isinstance(item, SeqNode):
                yield from self._entries(item, env)
            elif isinstance(item, NamedNode):
                yield item.name, item.name, item.node
            elif isinstance(item, MergeNode):
                yield item.op, None, item
            elif isinstance(item, AuxNode):
                yield "aux", None, item
            else:
                yield None, None, item

    def _repeat(self, node: CallNode, env: dict) -> int:
        return 1 if node.item.repeat is None else expr.evaluate(node.item.repeat, env, node.loc)

    def node(self, node: Layer, path: str, env: dict, name: str | None) -> View:
        if isinstance(node, CallNode):
            if node.item.repeat is not None:
                return self.seq(SeqNode((node,), node.loc), path, env, name)
            return self.call(node, path or node.item.call.name, env, name)
        if isinstance(node, SeqNode):
            return self.seq(node, path, env, name)
        if isinstance(node, NamedNode):
            return self.node(node.node, path, env, name or node.name)
        if isinstance(node, MergeNode):
            return self.merge(node, path or node.op, env, name)
        if isinstance(node, AuxNode):
            return VAux(path or "aux", self.node(node.node, path or "aux", env, None))
        assert isinstance(node, ExpectNode)
        return None

    def merge(self, node: MergeNode, path: str, env: dict, name: str | None) -> VMerge:
        branches: list[VBranch] = []
        count = 0
        for branch in node.branches:
            inner, copies = branch.node, 1
            if branch.name is None and isinstance(inner, CallNode) and inner.item.repeat is not None:
                copies = self._repeat(inner, env)
                inner = CallNode(expr.Item(inner.item.col, inner.item.call, None), inner.text, inner.loc)
            label = branch.name or f"branch{count + 1}"
            shown = label if copies == 1 else f"{label} … branch{count + copies}"
            count += copies
            branches.append(VBranch(label, self.node(inner, _join(path, label), env, None), copies, shown))
        return VMerge(path, name, node.op, tuple(branches), self.shapes[path])

    def call(self, node: CallNode, path: str, env: dict, name: str | None) -> View:
        call = node.item.call
        args = [expr.evaluate(a, env, node.loc) for a in call.args]
        kwargs = {key: expr.evaluate(value, env, node.loc) for key, value, _ in call.kwargs}
        block = self.doc.blocks.get(call.name)
        if block is None:
            layer = self.layers.get(path)
            if layer is None:  # the walk and the resolver disagree on a name: a bug, never a guess
                raise RuntimeError(f"cnnc draw: no layer `{path}` in the graph of `{self.doc.name}`")
            return VLayer(path, layer.op, layer.attrs, layer.shape, name)
        inner = self._bind(block, args, kwargs, node)
        body = self.node(block.body, path, inner, None)
        params = tuple((p.name, _value_text(inner[p.name])) for p in block.signature.params)
        return VBlock(path, name, call.name, _call_text(call.name, args, kwargs), body,
                      self.shapes.get(path, ()), params)

    def _bind(self, block: BlockDef, args: list, kwargs: dict, node: CallNode) -> dict:
        """The block's parameters bound as the resolver binds them (the graph built, so they are valid)."""
        env = dict(self.constants)
        for i, p in enumerate(block.signature.params):
            if i < len(args):
                value = args[i]
            elif p.name in kwargs:
                value = kwargs[p.name]
            else:
                value = expr.evaluate(p.default, env, block.loc)
            env[p.name] = KINDS[p.type](value) if p.type else value
        return env


def _value_text(value: expr.Value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        if len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return f"{value[0]}x{value[1]}"
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _call_text(name: str, args: list, kwargs: dict) -> str:
    parts = [_value_text(a) for a in args] + [f"{k}={_value_text(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})" if parts else name


def _first_merge(view: View) -> VMerge | None:
    """The merge that makes a block a module: its body's first merge, through nested blocks."""
    if isinstance(view, VMerge):
        return view
    if isinstance(view, VBlock):
        return _first_merge(view.body)
    if isinstance(view, VSeq):
        for item in view.items:
            found = _first_merge(item)
            if found is not None:
                return found
    return None


def _is_module(view: View) -> bool:
    """A block drawn as one box: a merge, with at most functions and plain layers around it."""
    if isinstance(view, VMerge):
        return True
    if isinstance(view, VBlock):
        return _is_module(view.body)
    if isinstance(view, VSeq):
        merges = [i for i in view.items if _is_module(i)]
        return len(merges) == 1 and all(i is None or i in merges or isinstance(i, VLayer) for i in view.items)
    return False


def _strided(view: View) -> bool:
    if isinstance(view, VLayer):
        return any(s > 1 for s in view.attrs.get("stride") or (1,))
    if isinstance(view, VSeq):
        return any(_strided(i) for i in view.items)
    if isinstance(view, VMerge):
        return any(_strided(b.node) for b in view.branches)
    if isinstance(view, (VBlock, VAux)):
        return _strided(view.body)
    return False


def _module_kind(view: VBlock | VMerge) -> ModuleKind:
    """Stride 2 anywhere inside: a reduction module; else by its merge: concat (Inception) or add."""
    if _strided(view):
        return "reduction"
    merge = _first_merge(view)
    return "residual" if merge is not None and merge.op == "add" else "inception"


# ==== labels ==========================================================================================
FUNCS: dict[str, FuncKind] = {"batchnorm": "norm", "relu": "activation", "sigmoid": "activation",
                              "tanh": "activation", "squash": "activation", "softmax": "softmax",
                              "scale": "scale"}
LAYER_KINDS: dict[str, LayerKind] = {"conv": "conv", "sepconv": "conv", "maxpool": "pool", "avgpool": "pool",
                                     "globalavgpool": "pool", "subsample": "pool", "dense": "dense",
                                     "rbf": "dense"}
ATTACHED = frozenset({"batchnorm", "relu", "sigmoid", "tanh", "squash"})  # marks on the layer before them


def _size(pair: tuple[int, int]) -> str:
    return f"{pair[0]}x{pair[1]}"


def _stride(attrs: dict) -> str:
    s = attrs.get("stride") or (1, 1)
    return "" if s == (1, 1) else f"/{s[0]}" if s[0] == s[1] else f"/{_size(s)}"


def _func_label(layer: VLayer) -> str:
    if layer.op == "scale":
        return f"scale {layer.attrs['factor']:g}"
    return {"batchnorm": "BN", "relu": "ReLU", "softmax": "softmax"}.get(layer.op, layer.op)


def _layer_label(layer: VLayer, paper: bool = False) -> str:
    """`conv 7x7/2, 64` for the overview; `7x7 conv, 64, /2` (papers' style) inside a block."""
    op, a = layer.op, layer.attrs
    if op in ("conv", "sepconv"):
        extra = f", {a['groups']} groups" if a.get("groups", 1) > 1 else ""
        extra += ", table" if a.get("connections") else ""
        if paper:
            stride = f", {_stride(a)}" if _stride(a) else ""
            return f"{_size(a['kernel'])} {op}, {a['filters']}{stride}{extra}"
        return f"{op} {_size(a['kernel'])}{_stride(a)}, {a['filters']}{extra}"
    if op in ("maxpool", "avgpool", "subsample"):
        return f"{_size(a['kernel'])} {op}{', ' + _stride(a) if _stride(a) else ''}" if paper else \
            f"{op} {_size(a['kernel'])}{_stride(a)}"
    if op == "globalavgpool":
        return "global avgpool"
    if op in ("dense", "rbf"):
        return f"{op}, {a['units']}" if paper else f"{op} {a['units']}"
    if op == "dropout":
        return f"dropout {a['rate']:g}"
    if op == "lrn":
        return f"LRN {a['size']}"
    return op


def _shape_text(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


# ==== text metrics and SVG primitives ==================================================================
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


def _n(v: float) -> str:
    """A coordinate as short, stable text."""
    return f"{round(v, 1):g}"


class _Svg:
    """SVG elements as text, in drawing order; every number rounded to 0.1 so output is stable."""

    def __init__(self):
        self.parts: list[str] = []

    def add(self, s: str) -> None:
        self.parts.append(s)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str = "none", rx: float = 0,
             dash: bool = False, width: float = 1.0) -> None:
        extra = ' stroke-dasharray="4 3"' if dash else ""
        self.add(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" rx="{_n(rx)}" '
                 f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"{extra}/>')

    def text(self, x: float, y: float, s: str, size: float = 10, anchor: str = "middle", bold: bool = False,
             fill: str = "#222", italic: bool = False, rotate: bool = False) -> None:
        style = ' font-weight="bold"' if bold else ""
        style += ' font-style="italic"' if italic else ""
        turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
        self.add(f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" '
                 f'fill="{fill}"{style}{turn}>{escape(s)}</text>')

    def centred(self, cx: float, cy: float, s: str, size: float = 10, **kw) -> None:
        """Text centred on (cx, cy), vertically by its x-height."""
        self.text(cx, cy + size * 0.36, s, size, **kw)

    def line(self, points: list[tuple[float, float]], stroke: str = "#555", dash: bool = False,
             arrow: bool = True, width: float = 1.2) -> None:
        d = " ".join(f"{'M' if i == 0 else 'L'}{_n(x)} {_n(y)}" for i, (x, y) in enumerate(points))
        extra = ' stroke-dasharray="4 3"' if dash else ""
        self.add(f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"{extra}/>')
        if arrow and len(points) >= 2:
            self.head(points[-2], points[-1], stroke)

    def head(self, frm: tuple[float, float], to: tuple[float, float], fill: str = "#555") -> None:
        (x0, y0), (x1, y1) = frm, to
        length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        a = (x1 - 7 * ux + 3.5 * uy, y1 - 7 * uy - 3.5 * ux)
        b = (x1 - 7 * ux - 3.5 * uy, y1 - 7 * uy + 3.5 * ux)
        self.add(f'<path d="M{_n(x1)} {_n(y1)} L{_n(a[0])} {_n(a[1])} L{_n(b[0])} {_n(b[1])} Z" fill="{fill}"/>')

    def circle(self, cx: float, cy: float, r: float, fill: str, stroke: str) -> None:
        self.add(f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r)}" fill="{fill}" stroke="{stroke}" '
                 f'stroke-width="1.2"/>')

    def group(self, tooltip: str | None) -> None:
        self.add(f"<g><title>{escape(tooltip)}</title>" if tooltip else "<g>")

    def end(self) -> None:
        self.add("</g>")

    def document(self, width: float, height: float, title: str) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
                f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="{FONT}">\n<title>{escape(title)}</title>\n'
                f'<rect x="0" y="0" width="{_n(width)}" height="{_n(height)}" fill="#ffffff"/>\n')
        return head + "\n".join(self.parts) + "\n</svg>\n"


# Colours: modules by kind (the deck's yellow, green, orange), plain layers by kind, functions.
MODULE_COLOURS: dict[ModuleKind, tuple[str, str]] = {
    "inception": ("#ffe27a", "#b8930b"), "residual": ("#b9e3a0", "#4a8f2f"), "reduction": ("#ffbf80", "#cc6f14")}
LAYER_COLOURS: dict[LayerKind, tuple[str, str]] = {
    "conv": ("#cfe0fb", "#3b6fb6"), "pool": ("#e4d8f5", "#7654a8"), "dense": ("#f9d0de", "#b4436b"),
    "other": ("#e8e8e8", "#7a7a7a")}
FUNC_COLOURS: dict[FuncKind, tuple[str, str, str]] = {  # fill, stroke, text
    "norm": ("#d2efe9", "#23806f", "#11453c"), "activation": ("#ffffff", "#8a8a8a", "#333333"),
    "softmax": ("#3d3d3d", "#3d3d3d", "#ffffff"), "scale": ("#fff4cc", "#a8893a", "#4a3c12")}
MODULE_NAMES: dict[ModuleKind, str] = {"inception": "Inception-style module (concat)",
                                       "residual": "residual module (add)",
                                       "reduction": "reduction module (stride 2)"}
LAYER_NAMES: dict[LayerKind, str] = {"conv": "convolution", "pool": "pooling", "dense": "dense",
                                     "other": "other layer"}
FUNC_NAMES: dict[FuncKind, str] = {"norm": "batch norm", "activation": "activation", "softmax": "softmax",
                                   "scale": "scaling"}
INK, MUTED = "#222222", "#666666"
AUX_FILL, AUX_STROKE = "#eef3fa", "#6f84a3"


def _pill(svg: _Svg, cx: float, cy: float, label: str, kind: FuncKind, size: float = 8.5) -> None:
    fill, stroke, ink = FUNC_COLOURS[kind]
    w, h = _pill_width(label, size), size + 7
    svg.rect(cx - w / 2, cy - h / 2, w, h, fill, stroke, rx=h / 2)
    svg.centred(cx, cy, label, size, fill=ink, bold=kind == "norm")


def _pill_width(label: str, size: float = 8.5) -> float:
    return text_width(label, size, bold=True) + 10


def _badge(svg: _Svg, cx: float, cy: float, count: int) -> None:
    label = f"×{count}"
    w = text_width(label, 10, bold=True) + 10
    svg.rect(cx - w / 2, cy - 8, w, 16, "#333333", "#ffffff", rx=8, width=1.5)
    svg.centred(cx, cy, label, 10, fill="#ffffff", bold=True)


# ==== the overview ====================================================================================
@dataclass
class _Unit:
    """Something placed on the chain: `up` and `down` are its extents above and below the chain's axis."""

    w: float
    up: float
    down: float
    paint: Callable[[_Svg, float, float], None]  # (svg, left x, axis y)
    legend: set = field(default_factory=set)
    aux: _Unit | None = None  # a train-only head hanging below this (zero-width) tap
    tap: bool = False


@dataclass(frozen=True)
class DLayer:
    view: VLayer
    marks: tuple[str, ...] = ()
    count: int = 1


@dataclass(frozen=True)
class DFunc:
    view: VLayer


@dataclass(frozen=True)
class DModule:
    views: tuple[VBlock | VMerge, ...]
    kind: ModuleKind
    name: str | None = None  # the name of a sequence that holds only this (`middle_flow: middle x 8`)


@dataclass(frozen=True)
class DGroup:
    title: str
    subtitle: str | None
    items: tuple[Drawn, ...]
    path: str


@dataclass(frozen=True)
class DAux:
    view: VAux
    items: tuple[Drawn, ...]


Drawn = Union[DLayer, DFunc, DModule, DGroup, DAux]


def _drawn(view: View, top: bool) -> list[Drawn]:
    """What one view contributes to a chain: modules stay boxes, plain blocks open up."""
    if view is None:
        return []
    if isinstance(view, VLayer):
        return [DFunc(view) if view.op in FUNCS else DLayer(view)]
    if isinstance(view, VAux):
        return [DAux(view, tuple(_tidy(_drawn(view.body, False))))]
    if isinstance(view, VMerge) or (isinstance(view, VBlock) and _is_module(view)):
        return [DModule((view,), _module_kind(view))]
    body = view.body if isinstance(view, VBlock) else view
    items = [d for child in (body.items if isinstance(body, VSeq) else (body,)) for d in _drawn(child, False)]
    items = _tidy(items)
    title = view.name or (view.block if isinstance(view, VBlock) else None)
    if len(items) == 1 and isinstance(items[0], DLayer) and view.name:
        return [DLayer(replace(items[0].view, name=view.name), items[0].marks, items[0].count)]
    if len(items) == 1 and isinstance(items[0], DModule) and view.name:
        return [replace(items[0], name=view.name)]
    if len(items) > 1 and title and (top or view.name):
        subtitle = view.call if isinstance(view, VBlock) and view.call != title else None
        return [DGroup(title, subtitle, tuple(items), view.path)]
    return items


def _tidy(items: list[Drawn]) -> list[Drawn]:
    """Batch norm and activations attached to the layer before them, then repeats folded into ×N."""
    attached: list[Drawn] = []
    for item in items:
        prev = attached[-1] if attached else None
        if isinstance(item, DFunc) and item.view.op in ATTACHED and isinstance(prev, DLayer) and \
                prev.count == 1 and item.view.op not in prev.marks:
            attached[-1] = DLayer(prev.view, (*prev.marks, item.view.op))
        else:
            attached.append(item)
    folded: list[Drawn] = []
    for item in attached:
        prev = folded[-1] if folded else None
        if isinstance(item, DModule) and isinstance(prev, DModule) and _same_module(prev, item):
            folded[-1] = DModule((*prev.views, *item.views), prev.kind)
        elif isinstance(item, DLayer) and isinstance(prev, DLayer) and _same_layer(prev, item):
            folded[-1] = DLayer(prev.view, prev.marks, prev.count + item.count)
        else:
            folded.append(item)
    return folded


def _same_module(a: DModule, b: DModule) -> bool:
    """Calls of one block, whatever their arguments (Inception-v3's mixed0-2 are `inception_a ×3`)."""
    va, vb = a.views[-1], b.views[0]
    return a.kind == b.kind and a.name is None and b.name is None and isinstance(va, VBlock) and \
        isinstance(vb, VBlock) and va.block == vb.block


def _same_layer(a: DLayer, b: DLayer) -> bool:
    return a.view.name is None and b.view.name is None and a.marks == b.marks and \
        _layer_label(a.view) == _layer_label(b.view) and a.view.op == b.view.op


def _overview(doc: Document, graph: Graph, tree: VSeq) -> str:
    chain: list[tuple[Drawn, Shape | None]] = []  # each drawn item with the shape after it
    for view in tree.items:
        items = _drawn(view, True)
        chain.extend((item, _out_shape(view) if i == len(items) - 1 else None) for i, item in enumerate(items))
    chain = _fold_chain(chain)
    units: list[_Unit] = [_tag_unit("input", graph.input_shape)]
    into: list[str | None] = [None]  # the shape written on the arrow into each unit
    pending, shown = None, graph.input_shape
    for i, (item, shape) in enumerate(chain):
        units.append(_unit(item))
        into.append(pending)
        pending = None
        if shape is not None and shape != shown and i < len(chain) - 1 and not isinstance(item, DAux):
            pending, shown = _shape_text(shape), shape  # the last shape is the output tag's
    units.append(_tag_unit("output", graph.output_shape))
    into.append(pending)
    legend: set = set()
    for unit in units:
        legend |= unit.legend
        if unit.aux is not None:
            legend |= unit.aux.legend
    return _compose(doc, graph, units, into, legend)


def _out_shape(view: View) -> Shape | None:
    if view is None or isinstance(view, VAux):
        return None
    if isinstance(view, VLayer):
        return view.shape
    if isinstance(view, (VMerge, VBlock)):
        return view.shape
    for item in reversed(view.items):
        shape = _out_shape(item)
        if shape is not None:
            return shape
    return None


def _fold_chain(chain: list[tuple[Drawn, Shape | None]]) -> list[tuple[Drawn, Shape | None]]:
    out: list[tuple[Drawn, Shape | None]] = []
    for item, shape in chain:
        if out:
            prev, _ = out[-1]
            folded = _tidy([prev, item])
            if len(folded) == 1:
                out[-1] = (folded[0], shape)
                continue
        out.append((item, shape))
    return out


# -- units --
LAYER_LINE = 12.0
LAYER_SIZE = 9.5


def _tag_unit(which: str, shape: Shape) -> _Unit:
    text = _shape_text(shape)
    w = max(text_width(text, 11, True), text_width(which, 9.5)) + 18

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.rect(x, y - 19, w, 38, "#f4f4f4", "#9a9a9a", rx=6)
        svg.centred(x + w / 2, y - 7, which, 9.5, fill=MUTED)
        svg.centred(x + w / 2, y + 8, text, 11, bold=True)
    return _Unit(w, 19, 19, paint)


def _unit(item: Drawn) -> _Unit:
    if isinstance(item, DLayer):
        return _layer_unit(item)
    if isinstance(item, DFunc):
        return _func_unit(item)
    if isinstance(item, DModule):
        return _module_unit(item)
    if isinstance(item, DGroup):
        return _group_unit(item)
    return _aux_unit(item)


def _layer_unit(item: DLayer) -> _Unit:
    view = item.view
    kind = LAYER_KINDS.get(view.op, "other")
    fill, stroke = LAYER_COLOURS[kind]
    lines = [(view.name, True)] if view.name else []
    lines.append((_layer_label(view), False))
    w = 10 + LAYER_LINE * len(lines)
    h = max(max(text_width(t, LAYER_SIZE, b) for t, b in lines) + 16, 56)
    bn = "batchnorm" in item.marks
    down = h / 2 + (9 if bn else 0) + (16 if item.count > 1 else 0)
    legend = {("layer", kind)} | ({("func", "norm")} if bn else set())
    tooltip = f"{view.path} ({view.op}) -> {_shape_text(view.shape)}"
    if item.marks:
        tooltip += "; then " + ", ".join(item.marks)

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.group(tooltip)
        svg.rect(x, y - h / 2, w, h, fill, stroke, rx=4)
        cx = x + w / 2
        first = cx - LAYER_LINE * (len(lines) - 1) / 2
        for i, (text, bold) in enumerate(lines):
            svg.text(first + i * LAYER_LINE + LAYER_SIZE * 0.36, y, text, LAYER_SIZE, bold=bold, rotate=True)
        below = y + h / 2
        if bn:
            _pill(svg, cx, below, "BN", "norm", 7.5)
            below += 9
        if item.count > 1:
            svg.centred(cx, below + 8, f"×{item.count}", 10.5, bold=True)
        svg.end()
    return _Unit(max(w, _pill_width("BN", 7.5) if bn else 0), h / 2, down, paint, legend)


def _func_unit(item: DFunc) -> _Unit:
    view = item.view
    kind = FUNCS[view.op]
    label = _func_label(view)
    w = _pill_width(label, 9)

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.group(f"{view.path} ({view.op})")
        _pill(svg, x + w / 2, y, label, kind, 9)
        svg.end()
    return _Unit(w, 9, 9, paint, {("func", kind)})


STACK = 4.0  # offset of each shadow box behind a repeated module
WRAP = 170.0  # the widest line of text in a module box


def _wrap(text: str, size: float) -> list[str]:
    """`reduction_a(k=192, l=224, m=256, n=384)` broken after commas into lines at most WRAP wide,
    two lines of about equal width when two are enough."""
    parts = text.split(", ")
    if text_width(text, size) <= WRAP or len(parts) < 2:
        return [text]
    halves = [(", ".join(parts[:i]) + ",", ", ".join(parts[i:])) for i in range(1, len(parts))]
    a, b = min(halves, key=lambda h: max(text_width(h[0], size), text_width(h[1], size)))
    if max(text_width(a, size), text_width(b, size)) <= WRAP:
        return [a, b]
    lines = [""]
    for part in text.split(", "):
        joined = f"{lines[-1]}, {part}" if lines[-1] else part
        if lines[-1] and text_width(joined + ",", size) > WRAP:
            lines[-1] += ","
            lines.append(part)
        else:
            lines[-1] = joined
    return lines


def _module_lines(item: DModule) -> list[tuple[str, float, bool]]:
    """The text of a module box: its name(s), its block, the arguments when all its calls share them."""
    views = item.views
    written = [v.name for v in views if v.name]
    calls = {v.call if isinstance(v, VBlock) else v.op for v in views}
    block = views[0].block if isinstance(views[0], VBlock) else views[0].op
    call = calls.pop() if len(calls) == 1 else block
    names = [item.name] if item.name else \
        [written[0] if len(views) == 1 else f"{written[0]} – {written[-1]}"] if written else []
    lines = [(n, 11.0, True) for n in names]
    lines += [(t, 9.5 if names else 11.0, not names and i == 0) for i, t in enumerate(_wrap(call, 9.5))]
    return lines


def _module_unit(item: DModule) -> _Unit:
    last, count = item.views[-1], len(item.views)
    lines = _module_lines(item)
    fill, stroke = MODULE_COLOURS[item.kind]
    w = max(max(text_width(t, size, bold) for t, size, bold in lines) + 24, 76)
    h = max(16 + sum(size + 4 for _, size, _ in lines), 52)
    shadows = min(count - 1, 2)
    off = STACK * shadows
    block = item.views[0].block if isinstance(item.views[0], VBlock) else item.views[0].op
    names = ", ".join(v.path for v in item.views)
    tooltip = f"{names}: {block} ({MODULE_NAMES[item.kind]}) -> {_shape_text(last.shape)}"

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.group(tooltip)
        top = y - h / 2
        for k in range(shadows, 0, -1):
            svg.rect(x + STACK * k, top - STACK * k, w, h, fill, stroke, rx=9)
        svg.rect(x, top, w, h, fill, stroke, rx=9, width=1.4)
        ty = y - sum(size + 4 for _, size, _ in lines) / 2
        for text, size, bold in lines:
            svg.centred(x + w / 2, ty + (size + 4) / 2, text, size, bold=bold, fill=INK if bold else "#333333")
            ty += size + 4
        if count > 1:
            _badge(svg, x + w + off - 6, top - off, count)
        svg.end()
    return _Unit(w + off + 10 * (count > 1), h / 2 + off + 8 * (count > 1), h / 2, paint,
                 {("module", item.kind)})


GROUP_PAD, GROUP_HEAD, INNER_GAP = 8.0, 18.0, 16.0


def _row_of(units: list[_Unit]) -> tuple[float, float, float]:
    w = sum(u.w for u in units) + INNER_GAP * (len(units) - 1)
    return w, max(u.up for u in units), max(u.down for u in units)


def _paint_row(svg: _Svg, units: list[_Unit], x: float, y: float, dash: bool = False) -> None:
    for i, u in enumerate(units):
        if i:
            svg.line([(x - INNER_GAP, y), (x - 1, y)], dash=dash)
        u.paint(svg, x, y)
        x += u.w + INNER_GAP


def _group_unit(item: DGroup) -> _Unit:
    inner = [_unit(d) for d in item.items]
    iw, iup, idown = _row_of(inner)
    head = text_width(item.title, 10, True) + (text_width(item.subtitle, 9) + 8 if item.subtitle else 0)
    w = max(iw, head) + 2 * GROUP_PAD
    up, down = iup + GROUP_PAD + GROUP_HEAD, idown + GROUP_PAD
    legend = {("frame", "group")}.union(*(u.legend for u in inner))

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.group(item.path)
        svg.rect(x, y - up, w, up + down, "#f7f7f7", "#9c9c9c", rx=8, dash=True)
        svg.text(x + GROUP_PAD, y - up + 13, item.title, 10, anchor="start", bold=True)
        if item.subtitle:
            svg.text(x + GROUP_PAD + text_width(item.title, 10, True) + 8, y - up + 13, item.subtitle, 9,
                     anchor="start", fill=MUTED)
        _paint_row(svg, inner, x + GROUP_PAD + (w - 2 * GROUP_PAD - iw) / 2, y)
        svg.end()
    return _Unit(w, up, down, paint, legend)


def _aux_unit(item: DAux) -> _Unit:
    inner = [_unit(d) for d in item.items]
    iw, iup, idown = _row_of(inner)
    title = f"{item.view.path} · train only"
    w = max(iw, text_width(title, 9.5, True)) + 2 * GROUP_PAD
    h = iup + idown + GROUP_HEAD + 2 * GROUP_PAD

    def paint(svg: _Svg, x: float, y: float) -> None:  # (x, y): the frame's top-left corner
        svg.group(f"{item.view.path}: a train-only head, left out of compiled models unless --aux")
        svg.rect(x, y, w, h, AUX_FILL, AUX_STROKE, rx=8, dash=True)
        svg.text(x + GROUP_PAD, y + 13, title, 9.5, anchor="start", bold=True, fill="#444444")
        _paint_row(svg, inner, x + GROUP_PAD, y + GROUP_HEAD + GROUP_PAD + iup, dash=True)
        svg.end()
    branch = _Unit(w, 0, h, paint, {("frame", "aux")}.union(*(u.legend for u in inner)))
    return _Unit(10, 4, 4, lambda svg, x, y: svg.circle(x + 5, y, 3.5, "#555555", "#555555"), set(),
                 aux=branch, tap=True)


# -- the page --
MARGIN, MAX_ROW, ROW_GAP, AUX_DROP = 24.0, 1500.0, 34.0, 22.0


def _gap(label: str | None) -> float:
    return max(28.0, text_width(label, 9) + 14) if label else 28.0


@dataclass
class _Row:
    units: list[tuple[_Unit, float, str | None]] = field(default_factory=list)  # unit, x, label into it
    auxes: list[tuple[_Unit, float]] = field(default_factory=list)  # branch, left x
    aux_end: float = 0.0

    @property
    def up(self) -> float:
        return max(u.up for u, _, _ in self.units)

    @property
    def down(self) -> float:
        return max(u.down for u, _, _ in self.units)

    @property
    def aux_h(self) -> float:
        return max((b.down for b, _ in self.auxes), default=0.0)


def _rows(units: list[_Unit], into: list[str | None]) -> list[_Row]:
    """The chain cut into rows of about equal width, none wider than MAX_ROW."""
    total = sum(u.w + _gap(label) for u, label in zip(units, into))
    n = max(1, -(-int(total) // int(MAX_ROW - MARGIN)))
    target = total / n + MARGIN
    rows = _cut(units, into, min(target, MAX_ROW))
    while len(rows) > n and target < MAX_ROW:
        target += 20
        rows = _cut(units, into, min(target, MAX_ROW))
    return rows


def _cut(units: list[_Unit], into: list[str | None], limit: float) -> list[_Row]:
    rows = [_Row()]
    x = MARGIN
    for unit, label in zip(units, into):
        row = rows[-1]
        gap = _gap(label) if row.units else 0.0
        start = x + gap
        if unit.tap and row.aux_end:
            start = max(start, row.aux_end + 16)  # keep side branches apart
        right = start + unit.w + (unit.aux.w if unit.aux else 0)
        if row.units and right > limit:
            rows.append(_Row())
            row = rows[-1]
            start = MARGIN + _gap(label)
        row.units.append((unit, start, label))
        if unit.aux is not None:
            row.auxes.append((unit.aux, start - 4))
            row.aux_end = start - 4 + unit.aux.w
        x = start + unit.w
    return rows


def _compose(doc: Document, graph: Graph, units: list[_Unit], into: list[str | None], legend: set) -> str:
    svg = _Svg()
    rows = _rows(units, into)
    counts = graph.counts()
    title = doc.name
    macs = f"{graph.macs / 1e9:.2f} G" if graph.macs >= 1e8 else f"{graph.macs / 1e6:.1f} M"
    heads = " (without the train-only heads)" if graph.aux_heads else ""
    subtitle = f"{doc.description + ' · ' if doc.description else ''}{counts['total']:,} parameters · " \
               f"{macs} MACs{heads}"
    svg.text(MARGIN, MARGIN + 14, title, 18, anchor="start", bold=True)
    svg.text(MARGIN, MARGIN + 33, subtitle, 10.5, anchor="start", fill=MUTED)
    y = MARGIN + 48
    width = max(max(ux + u.w for u, ux, _ in row.units) for row in rows)
    width = max(width, max((bx + b.w for row in rows for b, bx in row.auxes), default=0))
    width = max(width, MARGIN + text_width(subtitle, 10.5), MARGIN + text_width(title, 18, True))
    prev_exit: tuple[float, float] | None = None
    for r, row in enumerate(rows):
        axis = y + row.up
        for i, (unit, x, label) in enumerate(row.units):
            if i > 0:
                px = row.units[i - 1][1] + row.units[i - 1][0].w
                svg.line([(px, axis), (x - 1, axis)], arrow=not unit.tap)
                if label:
                    svg.centred((px + x) / 2, axis + 11, label, 9, fill=MUTED)
            elif prev_exit is not None:  # come down from the row above and in from the left
                ex, ey = prev_exit
                mid = y - ROW_GAP / 2
                svg.line([(ex, ey), (ex + 12, ey), (ex + 12, mid), (MARGIN / 2, mid), (MARGIN / 2, axis),
                          (x - 1, axis)])
                if label:
                    svg.centred((MARGIN / 2 + x) / 2 + 3, axis + 11, label, 9, fill=MUTED)
            unit.paint(svg, x, axis)
        bottom = axis + row.down
        for branch, bx in row.auxes:
            tap = next(x for u, x, _ in row.units if u.aux is branch) + 5
            top = bottom + AUX_DROP
            svg.line([(tap, axis + 4), (tap, top)], dash=True)
        for branch, bx in row.auxes:
            branch.paint(svg, bx, bottom + AUX_DROP)
        last, lx, _ = row.units[-1]
        prev_exit = (lx + last.w, axis)
        y = bottom + (AUX_DROP + row.aux_h if row.auxes else 0) + ROW_GAP
    y, right = _legend(svg, legend, y - ROW_GAP + 26, max(width, 640))
    return svg.document(max(width, right) + MARGIN, y + MARGIN, f"{doc.name}: overview drawn by cnnc")


LEGEND_ORDER = [("module", k) for k in MODULE_COLOURS] + [("frame", "group"), ("frame", "aux")] + \
               [("layer", k) for k in LAYER_COLOURS] + [("func", k) for k in FUNC_COLOURS] + \
               [("merge", "concat"), ("merge", "add"), ("merge", "identity")]


def _legend(svg: _Svg, used: set, y: float, width: float) -> tuple[float, float]:
    """Swatches for what this picture uses, in lines at most `width` wide; returns (bottom, right)."""
    x = right = MARGIN
    entries = [e for e in LEGEND_ORDER if e in used]
    total = sum(46 + text_width(_legend_label(*e), 9.5) for e in entries) - 18
    width = total + MARGIN if total + MARGIN <= width + 160 else width  # one line when nearly one fits
    svg.add('<g><title>legend</title>')
    for group, kind in entries:
        label = _legend_label(group, kind)
        w = 28 + text_width(label, 9.5)
        if x + w > width and x > MARGIN:
            x, y = MARGIN, y + 22
        _swatch(svg, group, kind, x, y)
        svg.text(x + 28, y + 3.5, label, 9.5, anchor="start", fill="#333333")
        right = max(right, x + w)
        x += w + 18
    svg.end()
    return y + 12, right


def _legend_label(group: str, kind: str) -> str:
    if group == "module":
        return MODULE_NAMES[kind]  # type: ignore[index]
    if group == "layer":
        return LAYER_NAMES[kind]  # type: ignore[index]
    if group == "func":
        return FUNC_NAMES[kind]  # type: ignore[index]
    if group == "frame":
        return "named sequence" if kind == "group" else "train-only head"
    return {"concat": "concatenate", "add": "add", "identity": "identity shortcut"}[kind]


def _swatch(svg: _Svg, group: str, kind: str, x: float, y: float) -> None:
    if group == "module":
        fill, stroke = MODULE_COLOURS[kind]  # type: ignore[index]
        svg.rect(x, y - 7, 22, 14, fill, stroke, rx=4)
    elif group == "layer":
        fill, stroke = LAYER_COLOURS[kind]  # type: ignore[index]
        svg.rect(x + 6, y - 9, 10, 18, fill, stroke, rx=2)
    elif group == "func":
        fill, stroke, _ = FUNC_COLOURS[kind]  # type: ignore[index]
        svg.rect(x + 1, y - 6, 20, 12, fill, stroke, rx=6)
    elif group == "frame":
        fill, stroke = ("#f7f7f7", "#9c9c9c") if kind == "group" else (AUX_FILL, AUX_STROKE)
        svg.rect(x, y - 7, 22, 14, fill, stroke, rx=4, dash=True)
    elif kind == "concat":
        svg.rect(x, y - 5, 22, 10, "#eeeeee", "#666666", rx=2)
    elif kind == "add":
        svg.circle(x + 11, y, 7, "#ffffff", "#555555")
        svg.centred(x + 11, y - 0.5, "+", 11, bold=True)
    else:
        svg.line([(x, y), (x + 22, y)], arrow=False, dash=False)


# ==== one block expanded ==============================================================================
def _expanded(doc: Document, graph: Graph, tree: VSeq, target: str) -> str:
    view = _find(tree, target)
    if view is None:
        blocks = list(doc.blocks)
        modules = _module_paths(tree)
        if target in doc.blocks:
            raise CnncError(f"block `{target}` is defined in `{doc.name}` but never called, so it has no "
                            f"concrete arguments or shapes to draw")
        known = ", ".join(blocks) if blocks else "none"
        raise CnncError(f"`{doc.name}` has no block or module `{target}`"
                        f"{did_you_mean(target, [*blocks, *modules])}; its blocks: {known}")
    svg = _Svg()
    fig = _fig(view)
    before = _input_shape(graph, view.path)
    if isinstance(view, VBlock):
        params = ", ".join(p for p, _ in view.params)
        title = f"{doc.name} · {view.block}({params})" if params else f"{doc.name} · {view.block}"
        calls = _count(tree, view.block)
        where = f"{view.path}: {view.call}" if view.path != view.block else view.call
        note = f"as first called ({calls} calls in all): {where}" if calls > 1 else f"as called: {where}"
        if params:
            note += " — " + ", ".join(f"{p} = {v}" for p, v in view.params)
    else:
        title = f"{doc.name} · {view.path}"
        note = f"{view.op} of {len(view.branches)} branches" if isinstance(view, VMerge) else ""
    out_shape = view.shape
    svg.text(MARGIN, MARGIN + 14, title, 17, anchor="start", bold=True)
    svg.text(MARGIN, MARGIN + 32, note, 10.5, anchor="start", fill=MUTED)
    top = MARGIN + 56
    width = max(fig.w, 160.0)
    content_w = max(width + 2 * MARGIN, MARGIN + text_width(title, 17, True), MARGIN + text_width(note, 10.5))
    x0 = MARGIN + max(0.0, (min(content_w, 900) - 2 * MARGIN - fig.w) / 2)
    cx = x0 + fig.cx
    tag_in = _shape_text(before) if before else "?"
    _tag(svg, cx, top, "input", tag_in)
    svg.line([(cx, top + 30), (cx, top + 30 + EGAP - 1)])
    fig.paint(svg, x0, top + 30 + EGAP)
    y = top + 30 + EGAP + fig.h
    svg.line([(cx, y), (cx, y + EGAP - 1)])
    _tag(svg, cx, y + EGAP, "output", _shape_text(out_shape))
    y, right = _legend(svg, fig.legend, y + EGAP + 30 + 28, max(content_w - MARGIN, 560))
    width = max(content_w, x0 + fig.w + MARGIN, cx + 60 + MARGIN, right + MARGIN)
    return svg.document(width, y + MARGIN, f"{doc.name}: {title.split(' · ', 1)[1]} drawn by cnnc")


def _tag(svg: _Svg, cx: float, y: float, which: str, text: str) -> None:
    w = max(text_width(text, 10.5, True), text_width(which, 9)) + 18
    svg.rect(cx - w / 2, y, w, 30, "#f4f4f4", "#9a9a9a", rx=6)
    svg.centred(cx, y + 9, which, 8.5, fill=MUTED)
    svg.centred(cx, y + 21, text, 10.5, bold=True)


def _find(tree: VSeq, target: str) -> VBlock | VMerge | None:
    """The first call of block `target` in the network, or the module named `target`."""
    def walk(view: View, match: Callable[[View], bool]):
        if view is None:
            return None
        if match(view):
            return view
        children: tuple = ()
        if isinstance(view, VSeq):
            children = view.items
        elif isinstance(view, (VBlock, VAux)):
            children = (view.body,)
        elif isinstance(view, VMerge):
            children = tuple(b.node for b in view.branches)
        for child in children:
            found = walk(child, match)
            if found is not None:
                return found
        return None
    found = walk(tree, lambda v: isinstance(v, VBlock) and v.block == target)
    return found or walk(tree, lambda v: isinstance(v, (VBlock, VMerge)) and target in (v.path, v.name))


def _count(view: View, block: str) -> int:
    """How many times `block` is called in the network."""
    if isinstance(view, VSeq):
        return sum(_count(i, block) for i in view.items)
    if isinstance(view, VMerge):
        return sum(_count(b.node, block) * b.copies for b in view.branches)
    if isinstance(view, VBlock):
        return (view.block == block) + _count(view.body, block)
    if isinstance(view, VAux):
        return _count(view.body, block)
    return 0


def _module_paths(view: View) -> list[str]:
    """The names of the modules a user may ask for: paths and written names, blocks opened up."""
    if isinstance(view, (VBlock, VMerge)) and _is_module(view):
        return [view.path, *([view.name] if view.name else [])]
    if isinstance(view, VSeq):
        return [p for item in view.items for p in _module_paths(item)]
    if isinstance(view, VBlock):
        return _module_paths(view.body)
    return []


def _input_shape(graph: Graph, path: str) -> Shape | None:
    outputs = {layer.output: layer.shape for layer in graph.layers}
    outputs["input"] = graph.input_shape
    for layer in graph.layers:
        if layer.name == path or layer.name.startswith(path + "/"):
            return outputs.get(layer.inputs[0])
    return None


# -- figures: laid out top to bottom; `cx` is where the flow enters and leaves --
EGAP, COL_GAP, BOX_H, BOX_SIZE = 16.0, 18.0, 26.0, 10.0


@dataclass
class _Fig:
    w: float
    h: float
    cx: float
    paint: Callable[[_Svg, float, float], None]  # (svg, left x, top y)
    legend: set = field(default_factory=set)


@dataclass(frozen=True)
class _Repeat:
    """Consecutive calls of one module with the same arguments: drawn once, framed, marked ×N."""

    view: VBlock
    count: int


def _fig(view: View) -> _Fig:
    return _seq_fig([_item_fig(i) for i in _attach(_flat(view))])


def _flat(view: View) -> list:
    """Layers, merges and repeats in order: blocks and sequences opened up."""
    if view is None:
        return []
    if isinstance(view, (VLayer, VMerge)):
        return [view]
    if isinstance(view, (VBlock, VAux)):
        return _flat(view.body)
    out: list = []
    items = [i for i in view.items if i is not None]
    i = 0
    while i < len(items):
        item, n = items[i], 1
        while isinstance(item, VBlock) and _is_module(item) and i + n < len(items) and \
                isinstance(items[i + n], VBlock) and items[i + n].call == item.call:
            n += 1
        out.extend([_Repeat(item, n)] if n > 1 else _flat(item))
        i += n
    return out


def _attach(items: list) -> list:
    """Layers with the batch norm and activations that follow them: (layer, marks) pairs."""
    out: list = []
    for item in items:
        if isinstance(item, VLayer) and item.op in ATTACHED and out and isinstance(out[-1], tuple) and \
                item.op not in out[-1][1]:
            out[-1] = (out[-1][0], (*out[-1][1], item.op))
        elif isinstance(item, VLayer) and item.op not in FUNCS:
            out.append((item, ()))
        else:
            out.append(item)
    return out


def _item_fig(item) -> _Fig:
    if isinstance(item, tuple):
        return _box_fig(*item)
    if isinstance(item, VMerge):
        return _merge_fig(item)
    if isinstance(item, _Repeat):
        return _repeat_fig(item)
    return _func_fig(item)


FRAME_PAD, FRAME_HEAD = 10.0, 18.0


def _repeat_fig(item: _Repeat) -> _Fig:
    inner = _fig(item.view)
    title = item.view.call
    w = max(inner.w, text_width(title, 9.5, True) + 8) + 2 * FRAME_PAD
    h = inner.h + 2 * FRAME_PAD + FRAME_HEAD
    ix = (w - inner.w) / 2
    cx = ix + inner.cx

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.group(f"{item.count} calls of {item.view.call}, the first at {item.view.path}")
        for k in (2, 1):
            svg.rect(x + STACK * k, y + STACK * k, w, h, "#fafafa", "#b0b0b0", rx=8)
        svg.rect(x, y, w, h, "#ffffff", "#8c8c8c", rx=8, dash=True)
        svg.text(x + FRAME_PAD, y + 13, title, 9.5, anchor="start", bold=True, fill="#444444")
        svg.line([(x + cx, y), (x + cx, y + FRAME_HEAD + FRAME_PAD - 1)])
        inner.paint(svg, x + ix, y + FRAME_HEAD + FRAME_PAD)
        svg.line([(x + cx, y + FRAME_HEAD + FRAME_PAD + inner.h), (x + cx, y + h)], arrow=False)
        _badge(svg, x + w + 2 * STACK - 4, y + h + 2 * STACK - 4, item.count)
        svg.end()
    return _Fig(w + 2 * STACK + 12, h + 2 * STACK, cx, paint, inner.legend)


def _mark_label(op: str) -> str:
    return {"batchnorm": "BN", "relu": "ReLU"}.get(op, op)


def _box_fig(view: VLayer, marks: tuple[str, ...]) -> _Fig:
    kind = LAYER_KINDS.get(view.op, "other")
    fill, stroke = LAYER_COLOURS[kind]
    label = _layer_label(view, paper=True)
    mark_w = [_pill_width(_mark_label(m), 7.5) for m in marks]
    w = text_width(label, BOX_SIZE) + 20 + sum(mw + 3 for mw in mark_w)
    legend = {("layer", kind)} | {("func", FUNCS[m]) for m in marks}
    tooltip = f"{view.path} ({view.op}) -> {_shape_text(view.shape)}" + \
        (f"; then {', '.join(marks)}" if marks else "")

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.group(tooltip)
        svg.rect(x, y, w, BOX_H, fill, stroke, rx=5)
        svg.text(x + 10, y + BOX_H / 2 + BOX_SIZE * 0.36, label, BOX_SIZE, anchor="start")
        mx = x + w - 6
        for m, mw in reversed(list(zip(marks, mark_w))):
            _pill(svg, mx - mw / 2, y + BOX_H / 2, _mark_label(m), FUNCS[m], 7.5)
            mx -= mw + 3
        svg.end()
    return _Fig(w, BOX_H, w / 2, paint, legend)


def _func_fig(view: VLayer) -> _Fig:
    label = _func_label(view)
    kind = FUNCS[view.op]
    w = _pill_width(label, 9)

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.group(f"{view.path} ({view.op})")
        _pill(svg, x + w / 2, y + 9, label, kind, 9)
        svg.end()
    return _Fig(w, 18, w / 2, paint, {("func", kind)})


def _seq_fig(figs: list[_Fig]) -> _Fig:
    if not figs:
        return _Fig(0, 0, 0, lambda svg, x, y: None)
    cx = max(f.cx for f in figs)
    w = cx + max(f.w - f.cx for f in figs)
    h = sum(f.h for f in figs) + EGAP * (len(figs) - 1)

    def paint(svg: _Svg, x: float, y: float) -> None:
        for i, f in enumerate(figs):
            if i:
                svg.line([(x + cx, y - EGAP), (x + cx, y - 1)])
            f.paint(svg, x + cx - f.cx, y)
            y += f.h + EGAP
    return _Fig(w, h, cx, paint, set().union(*(f.legend for f in figs)))


def _is_identity(node: View) -> bool:
    items = _flat(node)
    return len(items) == 1 and isinstance(items[0], VLayer) and items[0].op == "identity"


FORK, HEAD, JOIN, SYMBOL = 14.0, 16.0, 16.0, 22.0  # heights: fork line, branch label, join lines, merge


@dataclass(frozen=True)
class _Column:
    branch: VBranch
    fig: _Fig
    left: float  # within the merge figure
    width: float

    @property
    def centre(self) -> float:
        return self.left + (self.width - self.fig.w) / 2 + self.fig.cx


def _columns(branches: list[VBranch]) -> list[_Column]:
    """The branches laid out side by side, each as wide as its boxes, its label and its ×N badge."""
    out, x = [], 0.0
    for b in branches:
        fig = _fig(b.node)
        extra = (2 * STACK, 30.0) if b.copies > 1 else (0.0, 0.0)
        width = max(fig.w + extra[0], text_width(_column_label(b), 8.5) + 8 + extra[1], 40)
        out.append(_Column(b, fig, x, width))
        x += width + COL_GAP
    return out


def _merge_fig(view: VMerge) -> _Fig:
    """Branches side by side under a fork, joined by a concat bar or a + (identity shortcuts go round)."""
    branches = list(view.branches)
    if view.op == "add":  # shortcuts to the right, as the papers draw them
        branches.sort(key=lambda b: b.name == "shortcut" or _is_identity(b.node))
    identity = [b for b in branches if view.op == "add" and _is_identity(b.node)]
    columns = _columns([b for b in branches if b not in identity])
    centres = [c.centre for c in columns] or [0.0]
    cx = (centres[0] + centres[-1]) / 2
    cols_w = columns[-1].left + columns[-1].width if columns else 0.0
    join_y = FORK + HEAD + max((c.fig.h for c in columns), default=0.0) + JOIN
    shortcut_x = cols_w + 21 if identity else None  # where an identity shortcut runs down
    shape = _shape_text(view.shape)
    label_x = max(centres) + 36 if view.op == "concat" else cx + 14
    w = max(cols_w + (34 if identity else 0), label_x + text_width(shape, 8.5) + 4)
    legend = {("merge", view.op)} | ({("merge", "identity")} if identity else set())
    legend = legend.union(*(c.fig.legend for c in columns))

    def paint(svg: _Svg, x: float, y: float) -> None:
        svg.group(f"{view.path} ({view.op} of {', '.join(b.name for b in branches)}) -> {shape}")
        xs = [x + c for c in centres]
        svg.line([(x + cx, y), (x + cx, y + FORK / 2)], arrow=False)
        svg.line([(min(xs), y + FORK / 2), (max(xs), y + FORK / 2)], arrow=False)
        for column in columns:
            _paint_column(svg, column, x, y, y + join_y, view.op == "concat")
        sy = y + join_y
        if view.op == "concat":
            left, right = min(xs) - 30, max(xs) + 30
            svg.rect(left, sy, right - left, SYMBOL, "#eeeeee", "#666666", rx=3)
            svg.centred((left + right) / 2, sy + SYMBOL / 2, "concat", 9.5, bold=True)
        else:
            svg.line([(min(xs), sy - 1), (max(xs), sy - 1)], arrow=False)
            svg.circle(x + cx, sy + 11, 10, "#ffffff", "#444444")
            svg.centred(x + cx, sy + 10.5, "+", 15, bold=True)
        if shortcut_x is not None:
            rx = x + shortcut_x
            svg.line([(x + cx, y + 3), (rx, y + 3), (rx, sy + 11), (x + cx + 11, sy + 11)])
            svg.text(rx + 11, y + (join_y + FORK) / 2, "identity", 8.5, fill=MUTED, rotate=True, italic=True)
        label_y = sy + SYMBOL / 2 + 3 if view.op == "concat" else sy + 25
        svg.text(x + label_x, label_y, shape, 8.5, anchor="start", fill=MUTED)
        svg.end()
    return _Fig(w, join_y + SYMBOL, cx, paint, legend)


def _paint_column(svg: _Svg, column: _Column, x: float, y: float, join: float, arrow: bool) -> None:
    """One branch: the drop from the fork, its label, its boxes (copies stacked behind), the line down."""
    fig, copies, c = column.fig, column.branch.copies, x + column.centre
    fx = x + column.left + (column.width - fig.w) / 2
    top = y + FORK + HEAD
    svg.line([(c, y + FORK / 2), (c, top - 1)])
    if copies > 1:
        for k in (2, 1, 0):
            svg.rect(fx + STACK * k - 3, top + STACK * k - 3, fig.w + 6, fig.h + 6, "#ffffff", "#b0b0b0", rx=6)
    _branch_label(svg, c, y + FORK + 4, _column_label(column.branch))
    fig.paint(svg, fx, top)
    if copies > 1:
        _badge(svg, fx + fig.w + 2 * STACK, top + fig.h + 2 * STACK, copies)
    svg.line([(c, top + fig.h), (c, join - 1)], arrow=arrow)


def _column_label(branch: VBranch) -> str:
    """The branch's name, and the block it calls when that block draws as more than one box."""
    node = branch.node
    if isinstance(node, VBlock) and len(_attach(_flat(node))) > 1:
        return f"{branch.label} · {node.call}"
    return branch.label


def _branch_label(svg: _Svg, cx: float, y: float, name: str) -> None:
    w = text_width(name, 8.5) + 6
    svg.rect(cx - w / 2, y - 1, w, 12, "#ffffff", "none")
    svg.centred(cx, y + 5, name, 8.5, fill=MUTED, italic=True)
