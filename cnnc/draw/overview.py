"""The overview picture: the network's chain drawn left to right, wrapped onto rows when long.

Consumes the overview's chain (chain.py) and the inference graph (input and output shapes, parameter
and MAC counts for the subtitle); produces the SVG text. Each drawn item becomes a `Unit` with its
extents above and below the chain's axis: modules as coloured boxes, plain layers as small upright
shapes with their batch norm below, functions as pills, named sequences as frames, train-only heads as
dashed frames hanging below a tap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..compiler.ir import Graph, Shape
from ..dsl.document import Document
from .chain import DAux, DFunc, DGroup, DLayer, DModule, Drawn, Link, chain
from .labels import FuncKind, func_kind, func_label, layer_kind, layer_label, mark_label, shape_text, text_width, \
    wrap
from .legend import LegendKey, legend
from .style import (AUX_FILL, AUX_STROKE, GROUP_FILL, GROUP_STROKE, INK, LAYER_COLOURS, MARGIN, MODULE_COLOURS,
                    MODULE_NAMES, MUTED, STACK)
from .svg import Svg, badge, pill, pill_width
from .views import VBlock, VSeq

Paint = Callable[[Svg, float, float], None]  # (svg, left x, axis y)


@dataclass
class Unit:
    """Something placed on the chain: `up` and `down` are its extents above and below the chain's axis."""

    w: float
    up: float
    down: float
    paint: Paint
    legend: set[LegendKey] = field(default_factory=set)
    aux: Unit | None = None  # a train-only head hanging below this (zero-width) tap
    tap: bool = False


def overview(doc: Document, graph: Graph, tree: VSeq) -> str:
    """The picture of `tree`, with the shapes of `graph` (without its train-only heads) in its tags."""
    links = chain(tree)
    units, into = _units(links, graph)
    used: set[LegendKey] = set()
    for unit in units:
        used |= unit.legend
        if unit.aux is not None:
            used |= unit.aux.legend
    return _compose(doc, graph, units, into, used)


def _units(links: list[Link], graph: Graph) -> tuple[list[Unit], list[str | None]]:
    """The units between the input and output tags, and the shape written on the arrow into each: where
    it changes, except after the last item (the output tag's) and after a head."""
    units: list[Unit] = [_tag_unit("input", graph.input_shape)]
    into: list[str | None] = [None]
    pending: str | None = None
    shown = graph.input_shape
    for i, (item, shape) in enumerate(links):
        for piece in _pieces(item) if isinstance(item, DGroup) else [item]:
            units.append(unit(piece))
            into.append(pending)
            pending = None
        if shape is not None and shape != shown and i < len(links) - 1 and not isinstance(item, DAux):
            pending, shown = shape_text(shape), shape
    units.append(_tag_unit("output", graph.output_shape))
    into.append(pending)
    return units, into


# ---- units -----------------------------------------------------------------------------------------
LAYER_LINE = 12.0
LAYER_SIZE = 9.5
SHOWN_MARKS: frozenset[FuncKind] = frozenset({"norm"})  # drawn under a layer; activations go without saying


def _tag_unit(which: str, shape: Shape) -> Unit:
    text = shape_text(shape)
    w = max(text_width(text, 11, True), text_width(which, 9.5)) + 18

    def paint(svg: Svg, x: float, y: float) -> None:
        svg.rect(x, y - 19, w, 38, "#f4f4f4", "#9a9a9a", rx=6)
        svg.centred(x + w / 2, y - 7, which, 9.5, fill=MUTED)
        svg.centred(x + w / 2, y + 8, text, 11, bold=True)
    return Unit(w, 19, 19, paint)


def unit(item: Drawn) -> Unit:
    if isinstance(item, DLayer):
        return _layer_unit(item)
    if isinstance(item, DFunc):
        return _func_unit(item)
    if isinstance(item, DModule):
        return _module_unit(item)
    if isinstance(item, DGroup):
        return _group_unit(item)
    return _aux_unit(item)


