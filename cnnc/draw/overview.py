"""The overview picture: the network's chain drawn left to right, wrapped onto rows when long.

Consumes the overview's chain (chain.py) and the inference graph (input and output shapes, parameter
and MAC counts for the subtitle); produces the SVG text, laid out by page.py. Each drawn item becomes a
`Unit` with its extents above and below the chain's axis: modules as coloured boxes, plain layers as small upright
shapes with their batch norm below, functions as pills, named sequences as frames, train-only heads as
dashed frames hanging below a tap.
"""
from __future__ import annotations

from ..compiler.ir import Graph, Shape
from ..dsl.document import Document
from .chain import DAux, DFunc, DGroup, DLayer, DModule, Drawn, Link, chain, varies
from .labels import FuncKind, func_kind, func_label, layer_kind, layer_label, layer_legend, mark_label, mark_shown, \
    shape_text, text_width, wrap
from .legend import LegendKey
from .page import MAX_ROW, Unit, compose
from .style import AUX_FILL, AUX_STROKE, GROUP_FILL, GROUP_STROKE, INK, LAYER_COLOURS, MODULE_COLOURS, MODULE_NAMES, \
    MUTED, STACK
from .svg import Svg, badge, down_tag, pill, pill_width
from .views import VBlock, VSeq

__all__ = ["MAX_ROW", "overview", "unit"]


def overview(doc: Document, graph: Graph, tree: VSeq) -> str:
    """The picture of `tree`, with the shapes of `graph` (without its train-only heads) in its tags."""
    links = chain(tree, {name: block.label for name, block in doc.blocks.items() if block.label})
    units, into = _units(links, graph)
    used: set[LegendKey] = set()
    for unit in units:
        used |= unit.legend
        if unit.aux is not None:
            used |= unit.aux.legend
    return compose(doc, graph, units, into, used)


def _units(links: list[Link], graph: Graph) -> tuple[list[Unit], list[str | None]]:
    """The units between the input and output tags, and the shape written on the arrow into each: where
    it changes, except after the last item (the output tag's) and after a head."""
    units: list[Unit] = [_tag_unit("input", graph.input_shape)]
    into: list[str | None] = [None]
    pending: str | None = None
    shown = graph.input_shape
    for i, (item, shape) in enumerate(links):
        for piece, after in _pieces(item) if isinstance(item, DGroup) else [(item, None)]:
            units.append(unit(piece))
            into.append(pending)
            pending = None
            if after is not None and after != shown:  # the shape where a frame was cut
                pending, shown = shape_text(after), after
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
    shown = [m for m in item.marks if func_kind(m) in SHOWN_MARKS or mark_shown(m)]
    down = h / 2 + 9 * len(shown) + (18 if item.count > 1 else 0)
    legend_keys: set[LegendKey] = {layer_legend(view.op)} | {("func", func_kind(m)) for m in shown} | \
        ({("mark", "repeat")} if item.count > 1 else set())
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
            pill(svg, cx, below, mark_label(mark), func_kind(mark), 7.5)
            below += 9
        if item.count > 1:
            badge(svg, cx, below + 10, item.count)
        svg.end()
    return Unit(max([w, *(pill_width(mark_label(m), 7.5) for m in shown)]), h / 2, down, paint, legend_keys)


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
    """The text of a module box: a bold title (its name(s), else its block's label, else its block), then
    in regular type its label when a name took the title, and the call when it says more than the title."""
    views = item.views
    written = [v.name for v in views if v.name]
    block = views[0].block if isinstance(views[0], VBlock) else views[0].op
    call = _common_call([v.call if isinstance(v, VBlock) else v.op for v in views], block)
    copy = views[0].path.rsplit("/", 1)[-1]  # `stage_1`: one copy of a repeat, unfolded
    names = [item.name] if item.name else \
        [written[0] if len(views) == 1 else f"{written[0]} – {written[-1]}"] if written else \
        [copy] if len(views) == 1 and not item.label and copy.startswith(f"{block}_") else []
    title = names[0] if names else item.label or block
    below = ([item.label] if names and item.label else []) + ([] if call == title else wrap(call, 9.5))
    return [(title, 11.0, True)] + [(t, 9.5, False) for t in below] + [(t, 8.5, False) for t in varies(item)]


def _common_call(calls: list[str], block: str) -> str:
    """The call the folded calls share, `…` for each argument that varies (`mbconv(6, 3, 1, 48, …)`)."""
    split = [c.removeprefix(f"{block}(").removesuffix(")").split(", ") for c in calls]
    if len(set(calls)) == 1 or any(len(parts) != len(split[0]) for parts in split) or calls[0] == block:
        return calls[0] if len(set(calls)) == 1 else block
    return f"{block}({', '.join(p if all(q[i] == p for q in split) else '…' for i, p in enumerate(split[0]))})"


