"""The picture of one part of the network opened up: a block's inside, a call, a named sequence, a path.

Consumes the document (its name, for the title), the whole graph (the shapes into and out of the part,
each layer's input maps) and the view tree; produces the SVG text: a title naming what is drawn, a note
that says which call it is and with what arguments (wrapped to the picture's width), the input tag,
the part's figure (figures.py), the output tag, the connection tables of the layers inside (table.py),
a legend. Which view a name opens, and the error for one that opens none, are targets.py's.
"""
from __future__ import annotations

from ..compiler.ir import Graph, Shape
from ..dsl.document import Document
from . import table
from .figures import EGAP, fig, line_in
from .labels import shape_text, text_width, wrap
from .legend import legend
from .style import MARGIN, MUTED
from .svg import Svg
from .targets import Found, Target, find, which_call
from .views import VBlock, VLayer, VMerge, VSeq, walk

NOTE, NOTE_LINE = 10.5, 15.0  # the note's text size and line height
TAG = 30.0  # an input or output tag's height


def expanded(doc: Document, graph: Graph, tree: VSeq, target: str) -> str:
    """Part `target` of the network: its figure between its input and output shapes."""
    found = find(doc, tree, target)
    view = found.view
    into, out = _shapes(graph)
    before = _first(into, view.path)
    figure = fig(view, before)
    grids = table.tables(view, {p: s[0] for p, s in into.items() if s})
    block = doc.blocks.get(view.block) if isinstance(view, VBlock) else None
    title, note = heading(tree, found, doc.name, block.label if block is not None else None)
    width = max(figure.w + 2 * MARGIN, 2 * MARGIN + text_width(title, 17, True), 600.0,
                *(2 * MARGIN + t.w for t in grids))
    lines = wrap(note, NOTE, width - 2 * MARGIN, balanced=False)
    svg = Svg()
    svg.text(MARGIN, MARGIN + 14, title, 17, anchor="start", bold=True)
    for i, line in enumerate(lines):
        svg.text(MARGIN, MARGIN + 32 + NOTE_LINE * i, line, NOTE, anchor="start", fill=MUTED)
    top = MARGIN + 56 + NOTE_LINE * (len(lines) - 1)
    x0 = MARGIN + max(0.0, (min(width, 900) - 2 * MARGIN - figure.w) / 2)
    cx = x0 + figure.cx
    _tag(svg, cx, top, "input", shape_text(before) if before else "?")
    line_in(svg, figure, cx, top + TAG, top + TAG + EGAP)
    figure.paint(svg, x0, top + TAG + EGAP)
    y = top + TAG + EGAP + figure.h
    svg.line([(cx, y), (cx, y + EGAP - 1)])
    after = view.shape if isinstance(view, (VBlock, VMerge, VLayer)) else _last(out, view.path)
    _tag(svg, cx, y + EGAP, "output", shape_text(after) if after else "?")
    y += EGAP + TAG + 28
    for grid in grids:
        table.paint(svg, grid, MARGIN, y)
        y += grid.h + 18
    y, right = legend(svg, figure.legend, y, max(width - MARGIN, 560))
    width = max(width, x0 + figure.w + MARGIN, cx + 60 + MARGIN, right + MARGIN)
    return svg.document(width, y + MARGIN, f"{doc.name}: {title.split(' · ', 1)[1]} drawn by cnnc")


def heading(tree: VSeq, found: Found, net: str, label: str | None = None) -> tuple[str, str]:
    """The title (`inception_v3 · inception_b(c7)`, or the block's `label:`, `Inception-ResNet-A`) and the
    note: what is drawn, which call of its block (`inception_b, call 2 of 4 (mixed5): inception_b(160) —
    c7 = 160`), from which name."""
    view = found.view
    if isinstance(view, VBlock):
        params = ", ".join(p for p, _ in view.params)
        title = f"{net} · {label or (f'{view.block}({params})' if params else view.block)}"
        note = _call_note(tree, view)
    else:
        title = f"{net} · {view.name or view.path}"
        note = _part_note(view)
    if found.how == "name" and found.named > 1:
        note = f"the first of {found.named} parts named {found.key}: {note}"
    return title, note


def _call_note(tree: VSeq, view: VBlock) -> str:
    position, calls = which_call(tree, view)
    which = f"call {position} of {calls}" if calls > 1 else "its only call"
    where = f" ({view.path})" if view.path != view.block else ""
    call = f": {view.call}" if view.call != view.block else ""
    note = f"{view.block}, {which}{where}{call}"
    if view.params:
        note += " — " + ", ".join(f"{p} = {v}" for p, v in view.params)
    return note


def _part_note(view: Target) -> str:
    if isinstance(view, VMerge):
        return f"{view.path}: {view.op} of {len(view.branches)} branches"
    if isinstance(view, VLayer):
        return f"the layer {view.path} ({view.op})"
    return f"the sequence {view.path} ({_count(view)} layers)"


def _count(view: Target) -> int:
    """How many layers a view holds (a tower drawn once for 32 counts once; train-only heads not at all)."""
    return sum(isinstance(v, VLayer) for v, _ in walk(view, aux=False))


def _tag(svg: Svg, cx: float, y: float, which: str, text: str) -> None:
    w = max(text_width(text, 10.5, True), text_width(which, 9)) + 18
    svg.rect(cx - w / 2, y, w, TAG, "#f4f4f4", "#9a9a9a", rx=6)
    svg.centred(cx, y + 9, which, 8.5, fill=MUTED)
    svg.centred(cx, y + 21, text, 10.5, bold=True)


def _shapes(graph: Graph) -> tuple[dict[str, Shape], dict[str, Shape]]:
    """Each layer's input shape, and its output shape, by its name."""
    outputs = {layer.output: layer.shape for layer in graph.layers}
    outputs["input"] = graph.input_shape
    into = {layer.name: outputs.get(layer.inputs[0], ()) for layer in graph.layers if layer.inputs}
    return into, {layer.name: layer.shape for layer in graph.layers}


def _under(shapes: dict[str, Shape], path: str) -> list[Shape]:
    return [s for name, s in shapes.items() if name == path or name.startswith(path + "/")]


def _first(shapes: dict[str, Shape], path: str) -> Shape | None:
    """The shape into (or out of) the first layer under `path`."""
    found = _under(shapes, path)
    return found[0] if found else None


def _last(shapes: dict[str, Shape], path: str) -> Shape | None:
    found = _under(shapes, path)
    return found[-1] if found else None