def _layer_unit(item: DLayer) -> Unit:
    view = item.view
    kind = layer_kind(view.op)
    fill, stroke = LAYER_COLOURS[kind]
    lines = [(view.name, True)] if view.name else []
    lines.append((layer_label(view), False))
    w = 10 + LAYER_LINE * len(lines)
    h = max(max(text_width(t, LAYER_SIZE, b) for t, b in lines) + 16, 56)
    shown = [mark_label(m) for m in item.marks if func_kind(m) in SHOWN_MARKS]
    down = h / 2 + 9 * len(shown) + (16 if item.count > 1 else 0)
    legend_keys: set[LegendKey] = {("layer", kind)} | ({("func", "norm")} if shown else set())
    tooltip = f"{view.path} ({view.op}) -> {shape_text(view.shape)}"
    if item.marks:
        tooltip += "; then " + ", ".join(item.marks)

    def paint(svg: Svg, x: float, y: float) -> None:
        svg.group(tooltip)
        svg.rect(x, y - h / 2, w, h, fill, stroke, rx=4)
        cx = x + w / 2
        first = cx - LAYER_LINE * (len(lines) - 1) / 2
        for i, (text, bold) in enumerate(lines):
            svg.text(first + i * LAYER_LINE + LAYER_SIZE * 0.36, y, text, LAYER_SIZE, bold=bold, rotate=True)
        below = y + h / 2
        for mark in shown:
            pill(svg, cx, below, mark, "norm", 7.5)
            below += 9
        if item.count > 1:
            svg.centred(cx, below + 8, f"×{item.count}", 10.5, bold=True)
        svg.end()
    return Unit(max([w, *(pill_width(m, 7.5) for m in shown)]), h / 2, down, paint, legend_keys)


def _func_unit(item: DFunc) -> Unit:
    view = item.view
    kind = func_kind(view.op)
    label = func_label(view)
    w = pill_width(label, 9)

    def paint(svg: Svg, x: float, y: float) -> None:
        svg.group(f"{view.path} ({view.op})")
        pill(svg, x + w / 2, y, label, kind, 9)
        svg.end()
    return Unit(w, 9, 9, paint, {("func", kind)})


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
    lines += [(t, 9.5 if names else 11.0, not names and i == 0) for i, t in enumerate(wrap(call, 9.5))]
    return lines


def _module_unit(item: DModule) -> Unit:
    last, count = item.views[-1], len(item.views)
    lines = _module_lines(item)
    fill, stroke = MODULE_COLOURS[item.kind]
    w = max(max(text_width(t, size, bold) for t, size, bold in lines) + 24, 76)
    h = max(16 + sum(size + 4 for _, size, _ in lines), 52)
    shadows = min(count - 1, 2)
    off = STACK * shadows
    block = item.views[0].block if isinstance(item.views[0], VBlock) else item.views[0].op
    names = ", ".join(v.path for v in item.views)
    tooltip = f"{names}: {block} ({MODULE_NAMES[item.kind]}) -> {shape_text(last.shape)}"

    def paint(svg: Svg, x: float, y: float) -> None:
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
            badge(svg, x + w + off - 6, top - off, count)
        svg.end()
    return Unit(w + off + 10 * (count > 1), h / 2 + off + 8 * (count > 1), h / 2, paint, {("module", item.kind)})


GROUP_PAD, GROUP_HEAD, INNER_GAP = 8.0, 18.0, 16.0


def _row_of(units: list[Unit]) -> tuple[float, float, float]:
    w = sum(u.w for u in units) + INNER_GAP * (len(units) - 1)
    return w, max(u.up for u in units), max(u.down for u in units)


def _paint_row(svg: Svg, units: list[Unit], x: float, y: float, dash: bool = False) -> None:
    for i, u in enumerate(units):
        if i:
            svg.line([(x - INNER_GAP, y), (x - 1, y)], dash=dash)
        u.paint(svg, x, y)
        x += u.w + INNER_GAP