def _module_unit(item: DModule) -> Unit:
    last, count = item.views[-1], len(item.views)
    lines = _module_lines(item)
    fill, stroke = MODULE_COLOURS[item.kind]
    w = max(max(text_width(t, size, bold) for t, size, bold in lines) + 24, 76)
    h = max(16 + sum(size + 4 for _, size, _ in lines), 52)
    shadows = min(count - 1, 2)
    off = STACK * shadows
    block = item.views[0].block if isinstance(item.views[0], VBlock) else item.views[0].op
    paths = [v.path for v in item.views]  # a tooltip of at most 32 names, however long the repeat
    names = ", ".join(paths) if count <= 32 else \
        f"{', '.join(paths[:16])}, … {', '.join(paths[-16:])} ({count:,} calls)"
    tooltip = f"{names}: {block} ({MODULE_NAMES[item.kind]}) -> {shape_text(last.shape)}" + \
        (f"; downsamples (stride {item.down})" if item.down > 1 else "")
    keys: set[LegendKey] = {("module", item.kind)} | ({("mark", "repeat")} if count > 1 else set()) | \
        ({("mark", "down")} if item.down > 1 else set())

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
        if item.down > 1:
            down_tag(svg, x + 14, y + h / 2, item.down)
        svg.end()
    return Unit(w + off + 10 * (count > 1), h / 2 + off + 8 * (count > 1), h / 2 + 7 * (item.down > 1), paint, keys)


GROUP_PAD, GROUP_HEAD, INNER_GAP = 8.0, 18.0, 16.0


def _inner_gap(label: str | None) -> float:
    return max(INNER_GAP, text_width(label, 8.5) + 10) if label else INNER_GAP


def _row_of(units: list[Unit], labels: list[str | None] | None = None) -> tuple[float, float, float]:
    gaps = [_inner_gap(t) for t in (labels or [None] * len(units))[1:]]
    w = sum(u.w for u in units) + sum(gaps)
    return w, max(u.up for u in units), max(u.down for u in units) + (10 if any(labels or ()) else 0)


def _paint_row(svg: Svg, units: list[Unit], x: float, y: float, dash: bool = False,
               labels: list[str | None] | None = None) -> None:
    """Units left to right from x on axis y, an arrow between each two, with its shape label if any."""
    for i, (u, label) in enumerate(zip(units, labels or [None] * len(units))):
        if i:
            gap = _inner_gap(label)
            svg.line([(x - gap, y), (x - 1, y)], dash=dash)
            if label:
                svg.centred(x - gap / 2, y + 10, label, 8.5, fill=MUTED)
        u.paint(svg, x, y)
        x += u.w + _inner_gap(labels[i + 1] if labels and i + 1 < len(labels) else None)


def _shape_labels(item: DGroup) -> list[str | None]:
    """The shape written on the arrow into each item of a frame: where it changes."""
    out: list[str | None] = [None]
    shown = item.entry
    for shape, into in zip(item.shapes, item.items[1:]):  # none into a function: it keeps the shape
        write = shape is not None and shape != shown and not isinstance(into, DFunc)
        out.append(shape_text(shape) if write and shape is not None else None)
        shown = shape if write else shown
    return out


def _group_unit(item: DGroup) -> Unit:
    inner = [unit(d) for d in item.items]
    labels = _shape_labels(item)
    iw, iup, idown = _row_of(inner, labels)
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
        _paint_row(svg, inner, x + GROUP_PAD + (w - 2 * GROUP_PAD - iw) / 2, y, labels=labels)
        svg.end()
    return Unit(w, up, down, paint, legend_keys)


def _pieces(item: DGroup) -> list[tuple[DGroup, Shape | None]]:
    """A named sequence too wide for one row (MobileNet-v3's `bnecks`), cut between whole calls into
    frames of about equal width that fit, titled `bnecks (1 of 2)`, ..., each with the shape after it (the
    last's: None, the sequence's own); one that fits, itself."""
    labels = _shape_labels(item)
    widths = [unit(d).w + (_inner_gap(t) if i else 0) for i, (d, t) in enumerate(zip(item.items, labels))]
    total = sum(widths)
    limit = MAX_ROW - 2 * GROUP_PAD - 60  # room for the arrows and shapes beside it
    starts = sorted({0} | set(item.cuts))
    if total <= limit or len(starts) < 2:
        return [(item, None)]
    target = total / -(-total // limit)
    parts: list[list[int]] = [[]]
    width = 0.0
    for a, b in zip(starts, [*starts[1:], len(widths)]):
        w = sum(widths[a:b])
        if parts[-1] and (width + w / 2 > target or width + w > limit):
            parts.append([])
            width = 0.0
        parts[-1].extend(range(a, b))
        width += w
    n = len(parts)
    out = []
    for i, part in enumerate(parts, 1):
        entry = item.shapes[part[0] - 1] if part[0] else item.entry
        piece = DGroup(f"{item.title} ({i} of {n})", item.subtitle if i == 1 else None,
                       tuple(item.items[j] for j in part), item.path, tuple(item.shapes[j] for j in part), entry,
                       frozenset(j - part[0] for j in item.cuts if part[0] < j <= part[-1]))
        out.append((piece, item.shapes[part[-1]] if i < n else None))
    return out


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
