"""One block's inside laid out top to bottom, as papers draw an Inception module.

Consumes a view (views.py); produces a `Fig`: its width, height, the x where the flow enters and leaves,
and a function that paints it. Layers are small boxes with kernel and filters and the batch norm and
activations that follow them as marks; functions that stand alone are pills; consecutive calls of one
module with the same arguments are drawn once, framed and marked `×N`; a merge's branches stand side
by side under a fork and join in a bar or a `+` (its definition's kind of module says which), an
identity shortcut running round them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

from ..compiler.ir import Shape
from ..compiler.ops import MERGES
from .labels import attaches, func_kind, func_label, is_function, is_wire, layer_kind, layer_label, layer_legend, \
    mark_label, shape_text, text_width
from .legend import LegendKey
from .style import LAYER_COLOURS, MUTED, STACK
from .svg import Svg, badge, parallel_badge, pill, pill_width
from .views import VAux, VBlock, VBranch, VLayer, VMerge, View, is_module

EGAP, BOX_H, BOX_SIZE = 16.0, 26.0, 10.0  # the gap between figures; a layer box's height and text size


@dataclass
class Fig:
    w: float
    h: float
    cx: float
    paint: Callable[[Svg, float, float], None]  # (svg, left x, top y)
    legend: set[LegendKey] = field(default_factory=set)
    inlet: float = 0.0  # how far below its top the line into it runs: to a merge's fork, past a caption
    arrow_in: bool = True  # that line ends in an arrowhead (not where it joins a fork)
    shape: Shape | None = None  # the shape out of it
    writes_shape: bool = False  # it writes that shape itself (a merge, beside its join)


@dataclass(frozen=True)
class _Repeat:
    """Consecutive calls of one module with the same arguments: drawn once, framed, marked ×N."""

    view: VBlock
    count: int


@dataclass(frozen=True)
class _Boxed:
    """A layer drawn as a box, with the functions attached to it (`batchnorm`, `relu`) as marks."""

    view: VLayer
    marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Caption:
    """The name written for the layers that follow (NiN's `mlp1`), shown as a small grey caption."""

    name: str


_Flat = Union[VLayer, VMerge, _Repeat, _Caption]
_Drawable = Union[_Boxed, VLayer, VMerge, _Repeat]  # a VLayer here is a function standing alone
_Part = Union[_Drawable, _Caption]


def fig(view: View, into: Shape | None = None) -> Fig:
    """The figure of a view: its parts one under the other, each name written inside as a caption, the
    shape on the line after a part where the spatial size changes (`into`: the shape into the first)."""
    figs: list[Fig] = []
    names: list[str] = []
    for part in _parts(view):
        if isinstance(part, _Caption):
            names.append(part.name)
            continue
        figs.append(_captioned(_part_fig(part), " / ".join(names)) if names else _part_fig(part))
        names = []
    return _seq_fig(figs, into)


CAPTION = 13.0


def _captioned(inner: Fig, name: str) -> Fig:
    """`inner` under its name, in small grey type beside the line into it."""
    def paint(svg: Svg, x: float, y: float) -> None:
        svg.text(x + inner.cx + 6, y + 9.5, name, 8.5, anchor="start", fill=MUTED, italic=True)
        inner.paint(svg, x, y + CAPTION)
    w = max(inner.w, inner.cx + 6 + text_width(name, 8.5))
    return Fig(w, inner.h + CAPTION, inner.cx, paint, inner.legend, inner.inlet + CAPTION, inner.arrow_in,
               inner.shape, inner.writes_shape)


def _parts(view: View) -> list[_Part]:
    """What a view's figure is made of, in order."""
    return _attach(_flat(view))


def _flat(view: View, top: bool = True) -> list[_Flat]:
    """Layers, merges and repeats in order: blocks and sequences opened up, the names written inside
    them kept as captions."""
    if view is None:
        return []
    named: list[_Flat] = [_Caption(view.name)] if not top and not isinstance(view, VAux) and view.name else []
    if isinstance(view, (VLayer, VMerge)):
        return [*named, view]
    if isinstance(view, (VBlock, VAux)):
        return [*named, *_flat(view.body, False)]
    out: list[_Flat] = named
    items = [i for i in view.items if i is not None]
    i = 0
    while i < len(items):
        item, n = items[i], _repeats(items, i)
        if isinstance(item, VBlock) and n > 1:
            out.append(_Repeat(item, n))
        else:
            out.extend(_flat(item, False))
        i += n
    return out


def _repeats(items: Sequence[View], i: int) -> int:
    """How many calls from `items[i]` on are of the same module with the same arguments (1 if none)."""
    first, n = items[i], 1
    if not (isinstance(first, VBlock) and is_module(first)):
        return 1
    while i + n < len(items) and _same_call(first, items[i + n]):
        n += 1
    return n


def _same_call(a: VBlock, b: View) -> bool:
    return isinstance(b, VBlock) and b.call == a.call


def _attach(items: list[_Flat]) -> list[_Part]:
    """Layers with the batch norm and activations that follow them as marks."""
    out: list[_Part] = []
    for item in items:
        prev = out[-1] if out else None
        if isinstance(item, VLayer) and attaches(item.op) and isinstance(prev, _Boxed) and \
                item.op not in prev.marks:
            out[-1] = _Boxed(prev.view, (*prev.marks, item.op))
        elif isinstance(item, VLayer) and not is_function(item.op):
            out.append(_Boxed(item))
        else:
            out.append(item)
    return out


def _part_fig(part: _Drawable) -> Fig:
    if isinstance(part, _Boxed):
        return _box_fig(part)
    if isinstance(part, VMerge):
        return _merge_fig(part)
    if isinstance(part, _Repeat):
        return _repeat_fig(part)
    return _func_fig(part)


FRAME_PAD, FRAME_HEAD = 10.0, 18.0


def _repeat_fig(item: _Repeat) -> Fig:
    inner = fig(item.view)
    title = item.view.call
    w = max(inner.w, text_width(title, 9.5, True) + 8) + 2 * FRAME_PAD
    h = inner.h + 2 * FRAME_PAD + FRAME_HEAD
    ix = (w - inner.w) / 2
    cx = ix + inner.cx

    def paint(svg: Svg, x: float, y: float) -> None:
        svg.group(f"{item.count} calls of {item.view.call}, the first at {item.view.path}")
        for k in (2, 1):
            svg.rect(x + STACK * k, y + STACK * k, w, h, "#fafafa", "#b0b0b0", rx=8)
        svg.rect(x, y, w, h, "#ffffff", "#8c8c8c", rx=8, dash=True)
        svg.text(x + FRAME_PAD, y + 13, title, 9.5, anchor="start", bold=True, fill="#444444")
        line_in(svg, inner, x + cx, y, y + FRAME_HEAD + FRAME_PAD)
        inner.paint(svg, x + ix, y + FRAME_HEAD + FRAME_PAD)
        svg.line([(x + cx, y + FRAME_HEAD + FRAME_PAD + inner.h), (x + cx, y + h)], arrow=False)
        badge(svg, x + w + 2 * STACK - 4, y + h + 2 * STACK - 4, item.count)
        svg.end()
    return Fig(w + 2 * STACK + 12, h + 2 * STACK, cx, paint, inner.legend | {("mark", "repeat")},
               shape=item.view.shape)


def _box_fig(part: _Boxed) -> Fig:
    view, marks = part.view, part.marks
    kind = layer_kind(view.op)
    fill, stroke = LAYER_COLOURS[kind]
    label = layer_label(view)
    mark_w = [pill_width(mark_label(m), 7.5) for m in marks]
    w = text_width(label, BOX_SIZE) + 20 + sum(mw + 3 for mw in mark_w)
    legend: set[LegendKey] = {layer_legend(view.op)} | {("func", func_kind(m)) for m in marks}
    tooltip = f"{view.path} ({view.op}) -> {shape_text(view.shape)}" + \
        (f"; then {', '.join(marks)}" if marks else "")

    def paint(svg: Svg, x: float, y: float) -> None:
        svg.group(tooltip)
        svg.rect(x, y, w, BOX_H, fill, stroke, rx=5)
        svg.text(x + 10, y + BOX_H / 2 + BOX_SIZE * 0.36, label, BOX_SIZE, anchor="start")
        mx = x + w - 6
        for m, mw in reversed(list(zip(marks, mark_w))):
            pill(svg, mx - mw / 2, y + BOX_H / 2, mark_label(m), func_kind(m), 7.5)
            mx -= mw + 3
        svg.end()
    return Fig(w, BOX_H, w / 2, paint, legend, shape=view.shape)


def _func_fig(view: VLayer) -> Fig:
    label = func_label(view)
    kind = func_kind(view.op)
    w = pill_width(label, 9)

    def paint(svg: Svg, x: float, y: float) -> None:
        svg.group(f"{view.path} ({view.op})")
        pill(svg, x + w / 2, y + 9, label, kind, 9)
        svg.end()
    return Fig(w, 18, w / 2, paint, {("func", kind)}, shape=view.shape)


def _seq_fig(figs: list[Fig], into: Shape | None = None) -> Fig:
    """Figures one under the other, centred on one line of flow, an arrow between each two, the shape on
    an arrow where the spatial size changes (Xception's entry flow: 147, 74, 37, 19)."""
    if not figs:
        return Fig(0, 0, 0, lambda svg, x, y: None)
    cx = max(f.cx for f in figs)
    written = _changes(figs, into)
    w = max([cx + max(f.w - f.cx for f in figs), *(cx + 6 + text_width(t, 8.5) for t in written if t)])
    h = sum(f.h for f in figs) + EGAP * (len(figs) - 1)

    def paint(svg: Svg, x: float, y: float) -> None:
        for i, f in enumerate(figs):
            if i:
                line_in(svg, f, x + cx, y - EGAP, y)
                if written[i - 1]:
                    svg.text(x + cx + 6, y - EGAP / 2 + 3, written[i - 1], 8.5, anchor="start", fill=MUTED)
            f.paint(svg, x + cx - f.cx, y)
            y += f.h + EGAP
    last = figs[-1]
    return Fig(w, h, cx, paint, set().union(*(f.legend for f in figs)), figs[0].inlet, figs[0].arrow_in,
               last.shape, last.writes_shape)


def _changes(figs: list[Fig], into: Shape | None) -> list[str]:
    """For each figure but the last, the shape to write on the line after it: where the spatial size
    changes and the figure does not write it itself; none inside a branch or a repeat (`into` unknown),
    which papers draw without shapes."""
    out, known = [], into
    for f in figs[:-1]:
        if into is None:
            out.append("")
            continue
        changed = f.shape is not None and known is not None and f.shape[1:] != known[1:]
        out.append(shape_text(f.shape) if f.shape is not None and changed and not f.writes_shape else "")
        known = f.shape or known
    return out


def line_in(svg: Svg, into: Fig, x: float, start: float, top: float) -> None:
    """The line from `start` down into figure `into` whose top is at `top`: to its first box's edge
    with an arrowhead, or on to the fork of the merge it begins with."""
    end = top + into.inlet - (1 if into.arrow_in else 0)
    svg.line([(x, start), (x, end)], arrow=into.arrow_in)


# ---- merges ----------------------------------------------------------------------------------------
COL_GAP = 18.0
FORK, HEAD, JOIN, SYMBOL = 14.0, 16.0, 16.0, 22.0  # heights: fork line, branch label, join lines, merge


def _is_identity(node: View) -> bool:
    """A branch that is one wire (`identity`): a residual merge draws it as a line round the others."""
    items = _flat(node)
    return len(items) == 1 and isinstance(items[0], VLayer) and is_wire(items[0].op)


@dataclass(frozen=True)
class _Column:
    branch: VBranch
    fig: Fig
    left: float  # within the merge figure
    width: float

    @property
    def centre(self) -> float:
        return self.left + (self.width - self.fig.w) / 2 + self.fig.cx


def _columns(branches: list[VBranch]) -> list[_Column]:
    """The branches laid out side by side, each as wide as its boxes, its label and its ×N badge."""
    out, x = [], 0.0
    for b in branches:
        inner = fig(b.node)
        extra = (2 * STACK, 30.0) if b.copies > 1 else (0.0, 0.0)
        width = max(inner.w + extra[0], text_width(_column_label(b), 8.5) + 8 + extra[1], 40)
        out.append(_Column(b, inner, x, width))
        x += width + COL_GAP
    return out


def _merge_fig(view: VMerge) -> Fig:
    """Branches side by side under a fork, joined by a bar or a + (identity shortcuts go round)."""
    symbol = MERGES[view.op].symbol
    bar = symbol is None
    branches = list(view.branches)
    if not bar:  # shortcuts to the right, as the papers draw them
        branches.sort(key=lambda b: b.name == "shortcut" or _is_identity(b.node))
    identity = [b for b in branches if not bar and _is_identity(b.node)]
    columns = _columns([b for b in branches if b not in identity])
    centres = [c.centre for c in columns] or [0.0]
    cx = (centres[0] + centres[-1]) / 2
    cols_w = columns[-1].left + columns[-1].width if columns else 0.0
    join_y = FORK + HEAD + max((c.fig.h for c in columns), default=0.0) + JOIN
    shortcut_x = cols_w + 21  # where an identity shortcut runs down
    shape = shape_text(view.shape)
    label_x = max(centres) + 36 if bar else cx + 14
    w = max(cols_w + (34 if identity else 0), label_x + text_width(shape, 8.5) + 4)
    legend: set[LegendKey] = {("merge", view.op)} | ({("shortcut", "identity")} if identity else set())
    legend = legend.union(*(c.fig.legend for c in columns))
    if any(c.branch.copies > 1 for c in columns):
        legend.add(("mark", "parallel"))

    def paint(svg: Svg, x: float, y: float) -> None:
        svg.group(f"{view.path} ({view.op} of {', '.join(b.name for b in branches)}) -> {shape}")
        xs = [x + c for c in centres]
        svg.line([(x + cx, y), (x + cx, y + FORK / 2)], arrow=False)
        svg.line([(min(xs), y + FORK / 2), (max(xs), y + FORK / 2)], arrow=False)
        for column in columns:
            _paint_column(svg, column, x, y, y + join_y, bar)
        sy = y + join_y
        if bar:
            _paint_bar(svg, view.op, xs, sy)
        else:
            _paint_sum(svg, xs, x + cx, sy, symbol or "")
        if identity:
            _paint_shortcut(svg, x + cx, x + shortcut_x, y, join_y)
        svg.text(x + label_x, sy + SYMBOL / 2 + 3 if bar else sy + 25, shape, 8.5, anchor="start", fill=MUTED)
        svg.end()
    return Fig(w, join_y + SYMBOL, cx, paint, legend, FORK / 2, False, view.shape, True)


def _paint_bar(svg: Svg, op: str, xs: list[float], y: float) -> None:
    """The branches ending on a bar that names the merge (`concat`)."""
    left, right = min(xs) - 30, max(xs) + 30
    svg.rect(left, y, right - left, SYMBOL, "#eeeeee", "#666666", rx=3)
    svg.centred((left + right) / 2, y + SYMBOL / 2, op, 9.5, bold=True)


def _paint_sum(svg: Svg, xs: list[float], cx: float, y: float, symbol: str) -> None:
    """The branches joined by a line into the merge's symbol (`+`)."""
    svg.line([(min(xs), y - 1), (max(xs), y - 1)], arrow=False)
    svg.circle(cx, y + 11, 10, "#ffffff", "#444444")
    svg.centred(cx, y + 10.5, symbol, 15, bold=True)


def _paint_shortcut(svg: Svg, cx: float, rx: float, y: float, join_y: float) -> None:
    """The identity shortcut: from the fork out to `rx`, down, and into the `+`."""
    svg.line([(cx, y + 3), (rx, y + 3), (rx, y + join_y + 11), (cx + 11, y + join_y + 11)])
    svg.text(rx + 11, y + (join_y + FORK) / 2, "identity", 8.5, fill=MUTED, rotate=True, italic=True)


def _paint_column(svg: Svg, column: _Column, x: float, y: float, join: float, arrow: bool) -> None:
    """One branch: the drop from the fork, its label, its boxes (copies stacked behind), the line down."""
    inner, copies, c = column.fig, column.branch.copies, x + column.centre
    fx = x + column.left + (column.width - inner.w) / 2
    top = y + FORK + HEAD
    line_in(svg, inner, c, y + FORK / 2, top)
    if copies > 1:
        for k in (2, 1, 0):
            svg.rect(fx + STACK * k - 3, top + STACK * k - 3, inner.w + 6, inner.h + 6, "#ffffff", "#b0b0b0", rx=6)
    _branch_label(svg, c, y + FORK + 4, _column_label(column.branch))
    inner.paint(svg, fx, top)
    if copies > 1:
        parallel_badge(svg, fx + inner.w + 2 * STACK, top + inner.h + 2 * STACK, copies)
    svg.line([(c, top + inner.h), (c, join - 1)], arrow=arrow)


def _column_label(branch: VBranch) -> str:
    """The branch's name, and the block it calls when that block draws as more than one box."""
    node = branch.node
    if isinstance(node, VBlock) and len([p for p in _parts(node) if not isinstance(p, _Caption)]) > 1:
        return f"{branch.label} · {node.call}"
    return branch.label


def _branch_label(svg: Svg, cx: float, y: float, name: str) -> None:
    w = text_width(name, 8.5) + 6
    svg.rect(cx - w / 2, y - 1, w, 12, "#ffffff", "none")
    svg.centred(cx, y + 5, name, 8.5, fill=MUTED, italic=True)