def _group_unit(item: DGroup) -> Unit:
    inner = [unit(d) for d in item.items]
    iw, iup, idown = _row_of(inner)
    head = text_width(item.title, 10, True) + (text_width(item.subtitle, 9) + 8 if item.subtitle else 0)
    w = max(iw, head) + 2 * GROUP_PAD
    up, down = iup + GROUP_PAD + GROUP_HEAD, idown + GROUP_PAD
    legend_keys: set[LegendKey] = {("frame", "group")}.union(*(u.legend for u in inner))

    def paint(svg: Svg, x: float, y: float) -> None:
        svg.group(item.path)
        svg.rect(x, y - up, w, up + down, GROUP_FILL, GROUP_STROKE, rx=8, dash=True)
        svg.text(x + GROUP_PAD, y - up + 13, item.title, 10, anchor="start", bold=True)
        if item.subtitle:
            svg.text(x + GROUP_PAD + text_width(item.title, 10, True) + 8, y - up + 13, item.subtitle, 9,
                     anchor="start", fill=MUTED)
        _paint_row(svg, inner, x + GROUP_PAD + (w - 2 * GROUP_PAD - iw) / 2, y)
        svg.end()
    return Unit(w, up, down, paint, legend_keys)


def _pieces(item: DGroup) -> list[DGroup]:
    """A named sequence too wide for one row (MobileNet-v3's `bnecks`), cut into frames of about equal
    width that fit, titled `bnecks (1 of 2)`, ...; one that fits, itself."""
    widths = [unit(d).w for d in item.items]
    total = sum(widths) + INNER_GAP * (len(widths) - 1)
    limit = MAX_ROW - 2 * GROUP_PAD - 60  # room for the arrows and shapes beside it
    if total <= limit or len(widths) < 2:
        return [item]
    target = total / -(-total // limit)
    parts: list[list[Drawn]] = [[]]
    width = 0.0
    for d, w in zip(item.items, widths):
        if parts[-1] and width + INNER_GAP + w / 2 > target:
            parts.append([])
            width = 0.0
        parts[-1].append(d)
        width += (INNER_GAP if width else 0.0) + w
    n = len(parts)
    return [DGroup(f"{item.title} ({i} of {n})", item.subtitle if i == 1 else None, tuple(part), item.path)
            for i, part in enumerate(parts, 1)]


def _aux_unit(item: DAux) -> Unit:
    inner = [unit(d) for d in item.items]
    iw, iup, idown = _row_of(inner)
    title = f"{item.view.path} · train only"
    w = max(iw, text_width(title, 9.5, True)) + 2 * GROUP_PAD
    h = iup + idown + GROUP_HEAD + 2 * GROUP_PAD

    def paint(svg: Svg, x: float, y: float) -> None:  # (x, y): the frame's top-left corner
        svg.group(f"{item.view.path}: a train-only head, left out of compiled models unless --aux")
        svg.rect(x, y, w, h, AUX_FILL, AUX_STROKE, rx=8, dash=True)
        svg.text(x + GROUP_PAD, y + 13, title, 9.5, anchor="start", bold=True, fill="#444444")
        _paint_row(svg, inner, x + GROUP_PAD, y + GROUP_HEAD + GROUP_PAD + iup, dash=True)
        svg.end()
    branch = Unit(w, 0, h, paint, {("frame", "aux")}.union(*(u.legend for u in inner)))
    return Unit(10, 4, 4, lambda svg, x, y: svg.circle(x + 5, y, 3.5, "#555555", "#555555"), set(),
                aux=branch, tap=True)


# ---- the page --------------------------------------------------------------------------------------
MAX_ROW, ROW_GAP, AUX_DROP = 1500.0, 34.0, 22.0


def _gap(label: str | None) -> float:
    return max(28.0, text_width(label, 9) + 14) if label else 28.0


@dataclass
class _Row:
    units: list[tuple[Unit, float, str | None]] = field(default_factory=list)  # unit, x, label into it
    auxes: list[tuple[Unit, float]] = field(default_factory=list)  # branch, left x
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


def _rows(units: list[Unit], into: list[str | None]) -> list[_Row]:
    """The chain cut into rows of about equal width, none wider than MAX_ROW."""
    total = sum(u.w + _gap(label) for u, label in zip(units, into))
    n = max(1, -(-int(total) // int(MAX_ROW - MARGIN)))
    target = total / n + MARGIN
    rows = _cut(units, into, min(target, MAX_ROW))
    while len(rows) > n and target < MAX_ROW:
        target += 20
        rows = _cut(units, into, min(target, MAX_ROW))
    return rows


def _cut(units: list[Unit], into: list[str | None], limit: float) -> list[_Row]:
    rows = [_Row()]
    x = MARGIN
    for item, label in zip(units, into):
        row = rows[-1]
        gap = _gap(label) if row.units else 0.0
        start = x + gap
        if item.tap and row.aux_end:
            start = max(start, row.aux_end + 16)  # keep side branches apart
        right = start + item.w + (item.aux.w if item.aux else 0)
        if row.units and right > limit:
            rows.append(_Row())
            row = rows[-1]
            start = MARGIN + _gap(label)
        row.units.append((item, start, label))
        if item.aux is not None:
            row.auxes.append((item.aux, start - 4))
            row.aux_end = start - 4 + item.aux.w
        x = start + item.w
    return rows


def _compose(doc: Document, graph: Graph, units: list[Unit], into: list[str | None], used: set[LegendKey]) -> str:
    svg = Svg()
    rows = _rows(units, into)
    title, subtitle = doc.name, _subtitle(doc, graph)
    svg.text(MARGIN, MARGIN + 14, title, 18, anchor="start", bold=True)
    svg.text(MARGIN, MARGIN + 33, subtitle, 10.5, anchor="start", fill=MUTED)
    width = max(max(ux + u.w for u, ux, _ in row.units) for row in rows)
    width = max(width, max((bx + b.w for row in rows for b, bx in row.auxes), default=0))
    width = max(width, MARGIN + text_width(subtitle, 10.5), MARGIN + text_width(title, 18, True))
    y = _paint_rows(svg, rows, MARGIN + 48)
    y, right = legend(svg, used, y - ROW_GAP + 26, max(width, 640))
    return svg.document(max(width, right) + MARGIN, y + MARGIN, f"{doc.name}: overview drawn by cnnc")


def _subtitle(doc: Document, graph: Graph) -> str:
    """The description, then the counts `cnnc summary` gives (the train-only heads left out)."""
    macs = f"{graph.macs / 1e9:.2f} G" if graph.macs >= 1e8 else f"{graph.macs / 1e6:.1f} M"
    heads = " (without the train-only heads)" if graph.aux_heads else ""
    return f"{doc.description + ' · ' if doc.description else ''}{graph.counts()['total']:,} parameters · " \
           f"{macs} MACs{heads}"


def _paint_rows(svg: Svg, rows: list[_Row], y: float) -> float:
    """Each row from `y` down, its heads hanging below it; returns where the next thing may start."""
    prev_exit: tuple[float, float] | None = None
    for row in rows:
        axis = y + row.up
        _paint_units(svg, row, y, axis, prev_exit)
        bottom = axis + row.down
        for branch, _ in row.auxes:
            tap = next(x for u, x, _ in row.units if u.aux is branch) + 5
            svg.line([(tap, axis + 4), (tap, bottom + AUX_DROP)], dash=True)
        for branch, bx in row.auxes:
            branch.paint(svg, bx, bottom + AUX_DROP)
        last, lx, _ = row.units[-1]
        prev_exit = (lx + last.w, axis)
        y = bottom + (AUX_DROP + row.aux_h if row.auxes else 0) + ROW_GAP
    return y


def _paint_units(svg: Svg, row: _Row, y: float, axis: float, prev_exit: tuple[float, float] | None) -> None:
    """A row's units and the arrows into them: the first comes down from the row above, in from the left."""
    for i, (item, x, label) in enumerate(row.units):
        if i > 0:
            px = row.units[i - 1][1] + row.units[i - 1][0].w
            svg.line([(px, axis), (x - 1, axis)], arrow=not item.tap)
            if label:
                svg.centred((px + x) / 2, axis + 11, label, 9, fill=MUTED)
        elif prev_exit is not None:
            ex, ey = prev_exit
            mid = y - ROW_GAP / 2
            svg.line([(ex, ey), (ex + 12, ey), (ex + 12, mid), (MARGIN / 2, mid), (MARGIN / 2, axis), (x - 1, axis)])
            if label:
                svg.centred((MARGIN / 2 + x) / 2 + 3, axis + 11, label, 9, fill=MUTED)
        item.paint(svg, x, axis)
